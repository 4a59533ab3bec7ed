"""Exact per-channel statistics of uint8 pixels, via integer histograms (no float frames); depth maps (12-bit codes,
one channel) the same way, each code standing for its depth (``DepthCoding``).

A (channels, 256) histogram holds everything: count, min, max, and the exact integer sums of x and x^2,
so mean and M2 come out correctly rounded (Python integers, one rounding at the end).

The per-frame histogram is the hot spot of video stats (one call per sampled frame).  ``np.bincount``
first widens every byte to int64 (~2.5 ms for a 480x640 RGB frame); Pillow's ``Image.histogram`` counts
bytes in one C pass without widening (~0.3 ms for the same frame, 8x less), on a zero-copy view of the
frame.  Pillow is a core dependency already; layouts it cannot view, and tiny frames (where its fixed cost
of ~80 us per call outweighs the widening), go to ``np.bincount``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def _rgbx_base(frame: np.ndarray) -> np.ndarray | None:
    """The contiguous (H, W, 4) array that ``frame`` is the ``[..., :3]`` view of, if it is one."""
    base = frame.base
    height, width, _ = frame.shape
    if (isinstance(base, np.ndarray) and base.dtype == np.uint8 and base.shape == (height, width, 4)
            and base.flags.c_contiguous and base.ctypes.data == frame.ctypes.data
            and frame.strides == base.strides):
        return base
    return None


DEPTH_QMAX = 4095  # lerobot 0.6.1 stores depth as 12-bit codes (gray12le)


@dataclass(frozen=True)
class DepthCoding:
    """How lerobot 0.6.1 stores a depth map in a video (``DepthEncoderConfig``, ``depth_utils``): the depth, in
    ``unit`` ("mm" for integer frames, "m" for float ones), quantized to 12-bit codes between ``depth_min`` and
    ``depth_max`` (metres), on a log scale (``log(depth + shift)``) or a linear one.  A code stands for the depth
    that lerobot's ``dequantize_depth`` returns for it (float32 arithmetic; millimetres rounded to integers), and
    lerobot records depth stats in ``unit``, not divided by 255."""

    depth_min: float = 0.01
    depth_max: float = 10.0
    shift: float = 3.5
    use_log: bool = True
    unit: str = "mm"

    @classmethod
    def of(cls, feature: dict) -> DepthCoding | None:
        """The coding of an info.json feature flagged ``is_depth_map`` (lerobot's defaults for what it does not
        say; ``video.is_depth_map`` is the older key); None for other features."""
        info = feature.get("info") or {}
        if not (info.get("is_depth_map") or info.get("video.is_depth_map")):
            return None
        default = cls()
        return cls(*(type(getattr(default, name))(info.get(f"video.{name}", getattr(default, name)))
                     for name in ("depth_min", "depth_max", "shift", "use_log")),
                   unit=str(info.get("depth_unit") or default.unit))

    def levels(self) -> np.ndarray:
        """The depth (float64, in ``unit``) of each code 0..4095, as lerobot's numpy ``dequantize_depth`` computes
        it: float32 ``code * scale + offset``, ``exp(.) - shift`` on the log scale, clipped to the range, then
        millimetres rounded."""
        if self.use_log:
            low, high = math.log(self.depth_min + self.shift), math.log(self.depth_max + self.shift)
        else:
            low, high = self.depth_min, self.depth_max
        depth = np.arange(DEPTH_QMAX + 1, dtype=np.float32) * np.float32((high - low) / DEPTH_QMAX) + np.float32(low)
        if self.use_log:
            depth = np.exp(depth) - np.float32(self.shift)
        depth = np.clip(depth, np.float32(self.depth_min), np.float32(self.depth_max))
        if self.unit == "mm":
            depth = np.clip(np.rint(depth * np.float32(1000.0)), 0, 65535)
        return depth.astype(np.float64)

    def quantize(self, depth: np.ndarray) -> np.ndarray:
        """lerobot's ``quantize_depth``: the uint16 codes of depth frames in ``unit`` (float32 arithmetic)."""
        scale = 1.0 if self.unit == "m" else 1000.0
        low, high, shift = (np.float32(v * scale) for v in (self.depth_min, self.depth_max, self.shift))
        depth = np.asarray(depth, dtype=np.float32)
        if self.use_log:
            log_low, log_high = math.log(float(low + shift)), math.log(float(high + shift))
            norm = (np.log(depth + shift) - log_low) / (log_high - log_low)
        else:
            norm = (depth - low) / (high - low)
        return np.rint(norm * DEPTH_QMAX).clip(0, DEPTH_QMAX).astype(np.uint16)


def histogram_moments(hist: np.ndarray, samples: int, qs: tuple[float, ...] = (),
                      levels: np.ndarray | None = None) -> Moments:
    """Moments (values in [0, 1]) of a (C, 256) integer histogram, exact up to one final rounding; with quantiles
    ``qs``, also those and the histogram itself (dataset-wide pixel quantiles come from the summed histograms).
    ``levels``: the value of each bin instead (a depth map's (1, 4096) histogram of codes: float64 sums)."""
    from .quantiles import histogram_quantiles

    hist = np.asarray(hist, dtype=np.int64)
    if levels is not None:
        return _level_moments(hist, samples, qs, levels)
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


def _level_moments(hist: np.ndarray, samples: int, qs: tuple[float, ...], levels: np.ndarray) -> Moments:
    """Moments of a histogram whose bins stand for ``levels`` (float64, ascending)."""
    from .quantiles import histogram_quantiles

    count = hist.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (hist @ levels) / count
    m2s = np.where(count > 0, (hist * (levels[None, :] - np.nan_to_num(means)[:, None]) ** 2).sum(axis=1), np.nan)
    nonzero = hist > 0
    lo, hi = np.argmax(nonzero, axis=1), len(levels) - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    quantiles = histogram_quantiles(hist, qs, levels) if qs else np.zeros((0, len(hist)))
    return Moments(count, means, m2s, levels[lo], levels[hi], samples=samples, quantiles=quantiles,
                   histogram=hist if qs else None)


class PixelHistogram:
    """Accumulates a (channels, 256) histogram of uint8 HWC frames; ``moments()`` gives values in [0, 1].  With a
    ``depth`` coding: a (1, 4096) histogram of (H, W) uint16 depth codes, moments in the depth's unit."""

    def __init__(self, channels: int = 3, depth: DepthCoding | None = None):
        self.channels = channels
        self.levels = depth.levels() if depth is not None else None
        self.hist = np.zeros((channels, 256 if depth is None else DEPTH_QMAX + 1), dtype=np.int64)
        self.frames = 0

    def add(self, frame: np.ndarray, weight: int = 1) -> None:
        """Add one (H, W, C) uint8 frame (a depth map: (H, W) uint16 codes), ``weight`` times (a frame sampled twice
        counts twice)."""
        if self.levels is not None:
            if frame.dtype != np.uint16 or frame.ndim != 2 or (frame.size and frame.max() > DEPTH_QMAX):
                raise ValueError(f"expected (H, W) 12-bit depth codes, got {frame.dtype} {frame.shape}")
            counts = np.bincount(frame.ravel(), minlength=DEPTH_QMAX + 1)[None, :]
        else:
            if frame.ndim == 2:
                frame = frame[:, :, None]
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != self.channels:
                raise ValueError(f"expected uint8 frames with {self.channels} channels, got {frame.dtype} "
                                 f"{frame.shape}")
            counts = channel_histograms(frame)
        self.hist += counts * weight if weight != 1 else counts
        self.frames += weight

    def moments(self, qs: tuple[float, ...] = ()) -> Moments:
        return histogram_moments(self.hist, self.frames, qs, self.levels)
