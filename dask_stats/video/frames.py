"""Check that a concatenated video presents an episode's frames unchanged at from_timestamp + t, and that an episode
cut out of one presents them at t."""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np

from ..errors import Problem

SEEK_BACK_S = (0.0, 1.0, 5.0, None)  # margins tried before decoding from the start (None)


class FrameFinder:
    """One open video that finds the frames presented at given times (opened once for many lookups: a concatenated
    file's index is parsed once, not once per episode); closes its container deterministically."""

    def __init__(self, path: str):
        self.path = str(path)
        self._container = av.open(self.path)
        self._stream = self._container.streams.video[0]

    def at(self, timestamp: float, tolerance_s: float = 1e-4) -> tuple[np.ndarray, float] | None:
        """The RGB frame (uint8 H x W x 3) presented within ``tolerance_s`` of ``timestamp``, and its time.

        Seeks to the keyframe at or before the time (with growing margins if the seek lands late) and decodes
        forward a few frames; ``None`` if no frame lies within the tolerance.
        """
        container, stream = self._container, self._stream
        for margin in SEEK_BACK_S:
            if margin is None:
                container.seek(0, backward=True, any_frame=False, stream=stream)
            else:
                target = max(timestamp - margin, 0.0)
                container.seek(round(target / stream.time_base) - 1, backward=True, any_frame=False, stream=stream)
            first_time = None
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                time = float(frame.pts * stream.time_base)
                if first_time is None:
                    first_time = time
                if abs(time - timestamp) < tolerance_s:
                    return frame.to_ndarray(format="rgb24"), time
                if time > timestamp + tolerance_s:
                    break
            if first_time is not None and first_time <= timestamp + tolerance_s:
                return None  # decoded across the time: no frame there
        return None

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FrameFinder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def frame_at(path: str, timestamp: float, tolerance_s: float = 1e-4) -> tuple[np.ndarray, float] | None:
    """The frame of ``path`` presented within ``tolerance_s`` of ``timestamp`` and its time (:meth:`FrameFinder.at`)."""
    with FrameFinder(path) as finder:
        return finder.at(timestamp, tolerance_s)


def _at(video: str | FrameFinder, timestamp: float, tolerance_s: float) -> tuple[np.ndarray, float] | None:
    return video.at(timestamp, tolerance_s) if isinstance(video, FrameFinder) else frame_at(video, timestamp,
                                                                                           tolerance_s)


def verify_episode_frames(
    source_video: str | FrameFinder,
    source_timestamps: Sequence[float],
    new_video: str | FrameFinder,
    from_timestamp: float,
    tolerance_s: float = 1e-4,
    *,
    episode: int | None = None,
    feature: str | None = None,
) -> list[Problem]:
    """Problems (empty when fine): the frames at ``t`` in the source must equal, byte for byte, those at
    ``from_timestamp + t`` in the new video, for each ``t`` (typically the episode's first and last rows).  Either
    video may be an open :class:`FrameFinder` (a concatenated file checked for each of its episodes)."""
    problems = []
    for t in source_timestamps:
        t = float(t)
        problems += _same_frame(source_video, t, new_video, from_timestamp + t,
                                f"(from_timestamp {from_timestamp:.6f} + t {t:.6f}; tolerance {tolerance_s} s)",
                                tolerance_s, episode, feature)
    return problems


def verify_cut_frames(
    source_video: str,
    from_timestamp: float,
    cut_video: str,
    timestamps: Sequence[float],
    tolerance_s: float = 1e-4,
    *,
    episode: int | None = None,
    feature: str | None = None,
) -> list[Problem]:
    """Problems (empty when fine): an episode cut out of ``source_video`` presents at ``t`` the frame that the
    source presents at ``from_timestamp + t``, byte for byte, for each ``t`` of ``timestamps``."""
    problems = []
    for t in timestamps:
        t = float(t)
        problems += _same_frame(source_video, from_timestamp + t, cut_video, t,
                                f"(the episode's t {t:.6f} s; tolerance {tolerance_s} s)", tolerance_s, episode,
                                feature)
    return problems


def _same_frame(source_video: str | FrameFinder, source_time: float, new_video: str | FrameFinder, new_time: float,
                detail: str, tolerance_s: float, episode: int | None, feature: str | None) -> list[Problem]:
    source_path, new_path = (getattr(v, "path", v) for v in (source_video, new_video))
    original = _at(source_video, source_time, tolerance_s)
    if original is None:
        return [Problem(f"no source frame at {source_time:.6f} s (tolerance {tolerance_s} s)",
                        episode=episode, feature=feature, path=str(source_path))]
    new = _at(new_video, new_time, tolerance_s)
    if new is None:
        return [Problem(f"no frame at {new_time:.6f} s {detail}", episode=episode, feature=feature,
                        path=str(new_path))]
    if new[0].shape != original[0].shape or not np.array_equal(new[0], original[0]):
        return [Problem(f"the frame at {new_time:.6f} s differs from the source frame at {source_time:.6f} s",
                        episode=episode, feature=feature, path=str(new_path))]
    return []


def first_last_frame_times(path: str) -> tuple[float, float]:
    """The presentation times (s) of the first and last frame of ``path``."""
    from .pyav_backend import PyAVReader

    with PyAVReader(path) as reader:
        times = reader.frame_times()
    return float(times[0]), float(times[-1])
