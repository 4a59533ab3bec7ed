"""Unit tests of the exact arithmetic and the sampling rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dask_stats import numeric
from dask_stats.moments import MomentsTable, merge_all
from dask_stats.pixels import PixelHistogram
from dask_stats.sampling import sample_positions
from dask_stats.sampling import FrameLookupError, locate_frames


@pytest.mark.parametrize("length,count", [(1, 1), (99, 99), (100, 100), (470, 100), (471, 101), (1000, 177),
                                          (2000, 299), (5000, 594), (10000, 1000), (20000, 1681), (215444, 10000)])
def test_sample_counts_follow_reference(length, count):
    assert len(sample_positions(length)) == count


def test_sample_positions_round_half_to_even():
    assert sample_positions(471)[15] == 70  # 70.5 -> 70 (half-up would give 71)
    assert sample_positions(1).tolist() == [0]


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=6), dim=st.integers(1, 4),
       dtype=st.sampled_from(["float32", "float64", "int64", "bool"]), cut=st.integers(0, 240),
       seed=st.integers(0, 99))
def test_partitions_split_anywhere_merge_to_the_float64_reference(lengths, dim, dtype, cut, seed):
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 100, (sum(lengths), dim)) if dtype != "bool" else rng.integers(0, 2, (sum(lengths), dim))
    x = raw.astype(dtype)
    episodes = np.repeat(np.arange(len(lengths)), lengths)
    table = pa.table({"v": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), dim),
                      numeric.EPISODE: pa.array(episodes)})
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    cut = cut % (len(x) + 1)
    features = {"v": {"dtype": dtype, "shape": [dim]}}
    parts = [numeric.partition_moments(part, features, ["v"], [], {}) for part in (frame.iloc[:cut], frame.iloc[cut:])]
    merged = numeric.episode_tables(parts, np.arange(len(lengths)))["v"].rows()
    start = 0
    for ep, length in enumerate(lengths):
        seg, start = x[start:start + length], start + length
        assert merged[ep][0] == ep
        got = merged[ep][1]
        assert got.samples == length
        np.testing.assert_allclose(got.mean, seg.astype(np.float64).mean(0), rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(got.std, seg.astype(np.float64).std(0), rtol=1e-9, atol=1e-9)
        assert np.array_equal(got.min, seg.min(0)) and np.array_equal(got.max, seg.max(0))
        assert got.min.dtype == x.dtype


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


def test_locate_frames_nearest_within_tolerance():
    times = np.arange(10) / 30
    positions = np.array([0, 4, 9])
    assert locate_frames(times, positions, times[positions] + 5e-5, 1e-4).tolist() == [0, 4, 9]
    with pytest.raises(FrameLookupError, match="row 9 at t=0.350000 s, nearest frame at 0.300000") as info:
        locate_frames(times, positions, np.array([0, 4, 10.5]) / 30, 1e-4)
    assert "--frame-lookup index" in info.value.fix
    assert locate_frames(times, positions, None, 1e-4).tolist() == [0, 4, 9]
    with pytest.raises(FrameLookupError, match="has 10 frames but row 12"):
        locate_frames(times, np.array([0, 12]), None, 1e-4)


@settings(max_examples=8, deadline=None)
@given(lengths=st.lists(st.integers(1, 130), min_size=1, max_size=4), state_dim=st.integers(1, 5),
       fixed=st.booleans(), float64=st.booleans(), camera=st.booleans(), seed=st.integers(0, 1000))
def test_random_datasets_convert_to_the_float64_reference(tmp_path_factory, lengths, state_dim, fixed, float64,
                                                          camera, seed):
    """Property: whatever the episode lengths, vector sizes, list layouts and dtypes, every stat of a full
    conversion equals the straightforward float64 computation."""
    from test_convert import FAST, assert_matches_reference

    import dask_stats
    from dask_stats.sample import Camera, SampleSpec, make_dataset

    root = tmp_path_factory.mktemp("prop") / "ds"
    spec = SampleSpec(lengths=lengths, state_dim=state_dim, fixed_size_lists=fixed, float64_vector=float64,
                      cameras={"observation.images.top": Camera(16, 16)} if camera else {}, seed=seed,
                      chunks_size=2)
    make_dataset(root, spec)
    dask_stats.convert(root, root.parent / "out", **FAST)
    assert_matches_reference(root, root.parent / "out")
