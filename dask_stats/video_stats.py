"""Video stats of a batch of episodes: for each episode, read its timestamps once, then for each camera
pick the sampled frames, decode them and reduce their pixels exactly."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pyarrow.parquet as pq

from .errors import DatasetError, Location, TaskError
from .moments import Moments
from .pixels import PixelHistogram
from .sampling import FrameLookupError, locate_frames, sample_positions, video_problems
from .scheduling import guarded
from .storage import Store
from .video import VideoBackend, VideoReader


@dataclass(frozen=True)
class VideoEpisode:
    """One episode's share of a video task: its length, Parquet file and a video per camera (full paths)."""

    index: int
    length: int
    data_path: str
    videos: dict[str, str]


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

    @property
    def sampled_frames(self) -> int:
        return sum(len(sample_positions(ep.length)) * len(ep.videos) for ep in self.episodes)


def read_timestamps(store: Store, data_path: str) -> np.ndarray:
    """The ``timestamp`` column of one episode, as float64."""
    with store.source(data_path) as source:
        column = pq.ParquetFile(source).read(columns=["timestamp"], use_threads=False).column("timestamp")
    return column.to_numpy().astype(np.float64)


def video_stats(job: VideoJob) -> dict[tuple[int, str], Moments]:
    """Moments of the sampled frames of every (episode, camera) of ``job``.  Every unit is tried; if any fails,
    TaskError lists the failures, each naming episode, feature and file."""
    results, problems = {}, []
    for ep in job.episodes:
        positions = sample_positions(ep.length)
        timestamps = None
        for feature, path in ep.videos.items():
            where = Location(ep.index, feature, job.store.display(path))
            try:
                if timestamps is None and job.frame_lookup == "timestamp":
                    timestamps = read_timestamps(job.store, ep.data_path)
                work = partial(camera_moments, job, path, positions, timestamps, job.channels[feature])
                results[ep.index, feature] = guarded(work, where, job.timeouts[ep.index], where)
            except DatasetError as exc:
                problems += exc.problems
            except FrameLookupError as exc:
                problems.append(where.problem(str(exc), fix=exc.fix))
            except Exception as exc:  # noqa: BLE001 - name the episode/feature/file
                problems.append(where.problem(f"video stats failed: {type(exc).__name__}: {exc}"))
    if problems:
        raise TaskError(problems)
    return results


def camera_moments(job: VideoJob, path: str, positions: np.ndarray, timestamps: np.ndarray | None, channels: int,
                   where: Location) -> Moments:
    """Moments of the frames of one video at the sampled rows ``positions``."""
    with job.store.local_file(path) as local, _open(job.backend, local, where) as reader:
        times = reader.frame_times()
        try:
            frames = locate_frames(times, positions, None if timestamps is None else timestamps[positions],
                                   job.tolerance_s)
        except FrameLookupError:  # say why, as the preflight check would (convert leaves videos to the tasks)
            first = timestamps[0] if timestamps is not None and len(timestamps) else None
            length = int(positions[-1]) + 1  # the last row is always sampled
            problems = video_problems(len(times), times[0] if len(times) else 0.0, first, length,
                                      by_timestamp=timestamps is not None, tolerance_s=job.tolerance_s,
                                      **vars(where))
            if problems:
                raise DatasetError(problems) from None
            raise
        unique, weights = np.unique(frames, return_counts=True)
        histogram = PixelHistogram(channels)
        for (index, frame), expected, weight in zip(reader.read(unique), unique, weights):
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
    except Exception as exc:  # noqa: BLE001 - any container error means the same to the user
        raise DatasetError(where.problem(f"the video cannot be opened: {exc}",
                                         fix="re-encode or restore the file")) from exc
