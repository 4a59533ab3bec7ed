"""Exact per-channel statistics of uint8 pixels, via integer histograms (no float frames).

A (channels, 256) histogram holds everything: count, min, max, and the exact integer sums of x and x^2,
so mean and M2 come out correctly rounded (Python integers, one rounding at the end).

The per-frame histogram is the hot spot of video stats (one call per sampled frame).  ``np.bincount``
first widens every byte to int64 (~2.5 ms for a 480x640 RGB frame); Pillow's ``Image.histogram`` counts
bytes in one C pass without widening (~0.3 ms for the same frame, 8x less), on a zero-copy view of the
frame.  Pillow is a core dependency already; layouts it cannot view, and tiny frames (where its fixed cost
of ~80 us per call outweighs the widening), go to ``np.bincount``.
"""

from __future__ import annotations

import numpy as np

from .moments import Moments

_LEVELS = np.arange(256, dtype=np.float64) / 255.0
_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # channels -> Pillow mode whose histogram is per channel
_SMALL_FRAME_VALUES = 8192  # up to here (~50x50 RGB) np.bincount beats Pillow's fixed cost (~80 us per call)
_EXACT_INT64_COUNT = (2**63 - 1) // (255 * 255)  # pixels per channel below which sum(x^2) fits int64


def channel_histograms(frame: np.ndarray) -> np.ndarray:
    """(C, 256) int64 counts of each byte value per channel of an (H, W, C) uint8 frame."""
    height, width, channels = frame.shape
    if frame.size == 0:
        return np.zeros((channels, 256), dtype=np.int64)
    mode = _PIL_MODES.get(channels)
    if mode is not None and frame.size > _SMALL_FRAME_VALUES and height < 2**31 and width < 2**31:
        from PIL import Image

        base = _rgbx_base(frame) if channels == 3 else None
        if base is not None:  # an RGB view of RGBA memory (4 bytes per pixel): Pillow maps it, no copy
            image = Image.frombuffer("RGBA", (width, height), base, "raw", "RGBA", 0, 1)
            return np.asarray(image.histogram(), dtype=np.int64).reshape(4, 256)[:3]
        frame = np.ascontiguousarray(frame)
        if channels == 3:  # Pillow keeps RGB as 4 bytes per pixel: the one copy, done in C
            image = Image.frombuffer("RGB", (width, height), frame, "raw", "RGB", 0, 1)
        else:
            image = Image.frombuffer(mode, (width, height), frame, "raw", mode, 0, 1)
        return np.asarray(image.histogram(), dtype=np.int64).reshape(channels, 256)
    offsets = np.arange(channels, dtype=np.int64) * 256
    flat = (frame.reshape(-1, channels) + offsets).ravel()
    return np.bincount(flat, minlength=256 * channels).reshape(channels, 256)


def frame_histograms(frames: list[np.ndarray]) -> np.ndarray:
    """(N, C, 256) int64 counts per frame of same-shaped (H, W, C) uint8 frames: small frames all in one
    ``np.bincount`` (no fixed cost per frame), larger ones by ``channel_histograms`` one at a time."""
    if not frames:
        return np.zeros((0, 0, 256), dtype=np.int64)
    channels = frames[0].shape[2]
    if frames[0].size > _SMALL_FRAME_VALUES:
        return np.stack([channel_histograms(frame) for frame in frames])
    stacked = np.stack(frames).reshape(len(frames), -1, channels).astype(np.int64)
    stacked += (np.arange(len(frames) * channels, dtype=np.int64) * 256).reshape(len(frames), 1, channels)
    return np.bincount(stacked.ravel(), minlength=len(frames) * channels * 256).reshape(len(frames), channels, 256)


def _rgbx_base(frame: np.ndarray) -> np.ndarray | None:
    """The contiguous (H, W, 4) array that ``frame`` is the ``[..., :3]`` view of, if it is one."""
    base = frame.base
    height, width, _ = frame.shape
    if (isinstance(base, np.ndarray) and base.dtype == np.uint8 and base.shape == (height, width, 4)
            and base.flags.c_contiguous and base.ctypes.data == frame.ctypes.data
            and frame.strides == base.strides):
        return base
    return None


def histogram_moments(hist: np.ndarray, samples: int, qs: tuple[float, ...] = ()) -> Moments:
    """Moments (values in [0, 1]) of a (C, 256) integer histogram, exact up to one final rounding; with quantiles
    ``qs``, also those and the histogram itself (dataset-wide pixel quantiles come from the summed histograms)."""
    from .quantiles import histogram_quantiles

    hist = np.asarray(hist, dtype=np.int64)
    values = np.arange(256, dtype=np.int64)
    count = hist.sum(axis=1)
    exact = hist if count.max(initial=0) < _EXACT_INT64_COUNT else hist.astype(object)  # object: Python ints
    s1s, s2s = (exact @ values).tolist(), (exact @ (values * values)).tolist()
    means, m2s = [], []
    for n, s1, s2 in zip(count.tolist(), s1s, s2s):
        means.append(s1 / (255 * n) if n else float("nan"))
        m2s.append((n * s2 - s1 * s1) / (n * 65025) if n else float("nan"))  # int / int: correctly rounded
    nonzero = hist > 0
    lo = np.argmax(nonzero, axis=1)
    hi = 255 - np.argmax(nonzero[:, ::-1], axis=1)
    quantiles = histogram_quantiles(hist, qs) if qs else np.zeros((0, len(hist)))
    return Moments(count, np.array(means), np.array(m2s), _LEVELS[lo], _LEVELS[hi], samples=samples,
                   quantiles=quantiles, histogram=hist if qs else None)


class PixelHistogram:
    """Accumulates a (channels, 256) histogram of uint8 HWC frames; ``moments()`` gives values in [0, 1]."""

    def __init__(self, channels: int = 3):
        self.channels = channels
        self.hist = np.zeros((channels, 256), dtype=np.int64)
        self.frames = 0

    def add(self, frame: np.ndarray, weight: int = 1) -> None:
        """Add one (H, W, C) uint8 frame, ``weight`` times (a frame sampled twice counts twice)."""
        if frame.ndim == 2:
            frame = frame[:, :, None]
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != self.channels:
            raise ValueError(f"expected uint8 frames with {self.channels} channels, got {frame.dtype} {frame.shape}")
        counts = channel_histograms(frame)
        self.hist += counts * weight if weight != 1 else counts
        self.frames += weight

    def add_counts(self, counts: np.ndarray, weights: np.ndarray) -> None:
        """Add frames already counted, (N, C, 256) by ``frame_histograms``, each ``weights[i]`` times."""
        if counts.shape[1:] != self.hist.shape:
            raise ValueError(f"expected uint8 frames with {self.channels} channels, got counts of {counts.shape[1]}")
        self.hist += np.einsum("n,ncv->cv", np.asarray(weights, dtype=np.int64), counts)
        self.frames += int(np.sum(weights))

    def moments(self, qs: tuple[float, ...] = ()) -> Moments:
        return histogram_moments(self.hist, self.frames, qs)
