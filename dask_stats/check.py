"""The one room that judges a dataset: every problem a conversion would meet, found in seconds, without
decoding a frame.

``diagnose`` = the problems found while planning (``plan_dataset``) and info.json's totals, plus, for every
episode: the Parquet footer (rows, columns, types, null counts, episode_index), timestamps against fps and against
the video's start, and each video container (opens, codec the backend can read, enough frames).
``convert`` runs it as its preflight with the
video headers left to the video tasks (a 4 ms open per video adds up to minutes on DROID's 276k videos).
The per-episode checks run in batches of episodes on a cluster's workers when its workers are not threads of this
process (``check_plan``).
"""

from __future__ import annotations

import json
import math
import os
import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DatasetError, Location, Problem
from .formats import AlreadyThere, Writer, choose, interrupted, own_diagnosis, plan_dataset
from .formats.v2 import layout
from .formats.v2.info import corrected_info
from .options import Options
from .plan import Episode, Plan, read_jsonl
from .stats.sampling import WALL_CLOCK_S, sample_positions, video_problems
from .storage import OUTPUT_MARKER, Store
from .video import VideoBackend, VideoHeader, get_backend

if TYPE_CHECKING:
    from distributed import Client


def check(root: str | os.PathLike, output: str | os.PathLike | None = None, *, client: Client | None = None,
          storage_options: dict | None = None, **options) -> list[Problem]:
    """Every problem found in the dataset at ``root`` (errors and warnings); [] when all is well.

    ``options`` are those of :func:`dask_stats.convert` (the ones that do not concern checking are ignored);
    with ``output``, the conversion would write a copy there (a read-only source is then fine).  With ``client``,
    a scheduler address (``scheduler_address=``, ``DASK_SCHEDULER_ADDRESS``) or ``scheduler="processes"`` (a local
    cluster of ``num_workers`` processes), the episodes' files are checked on that cluster's workers."""
    opts = Options.of(**options)
    backend = get_backend(opts.stats.video_backend)
    source = Store(root, storage_options)
    found = output_problems(source, Store(output, storage_options)) if output is not None else []
    with _cluster(opts, client) as cluster:
        return found + diagnose(source, opts, backend, in_place=output is None, client=cluster)[1]


@contextmanager
def _cluster(options: Options, client: Client | None) -> Iterator[Client | None]:
    """``client``, a client of the scheduler the options name (``RunOptions.address``), or of a local cluster of
    worker processes (``scheduler="processes"``); else None: the check runs here."""
    if client is None and not options.run.address() and options.run.scheduler != "processes":
        yield None  # distributed (seconds to import) is not needed
        return
    from .engine.runner import open_client

    with open_client(replace(options.run, quiet=True), client) as cluster:  # quiet: no dashboard (no link printed)
        yield cluster


def output_problems(source: Store, target: Store) -> list[Problem]:
    """Why ``target`` cannot receive a converted copy of ``source``: a file, under a file, or a directory
    holding something else than an unfinished copy of ``source`` by this tool."""
    where = target.display(target.root)
    if target.local and source.local:
        inside = Path(target.root).resolve(), Path(source.root).resolve()
        if inside[0] == inside[1]:
            return [Problem("--output is the dataset itself", path=where,
                            fix="leave out --output to convert in place, or choose another directory")]
        if inside[1] in inside[0].parents:
            return [Problem("--output is inside the dataset (the copy would become part of the dataset)",
                            path=where, fix="choose a directory outside --root")]
    if target.local:
        parent = Path(target.root)
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if parent.exists() and not parent.is_dir():
            what = "is a file" if str(parent) == target.root else f"is inside {parent}, which is a file"
            return [Problem(f"--output {what}", path=where, fix="choose a new or empty --output directory")]
    elif target.fs.isfile(target.root):
        return [Problem("--output is a file", path=where, fix="choose a new or empty --output directory")]
    if target.is_empty_or_missing():
        return []
    try:
        marker = json.loads(target.read_text(target.path(OUTPUT_MARKER)))
    except (OSError, ValueError):
        marker = None
    if isinstance(marker, dict) and marker.get("source") == source.display(source.root):
        return []  # an unfinished copy of this dataset: the same command resumes it
    return [Problem("the output directory is not empty", path=where, fix="choose a new or empty --output directory",
                    code="output-not-empty")]


def preflight(store: Store, options: Options, backend: VideoBackend, in_place: bool,
              client: Client | None = None) -> tuple[Plan, type[Writer], list[Problem]]:
    """The plan of a conversion, the writer that will write it and the warnings; raises NothingToDo when the
    dataset is already in the format asked for, DatasetError listing every error.  Video headers are left to the
    video tasks (each checks its own video on a worker), except one per camera.  The episodes' files are checked
    on ``client``'s workers where that helps (``check_plan``)."""
    if options.safety.skip_check:
        plan, problems = plan_dataset(store, options.stats)
        writer = _writer(plan, options, problems)
    else:
        plan, problems, writer = _diagnose(store, options, backend, in_place, videos=False, client=client)
    if isinstance(writer, AlreadyThere):
        raise writer.error(store.display(store.path(layout.INFO)))
    errors = [p for p in problems if p.severity == "error"]
    if errors or plan is None or writer is None:
        raise DatasetError(errors)
    return plan, writer, problems


def diagnose(store: Store, options: Options, backend: VideoBackend, in_place: bool = True,
             videos: bool = True, client: Client | None = None) -> tuple[Plan | None, list[Problem]]:
    """The plan (None if the metadata is too broken) and every problem of the dataset in ``store``, each
    reported once; ``videos=False`` opens only the first video of each camera; ``client``: see ``check_plan``."""
    plan, problems, _ = _diagnose(store, options, backend, in_place, videos, client)
    return plan, problems


def _diagnose(store, options, backend, in_place, videos, client):
    plan, problems = plan_dataset(store, options.stats)
    writer = _writer(plan, options, problems)
    if plan is None:
        return None, interrupted(store) + problems, writer
    if isinstance(writer, AlreadyThere):
        problems.append(writer.problem(store.display(store.path(layout.INFO))))
    own = own_diagnosis(plan, options.stats)  # a format that judges its files itself, whatever is written
    if own is not None:
        return plan, problems + own, writer
    if isinstance(writer, AlreadyThere):
        return plan, problems, writer  # nothing to do (not an error): the files are not judged
    if any(p.severity == "error" and p.feature is None and p.path == store.display(store.path(layout.INFO))
           for p in problems):
        return plan, problems, writer  # info.json itself is wrong (not a feature's declaration): files not judged
    return plan, problems + check_plan(plan, options, backend, in_place, videos, client), writer


def _writer(plan: Plan | None, options: Options, problems: list[Problem]) -> type[Writer] | AlreadyThere | None:
    """The writer for ``plan`` (``formats.choose``); a combination it cannot write is added to ``problems``."""
    if plan is None:
        return None
    try:
        return choose(plan.version, options.stats, options.safety.force)
    except DatasetError as exc:
        problems += exc.problems
        return None


def check_plan(plan: Plan, options: Options, backend: VideoBackend, in_place: bool = True,
               videos: bool = True, client: Client | None = None) -> list[Problem]:
    """Problems of the files of a planned conversion (see ``diagnose``).  The episodes' files are checked on
    ``client``'s workers when they run outside this process (a cluster reading the files where they live, or
    worker processes on more cores), else here."""
    problems = []
    store = plan.store
    meta = store.path("meta")
    if in_place and store.local and not os.access(meta, os.W_OK):
        problems.append(Problem("the dataset directory is read-only, so it cannot be converted in place",
                                path=meta, fix="--output DIR writes a converted copy"))
    try:
        read_jsonl(store, layout.TASKS)
    except DatasetError as exc:
        problems += [replace(p, fix="restore it (LeRobot loaders need it)") for p in exc.problems]
    problems += _special_files(store)
    problems += _total_problems(plan)
    if plan.has_stats_json and not options.safety.skip_verify:
        problems += stats_json_problems(plan)
    if not videos:
        problems += _first_videos_readable(plan, backend)
    work = EpisodeChecker(plan, options, backend, videos)
    if client is not None and not getattr(client, "dask_stats_in_process", False):
        return problems + _on_cluster(client, work, plan, options.run.retries)
    return problems + work.batch(plan.episodes)


CHECK_BATCH = 500  # episodes per preflight task on a cluster (100k episodes: 200 tasks)


def _on_cluster(client: Client, work: EpisodeChecker, plan: Plan, retries: int) -> list[Problem]:
    """The problems of the plan's episodes, in their order, checked in batches on the cluster's workers by the
    one runner (tasks named like ``check-ep000000-000499-<run>``; one graph per batch: the episodes' paths, ~350
    bytes each, would make one graph of 35 MB at 100k episodes)."""
    import dask

    from .engine import runner
    from .engine.tasks import Task, task_key

    episodes = plan.episodes
    batches = [episodes[i:i + CHECK_BATCH] for i in range(0, len(episodes), CHECK_BATCH)]
    keys = [task_key("check", [batch[0].index, batch[-1].index], plan.run) for batch in batches]
    tasks = [Task("check", [ep.index for ep in batch], Location(batch[0].index, path=batch[0].data_path),
                  dask.delayed(work.batch)(batch, dask_key_name=key)) for batch, key in zip(batches, keys)]
    found: dict[int, list[Problem]] = {}
    runner.run(client, tasks, set(), lambda task, problems: found.__setitem__(task.episodes[0], problems),
               retries=retries, quiet=True)
    return [problem for first in sorted(found) for problem in found[first]]


def _total_problems(plan: Plan) -> list[Problem]:
    """Warnings where info.json's totals disagree with meta/episodes.jsonl (lerobot's loaders and the Hub viewer
    read them; a conversion writes the counted values)."""
    return corrected_info(plan.info, len(plan.episodes), plan.total_frames,
                          plan.store.display(plan.store.path(layout.INFO)))[1]


def _special_files(store: Store) -> list[Problem]:
    """FIFOs, sockets and devices in a local dataset (copying or reading one would block or never end)."""
    if not store.local:
        return []
    found = []
    pending = [store.root]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir():
                    pending.append(entry.path)
                elif not entry.is_file() and (not entry.is_symlink() or os.path.exists(entry.path)):
                    found.append(Problem("is not a regular file (a FIFO, socket or device?): it cannot be read or "
                                         "copied as part of the dataset", path=entry.path,
                                         fix="remove it from the dataset directory"))
            except OSError:
                continue
    return found


def stats_json_problems(plan: Plan) -> list[Problem]:
    """Why meta/stats.json cannot serve as the reference of verification (checked before any computing)."""
    store = plan.store
    path = store.display(store.path(layout.STATS))
    fix = "restore meta/stats.json, or --skip-verify"
    try:
        reference = json.loads(store.read_text(store.path(layout.STATS)))
    except (ValueError, UnicodeDecodeError) as exc:
        return [Problem(f"meta/stats.json is not valid JSON: {exc}", path=path, fix=fix)]
    except OSError as exc:
        return [Problem(f"meta/stats.json cannot be read: {exc}", path=path, fix=fix)]
    if not isinstance(reference, dict):
        return [Problem("meta/stats.json is not a JSON object", path=path, fix=fix)]
    problems = []
    for name in plan.stats_features:
        stats = reference.get(name)
        if stats is None:
            continue
        if not isinstance(stats, dict):
            problems.append(Problem("its entry in meta/stats.json is not a JSON object", feature=name, path=path,
                                    fix=fix))
            continue
        for stat in ("mean", "std", "min", "max"):
            if stat in stats:
                try:
                    np.asarray(stats[stat], dtype=np.float64)
                except (TypeError, ValueError):
                    problems.append(Problem(f"meta/stats.json's {stat} is not an array of numbers: "
                                            f"{str(stats[stat])[:60]}", feature=name, path=path, fix=fix))
    return problems


def _first_videos_readable(plan: Plan, backend: VideoBackend) -> list[Problem]:
    """Whether ``backend`` can read each camera's first video (a cheap open, no decoding)."""
    problems = []
    for key in plan.videos:
        first = next((ep for ep in plan.episodes if plan.store.is_file(ep.video_paths[key])), None)
        if first is not None:
            problems += _probe(plan.store, first, key, backend)[1]
    return problems


class EpisodeChecker:
    """Checks one episode's files.  Files of a dataset share a few schemas: what depends only on the schema
    (columns, types, where the footer keeps a column's statistics) is worked out once per schema."""

    def __init__(self, plan: Plan, options: Options, backend: VideoBackend, videos: bool = True):
        # the dataset's declarations, not its episodes: each episode comes with its call (and the checker is
        # shipped to the workers with every batch)
        self.plan, self.options, self.backend, self.videos = replace(plan, episodes=[]), options, backend, videos
        self._schemas: dict[pa.Schema, tuple[list[Problem], dict[str, range]]] = {}
        # the cameras by frame rate, when sampled rows will find their frames by timestamp
        self._grids: dict[float, list[str]] = {}
        if options.stats.frame_lookup == "timestamp":
            for key in plan.videos:
                self._grids.setdefault(_video_fps(plan, key), []).append(key)

    def batch(self, episodes: list[Episode]) -> list[Problem]:
        """The problems of ``episodes``, in their order (here, or as one task on a cluster)."""
        local = self.plan.store.local
        if not local:  # one listing per directory answers "is it a file, how big" for all (not a request per file)
            self._list({posixpath.dirname(path) for ep in episodes
                        for path in (ep.data_path, *(ep.video_paths.values() if self.videos else ()))})
        if local and not (self.videos and self.plan.videos):  # local footers: serial beats threads (GIL)
            found = map(self, episodes)
        else:  # remote files: many small reads, overlapped; local videos: FFmpeg opens them without the GIL
            threads = (self.options.run.num_workers or os.cpu_count() or 1) if local else 16
            with ThreadPoolExecutor(max_workers=threads) as pool:
                found = list(pool.map(self, episodes))
        return [problem for episode_problems in found for problem in episode_problems]

    def _list(self, directories: set[str]) -> None:
        """List ``directories`` into the filesystem's listings cache (planning did so on the client)."""
        for directory in sorted(directories):
            try:
                self.plan.store.fs.ls(directory)
            except FileNotFoundError:
                continue  # its files are reported missing by the plan

    def __call__(self, ep: Episode) -> list[Problem]:
        plan = self.plan
        where = {"episode": ep.index, "path": plan.store.display(ep.data_path)}
        try:
            with plan.store.source(ep.data_path) as source:
                problems, span = self._footer(pq.ParquetFile(source), ep, where)
        except FileNotFoundError:
            return []  # reported by the plan
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
            return [Problem(f"the Parquet file cannot be read: {exc}", fix="restore the file", **where)]
        first = span[0] if span and span[0] <= WALL_CLOCK_S else None  # wall-clock: said once, by the footer
        for key in plan.videos if self.videos else ():
            problems += _check_video(plan.store, ep, key, first, self.options, self.backend)
        return problems

    def _footer(self, parquet: pq.ParquetFile, ep: Episode, where: dict) -> tuple[list[Problem], tuple | None]:
        """Problems of one episode's Parquet file, and its first and last timestamp."""
        plan = self.plan
        schema_problems, leaves = self._schema(parquet)
        problems = [replace(p, **where) for p in schema_problems]
        if parquet.metadata.num_rows != ep.length:
            problems.append(Problem(f"episodes.jsonl says length {ep.length} but the Parquet file has "
                                    f"{parquet.metadata.num_rows} rows", fix="fix meta/episodes.jsonl", **where))
        problems += _null_problems(plan, parquet, leaves, where)
        recorded = _scalar_range(parquet, leaves, "episode_index")
        if recorded is not None and recorded != (ep.index, ep.index):
            problems.append(Problem(f"the file's episode_index column holds {recorded[0]}..{recorded[1]}, not "
                                    f"{ep.index}", feature="episode_index", fix="the file does not belong to this "
                                    "episode: fix the file names or meta/episodes.jsonl", **where))
        span = _scalar_range(parquet, leaves, "timestamp")
        # + 0.0: Parquet writes a zero min as -0.0
        span = (float(span[0]) + 0.0, float(span[1]) + 0.0) if span else None
        if span is not None and ep.length > 1:
            fps = float(plan.info.get("fps") or 1)
            expected = (ep.length - 1) / fps
            if abs((span[1] - span[0]) - expected) > self.options.stats.tolerance_s:
                problems.append(Problem(
                    f"timestamps run from {span[0]:.6f} to {span[1]:.6f} s, but {ep.length} rows at {fps:g} fps "
                    f"span {expected:.6f} s: they are not spaced 1/fps apart", severity="warning",
                    feature="timestamp", fix="lerobot's loader will refuse this episode; video frames are matched to "
                    "rows by timestamp, so video stats may fail or sample other frames (--frame-lookup index matches "
                    "by position)",
                    **where))
        if span is not None and self._grids:
            if span[0] > WALL_CLOCK_S:
                problems.append(Problem(f"timestamps look like wall-clock times ({span[0]:.3f}), not seconds into "
                                        "the video: no sampled row would find its frame", feature="timestamp",
                                        fix="--frame-lookup index", **where))
            else:
                problems += self._grid_problems(parquet, leaves, where)
        return problems, span

    def _grid_problems(self, parquet: pq.ParquetFile, leaves: dict[str, range], where: dict) -> list[Problem]:
        """Errors for sampled rows whose timestamp is off the video's frame grid (``k / fps`` from the first
        timestamp) by more than ``--tolerance-s``: the video task would find no frame for them (jittered or
        dropped-frame timestamps).  Reads the timestamp column (one small column chunk per file); the offset of
        the grid from the video's first frame is the video header's check."""
        if len(leaves.get("timestamp", ())) != 1:
            return []
        column = parquet.read(columns=["timestamp"], use_threads=False).column("timestamp")
        if column.null_count or not len(column) or not pa.types.is_floating(column.type) and not \
                pa.types.is_integer(column.type):
            return []  # nulls and types are reported by the footer checks
        timestamps = column.to_numpy().astype(np.float64)
        positions = sample_positions(len(timestamps))
        elapsed = timestamps[positions] - timestamps[0]
        tolerance = self.options.stats.tolerance_s
        problems = []
        for fps, cameras in self._grids.items():
            off = np.abs(elapsed - np.rint(elapsed * fps) / fps)
            bad = np.flatnonzero(~(off <= tolerance))
            if not len(bad):
                continue
            i = bad[0]
            problems.append(Problem(
                f"{len(bad)} of {len(positions)} sampled timestamps are off the {fps:g} fps frame grid of "
                f"{', '.join(cameras)} by more than {tolerance:g} s (first: row {int(positions[i])} at "
                f"{timestamps[positions[i]]:.6f} s, {off[i]:.6f} s from a frame): jittered or dropped-frame "
                "timestamps; the video stats would find no frame for them", feature="timestamp",
                fix="--frame-lookup index matches rows to frames by position (or raise --tolerance-s if the "
                    "timestamps are only imprecise)", **where))
        return problems

    def _schema(self, parquet: pq.ParquetFile) -> tuple[list[Problem], dict[str, range]]:
        """Problems of the file's columns (without episode and path), and the footer's leaves of each top-level
        column (a scalar column has one leaf; a vector's leaf is its elements)."""
        schema = parquet.schema_arrow
        found = self._schemas.get(schema)
        if found is None:
            leaves, start = {}, 0
            for field in schema:
                count = _leaf_count(field.type)
                leaves[field.name] = range(start, start + count)
                start += count
            if start != parquet.metadata.num_columns:  # a layout this reading does not follow: use no leaf
                leaves = {}
            found = self._schemas[schema] = (_schema_problems(self.plan, schema), leaves)
        return found


def _schema_problems(plan: Plan, schema: pa.Schema) -> list[Problem]:
    problems = [Problem("column is not declared in info.json (it gets no stats)", severity="warning", feature=name)
                for name in schema.names if name not in plan.features]
    for name in plan.numeric + plan.images:
        if name not in schema.names:
            problems.append(Problem("feature is declared in info.json but has no Parquet column", feature=name,
                                    fix=f"--exclude-features {name}"))
            continue
        feature = plan.features[name]
        problem = _check_type(schema.field(name).type, feature["dtype"], tuple(feature.get("shape") or [1]))
        if problem:
            problems.append(Problem(problem, feature=name, fix=f"fix the data, or --exclude-features {name}"))
    return problems


def _video_fps(plan: Plan, key: str) -> float:
    """The frame rate of camera ``key``: its ``info.video.fps`` in info.json, else the dataset's fps."""
    declared = plan.features[key].get("info")
    for fps in (declared.get("video.fps") if isinstance(declared, dict) else None, plan.info.get("fps")):
        if isinstance(fps, (int, float)) and not isinstance(fps, bool) and fps > 0:
            return float(fps)
    return 1.0


def _leaf_count(arrow_type: pa.DataType) -> int:
    """How many Parquet leaf columns an Arrow column of ``arrow_type`` is stored as."""
    if pa.types.is_struct(arrow_type):
        return sum(_leaf_count(arrow_type.field(i).type) for i in range(arrow_type.num_fields))
    if pa.types.is_map(arrow_type):
        return _leaf_count(arrow_type.key_type) + _leaf_count(arrow_type.item_type)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        return _leaf_count(arrow_type.value_type)
    return 1


def _null_problems(plan: Plan, parquet: pq.ParquetFile, leaves: dict[str, range], where: dict) -> list[Problem]:
    """Errors for the nulls that the footer counts in declared numeric columns (the stats task would fail on them)."""
    problems = []
    metadata = parquet.metadata
    for name in plan.numeric:
        nulls = 0
        for leaf in leaves.get(name, ()):
            for group in range(metadata.num_row_groups):
                stats = metadata.row_group(group).column(leaf).statistics
                if stats is not None and stats.has_null_count:
                    nulls += stats.null_count
        if nulls:
            problems.append(Problem(f"the column holds {nulls} null value(s) (a null row or vector element): its "
                                    "stats cannot be computed", feature=name,
                                    fix=f"fill or drop the null rows, or --exclude-features {name}", **where))
    return problems


def _scalar_range(parquet: pq.ParquetFile, leaves: dict[str, range], column: str) -> tuple | None:
    """(min, max) of a scalar ``column``: from the footer's statistics, else from the column itself (read
    through the already open file); None without such a column or rows."""
    leaf = leaves.get(column)
    if leaf is None or len(leaf) != 1:
        return None
    span = _column_range(parquet, leaf[0])
    if span is None:
        values = parquet.read(columns=[column], use_threads=False).column(column)
        values = values.drop_null().to_numpy() if values.null_count else values.to_numpy()
        span = (values.min(), values.max()) if len(values) else None
    return span


def _column_range(parquet: pq.ParquetFile, leaf: int | None) -> tuple | None:
    """(min, max) of the scalar column stored in footer leaf ``leaf``, from the row-group statistics (no data read)."""
    if leaf is None:
        return None
    lows, highs = [], []
    for group in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(group).column(leaf).statistics
        if stats is None or not stats.has_min_max:
            return None
        lows.append(stats.min)
        highs.append(stats.max)
    return (min(lows), max(highs)) if lows else None


@lru_cache(maxsize=1024)  # a dataset has few distinct (column type, declaration) pairs
def _check_type(arrow_type: pa.DataType, dtype: str, shape: tuple[int, ...]) -> str | None:
    if dtype == "image":
        ok = pa.types.is_struct(arrow_type) and arrow_type.get_field_index("bytes") >= 0
        return None if ok else f"image column has type {arrow_type}, expected a struct with 'bytes'"
    leaf, sizes = arrow_type, []
    while pa.types.is_list(leaf) or pa.types.is_large_list(leaf) or pa.types.is_fixed_size_list(leaf):
        sizes.append(leaf.list_size if pa.types.is_fixed_size_list(leaf) else None)
        leaf = leaf.value_type
    if not (pa.types.is_integer(leaf) or pa.types.is_floating(leaf) or pa.types.is_boolean(leaf)):
        return f"non-numeric data ({arrow_type}) in a {dtype} feature"
    shape = list(shape)
    if sizes and None not in sizes and sizes != shape[:len(sizes)]:
        return f"vectors of length {sizes} but info.json declares shape {shape}"
    if not sizes and math.prod(shape) != 1:
        return f"scalar column but info.json declares shape {shape}"
    return None


def _probe(store: Store, ep: Episode, key: str, backend: VideoBackend) -> tuple[VideoHeader | None, list[Problem]]:
    """One video's header, or why it is unusable: empty, unreadable, or a codec ``backend`` cannot decode."""
    path = ep.video_paths[key]
    where = {"episode": ep.index, "feature": key, "path": store.display(path)}
    if store.size(path) == 0:
        return None, [Problem("the video file is empty", fix="restore or re-encode it", **where)]
    try:
        with store.source(path) as source:
            header = backend.probe(source)
    except Exception as exc:  # noqa: BLE001 - any container error means the same to the user
        return None, [Problem(f"the video cannot be opened: {exc}", fix="re-encode or restore the file", **where)]
    unreadable = backend.unsupported(header)
    return header, [Problem(unreadable.message, fix=unreadable.fix, **where)] if unreadable else []


def _check_video(store: Store, ep: Episode, key: str, first_timestamp: float | None, options: Options,
                 backend: VideoBackend) -> list[Problem]:
    path = ep.video_paths[key]
    if not store.is_file(path):
        return []  # reported by the plan
    header, problems = _probe(store, ep, key, backend)
    if problems:
        return problems
    return video_problems(header.frames, header.start_s, first_timestamp, ep.length,
                          by_timestamp=options.stats.frame_lookup == "timestamp",
                          tolerance_s=options.stats.tolerance_s, episode=ep.index, feature=key,
                          path=store.display(path))
