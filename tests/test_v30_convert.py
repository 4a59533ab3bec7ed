"""``convert --to v3.0``: a v2.0 dataset becomes a complete v3.0 dataset whose frames and stats are exact."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import FAST, tree_digest

import dask_stats
from dask_stats.formats.v30.reader import read_dataset, read_episode_stats
from dask_stats.synthetic import decode_all
from dask_stats.video.remux import output_packets

TINY = {"data_file_size_in_mb": 0.01, "video_file_size_in_mb": 0.01}


@pytest.fixture(scope="module")
def v21(messy_dataset, tmp_path_factory):
    """The same dataset converted to v2.1: its per-episode stats are the reference for the v3.0 ones."""
    out = tmp_path_factory.mktemp("v21") / "out"
    dask_stats.convert(messy_dataset, out, **FAST)
    return out


@pytest.fixture(scope="module")
def v30(messy_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("v30") / "out"
    before = tree_digest(messy_dataset)
    result = dask_stats.convert(messy_dataset, out, to="v3.0", **TINY, **FAST)
    assert tree_digest(messy_dataset) == before, "the source is never modified"
    assert result.format == "v3.0"
    return out


def test_layout_rolls_over_and_reads_back(messy_dataset, v30):
    dataset = read_dataset(str(v30))
    info = dataset.info
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 5 and info["total_frames"] == 228
    assert len({ep.data_path for ep in dataset.episodes}) > 1, "tiny limits: several data files"
    assert [ep.dataset_from_index for ep in dataset.episodes] == [0, 30, 170, 171, 216]
    assert (v30 / "meta/tasks.parquet").exists() and not (v30 / "meta/episodes.jsonl").exists()
    assert all(isinstance(task, str) for task in pd.read_parquet(v30 / "meta/tasks.parquet").index)


def test_data_rows_keep_their_values_and_index_is_global(messy_dataset, v30):
    new = pd.concat([pd.read_parquet(p) for p in sorted((v30 / "data").rglob("*.parquet"))], ignore_index=True)
    old = pd.concat([pd.read_parquet(p) for p in sorted((messy_dataset / "data").rglob("*.parquet"))],
                    ignore_index=True)
    assert new["index"].tolist() == list(range(len(old)))
    for column in ("timestamp", "frame_index", "episode_index", "task_index"):
        assert new[column].tolist() == old[column].tolist()
    schema = pq.read_schema(sorted((v30 / "data").rglob("*.parquet"))[0])
    assert b"huggingface" in schema.metadata, "image columns keep their Hugging Face feature metadata"


def decode_timed(path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of a video and its presentation time (s)."""
    import av

    with av.open(str(path)) as container:
        frames = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return np.array([t for t, _ in frames]), np.stack([f for _, f in frames])


def test_every_frame_is_where_the_metadata_says(messy_dataset, v30):
    dataset = read_dataset(str(v30))
    fps = dataset.info["fps"]
    for key in dataset.video_keys:
        for ep in dataset.episodes:
            ref = ep.videos[key]
            times, frames = decode_timed(v30 / ref.path)
            source = decode_all(messy_dataset / f"videos/chunk-{ep.index // 2:03d}/{key}/episode_{ep.index:06d}.mp4")
            for k in range(ep.length):  # every row's frame at from_timestamp + k / fps, exactly the source's
                [at] = np.flatnonzero(np.abs(times - (ref.from_timestamp + k / fps)) < 1e-4)
                assert np.array_equal(frames[at], source[k]), (key, ep.index, k)
        for path in {ep.videos[key].path for ep in dataset.episodes}:
            dts = [d for _, d in output_packets(v30 / path)]
            assert dts == sorted(set(dts)), "DTS strictly increasing"


def test_episode_stats_equal_the_v21_conversion(v21, v30):
    ours = read_episode_stats(str(v30))
    reference = [json.loads(line) for line in (v21 / "meta/episodes_stats.jsonl").read_text().splitlines()]
    for record in reference:
        for feature, stats in record["stats"].items():
            for stat, value in stats.items():
                np.testing.assert_allclose(np.asarray(ours[record["episode_index"]][feature][stat], dtype=float),
                                           np.asarray(value, dtype=float), rtol=0, atol=0, err_msg=f"{feature}.{stat}")
    stats = json.loads((v30 / "meta/stats.json").read_text())
    assert {"min", "max", "mean", "std", "count", "q01", "q99"} <= set(stats["action"])


def test_in_place_keeps_the_old_tree_beside(messy_dataset, copy_of):
    root = copy_of(messy_dataset)
    before = tree_digest(root)
    dask_stats.convert(root, to="v3.0", **FAST)
    old = root.with_name(root.name + "_old")
    assert tree_digest(old) == before
    assert json.loads((root / "meta/info.json").read_text())["codebase_version"] == "v3.0"
    assert not root.with_name(root.name + ".v3.0-partial").exists()


def test_in_place_refuses_when_the_old_tree_has_no_room(messy_dataset, copy_of):
    root = copy_of(messy_dataset)
    root.with_name(root.name + "_old").mkdir()
    before = tree_digest(root)
    with pytest.raises(dask_stats.DatasetError, match="_old exists"):
        dask_stats.convert(root, to="v3.0", **FAST)
    assert tree_digest(root) == before


def test_cli_to_v30(messy_dataset, tmp_path):
    run = subprocess.run([sys.executable, "-m", "dask_stats", "convert", "--root", str(messy_dataset), "--output",
                          str(tmp_path / "out"), "--to", "v3.0", "--no-quantiles", "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    stats = json.loads((tmp_path / "out/meta/stats.json").read_text())
    assert "q01" not in stats["action"]


def test_check_understands_v30(v30, tmp_path):
    import shutil

    assert [p.severity for p in dask_stats.check(v30)] == ["info"]  # already at v3.0: nothing to do
    broken = tmp_path / "broken"
    shutil.copytree(v30, broken)
    episodes = sorted((broken / "meta/episodes").rglob("*.parquet"))[0]
    table = pq.read_table(episodes)
    start = [c for c in table.column_names if c.endswith("/from_timestamp")][0]
    for column in (start, start.replace("from_timestamp", "to_timestamp")):  # a camera's frames 0.5 s off
        table = table.set_column(table.column_names.index(column), column, pa_array_plus(table.column(column), 0.5))
    pq.write_table(table, episodes)
    problems = [p for p in dask_stats.check(broken) if p.severity == "error"]
    assert problems and all("no frame at" in p.message for p in problems)


def pa_array_plus(column, value):
    import pyarrow as pa

    return pa.array([v + value for v in column.to_pylist()], type=column.type)


def test_recompute_the_stats_of_a_v30_dataset_in_place(messy_dataset, v30, tmp_path):
    """Stats recomputed from the concatenated files equal those computed from the v2.0 files; data and videos
    are untouched; only meta/episodes and meta/stats.json change."""
    import shutil

    root = tmp_path / "v30"
    shutil.copytree(v30, root)
    before = {p: tree_digest(root / p) for p in ("data", "videos")}
    expected = read_episode_stats(str(v30))
    for path in (root / "meta/episodes").rglob("*.parquet"):  # lose the stats (as datasets without quantiles do)
        table = pq.read_table(path)
        pq.write_table(table.select([c for c in table.column_names if not c.startswith("stats/")]), path)
    (root / "meta/stats.json").unlink()
    with pytest.raises(dask_stats.DatasetError, match="already at v3.0"):
        dask_stats.convert(root, **FAST)
    result = dask_stats.convert(root, force=True, quantiles="0.02,0.5,0.98", **FAST)
    assert result.format == "v3.0"
    assert {p: tree_digest(root / p) for p in ("data", "videos")} == before
    ours = read_episode_stats(str(root))
    for episode, features in expected.items():
        for feature, stats in features.items():
            for stat in ("min", "max", "mean", "std", "count"):
                np.testing.assert_allclose(np.asarray(ours[episode][feature][stat], dtype=float),
                                           np.asarray(stats[stat], dtype=float), rtol=1e-12, atol=1e-15,
                                           err_msg=f"episode {episode} {feature}.{stat}")
            assert {"q02", "q50", "q98"} <= set(ours[episode][feature]) and "q01" not in ours[episode][feature]
    stats = json.loads((root / "meta/stats.json").read_text())
    assert {"q02", "q50", "q98"} <= set(stats["observation.images.top"])
    assert [p for p in dask_stats.check(root) if p.severity == "error"] == []


def test_a_v21_source_episodes_stats_are_compared_not_trusted(v21, tmp_path):
    """v2.1 -> v3.0: the old per-episode stats are compared with the new ones and differences reported."""
    import shutil

    source = tmp_path / "v21"
    shutil.copytree(v21, source)
    lines = [json.loads(line) for line in (source / "meta/episodes_stats.jsonl").read_text().splitlines()]
    lines[3]["stats"]["action"]["mean"] = [v + 1.0 for v in lines[3]["stats"]["action"]["mean"]]
    (source / "meta/episodes_stats.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = dask_stats.convert(source, tmp_path / "out", to="v3.0", **FAST)
    warnings = [w for w in result.warnings if "old episodes_stats.jsonl differs" in w.message]
    assert [(w.feature, w.episode) for w in warnings] == [("action", 3)] and "mean" in warnings[0].message
    ours = read_episode_stats(str(tmp_path / "out"))
    reference = json.loads((v21 / "meta/episodes_stats.jsonl").read_text().splitlines()[3])
    np.testing.assert_array_equal(np.ravel(ours[3]["action"]["mean"]), np.ravel(reference["stats"]["action"]["mean"]))


def test_an_interrupted_v30_run_resumes_without_rewriting_finished_files(messy_dataset, tmp_path, monkeypatch):
    from fake_backends import FailingBackend

    monkeypatch.setattr("dask_stats.engine.tasks.VIDEO_TASK_SECONDS", 0)  # one stats task per episode
    out = tmp_path / "out"
    with pytest.raises(dask_stats.DatasetError, match="injected failure"):
        dask_stats.convert(messy_dataset, out, to="v3.0", video_backend=FailingBackend, **TINY, **FAST)
    staging = tmp_path / "out.v3.0-partial"
    assert not out.exists() and staging.is_dir(), "nothing is committed; finished files wait in the staging tree"
    written = {p: p.stat().st_mtime_ns for p in staging.rglob("*.parquet")}
    assert written, "the data files were written before the failure"
    result = dask_stats.convert(messy_dataset, out, to="v3.0", **TINY, **FAST)
    assert result.resumed > 0 and not staging.exists()
    for path, mtime in written.items():
        assert (out / path.relative_to(staging)).stat().st_mtime_ns == mtime, f"{path} was rewritten"
    assert [p.severity for p in dask_stats.check(out)] == ["info"]
