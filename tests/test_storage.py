"""dask_stats.storage: where datasets are read and written. Remote datasets through fsspec (a real S3 protocol
server, moto on loopback, read by s3fs; memory://; file://), errors naming the remote file, and local writes: file
modes kept or following the umask, links replaced rather than written through, temporary files of a killed run
removed, a full disk naming the file being written."""

from __future__ import annotations

import errno
import json
import os

import fsspec
import pytest
from helpers import CAM, FAST, SMALL32, episodes_stats, run_cli

import dask_stats
from dask_stats.errors import DatasetError
from dask_stats.storage import Store
from dask_stats.synthetic import Camera, SampleSpec

REMOTE = SampleSpec(lengths=[12, 25, 1], cameras={CAM: Camera(32, 32)})


@pytest.fixture(scope="module")
def dataset(make_sample):
    return make_sample(REMOTE, "remote")


@pytest.fixture
def ds(make_sample, copy_of):
    return copy_of(make_sample(SMALL32))


# -- remote filesystems ------------------------------------------------------------------------------------------
def test_s3_round_trip_in_place_and_to_output(s3_server, dataset, local_stats):
    fs, options = s3_server
    fs.put(str(dataset), "robots/ds", recursive=True)
    result = dask_stats.convert("s3://robots/ds", "s3://robots/converted", storage_options=options, **FAST)
    assert result.output == "s3://robots/converted" and result.verification.checked
    assert fs.cat_file("robots/converted/meta/episodes_stats.jsonl") == local_stats(dataset)
    assert json.loads(fs.cat_file("robots/converted/meta/info.json"))["codebase_version"] == "v2.1"
    assert fs.exists("robots/converted/videos/chunk-000/observation.images.top/episode_000001.mp4")
    assert json.loads(fs.cat_file("robots/ds/meta/info.json"))["codebase_version"] == "v2.0"  # source untouched

    dask_stats.convert("s3://robots/ds", storage_options=options, delete_old_stats=True, **FAST)  # in place
    assert fs.cat_file("robots/ds/meta/episodes_stats.jsonl") == local_stats(dataset)
    assert not fs.exists("robots/ds/meta/stats.json")


def test_s3_errors_name_the_remote_file(s3_server, dataset):
    fs, options = s3_server
    fs.put(str(dataset), "robots/broken", recursive=True)
    fs.rm_file("robots/broken/videos/chunk-000/observation.images.top/episode_000001.mp4")
    with pytest.raises(dask_stats.DatasetError) as info:
        dask_stats.convert("s3://robots/broken", storage_options=options, **FAST)
    assert "s3://robots/broken/videos/chunk-000/observation.images.top/episode_000001.mp4" in str(info.value)


def test_cli_reads_s3_with_the_standard_environment(s3_server, dataset, local_stats, tmp_path):
    fs, _ = s3_server
    fs.put(str(dataset), "robots/cli", recursive=True)
    run = run_cli("convert", "--root", "s3://robots/cli", "--output", tmp_path / "out", "--scheduler", "threads")
    assert run.returncode == 0, run.stderr
    assert episodes_stats(tmp_path / "out") == local_stats(dataset)


def test_memory_filesystem(dataset, local_stats):
    fs = fsspec.filesystem("memory")
    fs.put(str(dataset), "/mem-ds", recursive=True)
    dask_stats.convert("memory://mem-ds", **FAST)
    assert fs.cat_file("/mem-ds/meta/episodes_stats.jsonl") == local_stats(dataset)


def test_file_url(dataset, local_stats, tmp_path):
    out = tmp_path / "out"
    dask_stats.convert(f"file://{dataset}", f"file://{out}", **FAST)
    assert episodes_stats(out) == local_stats(dataset)


# -- local writes ------------------------------------------------------------------------------------------------
def test_modes_are_kept_and_new_files_follow_the_umask(ds, tmp_path):
    os.chmod(ds / "meta/info.json", 0o604)
    old = os.umask(0o027)
    try:
        dask_stats.convert(ds, **FAST)
        dask_stats.convert(ds, tmp_path / "out", force=True, **FAST)
    finally:
        os.umask(old)
    assert (ds / "meta/info.json").stat().st_mode & 0o777 == 0o604
    assert (ds / "meta/episodes_stats.jsonl").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "out/meta/info.json").stat().st_mode & 0o777 == 0o604
    assert (tmp_path / "out/meta/episodes_stats.jsonl").stat().st_mode & 0o777 == 0o640


def test_write_text_replaces_a_link_instead_of_writing_through_it(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text("keep")
    os.chmod(outside, 0o644)
    (tmp_path / "ds/meta").mkdir(parents=True)
    link = tmp_path / "ds/meta/info.json"
    link.symlink_to(outside)
    Store(tmp_path / "ds").write_text(str(link), "new")
    assert outside.read_text() == "keep" and not link.is_symlink() and link.read_text() == "new"
    assert link.stat().st_mode & 0o777 == 0o644


def test_temporary_files_of_a_killed_run_are_removed(ds):
    (ds / "meta/.info.json.k1ll3d.tmp").write_text("{")
    dask_stats.convert(ds, **FAST)
    assert not list((ds / "meta").glob(".*.tmp"))


def test_a_full_disk_names_the_file_being_written(ds, monkeypatch):
    monkeypatch.setattr(Store, "_write_local", staticmethod(lambda path, text: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device"))))
    with pytest.raises(DatasetError) as info:
        dask_stats.convert(ds, **FAST)
    [problem] = info.value.problems
    assert "No space left on device" in problem.message and problem.path.endswith("meta/episodes_stats.jsonl")


# -- the Hugging Face cache --------------------------------------------------------------------------------------
def hf_cache_snapshot(source, cache):
    """``source`` laid out as huggingface_hub caches a dataset: content in ``blobs/``, and a snapshot folder of
    relative symlinks into it."""
    import hashlib

    repo = cache / "datasets--robots--tiny"
    snapshot = repo / "snapshots" / ("0" * 40)
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(path.read_bytes())
        link = snapshot / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


@pytest.mark.parametrize("to", ["v2.1", "v3.0"])
def test_a_hugging_face_cache_snapshot_converts(dataset, local_stats, tmp_path, to):
    snapshot = hf_cache_snapshot(dataset, tmp_path / "hub")
    blobs = sorted((p.name, p.read_bytes()) for p in (tmp_path / "hub").rglob("blobs/*"))
    result = dask_stats.convert(snapshot, tmp_path / "out", to=to, **FAST)
    assert result.episodes == 3
    if to == "v2.1":
        assert episodes_stats(tmp_path / "out") == local_stats(dataset)
    assert sorted((p.name, p.read_bytes()) for p in (tmp_path / "hub").rglob("blobs/*")) == blobs, "cache untouched"


def test_mirror_hard_links_data_and_videos_copies_meta_and_leaves_out_skip(tmp_path):
    source = tmp_path / "src"
    for relative in ("meta/info.json", "meta/stats.json", "data/chunk-000/a.parquet", "outside.bin"):
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_text(relative)
    (source / "videos").mkdir()
    (source / "videos/v.mp4").symlink_to(source / "outside.bin")  # the Hugging Face cache is made of links
    target = tmp_path / "out"
    (target / "data/chunk-000").mkdir(parents=True)
    (target / "data/chunk-000/a.parquet").write_text("left by an unfinished copy")
    Store(source).mirror_to(Store(target), skip={"meta/stats.json"})
    same = os.path.samefile
    assert same(target / "data/chunk-000/a.parquet", source / "data/chunk-000/a.parquet")
    assert same(target / "videos/v.mp4", source / "outside.bin") and not (target / "videos/v.mp4").is_symlink()
    assert not same(target / "meta/info.json", source / "meta/info.json"), "metadata is rewritten: never shared"
    assert (target / "meta/info.json").read_text() == "meta/info.json" and not (target / "meta/stats.json").exists()


def test_mirror_and_local_file_on_a_remote_store():
    fs = fsspec.filesystem("memory")
    fs.pipe({"/mirror/src/meta/info.json": b"{}", "/mirror/src/videos/v.mp4": b"video", "/mirror/src/skip": b""})
    source, target = Store("memory://mirror/src"), Store("memory://mirror/out")
    source.mirror_to(target, skip={"skip"})
    assert sorted(target.files()) == ["meta/info.json", "videos/v.mp4"]
    with target.local_file(target.path("videos/v.mp4")) as local:
        assert local.endswith("v.mp4") and open(local, "rb").read() == b"video"
    assert not os.path.exists(local), "the local copy is temporary"
