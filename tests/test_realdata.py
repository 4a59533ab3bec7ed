"""End to end on a real dataset (NVIDIA's GR00T pick-and-place demo, found by helpers.require_realdata:
$DASK_STATS_REALDATA or ../shared/realdata): its quirks need flags, and errors say which."""

from __future__ import annotations

import json

import pytest
from float64_reference import assert_matches_reference
from helpers import FAST, REALDATA, require_realdata, tree_digest

import dask_stats
from dask_stats.errors import DatasetError


@pytest.fixture(autouse=True)
def _needs_realdata():
    require_realdata()


def test_declared_video_without_files_names_feature_and_flag(tmp_path):
    with pytest.raises(DatasetError) as info:
        dask_stats.convert(REALDATA, tmp_path / "out", **FAST)
    message = str(info.value)
    assert "observation.images.egoview" in message and "no video files" in message
    assert "--exclude-features observation.images.egoview" in message
    assert "episode_000000.mp4" in message


def test_offset_timestamps_name_episode_file_and_flag(tmp_path):
    with pytest.raises(DatasetError) as info:
        dask_stats.convert(REALDATA, tmp_path / "out", exclude_features=("observation.images.egoview",), **FAST)
    problems = info.value.problems
    assert sorted(p.episode for p in problems) == [0, 1, 2, 3, 4]
    assert all(p.feature == "observation.images.ego_view" and p.path.endswith(".mp4") for p in problems)
    assert "--frame-lookup index" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_converts_with_the_flags_its_quirks_need(tmp_path):
    before = tree_digest(REALDATA)
    out = tmp_path / "out"
    result = dask_stats.convert(REALDATA, out, exclude_features=("observation.images.egoview",),
                                frame_lookup="index", **FAST)
    assert tree_digest(REALDATA) == before
    assert result.episodes == 5 and result.frames == 2096
    assert result.verification.checked and not result.verification.failures and not result.verification.warnings
    assert_matches_reference(out, out, by_index=True, exclude=("observation.images.egoview",))
    records = [json.loads(line) for line in (out / "meta/episodes_stats.jsonl").read_text().splitlines()]
    assert "frame_index" not in records[0]["stats"]  # not declared in this dataset
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v2.1" and info["total_chunks"] == 0  # quirks left as they were


def test_converts_to_v30_that_lerobot_can_look_up_and_with_exact_quantiles(tmp_path):
    """Its timestamps start one frame late: v3.0's from_timestamp absorbs that offset, so that the frames are found at
    from_timestamp + timestamp (what lerobot does); its quantiles are np.quantile of its Parquet columns."""
    import numpy as np
    import pandas as pd

    from dask_stats.stats.quantiles import DEFAULT_QUANTILES, quantile_key

    out = tmp_path / "v30"
    dask_stats.convert(REALDATA, out, to="v3.0", exclude_features=("observation.images.egoview",),
                       frame_lookup="index", **FAST)
    info = json.loads((out / "meta/info.json").read_text())
    assert "observation.images.egoview" not in info["features"], "a camera without files is not declared"
    assert [p for p in dask_stats.check(out) if p.severity != "info"] == [], "frames found by timestamp"
    stats = json.loads((out / "meta/stats.json").read_text())
    rows = pd.concat([pd.read_parquet(p) for p in sorted((REALDATA / "data").rglob("*.parquet"))])
    for feature in ("observation.state", "action"):
        values = np.stack([np.asarray(v, dtype=np.float64) for v in rows[feature]])
        for q, expected in zip(DEFAULT_QUANTILES, np.quantile(values, DEFAULT_QUANTILES, axis=0)):
            np.testing.assert_array_equal(np.asarray(stats[feature][quantile_key(q)]), expected)


PIPER = REALDATA.parent / "piper_act_v30"
CAMERAS = ("observation.images.front", "observation.images.wrist")


@pytest.mark.skipif(not PIPER.is_dir(), reason=f"real dataset not present at {PIPER}")
def test_piper_recompute_verifies_and_its_report_flags_the_published_quantiles(tmp_path):
    """A lerobot-merged v3.0 dataset whose videos were never published: check names the cameras and the flag, the
    recompute verifies without --skip-check/--skip-verify, keeps the cameras' stats and reports the averaged q01/q99."""
    import shutil

    root = tmp_path / "piper"
    shutil.copytree(PIPER, root)
    absent = [p for p in dask_stats.check(root) if p.severity == "error"]
    assert {p.feature for p in absent} == set(CAMERAS) and all("--exclude-features" in p.fix for p in absent)
    before = tree_digest(root)
    report = dask_stats.doctor(root, exclude_features=CAMERAS, **FAST)
    assert tree_digest(root) == before, "the doctor writes nothing"
    flagged = {(r.feature, r.stat) for r in report.dangerous if r.episode is None}
    assert {("action", "q01"), ("action", "q99"), ("index", "q99")} <= flagged and report.exit_status == 1
    cameras = {k: v for k, v in json.loads((root / "meta/stats.json").read_text()).items() if k in CAMERAS}
    result = dask_stats.convert(root, force=True, exclude_features=CAMERAS, **FAST)
    assert result.verification.checked and not result.verification.failures
    assert "published stats were wrong" in result.summary()
    after = json.loads((root / "meta/stats.json").read_text())
    assert {k: after[k] for k in CAMERAS} == cameras
    assert dask_stats.doctor(root, exclude_features=CAMERAS, **FAST).rows == []
