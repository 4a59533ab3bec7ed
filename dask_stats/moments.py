"""Partial moments that merge exactly: the one piece of arithmetic every stat goes through.

A :class:`Moments` holds, per component (vector dimension or colour channel), the count, mean, sum of
squared deviations (M2), min and max of some observations, plus ``samples``: the number of rows or
frames they came from (the ``count`` that v2.1 writes).  ``segments`` builds them from contiguous row segments, ``merge``
combines two (``merge_all``: any number, at once), ``finalize`` gives the reference's min/max/mean/std/count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Moments:
    count: np.ndarray  # int64, per component
    mean: np.ndarray  # float64
    m2: np.ndarray  # float64, sum of squared deviations from the mean
    min: np.ndarray  # the data's own dtype (float32/float64/int64/bool) or float64 for pixels
    max: np.ndarray
    samples: int  # rows (parquet) or sampled frames (video) behind these moments
    nonfinite: int = 0  # rows holding NaN or infinity (stats then follow numpy: NaN propagates)

    @classmethod
    def segments(cls, x: np.ndarray, starts: np.ndarray) -> list["Moments"]:
        """Moments of each contiguous row segment ``x[starts[i]:starts[i+1]]``, vectorized (reduceat)."""
        if x.ndim == 1:
            x = x[:, None]
        lengths = np.diff(np.append(starts, x.shape[0]))
        xf = x.astype(np.float64)
        means = np.add.reduceat(xf, starts, axis=0) / lengths[:, None]
        m2 = np.add.reduceat((xf - np.repeat(means, lengths, axis=0)) ** 2, starts, axis=0)
        reduce_x = x.view(np.uint8) if x.dtype == np.bool_ else x  # reduceat has no bool min/max
        mins = np.minimum.reduceat(reduce_x, starts, axis=0).astype(x.dtype)
        maxs = np.maximum.reduceat(reduce_x, starts, axis=0).astype(x.dtype)
        bad_rows = ~np.isfinite(xf).all(axis=1)
        nonfinite = np.add.reduceat(bad_rows, starts) if bad_rows.any() else np.zeros(len(starts), int)
        return [
            cls(np.full(x.shape[1:], n, dtype=np.int64), means[i], m2[i], mins[i], maxs[i], int(n), int(nonfinite[i]))
            for i, n in enumerate(lengths)
        ]

    def merge(self, other: "Moments") -> "Moments":
        return merge_all([self, other])

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.m2, 0.0) / self.count)


def merge_all(parts: list[Moments]) -> Moments:
    """Merge a non-empty list of partial moments in one vectorized step: counts add, the mean is the
    count-weighted mean, M2 = sum of the parts' M2 + sum of count * (part mean - mean)^2 (exact, like Chan et
    al.'s pairwise update, which is its two-part case)."""
    if len(parts) == 1:
        return parts[0]
    count = np.stack([p.count for p in parts])
    mean = np.stack([p.mean for p in parts])
    total = count.sum(axis=0)
    weight = np.divide(count, total, out=np.zeros(count.shape), where=total > 0)
    merged_mean = (weight * mean).sum(axis=0)
    return Moments(
        count=total,
        mean=merged_mean,
        m2=np.stack([p.m2 for p in parts]).sum(axis=0) + (count * (mean - merged_mean) ** 2).sum(axis=0),
        min=np.minimum.reduce([p.min for p in parts]),
        max=np.maximum.reduce([p.max for p in parts]),
        samples=sum(p.samples for p in parts),
        nonfinite=sum(p.nonfinite for p in parts),
    )
