"""Which frames a video stat looks at, and how a sampled row finds its frame (pure: numbers in, numbers out).

Used by the video tasks (to pick and locate frames) and by ``check`` (to predict, from headers and
timestamps alone, the lookups that would fail).
"""

from __future__ import annotations

import numpy as np

from ..errors import Problem

WALL_CLOCK_S = 1e6  # timestamps this large are Unix times, not seconds since the episode start


def sample_positions(length: int) -> np.ndarray:
    """Row positions sampled for video stats, as lerobot chooses them: ``n = clip(length ** 0.75, 100, 10000)``
    rows (all rows of a shorter episode), evenly spaced (``linspace``, rounded half to even)."""
    min_samples, max_samples, power = 100, 10_000, 0.75
    if length < min_samples:
        min_samples = length
    n = max(min_samples, min(int(length**power), max_samples))
    return np.round(np.linspace(0, length - 1, n)).astype(int)


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


def video_problems(frames: int, start_s: float, first_timestamp: float | None, length: int, *,
                   by_timestamp: bool, tolerance_s: float, **where) -> list[Problem]:
    """Why a video with ``frames`` frames starting at ``start_s`` cannot serve an episode of ``length`` rows
    whose first timestamp is ``first_timestamp`` (from the header in ``check``; from the frame index in a task)."""
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
