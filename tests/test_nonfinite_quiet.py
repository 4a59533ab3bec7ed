"""Features holding NaN/inf: no numpy RuntimeWarning reaches the user (the nonfinite rows are named by our own
warning), and ``--quiet`` still prints warnings (README: "errors and warnings still print")."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import FAST

import dask_stats
from dask_stats import cli
from dask_stats.stats.moments import MomentsTable
from dask_stats.stats.records import episode_records
from dask_stats.synthetic import SampleSpec, make_dataset


def _nonfinite_dataset(root):
    """observation.effort: NaN rows in episode 0, +inf and -inf in episode 1; observation.state[0]: +inf everywhere."""
    make_dataset(root, SampleSpec(lengths=[5, 8, 6], cameras={}, write_stats_json=False))
    for number, path in enumerate(sorted((root / "data").rglob("*.parquet"))):
        table = pq.read_table(path)
        for name in ("observation.effort", "observation.state"):
            field = table.schema.field(name)
            rows = table.column(name).to_pylist()
            if name == "observation.state":
                rows = [[float("inf"), *row[1:]] for row in rows]
            elif number == 0:
                rows[1] = [float("nan")] * len(rows[1])
            elif number == 1:
                rows[2], rows[3] = [float("inf")] * len(rows[2]), [float("-inf")] * len(rows[3])
            table = table.set_column(table.schema.get_field_index(name), field, pa.array(rows, field.type))
        pq.write_table(table, path)
    return root


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_moments_records_and_merges_of_nonfinite_values_warn_nothing():
    x = np.array([[np.inf, 1.0], [np.inf, np.nan], [np.inf, np.inf], [np.inf, -np.inf], [np.inf, 2.0]])
    starts = np.array([0, 2, 4])
    table = MomentsTable.segments(starts, x, starts, (0.01, 0.5))
    total = table.total()
    assert total.mean[0] == np.inf and np.isnan(total.mean[1]) and np.isnan(total.std).all()
    records = list(episode_records([0, 2, 4], {"x": table}, {"x": {"dtype": "float64", "shape": [2]}}, (0.5,)))
    assert records[2]["stats"]["x"]["mean"] == [np.inf, 2.0]


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("to", ["v2.1", "v3.0"])
def test_conversions_of_nonfinite_features_warn_only_in_our_words(tmp_path, to):
    root = _nonfinite_dataset(tmp_path / "src")
    result = dask_stats.convert(root, tmp_path / "out", to=to, quantiles=True, **FAST)
    nonfinite = {(w.episode, w.feature) for w in result.warnings if "non-finite" in w.message}
    assert ("observation.effort", 1) in {(f, e) for e, f in nonfinite} and len(nonfinite) == 5


def test_quiet_still_prints_warnings(tmp_path, capsys):
    root = _nonfinite_dataset(tmp_path / "src")
    assert cli.main(["convert", "--root", str(root), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if "non-finite" in line]
    assert len(lines) == 5 and all("[warning]" in line for line in lines)
    assert "Converted" not in captured.out, "the summary stays hidden"
