"""Quantile stats in conversions equal ``np.quantile`` of the exact float64 values, per episode and dataset-wide."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import FAST

import dask_stats
from dask_stats.stats.quantiles import DEFAULT_QUANTILES, quantile_key
from dask_stats.stats.sampling import sample_positions
from dask_stats.synthetic import decode_all

KEYS = [quantile_key(q) for q in DEFAULT_QUANTILES]


def numeric_features(root) -> list[str]:
    info = json.loads((root / "meta/info.json").read_text())
    return [name for name, ft in info["features"].items() if ft["dtype"] not in ("video", "image", "string")]


def episodes(root) -> list[pd.DataFrame]:
    return [pd.read_parquet(p) for p in sorted((root / "data").rglob("*.parquet"))]


def values(frame: pd.DataFrame, feature: str) -> np.ndarray:
    return np.stack([np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in frame[feature]])


@pytest.fixture(scope="module")
def v21_with_quantiles(messy_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("q21") / "out"
    dask_stats.convert(messy_dataset, out, quantiles=True, **FAST)
    return out


def test_episode_quantiles_equal_numpy(messy_dataset, v21_with_quantiles):
    records = [json.loads(line) for line in (v21_with_quantiles / "meta/episodes_stats.jsonl").read_text().splitlines()]
    for record, frame in zip(records, episodes(messy_dataset)):
        for feature in numeric_features(messy_dataset):
            expected = np.quantile(values(frame, feature), DEFAULT_QUANTILES, axis=0)
            for key, row in zip(KEYS, expected):
                np.testing.assert_array_equal(np.ravel(record["stats"][feature][key]), row, err_msg=f"{feature} {key}")


def test_video_episode_quantiles_come_from_the_sampled_frames(messy_dataset, v21_with_quantiles):
    records = [json.loads(line) for line in (v21_with_quantiles / "meta/episodes_stats.jsonl").read_text().splitlines()]
    key = "observation.images.top"
    for record in records:
        ep = record["episode_index"]
        frames = decode_all(messy_dataset / f"videos/chunk-{ep // 2:03d}/{key}/episode_{ep:06d}.mp4")
        sampled = frames[sample_positions(len(frames))].reshape(-1, 3).astype(np.float64) / 255
        expected = np.quantile(sampled, DEFAULT_QUANTILES, axis=0)
        got = np.array([np.ravel(record["stats"][key][k]) for k in KEYS])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_dataset_quantiles_are_true_quantiles_not_averages(messy_dataset, tmp_path):
    out = tmp_path / "v30"
    dask_stats.convert(messy_dataset, out, to="v3.0", **FAST)  # quantiles on by default for v3.0
    stats = json.loads((out / "meta/stats.json").read_text())
    frames = pd.concat(episodes(messy_dataset), ignore_index=True)
    for feature in numeric_features(messy_dataset):
        expected = np.quantile(values(frames, feature), DEFAULT_QUANTILES, axis=0)
        for key, row in zip(KEYS, expected):
            np.testing.assert_array_equal(np.ravel(stats[feature][key]), row, err_msg=f"{feature} {key}")


def test_a_quantile_that_is_not_a_whole_percent_is_refused(messy_dataset, tmp_path):
    with pytest.raises(dask_stats.DatasetError, match="whole percents"):
        dask_stats.convert(messy_dataset, tmp_path / "out", quantiles="0.015", **FAST)
    assert not (tmp_path / "out").exists()


def test_nan_policy_follows_numpy(messy_dataset, tmp_path):
    """A dimension holding NaN gets NaN quantiles (per episode and dataset-wide); the other dimensions are exact."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "ds"
    shutil.copytree(messy_dataset, root)
    path = sorted((root / "data").rglob("*.parquet"))[1]
    table = pq.read_table(path)
    state = table.column("observation.state").to_pylist()
    state[5] = [float("nan")] + state[5][1:]
    column = pa.array(state, type=table.schema.field("observation.state").type)
    pq.write_table(table.set_column(table.column_names.index("observation.state"), "observation.state", column), path)
    out = tmp_path / "out"
    dask_stats.convert(root, out, to="v3.0", skip_verify=True, **FAST)
    stats = json.loads((out / "meta/stats.json").read_text())
    frames = pd.concat(episodes(root), ignore_index=True)
    expected = np.quantile(values(frames, "observation.state"), DEFAULT_QUANTILES, axis=0)
    for key, row in zip(KEYS, expected):
        got = np.array(stats["observation.state"][key], dtype=float)
        assert np.isnan(got[0]) and np.isnan(row[0])
        np.testing.assert_array_equal(got[1:], row[1:])
