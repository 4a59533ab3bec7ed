"""``--video-stats reuse``: a v2.1 source's per-episode video stats carried over to v3.0 after checking them, the
numeric stats (and every quantile) computed exactly, the output otherwise that of the recompute."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import FAST, tree_digest

import dask_stats
from dask_stats.engine import tasks
from dask_stats.formats.v30.reader import read_episode_stats

CAMERA = "observation.images.top"


@pytest.fixture(scope="module")
def v21(messy_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("reuse-v21") / "ds"
    dask_stats.convert(messy_dataset, out, **FAST)
    return out


@pytest.fixture(scope="module")
def recomputed(v21, tmp_path_factory):
    out = tmp_path_factory.mktemp("recomputed") / "out"
    dask_stats.convert(v21, out, to="v3.0", **FAST)
    return out


def test_reuse_decodes_nothing_and_matches_the_recompute(v21, recomputed, tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "video_tasks", lambda *a: pytest.fail("a video was decoded"))
    out = tmp_path / "out"
    result = dask_stats.convert(v21, out, to="v3.0", video_stats="reuse", **FAST)
    assert "video stats carried over from the source" in result.summary() and CAMERA in result.summary()
    for folder in ("data", "videos"):
        assert tree_digest(out / folder) == tree_digest(recomputed / folder)
    info = json.loads((v21 / "meta/info.json").read_text())
    cameras = {name for name, feature in info["features"].items() if feature["dtype"] == "video"}
    assert CAMERA in cameras
    ours, theirs = read_episode_stats(str(out)), read_episode_stats(str(recomputed))
    published = {json.loads(line)["episode_index"]: json.loads(line)["stats"]
                 for line in (v21 / "meta/episodes_stats.jsonl").read_text().splitlines()}
    assert ours.keys() == theirs.keys()
    for episode, features in theirs.items():
        for feature, stats in features.items():
            for stat, value in stats.items():
                if feature in cameras and stat.startswith("q"):
                    assert stat not in ours[episode][feature]  # the source publishes no video quantiles
                elif feature in cameras:  # carried: the source's numbers
                    np.testing.assert_allclose(np.ravel(ours[episode][feature][stat]),
                                               np.ravel(published[episode][feature][stat]), rtol=1e-15, atol=0)
                else:
                    assert np.array_equal(ours[episode][feature][stat], value, equal_nan=True), (episode, feature)
    mine, reference = (json.loads((root / "meta/stats.json").read_text()) for root in (out, recomputed))
    for feature, stats in reference.items():
        for stat, value in stats.items():
            if feature not in cameras:
                assert mine[feature][stat] == value, (feature, stat)
    assert "q50" not in mine[CAMERA] and "q50" in mine["observation.state"]


def edit_published(root, change) -> None:
    path = root / "meta/episodes_stats.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    change(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize("change, message", [
    (lambda records: records[1]["stats"].pop(CAMERA), "no published video stats"),
    (lambda records: records[2]["stats"][CAMERA].update(max=[[[1.5]], [[1.0]], [[1.0]]]), "not within"),
    (lambda records: records[2]["stats"][CAMERA].update(mean=[0.5, 0.5, 0.5]), "shape"),
    (lambda records: records[0]["stats"][CAMERA].update(count=[10**6]), "exceeds"),
    (lambda records: records.pop(), "no published video stats"),
])
def test_published_stats_are_checked_before_they_are_carried(v21, tmp_path, change, message):
    root = tmp_path / "ds"
    shutil.copytree(v21, root)
    edit_published(root, change)
    with pytest.raises(dask_stats.DatasetError, match=message) as raised:
        dask_stats.convert(root, tmp_path / "out", to="v3.0", video_stats="reuse", **FAST)
    assert any(p.feature == CAMERA and p.episode is not None for p in raised.value.problems)
    assert not (tmp_path / "out").exists()


def test_a_source_without_published_stats_is_refused(messy_dataset, tmp_path):
    with pytest.raises(dask_stats.DatasetError, match="needs the per-episode video stats"):
        dask_stats.convert(messy_dataset, tmp_path / "out", to="v3.0", video_stats="reuse", **FAST)
    assert not (tmp_path / "out").exists()
