"""stats.records: stats records in the reference shapes, made a chunk of episodes at a time, and their text."""

from __future__ import annotations

import io
import json

import jsonlines
import numpy as np

from dask_stats.stats.moments import MomentsTable
from dask_stats.stats.records import CHUNK, episode_records, jsonl_text


def test_records_are_made_in_chunks_and_written_as_one_jsonl_text():
    n = 2 * CHUNK + 7
    rng = np.random.default_rng(0)
    values = rng.normal(size=(n * 3, 2))
    starts = np.arange(0, n * 3, 3)
    table = MomentsTable.segments(np.arange(n), values, starts, qs=(0.5,))
    features = {"action": {"dtype": "float64", "shape": [2]}}
    records = episode_records(list(range(n)), {"action": table}, features, (0.5,))
    first, again = list(records), list(records)  # iterable more than once
    assert len(first) == len(records) == n and first == again
    assert [r["episode_index"] for r in first] == list(range(n))
    last = first[-1]["stats"]["action"]
    np.testing.assert_allclose(last["mean"], values[-3:].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(last["q50"], np.quantile(values[-3:], 0.5, axis=0), rtol=1e-12)
    assert last["count"] == [3]
    expected = io.StringIO()
    jsonlines.Writer(expected).write_all(first)
    pieces = list(jsonl_text(records))
    assert len(pieces) > 2 and "".join(pieces) == expected.getvalue()
    assert json.loads("".join(pieces).splitlines()[CHUNK])["episode_index"] == CHUNK
