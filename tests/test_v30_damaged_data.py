"""A v3.0 dataset with a corrupt data Parquet: recomputing its stats (``convert --force``) and ``check`` name the file
and the episodes it holds (exit 2 / 1), in the preflight as in the tasks; nothing is written."""

from __future__ import annotations

import shutil

import pytest
from helpers import CAM, FAST, tree_digest

import dask_stats
from dask_stats import cli
from dask_stats.errors import TaskError
from dask_stats.synthetic import Camera, SampleSpec


@pytest.fixture(scope="module")
def v30(make_sample, tmp_path_factory):
    """Episodes 0-2 share data file 000, episode 3 has file 001."""
    source = make_sample(SampleSpec(lengths=[5, 8, 6, 7], cameras={CAM: Camera(16, 16)}), "v20-for-damage")
    out = tmp_path_factory.mktemp("v30-damage") / "ds"
    dask_stats.convert(source, out, to="v3.0", data_file_size_in_mb=0.02, **FAST)
    return out


def _corrupt(root, number: int):
    path = root / f"data/chunk-000/file-{number:03d}.parquet"
    blob = bytearray(path.read_bytes())
    blob[-200:-8] = b"\x55" * 192  # the footer: "Couldn't deserialize thrift"
    path.write_bytes(bytes(blob))
    return path


def test_check_and_convert_force_name_the_corrupt_file_and_its_episodes(v30, tmp_path, capsys):
    root = tmp_path / "ds"
    shutil.copytree(v30, root)
    bad = _corrupt(root, 0)
    errors = [p for p in dask_stats.check(root) if p.severity == "error"]
    assert [(p.path, p.episode) for p in errors] == [(str(bad), 0)] and "episodes 0-2" in errors[0].fix
    before = tree_digest(root)
    assert cli.main(["convert", "--root", str(root), "--force", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "episodes 0-2" in err and "unexpected" not in err
    assert tree_digest(root) == before


def test_the_tasks_name_the_corrupt_file_once_with_its_episodes(v30, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(v30, root)
    bad = _corrupt(root, 0)
    with pytest.raises(TaskError) as caught:  # no preflight: the first file is read while the graph is built
        dask_stats.convert(root, force=True, skip_check=True, **FAST)
    assert [(p.path, p.episode) for p in caught.value.problems] == [(str(bad), 0)]
    assert "episodes 0-2" in caught.value.problems[0].fix
    shutil.rmtree(root)
    shutil.copytree(v30, root)
    other = _corrupt(root, 1)
    with pytest.raises(TaskError) as caught:  # the stats task and the video task both meet it
        dask_stats.convert(root, force=True, skip_check=True, **FAST)
    assert [(p.path, p.episode, p.feature) for p in caught.value.problems] == [(str(other), 3, None)]
    assert "episode 3" in caught.value.problems[0].fix


# -- item 6: absent or damaged files of a v3.0 dataset, in check and in the preflight of convert --force ----------

def _video(root):
    return next((root / "videos" / CAM).rglob("*.mp4"))


def test_a_missing_video_is_named_with_its_camera_and_excluding_it_helps(v30, tmp_path, capsys):
    root = tmp_path / "ds"
    shutil.copytree(v30, root)
    video = _video(root)
    video.unlink()
    errors = [p for p in dask_stats.check(root) if p.severity == "error"]
    assert [(p.feature, p.path) for p in errors] == [(CAM, str(video))]  # once, by the plan (formats/v30/videofiles)
    assert "no video files" in errors[0].message and f"--exclude-features {CAM}" in errors[0].fix
    assert [p for p in dask_stats.check(root, exclude_features=[CAM]) if p.severity == "error"] == []
    assert cli.main(["check", "--root", str(root)]) == 1
    assert cli.main(["convert", "--root", str(root), "--force", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no video files" in err and str(video) in err and "unexpected" not in err


def test_missing_data_and_truncated_video_are_all_reported_at_once(v30, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(v30, root)
    data = root / "data/chunk-000/file-001.parquet"
    data.unlink()
    video = _video(root)
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    errors = [p for p in dask_stats.check(root) if p.severity == "error"]
    by_path = {p.path: p for p in errors}
    assert by_path[str(data)].message == "data file is missing" and "episode 3" in by_path[str(data)].fix
    damaged = [p for p in errors if p.path == str(video)]
    assert damaged and all(p.feature == CAM and p.episode is not None and f"--exclude-features {CAM}" in p.fix
                           for p in damaged)
    assert {p.path for p in errors} == {str(data), str(video)}
