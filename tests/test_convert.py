"""End-to-end v2.0 -> v2.1 conversion: every stat against the independent float64 computation (for the messy
sample, AV1 and variable-size lists, and random datasets), the output tree against the v2.1 format, in place and
to an output folder, verification against meta/stats.json, and the video backends agreeing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from float64_reference import assert_matches_reference
from helpers import FAST, read_jsonl, tree_digest
from hypothesis import given, settings
from hypothesis import strategies as st

import dask_stats
from dask_stats.errors import DatasetError, VerificationError
from dask_stats.synthetic import Camera, SampleSpec, make_dataset


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


@settings(max_examples=8, deadline=None)
@given(lengths=st.lists(st.integers(1, 130), min_size=1, max_size=4), state_dim=st.integers(1, 5),
       fixed=st.booleans(), float64=st.booleans(), camera=st.booleans(), seed=st.integers(0, 1000))
def test_random_datasets_convert_to_the_float64_reference(tmp_path_factory, lengths, state_dim, fixed, float64,
                                                          camera, seed):
    """Property: whatever the episode lengths, vector sizes, list layouts and dtypes, every stat of a full
    conversion equals the straightforward float64 computation."""
    root = tmp_path_factory.mktemp("prop") / "ds"
    spec = SampleSpec(lengths=lengths, state_dim=state_dim, fixed_size_lists=fixed, float64_vector=float64,
                      cameras={"observation.images.top": Camera(16, 16)} if camera else {}, seed=seed,
                      chunks_size=2)
    make_dataset(root, spec)
    dask_stats.convert(root, root.parent / "out", **FAST)
    assert_matches_reference(root, root.parent / "out")
