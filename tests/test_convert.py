"""End-to-end conversion: every stat against the independent float64 computation, structure against reference.md."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import tree_digest
from float64_reference import expected_episode_stats

import dask_stats
from dask_stats.errors import DatasetError, VerificationError

FAST = {"scheduler": "threads", "num_workers": 2, "quiet": True}
STAT_KEYS = ["min", "max", "mean", "std", "count"]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_matches_reference(root, output, by_index=False, pixel_tol=1e-9, exclude=()):
    info = json.loads((output / "meta/info.json").read_text())
    records = read_jsonl(output / "meta/episodes_stats.jsonl")
    assert [r["episode_index"] for r in records] == list(range(info["total_episodes"]))
    for record in records:
        expected = expected_episode_stats(root, record["episode_index"], by_index=by_index, exclude=exclude)
        stats = record["stats"]
        # features in info.json order, strings skipped
        assert list(stats) == [f for f, ft in info["features"].items() if ft["dtype"] != "string" and f not in exclude]
        for feature, exp in expected.items():
            got = stats[feature]
            assert list(got) == STAT_KEYS, feature
            assert got["count"] == [exp["count"]], (record["episode_index"], feature)
            dtype = info["features"][feature]["dtype"]
            pixel = dtype in ("video", "image")
            for key in ("min", "max", "mean", "std"):
                value = np.asarray(got[key])
                want = np.asarray(exp[key], dtype=np.float64)
                shape = (3, 1, 1) if pixel else tuple(info["features"][feature]["shape"])
                assert value.shape == shape, (feature, key, value.shape)
                np.testing.assert_allclose(value.reshape(-1).astype(np.float64), want.reshape(-1),
                                           rtol=pixel_tol if pixel else 1e-12, atol=1e-12,
                                           err_msg=f"episode {record['episode_index']} {feature} {key}")
            if dtype == "bool":
                assert isinstance(got["min"][0], bool) and isinstance(got["max"][0], bool)
            if dtype == "int64":
                assert isinstance(got["min"][0], int) and isinstance(got["max"][0], int)


def test_messy_dataset_matches_float64_reference(messy_dataset, tmp_path):
    before = tree_digest(messy_dataset)
    result = dask_stats.convert(messy_dataset, tmp_path / "out", **FAST)
    assert tree_digest(messy_dataset) == before, "the source must not change"
    assert result.episodes == 5 and result.frames == 228
    assert result.skipped == {"language_instruction": "string features have no stats"}
    assert result.verification.checked and not result.verification.failures
    assert_matches_reference(messy_dataset, tmp_path / "out")


def test_output_tree_is_complete_and_only_metadata_changes(messy_dataset, tmp_path):
    out = tmp_path / "out"
    dask_stats.convert(messy_dataset, out, **FAST)
    source_files = {p.relative_to(messy_dataset) for p in messy_dataset.rglob("*") if p.is_file()}
    out_files = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert out_files == source_files | {out.joinpath("meta/episodes_stats.jsonl").relative_to(out)}
    for rel in source_files - {messy_dataset.joinpath("meta/info.json").relative_to(messy_dataset)}:
        assert (out / rel).read_bytes() == (messy_dataset / rel).read_bytes(), rel
    old = json.loads((messy_dataset / "meta/info.json").read_text())
    new_text = (out / "meta/info.json").read_text()
    new = json.loads(new_text)
    assert list(new) == list(old) and new == {**old, "codebase_version": "v2.1"}
    assert new_text == json.dumps(new, indent=4, ensure_ascii=False)  # indent 4, no trailing newline
    lines = (out / "meta/episodes_stats.jsonl").read_text().split("\n")
    assert lines[-1] == "" and all(line.startswith('{"episode_index": ') for line in lines[:-1])
    assert '"stats": {"observation.images.top": {"min": [[[' in lines[0]


def test_in_place_and_delete_old_stats(messy_dataset, copy_of):
    root = copy_of(messy_dataset)
    dask_stats.convert(root, **FAST)
    assert json.loads((root / "meta/info.json").read_text())["codebase_version"] == "v2.1"
    assert (root / "meta/stats.json").is_file()
    with pytest.raises(DatasetError, match="already at v2.1.*--force"):
        dask_stats.convert(root, **FAST)
    dask_stats.convert(root, force=True, delete_old_stats=True, skip_verify=True, **FAST)
    assert not (root / "meta/stats.json").exists()
    assert_matches_reference(root, root)


def test_av1_with_pyav_and_variable_size_lists(av1_dataset, tmp_path):
    dask_stats.convert(av1_dataset, tmp_path / "out", **FAST)
    assert_matches_reference(av1_dataset, tmp_path / "out")


def test_decord_refuses_av1_with_a_clear_error(av1_dataset, tmp_path):
    with pytest.raises(DatasetError) as info:
        dask_stats.convert(av1_dataset, tmp_path / "out", video_backend="decord", **FAST)
    message = str(info.value)
    assert "cannot decode av1" in message and "--video-backend pyav" in message
    assert "observation.images.top" in message and "episode_000000.mp4" in message
    assert not (tmp_path / "out").exists()


def test_pyav_and_decord_agree_on_h264(messy_dataset, tmp_path):
    dask_stats.convert(messy_dataset, tmp_path / "pyav", video_backend="pyav", **FAST)
    dask_stats.convert(messy_dataset, tmp_path / "decord", video_backend="decord", **FAST)
    for a, b in zip(read_jsonl(tmp_path / "pyav/meta/episodes_stats.jsonl"),
                    read_jsonl(tmp_path / "decord/meta/episodes_stats.jsonl")):
        for feature in ("observation.images.top", "observation.images.wrist"):
            for key in ("min", "max", "mean", "std"):
                np.testing.assert_allclose(a["stats"][feature][key], b["stats"][feature][key], atol=2e-3)
            assert a["stats"][feature]["count"] == b["stats"][feature]["count"]


def test_verification_mismatch_stops_before_anything_is_written(messy_dataset, copy_of):
    root = copy_of(messy_dataset)
    stats = json.loads((root / "meta/stats.json").read_text())
    stats["action"]["mean"][0] += 0.01
    (root / "meta/stats.json").write_text(json.dumps(stats))
    before = tree_digest(root)
    with pytest.raises(VerificationError, match="action"):
        dask_stats.convert(root, delete_old_stats=True, **FAST)
    assert tree_digest(root) == before
    result = dask_stats.convert(root, skip_verify=True, **FAST)
    assert not result.verification.checked


def test_pixel_stats_differences_are_warnings_unless_strict(messy_dataset, copy_of):
    root = copy_of(messy_dataset)
    stats = json.loads((root / "meta/stats.json").read_text())
    stats["observation.images.top"]["mean"][0][0][0] += 0.05
    (root / "meta/stats.json").write_text(json.dumps(stats))
    with pytest.raises(VerificationError, match="observation.images.top"):
        dask_stats.convert(root, strict_verify=True, **FAST)
    result = dask_stats.convert(root, **FAST)
    assert [w.feature for w in result.verification.warnings] == ["observation.images.top"]


def test_cli_help_version_and_convert(messy_dataset, tmp_path):
    run = lambda *args: subprocess.run([sys.executable, "-m", "dask_stats", *args],  # noqa: E731
                                       capture_output=True, text=True, timeout=300)
    assert "convert" in run("--help").stdout
    assert run("--version").stdout.strip() == f"dask_stats {dask_stats.__version__}"
    done = run("convert", "--root", str(messy_dataset), "--output", str(tmp_path / "out"), "--num-workers", "2")
    assert done.returncode == 0, done.stderr
    assert "Converted 5 episodes, 228 frames" in done.stdout and str(tmp_path / "out") in done.stdout
    assert "passed against meta/stats.json" in done.stdout
    again = run("convert", "--root", str(tmp_path / "out"))
    assert again.returncode == 0 and "already at v2.1; nothing to do" in again.stdout and not again.stderr


def test_demo_command_converts_a_generated_dataset(tmp_path):
    run = subprocess.run([sys.executable, "-m", "dask_stats", "demo", "--dir", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "demo" / "v2.1"
    assert f"v2.1 dataset: {out}" in run.stdout and "no stats for language_instruction" in run.stdout
    assert json.loads((out / "meta/info.json").read_text())["codebase_version"] == "v2.1"
    assert len((out / "meta/episodes_stats.jsonl").read_text().splitlines()) == 4
