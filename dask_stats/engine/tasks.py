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
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import dask
import numpy as np
from dask.delayed import Delayed

from ..errors import DatasetError, Location, Problem
from ..options import Options, RunOptions
from ..plan import Episode, Plan, channels_of
from ..stats.moments import MomentsByKey, MomentsTable
from ..stats.pixels import DepthCoding
from ..stats.quantiles import DatasetQuantiles, PassResult, first_request, histogram_quantiles, merge, values_quantiles
from ..stats.records import quantile_stats
from ..stats.sampling import sample_positions
from ..video import VideoBackend
from . import numeric, runner
from .carried import carried_stats
from .guards import guarded
from .video_stats import VideoEpisode, VideoJob, video_stats


@dataclass
class Task:
    """One Dask task of the graph: its kind, the episodes it covers, where it works, and its Dask object (until it
    is submitted: ``runner.run`` then drops it, so that the graphs of a run's tasks are never all held)."""

    kind: str  # "parquet", "video", or a v3.0 file task ("v30-data", "v30-probe", "v30-video")
    episodes: list[int]
    where: Location
    delayed: Delayed | None  # None for a lazy task (``make``)
    feature: str | None = None  # the one feature the task works on, if any
    output: str | None = None  # the file the task writes, if any (a resumed task's file must still be there)
    timeout_s: float = 3600.0  # the longest one unit of its work may take (a video, the partition; longer: a hang)
    priority: int = 0  # as annotated on ``delayed``: tasks are submitted highest first
    make: Callable[[], Delayed] | None = None  # a lazy task: builds its Dask object when it is submitted
    key: str = ""  # a lazy task's key (else ``delayed``'s)

    def __post_init__(self):
        if self.delayed is not None:
            self.key = self.delayed.key

    def graph(self) -> Delayed:
        """Its Dask object (built now if the task is lazy), handed over: the task holds none afterwards."""
        delayed = self.delayed if self.delayed is not None else self.make()
        self.delayed = self.make = None
        return delayed


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


def build_tasks(plan: Plan, options: Options, backend: VideoBackend, dataset_quantiles: bool = False) -> list[Task]:
    """Every task of the stats graph of ``plan`` (with ``dataset_quantiles``, the Parquet tasks also do the first
    pass of the dataset-wide quantiles)."""
    videos = carried_tasks(plan) if options.stats.video_stats == "reuse" else video_tasks(plan, options, backend)
    return parquet_tasks(plan, options, dataset_quantiles) + videos


def carried_tasks(plan: Plan) -> list[Task]:
    """``--video-stats reuse``: one task that carries the source's published per-episode video stats over
    (``carried.carried_stats``) instead of decoding; refused (bad input) when the source publishes none."""
    if not plan.videos:
        return []
    if plan.published is None:
        raise DatasetError(Problem(f"--video-stats reuse needs the per-episode video stats of a v2.1 source "
                                   f"(meta/episodes_stats.jsonl); this {plan.version} dataset has none",
                                   path=plan.store.display(plan.store.root), fix="--video-stats recompute"))
    cameras = {}
    for feature in plan.videos:
        channels = channels_of(plan.features[feature])
        cameras[feature] = (channels, max(1, math.prod(plan.features[feature]["shape"]) // channels))
    episodes = [(ep.index, ep.length) for ep in plan.episodes]
    key = task_key("carried-video-stats", [ep for ep, _ in episodes], plan.run)
    delayed = dask.delayed(carried_stats)(plan.store, plan.published, episodes, cameras, dask_key_name=key)
    return [Task("carried", [ep for ep, _ in episodes], Location(episodes[0][0], path=plan.store.display(
        plan.published)), delayed)]


FIRST_PASS_BYTES = 32 * 2**20  # a feature whose values total at most this many bytes is collected, not counted


def first_pass(plan: Plan, qs: tuple[float, ...]) -> numeric.FirstPass:
    """What the Parquet tasks do towards the dataset-wide quantiles of each numeric feature: hand its values over
    when the dataset's total at most ``FIRST_PASS_BYTES`` (the quantiles then need no pass of their own), else
    count them by the first pass of ``quantiles.DatasetQuantiles``."""
    if not qs:
        return {}
    out: numeric.FirstPass = {}
    for feature in plan.numeric:
        width = _width(plan.features[feature])
        size = plan.total_frames * width * np.dtype(plan.features[feature]["dtype"]).itemsize
        out[feature] = numeric.COLLECT if size <= FIRST_PASS_BYTES else first_request(width)
    return out


def _width(feature: dict) -> int:
    """Values per row of a numeric feature (as ``numeric.column_values`` lays them out)."""
    return math.prod(feature["shape"]) if feature.get("shape") else 1


def parquet_tasks(plan: Plan, options: Options, dataset_quantiles: bool = False) -> list[Task]:
    """One task per partition of the episode dataframe (numeric and image features)."""
    if not (plan.numeric or plan.images):
        return []
    files = {ep.index: plan.store.display(ep.data_path) for ep in plan.episodes}
    lengths = {ep.index: ep.length for ep in plan.episodes}
    batches = numeric.batches(plan)
    qs = options.stats.quantile_levels
    reduce = partial(numeric.partition_stats, plan_features=plan.features, numeric=plan.numeric,
                     images=plan.images, files=files, qs=qs,
                     first_pass=first_pass(plan, qs) if dataset_quantiles else None)
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
    ends on short tasks and no core waits for one long video at the end; Parquet work, priority 0, comes first).
    Lazy: a task's job (its episodes' files, offsets and time limits) is built when the runner submits it, so the
    client holds the jobs of one window of tasks, not of the whole run."""
    if not plan.videos:
        return []
    channels = {key: channels_of(plan.features[key]) for key in plan.videos}
    depth = {key: coding for key in plan.videos if (coding := DepthCoding.of(plan.features[key])) is not None}
    longest = max(ep.length for ep in plan.episodes)
    tasks = []
    for feature, batch in _video_batches(plan):
        episodes = [ep.index for ep in batch]
        where = Location(episodes[0], feature, plan.store.display(batch[0].video_paths[feature] if feature
                                                                  else batch[0].data_path))
        name = f"video-stats-{feature}" if feature else "video-stats"
        priority = max(ep.length for ep in batch) - longest - 1
        key = task_key(name, episodes, plan.run)
        make = partial(_video_delayed, plan, options, backend, channels, depth, feature, batch, key, priority)
        tasks.append(Task("video", episodes, where, None, feature=feature, priority=priority, make=make, key=key,
                          timeout_s=options.run.task_timeout_s(max(ep.length for ep in batch))))
    return tasks


def _video_delayed(plan: Plan, options: Options, backend: VideoBackend, channels: dict[str, int],
                   depth: dict[str, DepthCoding], feature: str | None, batch: list[Episode], key: str,
                   priority: int) -> Delayed:
    """The Dask object of one video task (``video_tasks``)."""
    cameras = plan.videos if feature is None else [feature]
    episodes = []
    for ep in batch:
        paths = {camera: ep.video_paths[camera] for camera in cameras if camera in ep.video_paths}
        offsets = {camera: ep.video_offsets[camera] for camera in paths} if feature is not None else {}
        episodes.append(VideoEpisode(ep.index, ep.length, ep.data_path, paths, ep.rows, offsets))
    timeouts = {ep.index: options.run.task_timeout_s(ep.length) for ep in batch}
    job = VideoJob(plan.store, backend, tuple(episodes), channels, timeouts, options.stats.frame_lookup,
                   options.stats.tolerance_s, options.stats.quantile_levels, depth)
    with dask.annotate(priority=priority):
        return dask.delayed(video_stats)(job, dask_key_name=key)


def _video_batches(plan: Plan) -> list[tuple[str | None, list[Episode]]]:
    """The episodes of each video task: consecutive episodes until the task's estimated work reaches
    ``VIDEO_TASK_SECONDS`` (short episodes share a task, so that the few milliseconds Dask spends on each task stay
    small next to its work): every camera of them in v2.x (timestamps read once per episode); in v3.0, episodes
    of one camera that share one concatenated video file (the task indexes only their stretch of it, so a file's
    episodes are spread over tasks that run in parallel and the progress advances as they finish)."""
    pixels = {key: max(1, math.prod(plan.features[key]["shape"]) // channels_of(plan.features[key]))
              for key in plan.videos}
    v2 = all(ep.rows is None for ep in plan.episodes)
    batches: list[tuple[str | None, list[Episode]]] = []
    for feature in [None] if v2 else plan.videos:
        cameras = plan.videos if feature is None else [feature]
        current: list[Episode] = []
        seconds = 0.0
        for ep in plan.episodes:
            if current and (seconds >= VIDEO_TASK_SECONDS
                            or feature is not None and current[-1].video_paths[feature] != ep.video_paths[feature]):
                batches.append((feature, current))
                current, seconds = [], 0.0
            current.append(ep)
            sampled = len(sample_positions(ep.length))
            seconds += sum(video_seconds(sampled, pixels[key]) for key in cameras if key in ep.video_paths)
        if current:
            batches.append((feature, current))
    return batches


class Results:
    """Task results folded in as they arrive, so that nothing is kept per task: the moments of every stats feature
    into one row per episode of the plan, pixel histograms summed per feature, the first pass of the dataset
    quantiles merged per numeric feature.  Only the results of v3.0 file tasks (per output file; the build reads
    them later) are kept, in ``files`` by task key."""

    MERGE_EVERY = 64  # first-pass counts of this many partitions are merged into one

    def __init__(self, plan: Plan):
        self.features = plan.numeric + plan.images + plan.videos
        self.keys = np.array([ep.index for ep in plan.episodes], dtype=np.int64)
        self._moments: dict[str, MomentsByKey] = {}
        self.histograms: dict[str, np.ndarray] = {}  # (C, 256) per image or video feature, when quantiles are asked
        self.first_pass: dict[str, list] = {}  # numeric feature -> partitions' values, or their merged counts
        self.notes: list[Problem] = []  # what the summary should say about where stats came from
        self.files: dict[str, object] = {}

    def add(self, task: Task, result) -> None:
        if task.kind == "parquet":
            parts = result.tables
            for feature, share in result.first_pass.items():
                self._add_first_pass(feature, share)
        elif task.kind in ("video", "carried"):
            parts = result.tables
            for feature, histogram in result.histograms.items():
                self._add_histogram(feature, histogram)
            if task.kind == "carried":
                self.notes += [Problem("video stats carried over from the source, not recomputed", severity="info",
                                       feature=feature, path=task.where.path) for feature in parts]
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

    def _add_first_pass(self, feature: str, share: np.ndarray | PassResult) -> None:
        shares = self.first_pass.setdefault(feature, [])
        shares.append(share)
        if isinstance(share, PassResult) and len(shares) >= self.MERGE_EVERY:
            shares[:] = [merge(shares)]

    def tables(self) -> dict[str, MomentsTable]:
        """Per stats feature, the moments of every episode (rows in plan order)."""
        return {feature: self._moments[feature].table() for feature in self.features if feature in self._moments}


def _levels(feature: dict) -> np.ndarray | None:
    """The value of each histogram bin of an image or video feature: a depth map's codes, else None (pixels)."""
    coding = DepthCoding.of(feature)
    return coding.levels() if coding is not None else None


def dataset_quantiles(client, plan: Plan, results: Results, qs: tuple[float, ...], options: RunOptions) -> dict:
    """Exact quantiles of every stats feature over the whole dataset, ``{feature: {"q01": ..., ...}}``: pixels
    from the summed histograms of the sampled frames; numeric features from the values the stats tasks handed
    over (small datasets), or by the passes of ``quantiles.DatasetQuantiles`` over the episode dataframe, the
    first of which the stats tasks did (each further pass reads the partitions again and keeps only a bounded
    number of values; usually one is enough), each pass a run of tasks on the one runner (retries, progress,
    watchdog)."""
    histograms = results.histograms
    out = {feature: quantile_stats(histogram_quantiles(histograms[feature], qs, _levels(plan.features[feature])), qs,
                                   plan.features[feature])
           for feature in plan.images + plan.videos if feature in histograms}  # (none: carried over)
    states = {}
    for feature in plan.numeric:
        shares = results.first_pass.get(feature, [])
        if shares and not isinstance(shares[0], PassResult):  # the values themselves
            values = values_quantiles(np.concatenate(shares), qs)
            out[feature] = quantile_stats(values, qs, plan.features[feature])
            continue
        states[feature] = DatasetQuantiles(qs, _width(plan.features[feature]))
        if shares:  # the first pass, done by the stats tasks
            states[feature].request()
            states[feature].absorb(merge(shares))
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
        for feature, parts_found in found.items():
            states[feature].absorb(merge(parts_found))
    out.update({feature: quantile_stats(state.result(), qs, plan.features[feature])
                for feature, state in states.items()})
    return out
