"""Exact per-channel statistics of uint8 pixels, via integer histograms (no float32 frames)."""

from __future__ import annotations

import numpy as np

from .moments import Moments

_LEVELS = np.arange(256, dtype=np.float64) / 255.0


class PixelHistogram:
    """Accumulates a (channels, 256) histogram of uint8 HWC frames; ``moments()`` gives values in [0, 1]."""

    def __init__(self, channels: int = 3):
        self.channels = channels
        self.hist = np.zeros((channels, 256), dtype=np.int64)
        self.frames = 0
        self._offsets = (np.arange(channels, dtype=np.uint16) * 256)

    def add(self, frame: np.ndarray, weight: int = 1) -> None:
        """Add one (H, W, C) uint8 frame, ``weight`` times (a frame sampled twice counts twice)."""
        if frame.ndim == 2:
            frame = frame[:, :, None]
        if frame.dtype != np.uint8 or frame.shape[2] != self.channels:
            raise ValueError(f"expected uint8 frames with {self.channels} channels, got {frame.dtype} {frame.shape}")
        flat = (frame.reshape(-1, self.channels) + self._offsets).ravel()
        counts = np.bincount(flat, minlength=256 * self.channels).reshape(self.channels, 256)
        self.hist += counts * weight
        self.frames += weight

    def moments(self) -> Moments:
        count = self.hist.sum(axis=1)
        mean = self.hist @ _LEVELS / count
        m2 = (self.hist * (_LEVELS[None, :] - mean[:, None]) ** 2).sum(axis=1)
        nonzero = self.hist > 0
        lo = np.argmax(nonzero, axis=1)
        hi = 255 - np.argmax(nonzero[:, ::-1], axis=1)
        return Moments(count, mean, m2, _LEVELS[lo], _LEVELS[hi], samples=self.frames)
