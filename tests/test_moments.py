"""stats.moments: per-episode moments (count, mean, std, min, max) of segments, merged exactly in any order."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from dask_stats.stats.moments import MomentsByKey, MomentsTable, merge_all


def test_merge_all_equals_whole():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 2, (1000, 3))
    starts = np.arange(0, 1000, 137)
    parts = [m for _, m in MomentsTable.segments(starts, x, starts).rows()]
    total = merge_all(parts)
    np.testing.assert_allclose(total.mean, x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(total.std, x.std(0), rtol=1e-12)
    assert total.samples == 1000


def test_table_rows_follow_the_asked_order_and_split_episodes_merge():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 3, (40, 2))
    starts = np.array([0, 10, 25, 31])
    table = MomentsTable.segments(np.array([3, 1, 3, 2]), x, starts)  # episode 3 in two pieces
    arranged = table.arrange(np.array([1, 2, 3]))
    assert arranged.keys.tolist() == [1, 2, 3] and arranged.samples.tolist() == [15, 9, 16]
    episode3 = np.concatenate([x[0:10], x[25:31]])
    np.testing.assert_allclose(arranged.mean[2], episode3.mean(0), rtol=1e-13)
    np.testing.assert_allclose(arranged.std[2], episode3.std(0), rtol=1e-12)
    assert np.array_equal(arranged.min[2], episode3.min(0)) and np.array_equal(arranged.max[2], episode3.max(0))
    with pytest.raises(KeyError, match=r"\[4\]"):
        table.arrange(np.array([1, 4]))


def test_moments_by_key_fills_rows_in_any_order_merges_split_keys_and_widens_dtypes():
    rng = np.random.default_rng(3)
    x = rng.integers(-1000, 1000, (40, 2))
    starts = np.array([0, 10, 25, 31])
    whole = MomentsTable.segments(np.array([3, 1, 3, 2]), x, starts).arrange(np.array([2, 3, 1]))
    by_key = MomentsByKey(np.array([2, 3, 1]))
    by_key.add(MomentsTable.segments(np.array([3, 2]), x[25:].astype(np.int32), np.array([0, 6])))
    with pytest.raises(KeyError, match=r"\[1\]"):
        by_key.table()
    by_key.add(MomentsTable.segments(np.array([3, 1]), x[:25], np.array([0, 10])))  # episode 3 again: merged
    table = by_key.table()
    assert table.keys.tolist() == [2, 3, 1] and table.min.dtype == np.int64
    for name in ("count", "min", "max", "samples", "nonfinite"):
        assert np.array_equal(getattr(table, name), getattr(whole, name)), name
    np.testing.assert_allclose(table.mean, whole.mean, rtol=1e-13)
    np.testing.assert_allclose(table.m2, whole.m2, rtol=1e-12)
    with pytest.raises(KeyError, match=r"\[7\]"):
        by_key.add(MomentsTable.segments(np.array([7]), x[:3], np.array([0])))


def _exact(values: list[int]) -> tuple[float, float]:
    """Correctly rounded mean and population std of ``values``, from Fractions (std: sqrt of the rounded var)."""
    n = len(values)
    mean = Fraction(sum(values), n)
    var = sum((Fraction(v) - mean) ** 2 for v in values) / n
    return float(mean), math.sqrt(float(var))


@pytest.mark.parametrize("spread", [7, 3 * 10**10])  # int64 fast path; Python integers (a nanosecond clock)
def test_int64_moments_near_2_63_are_exact_per_segment_and_merged(spread):
    rng = np.random.default_rng(4)
    top = np.iinfo(np.int64).max
    x = (top - rng.integers(0, spread, (300, 2))).astype(np.int64)
    x[:, 1] = -x[:, 1] - 1  # the other end: near -2**63
    starts = np.array([0, 50, 51, 170])
    table = MomentsTable.segments(starts, x, starts)
    for row, (start, end) in enumerate(zip(starts, [50, 51, 170, 300])):
        for d in range(2):
            mean, std = _exact([int(v) for v in x[start:end, d]])
            assert table.mean[row, d] == mean
            assert table.std[row, d] == pytest.approx(std, rel=1e-15, abs=1e-300)
    for d in range(2):
        mean, std = _exact([int(v) for v in x[:, d]])
        total = merge_all([m for _, m in table.rows()])
        assert total.mean[d] == mean and total.std[d] == pytest.approx(std, rel=1e-15)
        assert table.total().mean[d] == mean
    assert table.min.dtype == np.int64 and table.min[0].tolist() == x[:50].min(0).tolist()


def test_integer_sums_survive_moments_by_key_and_mixing_with_float_parts():
    x = np.array([[2**62 + 1], [2**62 + 2], [2**62 + 4]], dtype=np.int64)
    by_key = MomentsByKey(np.array([0, 1]))
    by_key.add(MomentsTable.segments(np.array([0]), x[:2], np.array([0])))
    by_key.add(MomentsTable.segments(np.array([1]), x[2:], np.array([0])))
    total = by_key.table().total()
    assert total.mean[0] == float(Fraction(3 * 2**62 + 7, 3)) and total.m2[0] == float(Fraction(14, 3))
    floats = MomentsTable.segments(np.array([2]), np.array([[1.5]]), np.array([0]))
    mixed = MomentsTable.concat([by_key.table(), floats]).total()  # no exact sums: the float merge
    assert mixed.count[0] == 4 and mixed.sums is None


def test_constant_float32_column_merges_to_its_value_and_std_zero():
    x = np.full((1000, 1), 0.5, np.float32)
    starts = np.array([0, 3, 10, 333, 700, 701])
    total = MomentsTable.segments(starts, x, starts).total()
    assert total.mean[0] == 0.5 and total.std[0] == 0.0
    assert merge_all([m for _, m in MomentsTable.segments(starts, x, starts).rows()]).mean[0] == 0.5
    y = np.full((100, 1), 0.1)  # 0.1 is inexact in binary: merging equal means still gives that very mean
    assert MomentsTable.segments(np.arange(7), y, np.array([0, 1, 13, 40, 41, 77, 98])).total().mean[0] == 0.1
