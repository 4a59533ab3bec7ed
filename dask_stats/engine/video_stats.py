"""Video stats of a batch of episodes: for each episode, read its timestamps once, then for each camera
pick the sampled frames, decode them and reduce their pixels exactly."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pyarrow.parquet as pq

from ..errors import DatasetError, Location, Problem, TaskError, episode_spans
from ..stats.moments import Moments, MomentsTable
from ..stats.pixels import DepthCoding, PixelHistogram
from ..stats.sampling import FrameLookupError, locate_frames, sample_positions, video_problems
from ..storage import Store
from ..video import VideoBackend, VideoReader
from .guards import guarded_each


@dataclass(frozen=True)
class VideoEpisode:
    """One episode's share of a video task: its length, Parquet file and a video per camera (full paths)."""

    index: int
    length: int
    data_path: str
    videos: dict[str, str]
    rows: tuple[int, int] | None = None  # v3.0: the episode's rows in its shared data file
    offsets: dict[str, float] = field(default_factory=dict)  # v3.0: where the episode starts in each video (s)


@dataclass(frozen=True)
class VideoJob:
    """Everything one video task needs (small and picklable, for any Dask worker)."""

    store: Store
    backend: VideoBackend
    episodes: tuple[VideoEpisode, ...]
    channels: dict[str, int]  # per camera
    timeouts: dict[int, float]  # seconds per video, by episode
    frame_lookup: str = "timestamp"
    tolerance_s: float = 1e-4
    quantiles: tuple[float, ...] = ()
    depth: dict[str, DepthCoding] = field(default_factory=dict)  # the depth-map cameras, with their coding


def read_timestamps(store: Store, data_path: str) -> np.ndarray:
    """The ``timestamp`` column of a data file, as float64."""
    with store.source(data_path) as source:
        column = pq.ParquetFile(source, pre_buffer=False).read(columns=["timestamp"], use_threads=False).column(0)
    return column.to_numpy().astype(np.float64)


class _Inputs:
    """The files a video task reads, each opened once: timestamp columns, and videos with their readers (a v3.0
    video file serves many episodes of the task).  Closes everything on exit."""

    def __init__(self, job: VideoJob):
        self.job, self.stack = job, ExitStack()
        self.timestamps: dict[str, np.ndarray] = {}
        self.readers: dict[str, VideoReader] = {}

    def episode_timestamps(self, ep: VideoEpisode) -> np.ndarray:
        if ep.data_path not in self.timestamps:
            try:
                self.timestamps[ep.data_path] = read_timestamps(self.job.store, ep.data_path)
            except Exception as exc:  # the data file, not the video, is to blame
                held = [e.index for e in self.job.episodes if e.data_path == ep.data_path]
                raise DatasetError(Problem(f"cannot read Parquet: {type(exc).__name__}: {str(exc).strip()}",
                                           episode=held[0], path=self.job.store.display(ep.data_path),
                                           fix=f"restore the file (it holds {episode_spans(held)})")) from exc
        column = self.timestamps[ep.data_path]
        return column if ep.rows is None else column[ep.rows[0]:ep.rows[1]]

    def reader(self, path: str, where: Location) -> VideoReader:
        if path not in self.readers:
            local = self.stack.enter_context(self.job.store.local_file(path))
            self.readers[path] = self.stack.enter_context(_open(self.job.backend, local, where))
        return self.readers[path]

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc) -> None:
        self.stack.close()


@dataclass
class VideoOutcome:
    """A video task's result, compact (a few arrays per camera, not an object per episode): per camera the moments
    of its episodes as a table, and the sum of their pixel histograms (only dataset-wide quantiles need them)."""

    tables: dict[str, MomentsTable]
    histograms: dict[str, np.ndarray]


def video_stats(job: VideoJob) -> VideoOutcome:
    """Moments of the sampled frames of every (episode, camera) of ``job``.  Every unit is tried (each within its
    own time limit); if any fails, TaskError lists the failures, each naming episode, feature and file."""
    results, problems = {}, []
    with _Inputs(job) as inputs:
        units, keys = [], []
        for ep in job.episodes:
            positions = sample_positions(ep.length)
            for feature, path in ep.videos.items():
                where = Location(ep.index, feature, job.store.display(path))
                units.append((partial(camera_moments, job, inputs, ep, feature, positions, where),
                              job.timeouts[ep.index], where))
                keys.append((ep.index, feature))
        for key, (_, _, where), (moments, error) in zip(keys, units, guarded_each(units)):
            if error is None:
                results[key] = moments
            elif isinstance(error, DatasetError):
                problems += error.problems
            elif isinstance(error, FrameLookupError):
                problems.append(where.problem(str(error), fix=error.fix))
            else:  # name the episode/feature/file
                problems.append(where.problem(f"video stats failed: {type(error).__name__}: {error}"))
    if problems:
        raise TaskError(list(dict.fromkeys(problems)))  # a data file that fails every camera is named once
    histograms: dict[str, np.ndarray] = {}
    by_feature: dict[str, dict[int, Moments]] = {}
    for (episode, feature), moments in results.items():
        if moments.histogram is not None:
            histograms[feature] = histograms.get(feature, 0) + moments.histogram
            moments.histogram = None
        by_feature.setdefault(feature, {})[episode] = moments
    tables = {feature: MomentsTable.of(np.array(list(episodes), dtype=np.int64), list(episodes.values()))
              for feature, episodes in by_feature.items()}
    return VideoOutcome(tables, histograms)


def camera_moments(job: VideoJob, inputs: _Inputs, ep: VideoEpisode, feature: str, positions: np.ndarray,
                   where: Location) -> Moments:
    """Moments of the frames of one camera of ``ep`` at the sampled rows ``positions`` (the episode starts
    ``ep.offsets[feature]`` seconds into the video: 0, except in a v3.0 file)."""
    # a v3.0 episode is anchored where lerobot looks for its first row: from_timestamp + timestamp
    needs_times = job.frame_lookup == "timestamp" or ep.rows is not None
    timestamps = inputs.episode_timestamps(ep) if needs_times else None
    offset = ep.offsets.get(feature, 0.0)
    reader = inputs.reader(ep.videos[feature], where)
    times = reader.frame_times()
    by_timestamp = job.frame_lookup == "timestamp"
    try:
        if by_timestamp:
            frames = locate_frames(times, positions, timestamps[positions] + offset, job.tolerance_s)
        else:  # row k is the k-th frame from the episode's first (in a v3.0 file: the one at its anchor)
            first = 0 if timestamps is None else int(np.searchsorted(times, offset + timestamps[0] - job.tolerance_s))
            frames = locate_frames(times[first:], positions, None, job.tolerance_s) + first
    except FrameLookupError:  # say why, as the preflight check would (convert leaves videos to the tasks)
        start = timestamps[0] if timestamps is not None and len(timestamps) else None
        length = int(positions[-1]) + 1  # the last row is always sampled
        problems = video_problems(len(times), times[0] - offset if len(times) else 0.0, start, length,
                                  by_timestamp=by_timestamp, tolerance_s=job.tolerance_s, **vars(where))
        if problems:
            raise DatasetError(problems) from None
        raise
    unique, weights = np.unique(frames, return_counts=True)
    depth = job.depth.get(feature)
    histogram = PixelHistogram(job.channels[feature], depth)
    decoded = reader.read(unique) if depth is None else reader.read_depth(unique)
    for (index, frame), expected, weight in zip(decoded, unique, weights):
        if index != expected:
            raise RuntimeError(f"the decoder returned frame {index} where {expected} was expected")
        histogram.add(frame, int(weight))
    if histogram.frames != len(positions):
        raise FrameLookupError(f"decoded only {histogram.frames} of {len(positions)} sampled frames (truncated video?)",
                               fix="re-encode or restore the file")
    return histogram.moments(job.quantiles)


def _open(backend: VideoBackend, local: str, where: Location) -> VideoReader:
    """The video opened by ``backend``, or the preflight check's error for an unreadable file."""
    try:
        return backend.open(local)
    except Exception as exc:
        raise DatasetError(where.problem(f"the video cannot be opened: {exc}",
                                         fix="re-encode or restore the file")) from exc
