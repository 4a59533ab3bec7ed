"""v3.0 where the data lives: a v2.x dataset on S3 (moto) converted into an S3 prefix by the workers, committed with
``meta/info.json`` last, resumed by the same command, refused in place; a v3.0 dataset on S3 has its stats
recomputed in place, only meta/episodes and meta/stats.json rewritten."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import FAST, fail_when_writing

import dask_stats
from dask_stats.errors import DatasetError
from dask_stats.formats.v30.reader import read_dataset
from dask_stats.storage import OUTPUT_MARKER, Store

TINY = {"data_file_size_in_mb": 0.01, "video_file_size_in_mb": 0.01}


def fetched(fs, prefix: str, where: Path) -> Path:
    """The objects under ``prefix``, downloaded to ``where``."""
    fs.invalidate_cache()
    fs.get(prefix, str(where), recursive=True)
    return where


def same_files(expected: Path, actual: Path) -> None:
    files = sorted(p.relative_to(expected) for p in expected.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(actual) for p in actual.rglob("*") if p.is_file())
    for path in files:
        assert (actual / path).read_bytes() == (expected / path).read_bytes(), path


@pytest.fixture(scope="module")
def local_v30(messy_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("remote-local") / "out"
    dask_stats.convert(messy_dataset, out, to="v3.0", **TINY, **FAST)
    return out


@pytest.fixture(scope="module")
def on_s3(s3_server, messy_dataset) -> str:
    fs, _ = s3_server
    fs.put(str(messy_dataset), "robots/messy", recursive=True)
    return "s3://robots/messy"


def test_s3_to_s3_is_byte_identical_to_a_local_run(s3_server, on_s3, local_v30, tmp_path):
    fs, options = s3_server
    result = dask_stats.convert(on_s3, "s3://robots/messy-v30", to="v3.0", storage_options=options, **TINY, **FAST)
    assert result.format == "v3.0" and result.output == "s3://robots/messy-v30"
    copy = fetched(fs, "robots/messy-v30", tmp_path / "copy")
    assert not (copy / OUTPUT_MARKER).exists(), "the marker goes once the tree is committed"
    same_files(local_v30, copy)
    assert len(read_dataset(Store("s3://robots/messy-v30", options)).episodes) == 5


def test_an_interrupted_commit_never_looks_complete_and_the_same_command_finishes_it(s3_server, on_s3, local_v30,
                                                                                      tmp_path, monkeypatch):
    fs, options = s3_server
    out = "s3://robots/cut-v30"
    with monkeypatch.context() as patch:
        fail_when_writing(patch, "cut-v30/meta/info.json", DatasetError("the store refused the PUT"))
        with pytest.raises(DatasetError, match="refused the PUT"):
            dask_stats.convert(on_s3, out, to="v3.0", storage_options=options, **TINY, **FAST)
    fs.invalidate_cache()
    assert fs.exists(f"robots/cut-v30/{OUTPUT_MARKER}"), "the prefix is marked unfinished"
    assert fs.find("robots/cut-v30/data") and fs.find("robots/cut-v30/videos") and fs.exists(
        "robots/cut-v30/meta/stats.json"), "every file but the commit point was written"
    assert not fs.exists("robots/cut-v30/meta/info.json"), "no reader finds a dataset before the commit point"
    marker = json.loads(fs.cat(f"robots/cut-v30/{OUTPUT_MARKER}"))
    assert marker == {"source": on_s3, "complete": False}
    with pytest.raises(DatasetError, match="missing meta/info.json"):
        read_dataset(Store(out, options))
    etags = {p: i["ETag"] for p, i in fs.find("robots/cut-v30/videos", detail=True).items()}

    result = dask_stats.convert(on_s3, out, to="v3.0", storage_options=options, **TINY, **FAST)
    assert result.resumed == result.tasks, "every finished file was reused (its ETag unchanged)"
    fs.invalidate_cache()
    assert {p: i["ETag"] for p, i in fs.find("robots/cut-v30/videos", detail=True).items()} == etags
    same_files(local_v30, fetched(fs, "robots/cut-v30", tmp_path / "copy"))


def test_a_finished_file_changed_since_its_checkpoint_is_written_again(s3_server, on_s3, local_v30, tmp_path,
                                                                       monkeypatch):
    fs, options = s3_server
    out = "s3://robots/changed-v30"
    with monkeypatch.context() as patch:
        fail_when_writing(patch, "changed-v30/meta/info.json", DatasetError("cut"))
        with pytest.raises(DatasetError):
            dask_stats.convert(on_s3, out, to="v3.0", storage_options=options, **TINY, **FAST)
    fs.invalidate_cache()
    victim = sorted(fs.find("robots/changed-v30/data"))[0]
    fs.pipe_file(victim, b"not what the run wrote")
    result = dask_stats.convert(on_s3, out, to="v3.0", storage_options=options, **TINY, **FAST)
    assert result.resumed == result.tasks - 1
    same_files(local_v30, fetched(fs, "robots/changed-v30", tmp_path / "copy"))


def test_in_place_on_a_store_is_refused_with_the_output_to_use(s3_server, on_s3):
    _, options = s3_server
    with pytest.raises(DatasetError) as refused:
        dask_stats.convert(on_s3, to="v3.0", storage_options=options, **FAST)
    [problem] = refused.value.problems
    assert "cannot be converted to v3.0 in place" in problem.message
    assert problem.fix.startswith(f"write the new tree beside it: --output {on_s3}-v3.0")


def test_restat_in_place_on_s3_rewrites_only_the_stats(s3_server, local_v30, tmp_path):
    fs, options = s3_server
    fs.put(str(local_v30), "robots/restat", recursive=True)
    stale = json.loads((local_v30 / "meta/stats.json").read_text())
    stale["observation.state"]["mean"] = [0.0] * len(stale["observation.state"]["mean"])  # a stale file
    fs.pipe_file("robots/restat/meta/stats.json", json.dumps(stale).encode())
    fs.invalidate_cache()
    before = fs.find("robots/restat", detail=True)
    time.sleep(1.1)  # LastModified has a resolution of a second
    dask_stats.convert("s3://robots/restat", force=True, skip_verify=True, storage_options=options, **FAST)
    fs.invalidate_cache()
    after = fs.find("robots/restat", detail=True)
    assert after.keys() == before.keys()
    rewritten = {p for p in after if after[p]["LastModified"] != before[p]["LastModified"]}
    assert rewritten == {p for p in after if p.startswith("robots/restat/meta/episodes/")} | {
        "robots/restat/meta/stats.json"}
    assert all(after[p]["ETag"] == before[p]["ETag"] for p in after if p.split("/")[2] in ("data", "videos"))
    assert fs.cat("robots/restat/meta/stats.json") == (local_v30 / "meta/stats.json").read_bytes()
