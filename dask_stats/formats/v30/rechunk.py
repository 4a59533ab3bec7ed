"""Re-chunk a v3.0 dataset: the same episodes, rows and frames, in data and video files of other sizes.

Phase 1 (beside the stats tasks, of which there are none when the published stats are carried over): one task per new
data file copies its episodes' row ranges (every column unchanged, ``index`` included), and one probe task per camera
and video file reads its stream signature and the bytes of each episode.  Phase 2: one task per camera and new video
file cuts its episodes out by stream copy and concatenates them with exact offsets; the first and last frame of every
episode decoded from the new file must equal the source's at the same episode time.  Commit: meta/episodes with the
new locations and its stats columns carried over (recomputed when an episode lacks them), info.json with the new
sizes, stats.json and every other file hard-linked, in a staging tree moved into place (in place, the old tree is kept
as ``<root>_old``).  A size not given leaves those files as they are (hard-linked).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import dask
import pyarrow as pa
import pyarrow.parquet as pq

from ...engine.tasks import Task, task_key
from ...errors import DatasetError, Location, Problem, TaskError
from ...hub.push import V30
from ...options import Options
from ...plan import Plan
from ...storage import Store
from ...video import first_last_frame_times, stream_signature, verify_episode_frames
from ...video.remux import concat_videos, cut_episodes, span_bytes
from ..base import Computed
from ..staging import TreeWriter
from .data import RowRange, copy_rows
from .grouping import Group, group_by_size
from .layout import DATA_FILES_SIZE_IN_MB, INFO_PATH, STATS_PATH, data_path, video_path
from .meta import EPISODES_FILE_COLUMNS, stats_by_episode, write_episodes, write_info, write_stats
from .reader import episodes_files, read_dataset, read_episode_stats, read_stats
from .restat import published_kept, with_stats
from .videofiles import missing_video_problems
from .writer import dataset_stats

EPISODE_STATS = ("min", "max", "mean", "std", "count")  # what every episode must have to carry its stats over
CUTS = ".cut-"  # prefix of the scratch directories of the video tasks, inside the staging tree


class RechunkWriter(TreeWriter):
    """The v3.0 ``plan`` with its data and/or video files rewritten at the sizes given, built in a staging tree."""

    format = "v3.0"
    push_layout = V30
    dataset_quantiles = True
    verification = "report"  # only when the stats are recomputed: they replace published ones that were incomplete
    description = "its data and video files at the sizes given (rows and frames unchanged, stats carried over)"
    replaces = "v3.0"
    local_only = True

    def __init__(self, plan: Plan, target: Store, options: Options, in_place: bool):
        super().__init__(plan, target, options, in_place)
        self.staging = self.tree.staging
        self.data_mb, self.video_mb = options.stats.data_file_size_in_mb, options.stats.video_file_size_in_mb
        self.dataset = read_dataset(plan.store) if plan.store.local and target.local else None
        self.recompute = self._why_recompute() if self.dataset is not None else None
        self.data_groups: list[Group] = []
        self.probes: list[Task] = []
        self.copies: list[Task] = []
        self.video_groups: dict[str, list[Group]] = {}

    def problems(self) -> list[Problem]:
        """Why the layout cannot be rewritten (before any work)."""
        if self.dataset is None:
            return [Problem("re-chunking reads and writes local directories only", path=str(self.tree.final),
                            fix="download the dataset first (or mount the bucket)")]
        problems = super().problems()
        if self.video_mb is not None:
            keep = "leave --video-file-size-in-mb out (the video files are then kept as they are)"
            problems += [replace(p, fix=f"restore the file, or {keep}")
                         for p in missing_video_problems(self.plan.store, self.dataset.video_keys,
                                                         self.dataset.episodes)]
        return problems

    def _why_recompute(self) -> str | None:
        """Why the published stats cannot be carried over (None: they can)."""
        if self.options.safety.force:
            return "--force"
        features, store = self.plan.stats_features, self.plan.store
        try:
            published = read_stats(store) if self.plan.has_stats_json else {}
        except DatasetError:
            published = {}
        absent = [f for f in features if not isinstance(published.get(f), dict)]
        if absent:
            return f"meta/stats.json has no stats for {', '.join(absent)}"
        by_episode = read_episode_stats(store)
        for ep in self.dataset.episodes:
            stats = by_episode.get(ep.index, {})
            for feature in features:
                if any(stats.get(feature, {}).get(name) is None for name in EPISODE_STATS):
                    return f"episode {ep.index} has no {feature} stats in meta/episodes"
        return None

    def stats_plan(self) -> Plan:
        """Nothing to compute when the published stats are carried over; else every feature's stats."""
        if self.recompute is None:
            return replace(self.plan, numeric=[], images=[], videos=[])
        return self.plan

    def begin(self, resuming: bool) -> None:
        super().begin(resuming)
        for scratch in self.staging.glob(CUTS + "*"):  # left by a video task that was killed
            shutil.rmtree(scratch, ignore_errors=True)

    # -- phase 1 ------------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        """The new data files, and a probe of every video file (signature, bytes per episode)."""
        tasks = self._data_tasks() if self.data_mb is not None else []
        return tasks + (self._probe_tasks() if self.video_mb is not None else [])

    def _data_tasks(self) -> list[Task]:
        store, episodes = self.plan.store, self.dataset.episodes
        rows: dict[str, int] = {}
        for ep in episodes:
            rows[ep.data_path] = rows.get(ep.data_path, 0) + ep.length
        sizes = {path: store.size(store.path(path)) for path in rows}
        estimate = [sizes[ep.data_path] * ep.length // max(rows[ep.data_path], 1) for ep in episodes]
        self.data_groups = group_by_size(estimate, self.data_mb)
        tasks = []
        for group in self.data_groups:
            members = [episodes[i] for i in group.episodes]
            ranges = [RowRange(ep.data_path, *self.plan.episodes[i].rows) for i, ep in zip(group.episodes, members)]
            indices = [ep.index for ep in members]
            dest = str(self.staging / data_path(group.index))
            key = task_key("rechunk-data", indices, self.plan.run)
            where = Location(indices[0], path=store.display(store.path(members[0].data_path)))
            tasks.append(Task("rechunk-data", indices, where,
                              dask.delayed(copy_rows)(store, ranges, dest, dask_key_name=key), output=dest))
        return tasks

    def _probe_tasks(self) -> list[Task]:
        store, tasks = self.plan.store, []
        for feature, path, members in self._video_files():
            indices = [ep.index for ep in members]
            spans = [(ep.videos[feature].from_timestamp, ep.videos[feature].to_timestamp) for ep in members]
            key = task_key(f"rechunk-probe-{feature}", indices, self.plan.run)
            delayed = dask.delayed(_probe)(store, path, spans, self.options.stats.tolerance_s, dask_key_name=key)
            tasks.append(Task("rechunk-probe", indices, Location(indices[0], feature, store.display(store.path(path))),
                              delayed, feature=feature))
        self.probes = tasks
        return tasks

    def _video_files(self):
        """(camera, source video file, its episodes in order) for every camera and file."""
        for feature in self.dataset.video_keys:
            by_file: dict[str, list] = {}
            for ep in self.dataset.episodes:
                by_file.setdefault(ep.videos[feature].path, []).append(ep)
            for path, members in by_file.items():
                yield feature, path, members

    # -- phase 2 ------------------------------------------------------------------------------------
    def later_tasks(self, files: dict[str, object]) -> list[Task]:
        """One task per camera and new video file: cut its episodes out of the source files and concatenate them."""
        if self.video_mb is None:
            return []
        store, episodes = self.plan.store, self.dataset.episodes  # episode index = position (the reader checks)
        tasks = []
        for feature in self.dataset.video_keys:
            sizes, signatures = [0] * len(episodes), [None] * len(episodes)
            for probe in self.probes:
                if probe.feature == feature:
                    signature, found = files[probe.key]
                    for index, size in zip(probe.episodes, found):
                        sizes[index], signatures[index] = size, signature
            groups = self.video_groups[feature] = group_by_size(sizes, self.video_mb, signatures=signatures)
            for group in groups:
                members = [episodes[i] for i in group.episodes]
                pieces: list[tuple[str, list[int], list[tuple[float, float]]]] = []
                for ep in members:
                    ref = ep.videos[feature]
                    if not pieces or pieces[-1][0] != ref.path:
                        pieces.append((ref.path, [], []))
                    pieces[-1][1].append(ep.index)
                    pieces[-1][2].append((ref.from_timestamp, ref.to_timestamp))
                indices = [ep.index for ep in members]
                dest = str(self.staging / video_path(feature, group.index))
                key = task_key(f"rechunk-video-{feature}", indices, self.plan.run)
                delayed = dask.delayed(_rechunk_video)(store, pieces, dest, str(self.staging), feature,
                                                       self.options.stats.tolerance_s, dask_key_name=key)
                where = Location(indices[0], feature, store.display(store.path(members[0].videos[feature].path)))
                tasks.append(Task("rechunk-video", indices, where, delayed, feature=feature, output=dest))
        self.copies = tasks
        return tasks

    # -- commit -------------------------------------------------------------------------------------
    def commit(self, computed: Computed) -> None:
        """meta/ with the new locations, the other files hard-linked; check the tree, then move it into place."""
        plan, store, staging = self.plan, self.plan.store, self.staging
        table = self._episodes(computed)
        shutil.rmtree(staging / "meta", ignore_errors=True)  # meta/ is written whole by this commit
        table = table.select([name for name in table.column_names if name not in EPISODES_FILE_COLUMNS])
        info = dict(self.dataset.info)
        if self.data_mb is not None:
            info["data_files_size_in_mb"] = _number(self.data_mb)
        if self.video_mb is not None:
            info["video_files_size_in_mb"] = _number(self.video_mb)
        limit = self.data_mb or info.get("data_files_size_in_mb") or DATA_FILES_SIZE_IN_MB  # lerobot's rollover
        write_episodes(str(staging), table.to_pylist(), limit_mb=limit, schema=table.schema)
        write_info(str(staging / INFO_PATH), info)
        if self.recompute is not None:
            write_stats(str(staging / STATS_PATH),
                        {**dataset_stats(plan, computed.tables, computed.quantiles), **published_kept(plan)})
            computed.warnings.append(Problem(f"the published stats were recomputed ({self.recompute})",
                                             severity="info" if self.recompute == "--force" else "warning"))
        every = store.files()
        linked = {relative for relative in every if self._kept(relative)}
        store.mirror_to(Store(str(staging)), skip=set(every) - linked)
        if computed.after_copy is not None:
            computed.after_copy()
        read_dataset(str(staging))  # the tree reads back as a v3.0 dataset
        self._check_rows()
        planned = linked | {p.relative_to(staging).as_posix() for p in (staging / "meta").rglob("*")
                                 if p.is_file()}
        planned |= {data_path(group.index) for group in self.data_groups}
        planned |= {Path(task.output).relative_to(staging).as_posix() for task in self.copies}
        self.tree.settle(planned)
        try:
            self.tree.swap()
        except BaseException as exc:
            exc.partial_commit = True
            raise

    def _episodes(self, computed: Computed) -> pa.Table:
        """Every row of meta/episodes with the new file locations (and the recomputed stats, if they were)."""
        store = self.plan.store
        tables = []
        for relative in episodes_files(store):
            with store.source(store.path(relative)) as source:
                tables.append(pq.read_table(source))
        table = pa.concat_tables(tables)
        if self.recompute is not None:
            table = with_stats(table, stats_by_episode(computed.records), self.plan.stats_features)
        columns: dict[str, dict[int, object]] = {}  # column -> {episode index: new value}
        for group in self.data_groups:
            for i in group.episodes:
                columns.setdefault("data/chunk_index", {})[i] = group.index.chunk
                columns.setdefault("data/file_index", {})[i] = group.index.file
        for task in self.copies:
            spans = computed.files[task.key]
            for ep, (start, end) in zip(task.episodes, spans):
                columns.setdefault(f"videos/{task.feature}/from_timestamp", {})[ep] = start
                columns.setdefault(f"videos/{task.feature}/to_timestamp", {})[ep] = end
        for feature, groups in self.video_groups.items():
            for group in groups:
                for i in group.episodes:
                    columns.setdefault(f"videos/{feature}/chunk_index", {})[i] = group.index.chunk
                    columns.setdefault(f"videos/{feature}/file_index", {})[i] = group.index.file
        for name, values in columns.items():
            position = table.schema.get_field_index(name)
            field = table.schema.field(position)
            table = table.set_column(position, field, pa.array([values[i] for i in range(table.num_rows)], field.type))
        return table

    def _kept(self, relative: str) -> bool:
        """Whether a file of the source goes into the new tree as it is (hard-linked; meta/ copied)."""
        if relative.startswith("meta/episodes/") or relative == INFO_PATH or "/." in "/" + relative:
            return False
        if relative == STATS_PATH:
            return self.recompute is None
        if self.data_mb is not None and relative in {ep.data_path for ep in self.dataset.episodes}:
            return False
        return self.video_mb is None or not relative.startswith("videos/")

    def _check_rows(self) -> None:
        """The data files of the new tree hold ``total_frames`` rows, every episode's where meta/episodes says."""
        paths = {data_path(group.index) for group in self.data_groups} or {ep.data_path for ep in self.dataset.episodes}
        rows = sum(pq.ParquetFile(self.staging / path).metadata.num_rows for path in paths)
        if rows != self.plan.total_frames:
            raise DatasetError(Problem(f"the new data files hold {rows} rows; the dataset has {self.plan.total_frames}",
                                       path=str(self.staging), fix="run the same command again with --no-resume"))


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _probe(store: Store, path: str, spans: list[tuple[float, float]], tolerance_s: float):
    """The stream signature of one video file and the bytes of each of its episodes (by position)."""
    with store.local_file(store.path(path)) as local:
        try:
            return stream_signature(local), span_bytes(local, spans, tolerance_s=tolerance_s)
        except Exception as exc:  # any container error names the file
            where = store.display(store.path(path))
            raise TaskError([Problem(f"the video cannot be probed: {exc}", path=where)]) from exc


def _rechunk_video(store: Store, pieces: list[tuple[str, list[int], list[tuple[float, float]]]], dest: str,
                   scratch: str, feature: str, tolerance_s: float) -> list[tuple[float, float]]:
    """Cut the episodes of ``pieces`` (per source file: episodes and their spans) out by stream copy into a scratch
    directory, concatenate them into ``dest`` and return each episode's ``(from_timestamp, to_timestamp)`` there; the
    frames at an episode's first and last time must equal the source's."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix=CUTS) as cuts:
        cut_files, sources, problems = [], [], []
        for path, episodes, spans in pieces:
            where = store.display(store.path(path))
            dests = [os.path.join(cuts, f"episode_{index:06d}.mp4") for index in episodes]
            with store.local_file(store.path(path)) as local:
                try:
                    done = cut_episodes(local, spans, dests, tolerance_s=tolerance_s)
                except DatasetError as exc:
                    raise TaskError([replace(p, episode=episodes[0], feature=feature, path=where)
                                     for p in exc.problems]) from exc
            problems += [Problem(f"cannot re-chunk the episode by stream copy: {cut.reason}", episode=index,
                                 feature=feature, path=where,
                                 fix="leave --video-file-size-in-mb out (the video files are then kept as they are)")
                         for index, cut in zip(episodes, done) if not cut.stream_copied]
            cut_files += dests
            sources += [(path, index, span) for index, span in zip(episodes, spans)]
        if problems:
            raise TaskError(problems)
        # every frame moves by the same exact offset: the episode keeps its span (a cut file's stream duration,
        # which concat_videos reads, can miss its last frame's)
        new_spans = [(new_start, new_start + (end - start))
                     for (new_start, _), (_, _, (start, end)) in zip(concat_videos(cut_files, dest), sources)]
        for cut, (path, index, (start, _)), (new_start, _) in zip(cut_files, sources, new_spans):
            first, last = first_last_frame_times(cut)
            with store.local_file(store.path(path)) as local:
                problems += verify_episode_frames(local, [start + first, start + last], dest, new_start - start,
                                                  tolerance_s, episode=index, feature=feature)
    if problems:
        os.remove(dest)
        raise TaskError(problems)
    return new_spans
