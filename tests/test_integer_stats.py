"""Integer features beyond 2**53 (a nanosecond wall clock): ``--to v3.0`` stores their per-episode stats as lerobot
0.6.1 does (float64 lists, count int64) and the dataset's mean and std are exact."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from helpers import FAST

import dask_stats
from dask_stats.synthetic import SampleSpec, make_dataset

CLOCK = "observation.gripper_state"  # the sample's int64 scalar column, rewritten as a nanosecond clock
START = 1_700_000_000_123_456_789


def _clock_dataset(root):
    make_dataset(root, SampleSpec(lengths=[7, 1, 12], cameras={}, write_stats_json=False))
    values = []
    for number, path in enumerate(sorted((root / "data").rglob("*.parquet"))):
        table = pq.read_table(path)
        clock = START + number * 10**12 + np.arange(table.num_rows, dtype=np.int64) * 33_333_333 + number
        table = table.set_column(table.schema.get_field_index(CLOCK), CLOCK, pa.array(clock, pa.int64()))
        pq.write_table(table, path)
        values.append(clock.tolist())
    return values


def test_nanosecond_clock_converts_to_v30_with_lerobot_types_and_exact_moments(tmp_path):
    episodes = _clock_dataset(tmp_path / "src")
    out = tmp_path / "out"
    dask_stats.convert(tmp_path / "src", out, to="v3.0", **FAST)
    table = pq.read_table(next((out / "meta/episodes").rglob("*.parquet")))
    assert table.schema.field(f"stats/{CLOCK}/min").type == pa.list_(pa.float64())
    assert table.schema.field(f"stats/{CLOCK}/count").type == pa.list_(pa.int64())
    rows = table.to_pylist()
    for row, values in zip(rows, episodes):
        assert row[f"stats/{CLOCK}/min"] == [float(min(values))] and row[f"stats/{CLOCK}/max"] == [float(max(values))]
        assert row[f"stats/{CLOCK}/mean"] == [float(Fraction(sum(values), len(values)))]
    every = [v for values in episodes for v in values]
    mean = Fraction(sum(every), len(every))
    std = math.sqrt(float(sum((v - mean) ** 2 for v in every) / len(every)))
    stats = json.loads((out / "meta/stats.json").read_text())[CLOCK]
    assert stats["mean"] == [float(mean)]
    assert math.isclose(stats["std"][0], std, rel_tol=1e-15)
    assert stats["min"] == [min(every)] and stats["max"] == [max(every)], "stats.json keeps the exact integers"
