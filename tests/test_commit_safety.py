"""What a run commits is exactly what its plan says (issue: never wrong on v3.0 and on a shared cluster): a stale
staging tree is emptied, a temporary file never reaches the dataset, an interrupted swap is finished by the next
run, a full disk is named, and re-running a finished conversion is "nothing to do"."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections import namedtuple

import pandas as pd
import pytest
from helpers import FAST, tree_digest

import dask_stats
from dask_stats.cli import main
from dask_stats.errors import NothingToDo

TINY = {"data_file_size_in_mb": 0.01, "video_file_size_in_mb": 0.01}


def _data(root):
    return pd.concat([pd.read_parquet(p) for p in sorted((root / "data").rglob("*.parquet"))], ignore_index=True)


def _interrupted_run(source, out, monkeypatch, **sizes):
    """A v3.0 run that fails after writing its data files (a failing decoder), leaving its staging tree."""
    from fake_backends import FailingBackend

    monkeypatch.setattr("dask_stats.engine.tasks.VIDEO_TASK_SECONDS", 0)
    with pytest.raises(dask_stats.DatasetError):
        dask_stats.convert(source, out, to="v3.0", video_backend=FailingBackend, **sizes, **FAST)
    staging = out.with_name(out.name + ".v3.0-partial")
    assert staging.is_dir()
    return staging


def test_a_stale_staging_tree_is_emptied_when_its_checkpoint_is_not_reused(messy_dataset, tmp_path, monkeypatch):
    out = tmp_path / "out"
    staging = _interrupted_run(messy_dataset, out, monkeypatch, **TINY)
    stale = sorted(staging.rglob("*.parquet"))
    assert len(stale) > 1  # tiny files: several data files, named as the other sizes would not name them
    dask_stats.convert(messy_dataset, out, to="v3.0", data_file_size_in_mb=50, video_file_size_in_mb=50, **FAST)
    rows = _data(out)
    assert len(rows) == json.loads((out / "meta/info.json").read_text())["total_frames"] == 228
    assert rows["index"].tolist() == list(range(228))  # no row twice
    assert len(list((out / "data").rglob("*.parquet"))) == 1


def test_a_temporary_file_left_by_a_killed_write_is_never_committed(messy_dataset, tmp_path, monkeypatch):
    out = tmp_path / "out"
    staging = _interrupted_run(messy_dataset, out, monkeypatch, **TINY)
    leftover = staging / "data/chunk-000/.file-009.parquet.x1y2.tmp"
    leftover.write_bytes(b"half a file")
    (staging / "videos/.file-000.mp4.abcd.tmp").parent.mkdir(parents=True, exist_ok=True)
    (staging / "videos/.file-000.mp4.abcd.tmp").write_bytes(b"half a video")
    dask_stats.convert(messy_dataset, out, to="v3.0", **TINY, **FAST)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert [p.severity for p in dask_stats.check(out)] == ["info"]


def test_a_staging_tree_missing_a_planned_file_is_refused(messy_dataset, tmp_path, monkeypatch):
    from dask_stats.formats import staging

    out = tmp_path / "out"
    settle = staging.StagingTree.settle

    def lose_a_file(self, planned):
        next((self.staging / "videos").rglob("*.mp4")).unlink()
        settle(self, planned)

    monkeypatch.setattr(staging.StagingTree, "settle", lose_a_file)
    with pytest.raises(dask_stats.DatasetError, match="planned file is missing"):
        dask_stats.convert(messy_dataset, out, to="v3.0", **FAST)
    assert not out.exists()


def test_a_directory_named_like_the_staging_tree_but_not_ours_is_left_alone(messy_dataset, tmp_path):
    out = tmp_path / "out"
    theirs = tmp_path / "out.v3.0-partial"
    (theirs / "keep.txt").parent.mkdir(parents=True)
    (theirs / "keep.txt").write_text("not dask_stats'")
    with pytest.raises(dask_stats.DatasetError, match="not made by dask_stats"):
        dask_stats.convert(messy_dataset, out, to="v3.0", **FAST)
    assert (theirs / "keep.txt").read_text() == "not dask_stats'"


def test_a_swap_cut_between_its_two_renames_is_finished_by_the_same_command(messy_dataset, copy_of, monkeypatch,
                                                                             capsys):
    from dask_stats.formats import staging

    root = copy_of(messy_dataset)
    before = tree_digest(root)
    renames = []
    real_rename = os.rename

    def killed_after_one(src, dst):
        renames.append((src, dst))
        if len(renames) == 2:
            raise KeyboardInterrupt  # kill -9 between the two renames
        real_rename(src, dst)

    monkeypatch.setattr(staging.os, "rename", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        dask_stats.convert(root, to="v3.0", **FAST)
    monkeypatch.setattr(staging.os, "rename", real_rename)
    old = root.with_name(root.name + "_old")
    assert not root.exists() and old.is_dir()
    [said] = [p for p in dask_stats.check(root) if "interrupted between its two renames" in p.message]
    assert "run the same convert command again" in said.fix
    assert main(["convert", "--root", str(root), "--to", "v3.0", "--quiet"]) == 0
    assert json.loads((root / "meta/info.json").read_text())["codebase_version"] == "v3.0"
    assert tree_digest(old) == before and not root.with_name(root.name + ".v3.0-partial").exists()


def test_too_little_free_space_is_refused_before_any_work(messy_dataset, tmp_path, monkeypatch, capsys):
    from dask_stats.formats.v30 import writer

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(writer.shutil, "disk_usage", lambda path: usage(10 << 20, 10 << 20, 1 << 20))
    assert main(["convert", "--root", str(messy_dataset), "--output", str(tmp_path / "out"), "--to", "v3.0",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not enough free space" in err and "MB are free" in err and "out.v3.0-partial" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.v3.0-partial").exists()


def test_a_disk_full_while_writing_names_the_file_not_a_source(messy_dataset, tmp_path, monkeypatch, capsys):
    from dask_stats.formats.v30 import writer

    def full(store, sources, dest, first_index, **_):
        raise OSError(errno.ENOSPC, "No space left on device", dest)

    monkeypatch.setattr(writer, "write_data_file", full)
    assert main(["convert", "--root", str(messy_dataset), "--output", str(tmp_path / "out"), "--to", "v3.0",
                 "--quiet", "--scheduler", "threads"]) == 2
    err = capsys.readouterr().err
    assert "no space left on the device while writing" in err and "out.v3.0-partial/data" in err
    assert "met bad data" not in err and "The unfinished tree is in" in err


def test_rerunning_a_finished_output_is_nothing_to_do(messy_dataset, tmp_path, capsys):
    out = tmp_path / "out"
    dask_stats.convert(messy_dataset, out, to="v3.0", **FAST)
    before = tree_digest(out)
    with pytest.raises(NothingToDo):
        dask_stats.convert(messy_dataset, out, to="v3.0", **FAST)
    assert main(["convert", "--root", str(messy_dataset), "--output", str(out), "--to", "v3.0", "--quiet"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert tree_digest(out) == before


@pytest.mark.parametrize("where", ["inside", "same"])
def test_output_inside_or_equal_to_the_root_is_refused(messy_dataset, copy_of, where, capsys):
    root = copy_of(messy_dataset)
    before = tree_digest(root)
    output = root / "converted" if where == "inside" else root
    assert main(["convert", "--root", str(root), "--output", str(output), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert ("inside the dataset" if where == "inside" else "is the dataset itself") in err
    assert tree_digest(root) == before


def test_an_interrupted_run_says_how_to_resume_and_where_the_partial_tree_is(messy_dataset, tmp_path, monkeypatch,
                                                                             capsys):
    from dask_stats.formats.v30 import writer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer.V30Writer, "later_tasks", interrupted)
    out = tmp_path / "out"
    assert main(["convert", "--root", str(messy_dataset), "--output", str(out), "--to", "v3.0", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "re-run the same command to resume" in err and str(out) + ".v3.0-partial" in err
    shutil.rmtree(tmp_path)


def test_a_kill_right_after_the_swap_leaves_no_marker_behind(messy_dataset, copy_of, monkeypatch):
    """Killed after the second rename but before the tree's marker was dropped: the next run removes the marker
    (no file of ours is left in the dataset) and finds nothing to do."""
    from dask_stats.formats import staging

    root = copy_of(messy_dataset)
    real_unlink = staging.Path.unlink

    def killed(path, *args, **kwargs):
        if path.name == staging.OUTPUT_MARKER and path.parent == root:
            raise KeyboardInterrupt
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(staging.Path, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        dask_stats.convert(root, to="v3.0", **FAST)
    monkeypatch.setattr(staging.Path, "unlink", real_unlink)
    assert (root / staging.OUTPUT_MARKER).exists()
    with pytest.raises(NothingToDo):
        dask_stats.convert(root, **FAST)
    assert not (root / staging.OUTPUT_MARKER).exists()
