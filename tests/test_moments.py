"""stats.moments: per-episode moments (count, mean, std, min, max) of segments, merged exactly in any order."""

from __future__ import annotations

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
