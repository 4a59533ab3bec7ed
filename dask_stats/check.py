"""Preflight: find every problem a conversion would meet, in seconds, without decoding videos.

``check`` = the structural checks of :func:`build_plan` plus, for every episode: Parquet footer (rows,
columns, types), timestamps against fps and against the video's start, and each video container (opens,
codec the backend can read, enough frames).  ``convert`` runs all but the video headers up front; each
video task checks its own video on a worker (a 4 ms open per video adds up to minutes on DROID's 276k).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DatasetError, Problem
from .plan import Episode, Options, Plan, build_plan, read_jsonl
from .storage import Store
from .video import get_backend, read_header

WALL_CLOCK_S = 1e6  # timestamps this large are Unix times, not seconds since the episode start


def check(root: str | os.PathLike | Store, options: Options | None = None,
          output: str | os.PathLike | None = None) -> list[Problem]:
    """Every problem found in the dataset at ``root`` (errors and warnings); [] when all is well."""
    options = options or Options()
    found: list[Problem] = []
    while True:
        try:
            plan = build_plan(root, options)
        except DatasetError as exc:
            found += exc.problems
            # look past features that the user would exclude anyway, to report every other problem too
            more = {p.feature for p in exc.problems if p.fix == f"--exclude-features {p.feature}"}
            if not more or more <= set(options.exclude_features):
                return found
            options = replace(options, exclude_features=tuple(set(options.exclude_features) | more))
            continue
        return found + check_plan(plan, options, in_place=output is None)


def check_plan(plan: Plan, options: Options, in_place: bool = True, videos: bool = True) -> list[Problem]:
    """Problems of a planned conversion; ``videos=False`` leaves the video headers to the video tasks
    (``convert`` does: each task checks its own video before decoding, on the workers)."""
    problems = []
    store = plan.store
    meta = store.path("meta")
    if in_place and store.local and not os.access(meta, os.W_OK):
        problems.append(Problem("the dataset directory is read-only, so it cannot be converted in place",
                                path=meta, fix="--output DIR writes a converted copy"))
    try:
        read_jsonl(store, "meta/tasks.jsonl")
    except DatasetError as exc:
        problems += [replace(p, fix="restore it (LeRobot loaders need it)") for p in exc.problems]
    backend = get_backend(options.video_backend)
    work = EpisodeChecker(plan, options, backend, videos)
    if store.local and not (videos and plan.videos):  # local footers: serial beats threads contending for the GIL
        found = map(work, plan.episodes)
    else:  # remote files: many small reads, overlapped; local videos: FFmpeg opens them without the GIL
        pool = ThreadPoolExecutor(max_workers=16 if not store.local else os.cpu_count() or 1)
        found = pool.map(work, plan.episodes)
        pool.shutdown(wait=False)
    for episode_problems in found:
        problems += episode_problems
    return problems


class EpisodeChecker:
    """Checks one episode's files.  Files of a dataset share a few schemas: what depends only on the schema
    (columns, types, where the footer keeps a column's statistics) is worked out once per schema."""

    def __init__(self, plan: Plan, options: Options, backend, videos: bool = True):
        self.plan, self.options, self.backend, self.videos = plan, options, backend, videos
        self._schemas: dict[pa.Schema, tuple[list[Problem], dict[str, int]]] = {}

    def __call__(self, ep: Episode) -> list[Problem]:
        plan = self.plan
        where = {"episode": ep.index, "path": plan.store.display(ep.data_path)}
        try:
            parquet = pq.ParquetFile(plan.store.source(ep.data_path))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
            return [Problem(f"the Parquet file cannot be read: {exc}", fix="restore the file", **where)]
        schema_problems, leaves = self._schema(parquet)
        problems = [replace(p, **where) for p in schema_problems]
        if parquet.metadata.num_rows != ep.length:
            problems.append(Problem(f"episodes.jsonl says length {ep.length} but the Parquet file has "
                                    f"{parquet.metadata.num_rows} rows", fix="fix meta/episodes.jsonl", **where))
        recorded = _column_range(parquet, leaves.get("episode_index"))
        if recorded is not None and recorded != (ep.index, ep.index):
            problems.append(Problem(f"the file's episode_index column holds {recorded[0]}..{recorded[1]}, not "
                                    f"{ep.index}", feature="episode_index", fix="the file does not belong to this "
                                    "episode: fix the file names or meta/episodes.jsonl", **where))
        span = _timestamp_span(parquet, leaves.get("timestamp"))
        if span is not None and ep.length > 1:
            fps = float(plan.info.get("fps") or 1)
            expected = (ep.length - 1) / fps
            if abs((span[1] - span[0]) - expected) > self.options.tolerance_s:
                problems.append(Problem(
                    f"timestamps run from {span[0]:.6f} to {span[1]:.6f} s, but {ep.length} rows at {fps:g} fps "
                    f"span {expected:.6f} s: they are not spaced 1/fps apart", severity="warning",
                    feature="timestamp", fix="lerobot's loader will refuse this episode; the stats are unaffected",
                    **where))
        for key in plan.videos if self.videos else ():
            problems += _check_video(plan.store, ep, key, span[0] if span else None, self.options, self.backend)
        return problems

    def _schema(self, parquet: pq.ParquetFile) -> tuple[list[Problem], dict[str, int]]:
        """Problems of the file's columns (without episode and path), and the footer's leaf index of each column."""
        schema = parquet.schema_arrow
        found = self._schemas.get(schema)
        if found is None:
            leaves = parquet.metadata.schema
            found = self._schemas[schema] = (_schema_problems(self.plan, schema),
                                             {leaves.column(i).path: i for i in range(len(leaves))})
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


def _timestamp_span(parquet: pq.ParquetFile, leaf: int | None) -> tuple[float, float] | None:
    """First and last timestamp (a scalar column in footer leaf ``leaf``): from the footer's statistics, else
    from the column itself (read through the already open file)."""
    if leaf is None:
        return None
    span = _column_range(parquet, leaf)
    if span is None:
        values = parquet.read(columns=["timestamp"], use_threads=False).column("timestamp").to_numpy()
        span = (values.min(), values.max()) if len(values) else None
    return (float(span[0]) + 0.0, float(span[1]) + 0.0) if span else None  # + 0.0: Parquet writes a zero min as -0.0


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


def _check_video(store: Store, ep: Episode, key: str, first_timestamp: float | None, options: Options,
                 backend) -> list[Problem]:
    path = ep.video_paths[key]
    where = {"episode": ep.index, "feature": key, "path": store.display(path)}
    if not store.is_file(path):
        return []  # reported by build_plan
    if store.size(path) == 0:
        return [Problem("the video file is empty", fix="restore or re-encode it", **where)]
    try:
        header = read_header(store.source(path))
    except Exception as exc:  # noqa: BLE001 - any container error means the same to the user
        return [Problem(f"the video cannot be opened: {exc}", fix="re-encode or restore the file", **where)]
    unreadable = backend.unsupported(header)
    if unreadable:
        return [Problem(unreadable.message, fix=unreadable.fix, **where)]
    return video_problems(header.frames, header.start_s, first_timestamp, ep.length,
                          by_timestamp=options.frame_lookup == "timestamp", tolerance_s=options.tolerance_s, **where)


def video_problems(frames: int, start_s: float, first_timestamp: float | None, length: int, *,
                   by_timestamp: bool, tolerance_s: float, **where) -> list[Problem]:
    """Whether a video with ``frames`` frames starting at ``start_s`` can serve an episode of ``length`` rows
    whose first timestamp is ``first_timestamp`` (from the header here; from the frame index in a video task)."""
    problems = []
    if frames and frames < length:
        problems.append(Problem(f"the video has {frames} frames but the episode has {length} rows "
                                "(truncated video?)", fix="restore or re-encode it", **where))
    if first_timestamp is not None and by_timestamp:
        first = first_timestamp
        if first > WALL_CLOCK_S:
            problems.append(Problem(f"timestamps look like wall-clock times ({first:.3f}), not seconds into the "
                                    "video", fix="--frame-lookup index", **where))
        elif abs(first - start_s) > tolerance_s:
            problems.append(Problem(f"timestamps start at {first:.6f} s but the video starts at {start_s:.6f} s "
                                    "(offset)", fix="--frame-lookup index", **where))
    return problems
