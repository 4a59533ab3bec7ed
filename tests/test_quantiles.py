"""Exact quantiles against np.quantile on the same float64 values (bit for bit; -0.0 == 0.0)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dask_stats.stats.pixels import PixelHistogram
from dask_stats.stats.quantiles import (
    DEFAULT_QUANTILES,
    DatasetQuantiles,
    dataset_quantiles,
    float_keys,
    histogram_quantiles,
    key_values,
    merge,
    parse_quantiles,
    partition_pass,
    quantile_key,
    segment_quantiles,
)
from dask_stats.stats.records import quantile_stats

QS = DEFAULT_QUANTILES
MANY_QS = tuple(p / 100 for p in range(1, 100))
SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324, -1.7976931348623157e308])


def reference(x: np.ndarray, qs=QS) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's own inf - inf
        return np.quantile(np.asarray(x).astype(np.float64), qs, axis=0)


def make_values(rng, rows: int, dims: int, kind: str, specials: float) -> np.ndarray:
    """(rows, dims) test data of one kind, with a fraction ``specials`` of NaN/inf/-0.0/extremes (floats)."""
    if kind == "bool":
        return rng.integers(0, 2, (rows, dims)).astype(bool)
    if kind == "int64":
        return rng.integers(-(2**62), 2**62, (rows, dims))  # beyond 2**53: rounded to float64
    if kind == "int8":
        return rng.integers(-3, 4, (rows, dims)).astype(np.int8)  # many duplicates
    x = {"normal": lambda: rng.normal(0, 100, (rows, dims)),
         "cauchy": lambda: rng.standard_cauchy((rows, dims)) * 10.0 ** rng.integers(-300, 300, (rows, dims)),
         "duplicates": lambda: rng.integers(0, 3, (rows, dims)) * 0.1,
         "float32": lambda: rng.normal(0, 1, (rows, dims)).astype(np.float32)}[kind]()
    special = rng.random((rows, dims)) < specials
    with np.errstate(over="ignore"):  # the float64 extremes become float32 infinities
        x[special] = SPECIALS[rng.integers(0, len(SPECIALS), special.sum())].astype(x.dtype)
    return x


KINDS = st.sampled_from(["normal", "cauchy", "duplicates", "float32", "bool", "int64", "int8"])


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)  # NaN == NaN and -0.0 == 0.0 here, nothing else


# ---------------------------------------------------------------- parse_quantiles / keys / shapes

@pytest.mark.parametrize("spec,expected", [
    ("0.02,0.98", (0.02, 0.98)),
    (" 0.98 , 0.02,0.5,0.50", (0.02, 0.5, 0.98)),
    ("0.1", (0.1,)),
    ("0.01,0.10,0.50,0.90,0.99", QS),
    ([0.99, 0.01, 0.01], (0.01, 0.99)),
    ((0.29, np.float64(0.57)), (0.29, 0.57)),
    ([0.1 + 0.2], (0.3,)),  # 0.30000000000000004: a whole percent up to float rounding
])
def test_parse_accepts_whole_percents(spec, expected):
    assert parse_quantiles(spec) == expected


@pytest.mark.parametrize("spec", ["0.015", "1.5", "abc", "0", "1", "0.0", "1.0", "-0.5", "nan", "inf", "",
                                  "0.5,", "50", [0.0], [1.0], [0.005], [None], [0.5, 2]])
def test_parse_refuses_everything_else(spec):
    with pytest.raises(ValueError, match="between 0.01 and 0.99"):
        parse_quantiles(spec)


def test_keys_are_lerobots_names_without_its_truncation():
    assert [quantile_key(q) for q in QS] == ["q01", "q10", "q50", "q90", "q99"]
    assert quantile_key(0.29) == "q29"  # int(0.29 * 100) would give 28
    assert [quantile_key(q) for q in parse_quantiles("0.02,0.98")] == ["q02", "q98"]


def test_stats_take_output_shapes():
    values = np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3)  # two episodes
    vector = quantile_stats(values, QS, {"dtype": "float32", "shape": [3]})
    assert list(vector) == ["q01", "q10", "q50", "q90", "q99"]
    assert vector["q50"].shape == (2, 3) and vector["q50"].tolist() == values[:, 2].tolist()
    pixels = quantile_stats(values[0], QS, {"dtype": "video", "shape": [480, 640, 3]})
    assert pixels["q99"].shape == (3, 1, 1) and pixels["q99"].ravel().tolist() == values[0, 4].tolist()
    scalar = quantile_stats(values[:, :, :1], QS, {"dtype": "int64", "shape": [1]})
    assert scalar["q01"].shape == (2, 1)
    assert quantile_stats(values[0, :, :1], QS, {"dtype": "bool", "shape": None})["q10"].shape == (1,)


# ---------------------------------------------------------------- keys

def test_keys_order_like_the_floats_and_invert():
    x = np.concatenate([SPECIALS[1:], np.random.default_rng(0).standard_cauchy(1000), [np.nextafter(0, 1)]])
    keys = float_keys(x)
    order = np.argsort(keys, kind="stable")
    assert (np.diff(x[order]) >= 0).all()
    assert key_values(keys).tobytes() == x.tobytes()  # -0.0 stays -0.0
    assert float_keys(np.array([np.nan, -np.nan]))[0] == float_keys(np.array([-np.nan]))[0] == 2**64 - 1


# ---------------------------------------------------------------- episodes (segments)

@settings(max_examples=80, deadline=None)
@given(lengths=st.lists(st.integers(1, 60), min_size=1, max_size=8), dims=st.integers(1, 4), kind=KINDS,
       specials=st.sampled_from([0.0, 0.02, 0.3]), seed=st.integers(0, 2**32 - 1))
def test_segments_equal_np_quantile_per_segment(lengths, dims, kind, specials, seed):
    x = make_values(np.random.default_rng(seed), sum(lengths), dims, kind, specials)
    starts = np.cumsum([0] + lengths[:-1])
    expected = np.stack([reference(part, MANY_QS) for part in np.split(x, starts[1:])])
    assert_same(segment_quantiles(x, starts, MANY_QS), expected)


def test_segments_edge_cases():
    x = np.array([[7.0, np.nan], [7.0, 1.0], [7.0, 2.0], [np.inf, 3.0], [-np.inf, np.inf], [2.0, -0.0]])
    starts = np.array([0, 3, 4, 5])  # constant + NaN, one row with inf, -inf/inf, one row
    out = segment_quantiles(x, starts, QS)
    assert out.shape == (4, 5, 2)
    assert (out[0, :, 0] == 7.0).all() and np.isnan(out[0, :, 1]).all()
    assert np.isnan(out[1, :, 0]).all() and (out[1, :, 1] == 3.0).all()  # a single inf: NaN, as numpy
    assert (out[3] == [2.0, 0.0]).all()
    assert_same(out, np.stack([reference(p) for p in np.split(x, starts[1:])]))
    assert_same(segment_quantiles(np.arange(5), [0, 2], [0.5]), np.array([[[0.5]], [[3.0]]]))  # 1-D x
    assert segment_quantiles(np.zeros((0, 3)), np.zeros(0, np.int64), QS).shape == (0, 5, 3)


def test_segments_many_episodes_quickly():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 400, 2000)
    x = rng.normal(size=(lengths.sum(), 7)).astype(np.float32)
    starts = np.cumsum(np.r_[0, lengths[:-1]])
    out = segment_quantiles(x, starts, QS)
    for i in rng.choice(len(starts), 50, replace=False):
        assert_same(out[i], reference(x[starts[i]:starts[i] + lengths[i]]))


# ---------------------------------------------------------------- pixels

def test_pixel_histograms_equal_np_quantile_of_frames_over_255():
    rng = np.random.default_rng(2)
    episodes = [rng.integers(0, 256, (rng.integers(1, 5), 12, 17, 3), dtype=np.uint8) for _ in range(4)]
    episodes[1][..., 2] = 200  # a constant channel
    episodes[2][..., 0] = rng.integers(0, 2, episodes[2].shape[:3]) * 255  # only 0 and 255
    histograms = []
    for frames in episodes:
        accumulator = PixelHistogram(3)
        for frame in frames:
            accumulator.add(frame)
        histograms.append(accumulator.hist)
        assert_same(histogram_quantiles(accumulator.hist, MANY_QS),
                    reference(frames.reshape(-1, 3) / 255, MANY_QS))
    everything = np.concatenate([frames.reshape(-1, 3) for frames in episodes]) / 255
    assert_same(histogram_quantiles(sum(histograms), QS), reference(everything))  # dataset: summed histograms


def test_pixel_histogram_edge_cases():
    single = np.zeros((1, 256), np.int64)
    single[0, 37] = 1
    assert (histogram_quantiles(single, QS) == 37 / 255).all()
    assert np.isnan(histogram_quantiles(np.zeros((2, 256), np.int64), QS)).all()  # no pixels: NaN
    assert histogram_quantiles(np.ones((4, 256), np.int64), QS).shape == (5, 4)


# ---------------------------------------------------------------- dataset (multi-pass over partitions)

def run_passes(partitions, qs, dims, budget):
    """``dataset_quantiles``, also checking every pass's bounds and that results pickle and merge in any tree."""
    state = DatasetQuantiles(qs, dims, budget)
    while not state.done:
        request = pickle.loads(pickle.dumps(state.request()))
        assert len(request.dims) <= dims * 2 * len(qs) and request.levels.max() < 4
        parts = [pickle.loads(pickle.dumps(partition_pass(request, x))) for x in partitions]
        flat = merge(parts)
        tree = merge([merge(parts[:len(parts) // 2]), merge(parts[len(parts) // 2:])])
        for name in ("bins", "counts"):
            assert np.array_equal(getattr(flat, name), getattr(tree, name))
        assert len(flat.keys) <= budget and len(flat.bins) <= len(request.dims) << 16
        state.absorb(tree)
        assert state.passes <= 4
    return state


@settings(max_examples=80, deadline=None)
@given(rows=st.integers(1, 400), dims=st.integers(1, 3), kind=KINDS, specials=st.sampled_from([0.0, 0.01, 0.3]),
       budget=st.sampled_from([0, 1, 7, 50, 10**9]), cuts=st.lists(st.integers(0, 400), max_size=6),
       seed=st.integers(0, 2**32 - 1))
def test_dataset_equals_np_quantile_over_all_rows(rows, dims, kind, specials, budget, cuts, seed):
    x = make_values(np.random.default_rng(seed), rows, dims, kind, specials)
    partitions = np.split(x, sorted(min(c, rows) for c in cuts))  # some partitions may be empty
    state = run_passes(partitions, MANY_QS, dims, budget)
    assert_same(state.result(), reference(x, MANY_QS))


@pytest.mark.parametrize("budget,passes", [(0, 4), (1000, 4), (3000, 3), (10**9, 2)])
def test_heavy_tails_take_every_pass_and_stay_exact(budget, passes):
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_cauchy((3000, 2)), rng.normal(1.0, 1e-9, (3000, 2))])  # a dense cluster
    x[rng.integers(0, 6000, 40), 1] = np.inf
    x = rng.permutation(x)
    state = run_passes(np.array_split(x, 9), QS, 2, budget)
    assert state.passes == passes
    assert_same(state.result(), reference(x))


def test_dataset_edge_cases():
    assert_same(dataset_quantiles([np.full((5, 2), 3.5)], QS, 2), np.full((5, 2), 3.5))  # constant
    assert_same(dataset_quantiles([np.zeros((0, 2)), np.array([[1.0, -2.0]]), np.zeros((0, 2))], QS, 2),
                np.tile([1.0, -2.0], (5, 1)))  # one row, empty partitions around it
    x = np.array([[np.nan, 1.0], [2.0, np.inf], [3.0, np.inf]])
    out = dataset_quantiles(np.split(x, [1, 1, 2]), MANY_QS, 2, budget=0)
    assert np.isnan(out[:, 0]).all()  # a NaN anywhere in the dimension
    assert_same(out, reference(x, MANY_QS))  # [1, inf, inf]: inf and NaN as numpy's interpolation gives
    assert_same(dataset_quantiles([np.array([[-0.0], [0.0], [-0.0]])], QS, 1, budget=0), np.zeros((5, 1)))
    assert np.isnan(dataset_quantiles([np.zeros((0, 3))], QS, 3)).all()  # no rows at all: NaN
    big = np.array([[2**62 + 1], [2**62 + 3], [-(2**63)], [2**63 - 1]], dtype=np.int64)
    assert_same(dataset_quantiles(np.split(big, 2), MANY_QS, 1, budget=0), reference(big, MANY_QS))
    flags = np.array([[True], [False], [False], [True], [True]])
    assert_same(dataset_quantiles([flags[:2], flags[2:]], MANY_QS, 1), reference(flags, MANY_QS))


def test_passes_must_alternate():
    state = DatasetQuantiles(QS, 1)
    with pytest.raises(RuntimeError):
        state.absorb(merge([]))
    with pytest.raises(RuntimeError):
        state.result()


def test_a_larger_dataset_in_several_passes():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(0, 1, (150_000, 7)), rng.integers(0, 2, (150_000, 7))])  # half duplicates
    x = rng.permutation(x).astype(np.float32)
    state = run_passes(np.array_split(x, 6), QS, 7, budget=2000)
    assert state.passes >= 3
    assert_same(state.result(), reference(x))
