"""Per-(episode, video feature) stats: pick the sampled frames, decode them, reduce their pixels exactly."""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import pyarrow.parquet as pq

from .check import video_problems
from .errors import Problem, TaskError
from .moments import Moments
from .pixels import PixelHistogram
from .plan import sample_positions
from .storage import Store
from .video import VideoReader, get_backend


@dataclass(frozen=True)
class VideoTask:
    """Everything one video-stats task needs (small and picklable, for any Dask worker)."""

    episode: int
    feature: str
    store: Store
    video_path: str  # full paths on ``store``
    data_path: str
    length: int
    backend: str = "pyav"
    frame_lookup: str = "timestamp"
    tolerance_s: float = 1e-4
    channels: int = 3

    @property
    def key(self) -> str:
        return f"video-stats-{self.feature}-ep{self.episode:06d}"


class FrameLookupError(ValueError):
    """A sampled row has no matching video frame."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


def locate_frames(frame_times: np.ndarray, positions: np.ndarray, timestamps: np.ndarray | None,
                  tolerance_s: float) -> np.ndarray:
    """Frame numbers for the sampled rows.

    With ``timestamps`` (lookup by timestamp), each row takes the frame whose presentation time is
    nearest, required within ``tolerance_s``; without, row k takes the k-th frame.
    """
    n = len(frame_times)
    if n == 0:
        raise FrameLookupError("the video has no frames", fix="re-encode or restore the file")
    if timestamps is None:
        if positions.max() >= n:
            raise FrameLookupError(
                f"the video has {n} frames but row {int(positions.max())} is sampled",
                fix="check that the video matches the episode")
        return positions
    right = np.clip(np.searchsorted(frame_times, timestamps), 1, n - 1) if n > 1 else np.zeros(len(timestamps), int)
    left = np.maximum(right - 1, 0)
    take_left = np.abs(timestamps - frame_times[left]) <= np.abs(frame_times[right] - timestamps)
    nearest = np.where(take_left, left, right)
    error = np.abs(frame_times[nearest] - timestamps)
    bad = np.flatnonzero(error > tolerance_s)
    if len(bad):
        i = bad[0]
        raise FrameLookupError(
            f"{len(bad)} of {len(timestamps)} sampled timestamps have no video frame within {tolerance_s:g} s; "
            f"first: row {int(positions[i])} at t={timestamps[i]:.6f} s, nearest frame at "
            f"{frame_times[nearest[i]]:.6f} s (video: {n} frames, {frame_times[0]:.6f}..{frame_times[-1]:.6f} s)",
            fix="if the timestamps are offset or wall-clock, use --frame-lookup index; "
                "if they are only imprecise, raise --tolerance-s")
    return nearest


def read_timestamps(store: Store, data_path: str) -> np.ndarray:
    """The ``timestamp`` column of one episode, as float64."""
    column = pq.ParquetFile(store.source(data_path)).read(columns=["timestamp"], use_threads=False).column("timestamp")
    return column.to_numpy().astype(np.float64)


def open_video(task: VideoTask, local: str, where: dict) -> VideoReader:
    """The task's video opened by its backend, or the preflight check's error for an unreadable file."""
    backend = get_backend(task.backend)
    try:
        return backend.open(local)
    except Exception as exc:  # noqa: BLE001 - any container error means the same to the user
        raise TaskError(Problem(f"the video cannot be opened: {exc}", fix="re-encode or restore the file",
                                **where)) from exc


def video_moments(task: VideoTask) -> Moments:
    """Moments of the sampled frames of one episode's video; errors name episode, feature and file."""
    where = {"episode": task.episode, "feature": task.feature, "path": task.store.display(task.video_path)}
    try:
        positions = sample_positions(task.length)
        timestamps = read_timestamps(task.store, task.data_path) if task.frame_lookup == "timestamp" else None
        with task.store.local_file(task.video_path) as local, open_video(task, local, where) as reader:
            times = reader.frame_times()
            try:
                frames = locate_frames(times, positions, None if timestamps is None else timestamps[positions],
                                       task.tolerance_s)
            except FrameLookupError:  # say why, as the preflight check would (convert leaves videos to the tasks)
                first = timestamps[0] if timestamps is not None and len(timestamps) else None
                problems = video_problems(len(times), times[0] if len(times) else 0.0, first, task.length,
                                          by_timestamp=timestamps is not None, tolerance_s=task.tolerance_s, **where)
                if problems:
                    raise TaskError(problems) from None
                raise
            unique, weights = np.unique(frames, return_counts=True)
            histogram = PixelHistogram(task.channels)
            for (index, frame), expected, weight in zip(reader.read(unique), unique, weights):
                if index != expected:
                    raise RuntimeError(f"the decoder returned frame {index} where {expected} was expected")
                histogram.add(frame, int(weight))
        if histogram.frames != len(positions):
            raise FrameLookupError(
                f"decoded only {histogram.frames} of {len(positions)} sampled frames (truncated video?)",
                fix="re-encode or restore the file")
        return histogram.moments()
    except FrameLookupError as exc:
        raise TaskError(Problem(str(exc), fix=exc.fix, **where)) from exc
    except TaskError:
        raise
    except Exception as exc:  # noqa: BLE001 - name the episode/feature/file, keep the cause chained
        raise TaskError(Problem(f"video stats failed: {type(exc).__name__}: {exc}", **where)) from exc

