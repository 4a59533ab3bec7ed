"""engine.numeric: the moments of Parquet features, partition by partition (an episode split across partitions
merges exactly), and a partition that fails names its episode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import FAST, SMALL32, data
from hypothesis import given, settings
from hypothesis import strategies as st

import dask_stats
from dask_stats.engine import numeric
from dask_stats.errors import TaskError
from dask_stats.stats.moments import MomentsByKey


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
    by_key = MomentsByKey(np.arange(len(lengths)))
    for part in parts:
        if part:
            by_key.add(part["v"])
    merged = by_key.table().rows()
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


def test_a_failing_partition_names_the_episode_that_fails(make_sample, copy_of, tmp_path):
    ds = copy_of(make_sample(SMALL32))
    table = pq.read_table(data(ds, 2))
    values = table.column("action").to_pylist()
    values[3] = None
    pq.write_table(table.set_column(table.schema.get_field_index("action"), "action",
                                    pa.array(values, type=table.schema.field("action").type)), data(ds, 2))
    with pytest.raises(TaskError) as info:  # the preflight predicts it (test_check); the task names it too
        dask_stats.convert(ds, tmp_path / "out", skip_check=True, **FAST)
    [problem] = info.value.problems
    assert problem.episode == 2 and problem.feature == "action" and problem.path.endswith("episode_000002.parquet")
    assert not problem.transient
