"""dask_stats.stats.pixels: exact pixel statistics from per-channel histograms. The Pillow histogram (RGB and RGBA-view
layouts) equals ``np.bincount``; the moments from it equal float64 numpy, and are the correctly rounded values."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from float64_reference import pixel_stats

from dask_stats.stats.pixels import PixelHistogram, channel_histograms, histogram_moments


def test_pixel_histogram_is_exact():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (5, 7, 9, 3), dtype=np.uint8)
    hist = PixelHistogram(3)
    for f in frames[:4]:
        hist.add(f)
    hist.add(frames[4], weight=2)
    data = np.concatenate([frames, frames[4:]]).astype(np.float64) / 255
    m = hist.moments()
    np.testing.assert_allclose(m.mean, data.mean((0, 1, 2)), rtol=1e-14)
    np.testing.assert_allclose(m.std, data.std((0, 1, 2)), rtol=1e-12)
    np.testing.assert_array_equal(m.min, data.min((0, 1, 2)))
    np.testing.assert_array_equal(m.max, data.max((0, 1, 2)))
    assert m.samples == 6


@pytest.mark.parametrize("shape", [(48, 80, 3), (7, 5, 3), (3, 1, 1), (4, 6, 4), (5, 3, 2), (1, 1, 3)])
def test_channel_histograms_equal_bincount(shape):
    rng = np.random.default_rng(sum(shape))
    frame = rng.integers(0, 256, shape, dtype=np.uint8)
    channels = shape[2]
    expected = np.bincount((frame.reshape(-1, channels) + np.arange(channels) * 256).ravel(),
                           minlength=256 * channels).reshape(channels, 256)
    np.testing.assert_array_equal(channel_histograms(frame), expected)
    np.testing.assert_array_equal(channel_histograms(frame[::-1, ::2]),
                                  np.bincount((frame[::-1, ::2].reshape(-1, channels) + np.arange(channels) * 256)
                                              .ravel(), minlength=256 * channels).reshape(channels, 256))
    if channels == 3:  # the RGB view of an RGBA buffer (what the pyav backend yields)
        rgba = np.concatenate([frame, np.full(shape[:2] + (1,), 7, np.uint8)], axis=2)
        np.testing.assert_array_equal(channel_histograms(rgba[..., :3]), expected)


def test_pixel_moments_equal_float64_on_extreme_values():
    frames = [np.zeros((9, 11, 3), np.uint8), np.full((9, 11, 3), 255, np.uint8),
              np.random.default_rng(3).integers(0, 256, (9, 11, 3), dtype=np.uint8)]
    hist = PixelHistogram(3)
    for frame in frames:
        hist.add(frame)
    hist.add(frames[2], weight=3)
    expected = pixel_stats(np.stack(frames + [frames[2]] * 3))
    moments = hist.moments()
    np.testing.assert_allclose(moments.mean, expected["mean"], rtol=1e-14)
    np.testing.assert_allclose(moments.std, expected["std"], rtol=1e-14)
    # and exactly the correctly rounded values (plain float64 numpy is off by an ulp or so)
    values = np.concatenate([f.reshape(-1, 3) for f in frames + [frames[2]] * 3]).astype(object)
    for c in range(3):
        n, s1, s2 = len(values), int(values[:, c].sum()), int((values[:, c] ** 2).sum())
        assert moments.mean[c] == float(Fraction(s1, 255 * n))
        assert moments.m2[c] == float(Fraction(n * s2 - s1 * s1, n * 255 * 255))
    np.testing.assert_array_equal(moments.min, expected["min"])
    np.testing.assert_array_equal(moments.max, expected["max"])
    assert moments.samples == 6 and (moments.count == 6 * 99).all()


@pytest.mark.parametrize("scale", [1, 10**15])  # 10**15 pixels per channel: sum(x^2) no longer fits int64
def test_histogram_moments_are_correctly_rounded_at_any_count(scale):
    hist = np.zeros((3, 256), np.int64)
    hist[:, [0, 3, 254, 255]] = np.array([[5, 1, 2, 9], [1, 1, 1, 1], [7, 0, 0, 2]]) * scale
    moments = histogram_moments(hist, samples=1)
    for c, row in enumerate(hist.tolist()):
        n = sum(row)
        s1 = sum(count * v for v, count in enumerate(row))
        s2 = sum(count * v * v for v, count in enumerate(row))
        assert moments.mean[c] == float(Fraction(s1, 255 * n))
        assert moments.m2[c] == float(Fraction(n * s2 - s1 * s1, n * 65025))
