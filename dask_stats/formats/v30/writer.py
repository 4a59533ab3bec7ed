"""Build a LeRobot v3.0 dataset from a planned v2.x conversion, in the same Dask run as the stats.

Phase 1 (beside the stats tasks): one task per output data file (streams its episodes' Parquet files), and
probe tasks that read every video's stream signature (a change of codec, size, pixel format, rate or time
base starts a new video file).  Phase 2: one task per camera and output video file: stream copy, then the
first and last frame of every episode decoded from the new file must equal the source's.  The workers write the
files where the tree lives (:mod:`..staging`): a local staging tree beside the target, or straight into the
``--output`` prefix of an object store.  Commit: ``meta/`` is written and read back, then the tree commits
(locally it is moved into place, in place keeping the old tree beside it as ``<root>_old``; on a store,
``meta/info.json`` is written last and the marker removed).
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from dataclasses import dataclass

import dask
import numpy as np
import pyarrow.parquet as pq

from ...engine.tasks import Task, task_key
from ...errors import DatasetError, Location, Problem, TaskError
from ...hub.push import V30
from ...options import Options
from ...plan import Plan, read_jsonl
from ...stats.moments import MomentsTable
from ...stats.records import finalize
from ...storage import Store
from ...video import FrameFinder, concat_videos, first_last_frame_times, stream_signature, verify_episode_frames
from ..base import Computed
from ..staging import TreeWriter
from ..v2 import layout as v2
from .data import write_data_file
from .grouping import group_by_size
from .layout import (
    CHUNKS_SIZE,
    DATA_FILES_SIZE_IN_MB,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_FILES_SIZE_IN_MB,
    FileIndex,
    data_path,
    episodes_path,
    video_path,
)
from .meta import episode_row, info_v30, json_text, stats_by_episode, write_episodes, write_stats, write_tasks
from .reader import read_episodes, read_tasks

PROBES_PER_TASK = 64  # videos whose headers one probe task reads
V2_META = {v2.INFO, v2.EPISODES, v2.TASKS, v2.EPISODES_STATS, v2.STATS}


@dataclass(frozen=True)
class CopiedVideo:
    """What a stream-copy task wrote: each episode's ``(from_timestamp, to_timestamp)`` and the file's identity."""

    spans: list[tuple[float, float]]
    identity: str | None


class V30Writer(TreeWriter):
    """The v3.0 tree of ``plan`` for ``target`` (a local directory or a store), built in ``tree`` and committed by
    :meth:`commit`."""

    format = "v3.0"
    push_layout = V30
    dataset_quantiles = True
    description = "a v3.0 dataset (concatenated data and video files, stats in meta/episodes and meta/stats.json)"
    replaces = "v2.x"

    def __init__(self, plan: Plan, target: Store, options: Options, in_place: bool):
        options = options.sized(DATA_FILES_SIZE_IN_MB, VIDEO_FILES_SIZE_IN_MB)  # sizes not given: lerobot's
        super().__init__(plan, target, options, in_place)
        sizes = [plan.store.size(ep.data_path) for ep in plan.episodes]
        self.data_groups = group_by_size(sizes, options.stats.data_file_size_in_mb)

    def problems(self) -> list[Problem]:
        """Why this build cannot start (before any work)."""
        return super().problems() or (self._space_problems() if self.target.local else [])

    def _space_problems(self) -> list[Problem]:
        """The new tree needs about the size of the source's data and videos (stream copies, no re-encoding)."""
        store, staging = self.plan.store, self.tree.staging
        need = sum(store.size(path) for ep in self.plan.episodes for path in (ep.data_path, *ep.video_paths.values())
                   if store.is_file(path))
        need += need // 50 + (16 << 20)  # Parquet rewrite overhead and meta/
        if staging.exists():
            need -= sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        parent = staging.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        free = shutil.disk_usage(parent).free
        if need > free:
            return [Problem(f"not enough free space for the v3.0 tree: it needs about {need / 2**20:,.0f} MB, "
                            f"{free / 2**20:,.0f} MB are free", path=str(staging),
                            fix="free some space, or write the copy elsewhere with --output")]
        return []

    def kept(self, task: Task, result: object) -> bool:
        """A file task's checkpointed result is reused while the file it wrote is unchanged (same stat identity
        locally, same size and ETag on a store)."""
        if task.output is None:
            return True
        identity = getattr(result, "identity", None)
        return identity is not None and next(self.tree.store.written([task.output]))[1] == identity

    # -- phase 1 ------------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        """The data file tasks and the video probe tasks."""
        plan, store, tree = self.plan, self.plan.store, self.tree.store
        tasks = []
        cut = len(store.root) + 1
        first_index = 0  # the global position of each file's first row
        for group in self.data_groups:
            episodes = [plan.episodes[i] for i in group.episodes]
            sources = [ep.data_path[cut:] for ep in episodes]
            dest = tree.path(data_path(group.index))
            where = Location(episodes[0].index, path=store.display(episodes[0].data_path))
            key = task_key("v30-data", [ep.index for ep in episodes], plan.run)
            tasks.append(Task("v30-data", [ep.index for ep in episodes], where,
                              dask.delayed(write_data_file)(store, sources, dest, first_index, target=tree,
                                                            dask_key_name=key),
                              output=dest))
            first_index += sum(ep.length for ep in episodes)
        for feature in plan.videos:
            for start in range(0, len(plan.episodes), PROBES_PER_TASK):
                episodes = plan.episodes[start:start + PROBES_PER_TASK]
                indices = [ep.index for ep in episodes]
                where = Location(indices[0], feature, store.display(episodes[0].video_paths[feature]))
                key = task_key(f"v30-probe-{feature}", indices, plan.run)
                paths = [ep.video_paths[feature] for ep in episodes]
                tasks.append(Task("v30-probe", indices, where,
                                  dask.delayed(_signatures)(store, paths, feature, indices, dask_key_name=key),
                                  feature=feature))
        self.first = tasks
        return tasks

    # -- phase 2 ------------------------------------------------------------------------------------
    def later_tasks(self, files: dict[str, object]) -> list[Task]:
        """The stream-copy tasks, from the probes and data files of phase 1 (the video groups by camera are kept
        for the commit)."""
        plan, store, first, results = self.plan, self.plan.store, self.first, files
        times = self._episode_times(results, first)
        by_timestamp = self.options.stats.frame_lookup == "timestamp"
        tasks, groups, self.video_files = [], {}, set()
        for feature in plan.videos:
            probes = [t for t in first if t.kind == "v30-probe" and t.feature == feature]
            signatures = [signature for t in probes for signature in results[t.key]]
            sizes = [store.size(ep.video_paths[feature]) for ep in plan.episodes]
            groups[feature] = group_by_size(sizes, self.options.stats.video_file_size_in_mb, signatures=signatures)
            for group in groups[feature]:
                episodes = [plan.episodes[i] for i in group.episodes]
                indices = [ep.index for ep in episodes]
                relative = video_path(feature, group.index)
                self.video_files.add(relative)
                dest = self.tree.store.path(relative)
                checks = [times[i] for i in indices]
                where = Location(indices[0], feature, store.display(episodes[0].video_paths[feature]))
                key = task_key(f"v30-video-{feature}", indices, plan.run)
                delayed = dask.delayed(_concat_and_verify)(store, [ep.video_paths[feature] for ep in episodes],
                                                           self.tree.store, dest, checks, indices, feature,
                                                           self.options.stats.tolerance_s, by_timestamp,
                                                           dask_key_name=key)
                tasks.append(Task("v30-video", indices, where, delayed, feature=feature, output=dest))
        self.copies, self.video_groups = tasks, groups
        return tasks

    def _episode_times(self, results: dict[str, object], first: list[Task]) -> dict[int, tuple[float, float]]:
        times = {}
        for task in first:
            if task.kind == "v30-data":
                times.update(zip(task.episodes, results[task.key].episode_times))
        return times

    # -- commit -------------------------------------------------------------------------------------
    def commit(self, computed: Computed) -> None:
        """Write meta/ into the tree and read it back, then commit the tree with meta/info.json last."""
        plan, store, results = self.plan, self.tree.store, computed.files
        episodes_meta = {r["episode_index"]: r for r in read_jsonl(plan.store, v2.EPISODES)}
        task_names = {r["task_index"]: r["task"] for r in read_jsonl(plan.store, v2.TASKS)}
        spans = {}
        for task in self.copies:
            spans.update({(task.feature, ep): span for ep, span in zip(task.episodes, results[task.key].spans)})
        video_files = {(feature, plan.episodes[i].index): group.index
                       for feature, groups in self.video_groups.items() for group in groups for i in group.episodes}
        stats = stats_by_episode(computed.records)
        rows, start = [], 0
        data_files = {plan.episodes[i].index: group.index for group in self.data_groups for i in group.episodes}
        for ep in plan.episodes:
            videos = {f: (video_files[f, ep.index], *spans[f, ep.index]) for f in plan.videos}
            rows.append(episode_row(ep.index, episodes_meta[ep.index].get("tasks", []), ep.length,
                                    data_files[ep.index], start, videos, stats[ep.index]))
            start += ep.length
        sizes = self.options.stats
        for relative in store.files():  # meta/ is written whole by this commit (info.json, if there, first)
            if relative.startswith("meta/"):
                store.remove(store.path(relative))
        written = write_episodes(store, rows, limit_mb=sizes.data_file_size_in_mb)
        meta = {TASKS_PATH, STATS_PATH}
        meta |= {episodes_path(FileIndex(r["meta/episodes/chunk_index"], r["meta/episodes/file_index"]))
                 for r in written}
        write_tasks(store.path(TASKS_PATH), task_names, store)
        info = info_v30(plan.info, chunks_size=CHUNKS_SIZE, data_files_size_in_mb=sizes.data_file_size_in_mb,
                        video_files_size_in_mb=sizes.video_file_size_in_mb, total_episodes=len(plan.episodes),
                        total_frames=plan.total_frames, total_tasks=len(task_names))
        # a camera left out (--exclude-features) has no video files here: it is not declared either
        info["features"] = {name: ft for name, ft in info["features"].items()
                            if ft.get("dtype") != "video" or name in plan.videos}
        write_stats(store.path(STATS_PATH), dataset_stats(plan, computed.tables, computed.quantiles), store)
        extras = self._copy_extras()
        store.refresh()
        read_tasks(store), read_episodes(store, info)  # the metadata reads back as v3.0's (info.json comes last)
        self._check_rows()
        planned = {data_path(group.index) for group in self.data_groups} | self.video_files | meta | extras
        self.tree.commit(planned, INFO_PATH, json_text(info))

    def _extras(self) -> list[str]:
        """Files that are not part of the v2.x layout (a README, extra metadata), relative."""
        return [relative for relative in self.plan.store.files()
                if not (relative.startswith(("data/", "videos/")) or relative in V2_META or "/." in "/" + relative)]

    def _copy_extras(self) -> set[str]:
        """The extras come along (hard-linked between local directories); which they are."""
        extras = set(self._extras())
        for relative in extras:
            if not self.tree.store.exists(self.tree.store.path(relative)):
                self.plan.store.copy_to(self.tree.store, relative)
        return extras

    def _check_rows(self) -> None:
        """The new data files hold ``total_frames`` rows with ``index`` 0..total_frames-1 (no row twice)."""
        rows, low, high, store = 0, None, None, self.tree.store
        for group in self.data_groups:
            with store.source(store.path(data_path(group.index))) as source:
                meta = pq.ParquetFile(source).metadata
            rows += meta.num_rows
            column = next(i for i in range(meta.num_columns) if meta.schema.column(i).path == "index")
            for number in range(meta.num_row_groups):
                stats = meta.row_group(number).column(column).statistics
                if stats is not None and stats.has_min_max:
                    low = stats.min if low is None else min(low, stats.min)
                    high = stats.max if high is None else max(high, stats.max)
        total = self.plan.total_frames
        if rows != total or (low, high) != (0, total - 1):
            raise DatasetError(Problem(f"the new data files hold {rows} rows with index {low}..{high}; the plan has "
                                       f"{total} rows, index 0..{total - 1}", path=self.tree.partial,
                                       fix="run the same command again with --no-resume"))


def dataset_stats(plan: Plan, tables: dict[str, MomentsTable], quantiles: dict | None = None) -> dict:
    """stats.json: every feature's episodes merged exactly (plus its dataset-wide quantiles, if computed)."""
    out = {}
    for feature in plan.stats_features:
        out[feature] = {k: np.asarray(v).tolist() for k, v in finalize(tables[feature].total(),
                                                                        plan.features[feature]).items()}
        out[feature].update((quantiles or {}).get(feature, {}))
    return out


def _signatures(store: Store, paths: list[str], feature: str, episodes: list[int]) -> list:
    """The stream signature of every video in ``paths``."""
    out, problems = [], []
    for episode, path in zip(episodes, paths):
        try:
            with store.local_file(path) as local:
                out.append(stream_signature(local))
        except Exception as exc:  # noqa: BLE001 - any container error names the file
            problems.append(Problem(f"the video cannot be probed: {exc}", episode=episode, feature=feature,
                                    path=store.display(path)))
    if problems:
        raise TaskError(problems)
    return out


def _concat_and_verify(store: Store, sources: list[str], target: Store, dest: str, times: list[tuple[float, float]],
                       episodes: list[int], feature: str, tolerance_s: float,
                       by_timestamp: bool = True) -> CopiedVideo:
    """Stream-copy ``sources`` into ``dest`` (a path of ``target``) and return each episode's ``(from_timestamp,
    to_timestamp)``: the frame of the row at episode time ``t`` must then decode from ``dest`` at ``from_timestamp +
    t`` identical to the source frame, checked for the first and last row (``times``) on the file written, before
    it reaches ``dest`` (on a store: before it is uploaded).  Rows matched to frames by position
    (``by_timestamp=False``: timestamps offset from the video's) get ``from_timestamp`` shifted by that offset,
    which must be the same for the first and the last row, so that lerobot finds the frames by timestamp."""
    with ExitStack() as stack:
        local = [stack.enter_context(store.local_file(path)) for path in sources]
        written = stack.enter_context(target.writing(dest))
        try:
            spans = concat_videos(local, written)
        except DatasetError as exc:
            raise TaskError([Problem(p.message, episode=episodes[0], feature=feature, path=p.path)
                             for p in exc.problems]) from exc
        problems, shifted = [], []
        new = stack.enter_context(FrameFinder(written))  # the new file is opened once for all its episodes
        for path, source, (start, end), episode, rows in zip(sources, local, spans, episodes, times):
            shift = 0.0
            if not by_timestamp:
                frames = first_last_frame_times(source)
                shift = frames[0] - rows[0]
                if abs(rows[1] + shift - frames[1]) > tolerance_s:
                    problems.append(Problem(
                        f"the timestamps are not a constant offset from the video's frames (first row {rows[0]:.6f} s "
                        f"at frame {frames[0]:.6f} s, last row {rows[1]:.6f} s at frame {frames[1]:.6f} s): lerobot "
                        "would not find this episode's frames in a v3.0 dataset", episode=episode, feature=feature,
                        path=store.display(path),
                        fix="fix the timestamps (k / fps), or write v2.1"))
                    continue
                rows = frames
            problems += verify_episode_frames(source, rows, new, start, tolerance_s, episode=episode,
                                              feature=feature)
            shifted.append((start + shift, end + shift))
        if problems:
            raise TaskError(problems)  # inside target.writing: nothing reaches dest
    return CopiedVideo(shifted, target.identity(dest))
