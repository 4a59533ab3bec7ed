"""The stats graph: which Dask tasks a plan needs, what each is called, and how their results come back.

Two kinds of task: ``parquet`` (a partition of the Dask dataframe of episode files: the numeric and image
features of a run of episodes) and ``video`` (every camera of a run of consecutive episodes, so that each
episode's timestamps are read once and short episodes share a task; or, in a v3.0 dataset, the episodes of
one concatenated video file).  A task's key says what it
covers (``video-stats-ep000012``, ``parquet-stats-ep000000-000063``), and results are matched back through
the :class:`Task`, never by parsing keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import partial

import dask
import numpy as np
from dask.delayed import Delayed

from ..errors import Location
from ..options import Options, RunOptions
from ..plan import Plan, channels_of
from ..stats.moments import MomentsByKey, MomentsTable
from ..stats.pixels import DepthCoding
from ..stats.quantiles import DatasetQuantiles, histogram_quantiles, merge
from ..stats.records import quantile_stats
from ..stats.sampling import sample_positions
from ..video import VideoBackend
from . import numeric, runner
from .guards import guarded
from .video_stats import VideoEpisode, VideoJob, video_stats


@dataclass
class Task:
    """One Dask task of the graph: its kind, the episodes it covers, where it works, and its Dask object (until it
    is submitted: ``runner.run`` then drops it, so that the graphs of a run's tasks are never all held)."""

    kind: str  # "parquet", "video", or a v3.0 file task ("v30-data", "v30-probe", "v30-video")
    episodes: list[int]
    where: Location
    delayed: Delayed | None
    feature: str | None = None  # the one feature the task works on, if any
    output: str | None = None  # the file the task writes, if any (a resumed task's file must still be there)
    timeout_s: float = 3600.0  # the longest one unit of its work may take (a video, the partition; longer: a hang)
    priority: int = 0  # as annotated on ``delayed``: tasks are submitted highest first
    key: str = field(init=False)

    def __post_init__(self):
        self.key = self.delayed.key


VIDEO_TASK_SECONDS = 0.5  # a v2.x video task covers consecutive episodes until its estimated work reaches this


def video_seconds(sampled: int, pixels: int) -> float:
    """A rough one-core estimate of the work on one video: opening and indexing it (~2 ms), then decoding and
    reducing each sampled frame (~50 us plus ~15 ns per pixel), from the benchmark sets (32x32 to 480x640)."""
    return 2e-3 + sampled * (5e-5 + 1.5e-8 * pixels)


def task_key(name: str, episodes: list[int], run: str) -> str:
    """The one naming rule: what the task does, the episodes it covers and the run's token (two runs on one shared
    scheduler never share a key; the dashboard groups tasks by the part before "-ep")."""
    first, last = episodes[0], episodes[-1]
    return f"{name}-ep{first:06d}" + (f"-{last:06d}" if last != first else "") + f"-{run}"


def build_tasks(plan: Plan, options: Options, backend: VideoBackend) -> list[Task]:
    """Every task of the stats graph of ``plan``."""
    return parquet_tasks(plan, options) + video_tasks(plan, options, backend)


def parquet_tasks(plan: Plan, options: Options) -> list[Task]:
    """One task per partition of the episode dataframe (numeric and image features)."""
    if not (plan.numeric or plan.images):
        return []
    files = {ep.index: plan.store.display(ep.data_path) for ep in plan.episodes}
    lengths = {ep.index: ep.length for ep in plan.episodes}
    batches = numeric.batches(plan)
    reduce = partial(numeric.partition_moments, plan_features=plan.features, numeric=plan.numeric,
                     images=plan.images, files=files, qs=options.stats.quantile_levels)
    tasks = []
    for batch, part in zip(batches, numeric.episode_frame(plan, batches).to_delayed()):
        episodes = [ep for ep, _, _ in batch]
        where = Location(episodes[0], path=files[episodes[0]])
        timeout = options.run.task_timeout_s(sum(lengths[ep] for ep in episodes), base=300.0)
        key = task_key("parquet-stats", episodes, plan.run)
        tasks.append(Task("parquet", episodes, where, dask.delayed(guarded)(reduce, part, timeout, where,
                                                                             dask_key_name=key), timeout_s=timeout))
    return tasks


def video_tasks(plan: Plan, options: Options, backend: VideoBackend) -> list[Task]:
    """Video tasks over consecutive episodes, longest first (Dask runs higher priorities first, so the run
    ends on short tasks and no core waits for one long video at the end; Parquet work, priority 0, comes first)."""
    if not plan.videos:
        return []
    channels = {key: channels_of(plan.features[key]) for key in plan.videos}
    depth = {key: coding for key in plan.videos if (coding := DepthCoding.of(plan.features[key])) is not None}
    longest = max(ep.length for ep in plan.episodes)
    tasks = []
    for feature, batch in _video_batches(plan):
        timeouts = {ep.index: options.run.task_timeout_s(ep.length) for ep in batch}
        job = VideoJob(plan.store, backend, tuple(batch), channels, timeouts, options.stats.frame_lookup,
                       options.stats.tolerance_s, options.stats.quantile_levels, depth)
        episodes = [ep.index for ep in batch]
        where = Location(episodes[0], feature, plan.store.display(batch[0].videos[feature] if feature
                                                                  else batch[0].data_path))
        name = f"video-stats-{feature}" if feature else "video-stats"
        priority = max(ep.length for ep in batch) - longest - 1
        with dask.annotate(priority=priority):
            delayed = dask.delayed(video_stats)(job, dask_key_name=task_key(name, episodes, plan.run))
        tasks.append(Task("video", episodes, where, delayed, feature=feature,
                          timeout_s=max(timeouts.values()), priority=priority))
    return tasks


def _video_batches(plan: Plan) -> list[tuple[str | None, list[VideoEpisode]]]:
    """The episodes of each video task: every camera of consecutive episodes, until the task's estimated work
    reaches ``VIDEO_TASK_SECONDS`` (v2.x: timestamps read once per episode; short episodes share a task, so that
    the few milliseconds Dask spends on each task stay small next to its work), or the episodes that share one
    concatenated video file of one camera (v3.0: the file is opened once)."""
    batches = []
    if all(ep.rows is None for ep in plan.episodes):
        pixels = {key: max(1, math.prod(plan.features[key]["shape"]) // channels_of(plan.features[key]))
                  for key in plan.videos}
        current, seconds = [], 0.0
        for ep in plan.episodes:
            current.append(VideoEpisode(ep.index, ep.length, ep.data_path, dict(ep.video_paths)))
            sampled = len(sample_positions(ep.length))
            seconds += sum(video_seconds(sampled, pixels[key]) for key in ep.video_paths)
            if seconds >= VIDEO_TASK_SECONDS:
                batches.append((None, current))
                current, seconds = [], 0.0
        return batches + ([(None, current)] if current else [])
    for feature in plan.videos:
        current: list[VideoEpisode] = []
        for ep in plan.episodes:
            path = ep.video_paths[feature]
            if current and current[-1].videos[feature] != path:
                batches.append((feature, current))
                current = []
            current.append(VideoEpisode(ep.index, ep.length, ep.data_path, {feature: path}, ep.rows,
                                        {feature: ep.video_offsets[feature]}))
        if current:
            batches.append((feature, current))
    return batches


class Results:
    """Task results folded in as they arrive, so that nothing is kept per task: the moments of every stats feature
    into one row per episode of the plan, pixel histograms summed per feature.  Only the results of v3.0 file
    tasks (per output file; the build reads them later) are kept, in ``files`` by task key."""

    def __init__(self, plan: Plan):
        self.features = plan.numeric + plan.images + plan.videos
        self.keys = np.array([ep.index for ep in plan.episodes], dtype=np.int64)
        self._moments: dict[str, MomentsByKey] = {}
        self.histograms: dict[str, np.ndarray] = {}  # (C, 256) per image or video feature, when quantiles are asked
        self.files: dict[str, object] = {}

    def add(self, task: Task, result) -> None:
        if task.kind == "parquet":
            parts = result
        elif task.kind == "video":
            parts = result.tables
            for feature, histogram in result.histograms.items():
                self._add_histogram(feature, histogram)
        else:
            self.files[task.key] = result
            return
        for feature, table in parts.items():
            if table.histogram.shape[1]:  # image features: per-episode histograms, needed only summed
                self._add_histogram(feature, table.histogram.sum(axis=0))
                table = replace(table, histogram=table.histogram[:, :0])
            if feature not in self._moments:
                self._moments[feature] = MomentsByKey(self.keys)
            self._moments[feature].add(table)

    def _add_histogram(self, feature: str, histogram: np.ndarray) -> None:
        self.histograms[feature] = self.histograms.get(feature, 0) + histogram

    def tables(self) -> dict[str, MomentsTable]:
        """Per stats feature, the moments of every episode (rows in plan order)."""
        return {feature: self._moments[feature].table() for feature in self.features if feature in self._moments}


def _levels(feature: dict) -> np.ndarray | None:
    """The value of each histogram bin of an image or video feature: a depth map's codes, else None (pixels)."""
    coding = DepthCoding.of(feature)
    return coding.levels() if coding is not None else None


def dataset_quantiles(client, plan: Plan, tables: dict[str, MomentsTable], histograms: dict[str, np.ndarray],
                      qs: tuple[float, ...], options: RunOptions) -> dict:
    """Exact quantiles of every stats feature over the whole dataset, ``{feature: {"q01": ..., ...}}``: pixels
    from the summed histograms of the sampled frames; numeric features by the passes of
    ``quantiles.DatasetQuantiles`` over the episode dataframe (each pass reads the partitions again and keeps
    only a bounded number of values), each pass a run of tasks on the one runner (retries, progress, watchdog)."""
    out = {feature: quantile_stats(histogram_quantiles(histograms[feature], qs, _levels(plan.features[feature])),
                                   qs, plan.features[feature])
           for feature in plan.images + plan.videos}
    states = {feature: DatasetQuantiles(qs, tables[feature].count.shape[1]) for feature in plan.numeric}
    batches = numeric.batches(plan) if states else []
    number = 0
    while not all(state.done for state in states.values()):
        number += 1
        requests = {feature: state.request() for feature, state in states.items() if not state.done}
        parts = numeric.episode_frame(plan, batches, columns=list(requests)).to_delayed()
        tasks = []
        for batch, part in zip(batches, parts):
            episodes = [ep for ep, _, _ in batch]
            key = task_key(f"quantiles-pass{number}", episodes, plan.run)
            tasks.append(Task("quantiles", episodes, Location(episodes[0], path=plan.store.display(batch[0][1])),
                              dask.delayed(numeric.quantile_pass)(part, requests, plan.features, dask_key_name=key)))
        found: dict[str, list] = {feature: [] for feature in requests}

        def landed(task: Task, result: dict, found=found) -> None:
            for feature, part_result in result.items():
                found[feature].append(part_result)

        runner.run(client, tasks, set(), landed, retries=options.retries, quiet=options.quiet,
                   stall_s=runner.stall_limit_s(tasks), label=f"quantile pass {number}")
        for feature, results in found.items():
            states[feature].absorb(merge(results))
    out.update({feature: quantile_stats(state.result(), qs, plan.features[feature])
                for feature, state in states.items()})
    return out
