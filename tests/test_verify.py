"""dask_stats.stats.verify: the computed stats checked against the dataset's meta/stats.json before anything is written.
A mismatch names the episode that deviates most; NaN on both sides verifies, without numpy warnings."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import FAST, SMALL32, data

import dask_stats
from dask_stats.errors import VerificationError


@pytest.fixture
def ds(make_sample, copy_of):
    return copy_of(make_sample(SMALL32))


def test_nan_in_data_and_in_stats_json_verifies_without_numpy_warnings(ds, recwarn):
    table = pq.read_table(data(ds, 0))
    values = table.column("observation.state").combine_chunks().flatten().to_numpy().copy()
    values[1] = np.nan
    width = table.schema.field("observation.state").type.list_size
    pq.write_table(table.set_column(table.schema.get_field_index("observation.state"), "observation.state",
                                    pa.FixedSizeListArray.from_arrays(pa.array(values), width)), data(ds, 0))
    first = dask_stats.convert(ds, tmp := ds.parent / "nan-out", skip_verify=True, **FAST)
    line = json.loads((tmp / "meta/episodes_stats.jsonl").read_text().splitlines()[0])
    assert np.isnan(line["stats"]["observation.state"]["mean"][1])
    stats = json.loads((ds / "meta/stats.json").read_text())
    for stat in ("mean", "std", "min", "max"):  # what a float32 lerobot run wrote for that column: NaN
        stats["observation.state"][stat][1] = float("nan")
    (ds / "meta/stats.json").write_text(json.dumps(stats))
    result = dask_stats.convert(ds, **FAST)
    assert result.verification.checked and not result.verification.failures
    assert any("non-finite" in w.message and w.episode == 0 for w in result.warnings + first.warnings)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in recwarn]


@pytest.mark.parametrize("change, stat, episode", [("shift", "mean", 1), ("spike", "max", 2)])
def test_failed_verification_names_the_episode_that_deviates_most(ds, change, stat, episode):
    table = pq.read_table(data(ds, episode))
    values = table.column("action").combine_chunks().flatten().to_numpy().copy()
    width = table.schema.field("action").type.list_size
    if change == "shift":
        values += np.float32(5.0)  # the whole episode moves: the dataset mean moves
    else:
        values[width * 3] = np.float32(1e3)  # one value beyond the old max
    pq.write_table(table.set_column(table.schema.get_field_index("action"), "action",
                                    pa.FixedSizeListArray.from_arrays(pa.array(values), width)), data(ds, episode))
    with pytest.raises(VerificationError) as failed:
        dask_stats.convert(ds, **FAST)
    [line] = [line for line in str(failed.value).splitlines() if line.startswith("action ")]
    assert "MISMATCH" in line and f"(episode {episode} deviates most)" in line, line
    if change == "spike":
        assert line.split()[1] == "max"
