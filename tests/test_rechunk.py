"""Re-chunking a v3.0 dataset (``convert --to v3.0 --data-file-size-in-mb N --video-file-size-in-mb M`` on a v3.0
dataset): the same rows and frames in files of other sizes, exact offsets, the published stats carried over."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import FAST, MESSY, run_cli, tree_digest
from v30_helpers import decode

import dask_stats
from dask_stats.errors import DatasetError, Problem
from dask_stats.formats import AlreadyThere, choose
from dask_stats.formats.v30.reader import episodes_files, read_dataset, read_episode_stats
from dask_stats.formats.v30.rechunk import RechunkWriter
from dask_stats.formats.v30.restat import RestatWriter
from dask_stats.formats.v30.writer import V30Writer
from dask_stats.options import StatsOptions

SEVERAL = {"data_file_size_in_mb": 0.1, "video_file_size_in_mb": 0.02}  # a few files, several episodes in some
TINY = {"data_file_size_in_mb": 0.001, "video_file_size_in_mb": 0.001}  # a file per episode
LARGE = {"data_file_size_in_mb": 100, "video_file_size_in_mb": 200}  # everything in one file (per stream signature)


@pytest.fixture(scope="module")
def v30(messy_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("v30") / "out"
    dask_stats.convert(messy_dataset, out, to="v3.0", **SEVERAL, **FAST)
    return out


@pytest.fixture(scope="module")
def small(v30, tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "out"
    before = tree_digest(v30)
    result = dask_stats.convert(v30, out, **TINY, **FAST)
    assert tree_digest(v30) == before, "the source is never modified"
    assert result.format == "v3.0" and "no stats were computed" in result.verification.outcome
    return out


@pytest.fixture(scope="module")
def large(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("large") / "out"
    dask_stats.convert(small, out, **LARGE, **FAST)
    return out


def files(root, kind: str) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / kind).rglob("*") if p.is_file()}


def episode_rows(root) -> list:
    dataset = read_dataset(str(root))
    out = []
    for ep in dataset.episodes:
        table = pq.read_table(root / ep.data_path)
        first = min(e.dataset_from_index for e in dataset.episodes if e.data_path == ep.data_path)
        out.append(table.slice(ep.dataset_from_index - first, ep.length))
    return out


def episode_frames(root, tolerance: float = 1e-4) -> dict:
    """(episode, camera) -> [(episode time, RGB)] of every frame the episode's time range holds, decoded."""
    dataset = read_dataset(str(root))
    decoded, out = {}, {}
    for ep in dataset.episodes:
        for camera, ref in ep.videos.items():
            frames = decoded.setdefault(ref.path, decode(root / ref.path))
            out[ep.index, camera] = [(t - ref.from_timestamp, rgb) for t, rgb in frames
                                     if ref.from_timestamp - tolerance <= t < ref.to_timestamp - tolerance]
    return out


def assert_same_episodes(new, old):
    for got, want in zip(episode_rows(new), episode_rows(old), strict=True):
        assert got.equals(want), "every row and column unchanged, index included"
    new_frames, old_frames = episode_frames(new), episode_frames(old)
    assert new_frames.keys() == old_frames.keys()
    for key, frames in old_frames.items():
        got = new_frames[key]
        assert len(got) == len(frames) > 0, key
        assert [t for t, _ in got] == pytest.approx([t for t, _ in frames], abs=1e-6), key
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, frames)), key


@pytest.mark.parametrize("name", ["small", "large"])
def test_rows_and_frames_are_identical(name, v30, small, large):
    new, old = {"small": (small, v30), "large": (large, small)}[name]
    assert_same_episodes(new, old)
    before, after = read_dataset(str(old)), read_dataset(str(new))
    assert [(e.length, e.dataset_from_index, e.dataset_to_index, e.tasks) for e in after.episodes] == \
        [(e.length, e.dataset_from_index, e.dataset_to_index, e.tasks) for e in before.episodes]


def test_several_files_become_many_and_many_become_one(v30, small, large):
    episodes = len(MESSY.lengths)
    cameras = len(MESSY.cameras)
    assert 1 < len(files(v30, "data")) < episodes and len(files(small, "data")) == episodes
    assert len(files(large, "data")) == 1
    assert len(files(v30, "videos")) < len(files(small, "videos")) == episodes * cameras
    assert len(files(large, "videos")) < len(files(v30, "videos"))
    for ep in read_dataset(str(small)).episodes:  # one file each, numbered in order
        assert ep.data_index.file == ep.index and all(ref.index.file == ep.index for ref in ep.videos.values())
        assert all(ref.from_timestamp == 0.0 for ref in ep.videos.values())
    info, source = (json.loads((root / "meta/info.json").read_text()) for root in (large, v30))
    assert info == {**source, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200}


def test_stats_are_carried_over(v30, small, large):
    for root in (small, large):
        assert (root / "meta/stats.json").read_bytes() == (v30 / "meta/stats.json").read_bytes()
        assert read_episode_stats(str(root)) == read_episode_stats(str(v30))
        assert (root / "meta/tasks.parquet").read_bytes() == (v30 / "meta/tasks.parquet").read_bytes()


def test_the_result_is_a_valid_v30_dataset(large):
    assert [p.severity for p in dask_stats.check(large)] == ["info"], "only: already at v3.0"


def test_one_size_leaves_the_other_files_as_they_are(v30, tmp_path):
    out = tmp_path / "out"
    dask_stats.convert(v30, out, data_file_size_in_mb=0.001, **FAST)
    assert files(out, "videos") == files(v30, "videos")
    for path in files(v30, "videos"):
        assert (out / path).stat().st_ino == (v30 / path).stat().st_ino, "hard-linked, not copied"
    before, after = read_dataset(str(v30)), read_dataset(str(out))
    assert [e.videos for e in after.episodes] == [e.videos for e in before.episodes]
    assert len(files(out, "data")) == len(MESSY.lengths)
    assert_same_episodes(out, v30)


def test_missing_episode_stats_are_recomputed(v30, tmp_path):
    source = tmp_path / "v30"
    shutil.copytree(v30, source)
    for relative in episodes_files(str(source)):
        path = source / relative
        table = pq.read_table(path)
        pq.write_table(table.drop_columns([c for c in table.column_names if c.startswith("stats/action/")]), path)
    out = tmp_path / "out"
    result = dask_stats.convert(source, out, **TINY, **FAST)
    assert any("recomputed (episode 0 has no action stats" in w.message for w in result.warnings)
    assert read_episode_stats(str(out)) == read_episode_stats(str(v30)), "exact stats, as the v3.0 build wrote them"
    assert json.loads((out / "meta/stats.json").read_text()) == json.loads((v30 / "meta/stats.json").read_text())


def test_in_place_keeps_the_old_tree(v30, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(v30, root)
    before = tree_digest(root)
    dask_stats.convert(root, **TINY, **FAST)
    assert tree_digest(tmp_path / "ds_old") == before
    assert len(files(root, "data")) == len(MESSY.lengths)
    assert_same_episodes(root, v30)


def test_an_interrupted_run_resumes_without_rewriting_the_data_files(v30, tmp_path, monkeypatch):
    import dask_stats.formats.v30.rechunk as rechunk

    def broken(*args, **kwargs):
        raise DatasetError(Problem("injected failure"))

    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(rechunk, "concat_videos", broken)
        with pytest.raises(dask_stats.DatasetError, match="injected failure"):
            dask_stats.convert(v30, out, **TINY, **FAST)
    staging = tmp_path / "out.v3.0-partial"
    assert not out.exists() and staging.is_dir()
    written = {p: p.stat().st_mtime_ns for p in staging.rglob("*.parquet")}
    assert len(written) == len(MESSY.lengths), "the data files were written before the failure"
    assert not list(staging.glob(".cut-*")), "the video tasks' scratch directories are removed"
    result = dask_stats.convert(v30, out, **TINY, **FAST)
    assert result.resumed > 0 and not staging.exists()
    for path, mtime in written.items():
        assert (out / path.relative_to(staging)).stat().st_mtime_ns == mtime, f"{path} was rewritten"
    assert_same_episodes(out, v30)


def test_a_size_on_a_v30_dataset_chooses_the_rechunk_writer():
    assert isinstance(choose("v3.0", StatsOptions(), force=False), AlreadyThere)
    assert choose("v3.0", StatsOptions(), force=True) is RestatWriter
    assert choose("v3.0", StatsOptions(video_file_size_in_mb=50), force=False) is RechunkWriter
    assert choose("v3.0", StatsOptions(to="v3.0", data_file_size_in_mb=1), force=True) is RechunkWriter
    assert choose("v2.0", StatsOptions(to="v3.0", data_file_size_in_mb=1), force=False) is V30Writer


def test_command_line(v30, tmp_path):
    out = tmp_path / "out"
    done = run_cli("convert", "--root", str(v30), "--to", "v3.0", "--data-file-size-in-mb", "0.001",
                   "--video-file-size-in-mb", "0.001", "--output", str(out), "--quiet", "--scheduler", "threads")
    assert done.returncode == 0, done.stderr
    assert len(files(out, "data")) == len(MESSY.lengths)
    again = run_cli("convert", "--root", str(v30), "--to", "v3.0", "--quiet")
    assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr, "no size: as before"
