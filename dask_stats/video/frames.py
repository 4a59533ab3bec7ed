"""Check that a concatenated video presents an episode's frames unchanged, at from_timestamp + t."""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np

from ..errors import Problem

SEEK_BACK_S = (0.0, 1.0, 5.0, None)  # margins tried before decoding from the start (None)


def frame_at(path: str, timestamp: float, tolerance_s: float = 1e-4) -> tuple[np.ndarray, float] | None:
    """The RGB frame (uint8 H x W x 3) presented within ``tolerance_s`` of ``timestamp``, and its time.

    Seeks to the keyframe at or before the time (with growing margins if the seek lands late) and decodes
    forward a few frames; ``None`` if no frame lies within the tolerance.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
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


def verify_episode_frames(
    source_video: str,
    source_timestamps: Sequence[float],
    new_video: str,
    from_timestamp: float,
    tolerance_s: float = 1e-4,
    *,
    episode: int | None = None,
    feature: str | None = None,
) -> list[Problem]:
    """Problems (empty when fine): the frames at ``t`` in the source must equal, byte for byte, those at
    ``from_timestamp + t`` in the new video, for each ``t`` (typically the episode's first and last rows)."""
    problems = []
    for t in source_timestamps:
        t = float(t)
        original = frame_at(source_video, t, tolerance_s)
        if original is None:
            problems.append(Problem(f"no source frame at t={t:.6f} s (tolerance {tolerance_s} s)",
                                    episode=episode, feature=feature, path=str(source_video)))
            continue
        shifted = from_timestamp + t
        new = frame_at(new_video, shifted, tolerance_s)
        if new is None:
            problems.append(Problem(
                f"no frame at {shifted:.6f} s (from_timestamp {from_timestamp:.6f} + t {t:.6f}; "
                f"tolerance {tolerance_s} s)",
                episode=episode, feature=feature, path=str(new_video)))
        elif new[0].shape != original[0].shape or not np.array_equal(new[0], original[0]):
            problems.append(Problem(
                f"the frame at {shifted:.6f} s differs from the source frame at t={t:.6f} s",
                episode=episode, feature=feature, path=str(new_video)))
    return problems


def first_last_frame_times(path: str) -> tuple[float, float]:
    """The presentation times (s) of the first and last frame of ``path``."""
    from .pyav_backend import PyAVReader

    with PyAVReader(path) as reader:
        times = reader.frame_times()
    return float(times[0]), float(times[-1])
