"""Remote datasets through fsspec: a real S3 protocol server (moto, on loopback) read by s3fs, and memory://."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest

import dask_stats
from dask_stats.sample import Camera, SampleSpec, make_dataset

pytest.importorskip("s3fs")
pytest.importorskip("moto")

LOCAL = {"scheduler": "threads", "num_workers": 2, "quiet": True}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    spec = SampleSpec(lengths=[12, 25, 1], cameras={"observation.images.top": Camera(32, 32)})
    return make_dataset(tmp_path_factory.mktemp("remote") / "ds", spec)


@pytest.fixture(scope="module")
def local_result(dataset, tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("local") / "out"
    dask_stats.convert(dataset, out, **LOCAL)
    return (out / "meta/episodes_stats.jsonl").read_bytes()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's standalone S3 server on 127.0.0.1; credentials and endpoint through the usual variables."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": endpoint}
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    options = {"endpoint_url": endpoint, "key": "test", "secret": "test"}
    fs = fsspec.filesystem("s3", **options)
    for _ in range(100):
        try:
            fs.mkdir("robots")
            break
        except Exception:  # noqa: BLE001 - server still starting
            time.sleep(0.1)
    yield fs, options
    mp.undo()
    server.kill()
    server.wait()


def test_s3_round_trip_in_place_and_to_output(s3, dataset, local_result):
    fs, options = s3
    fs.put(str(dataset), "robots/ds", recursive=True)
    result = dask_stats.convert("s3://robots/ds", "s3://robots/converted", storage_options=options, **LOCAL)
    assert result.output == "s3://robots/converted" and result.verification.checked
    assert fs.cat_file("robots/converted/meta/episodes_stats.jsonl") == local_result
    assert json.loads(fs.cat_file("robots/converted/meta/info.json"))["codebase_version"] == "v2.1"
    assert fs.exists("robots/converted/videos/chunk-000/observation.images.top/episode_000001.mp4")
    assert json.loads(fs.cat_file("robots/ds/meta/info.json"))["codebase_version"] == "v2.0"  # source untouched

    dask_stats.convert("s3://robots/ds", storage_options=options, delete_old_stats=True, **LOCAL)  # in place
    assert fs.cat_file("robots/ds/meta/episodes_stats.jsonl") == local_result
    assert not fs.exists("robots/ds/meta/stats.json")


def test_s3_errors_name_the_remote_file(s3, dataset):
    fs, options = s3
    fs.put(str(dataset), "robots/broken", recursive=True)
    fs.rm_file("robots/broken/videos/chunk-000/observation.images.top/episode_000001.mp4")
    with pytest.raises(dask_stats.DatasetError) as info:
        dask_stats.convert("s3://robots/broken", storage_options=options, **LOCAL)
    assert "s3://robots/broken/videos/chunk-000/observation.images.top/episode_000001.mp4" in str(info.value)


def test_cli_reads_s3_with_the_standard_environment(s3, dataset, local_result, tmp_path):
    fs, _ = s3
    fs.put(str(dataset), "robots/cli", recursive=True)
    run = subprocess.run([sys.executable, "-m", "dask_stats", "convert", "--root", "s3://robots/cli", "--output",
                          str(tmp_path / "out"), "--scheduler", "threads"], capture_output=True, text=True,
                         env=os.environ, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out/meta/episodes_stats.jsonl").read_bytes() == local_result


def test_memory_filesystem(dataset, local_result):
    fs = fsspec.filesystem("memory")
    fs.put(str(dataset), "/mem-ds", recursive=True)
    dask_stats.convert("memory://mem-ds", **LOCAL)
    assert fs.cat_file("/mem-ds/meta/episodes_stats.jsonl") == local_result


def test_file_url(dataset, local_result, tmp_path):
    out = tmp_path / "out"
    dask_stats.convert(f"file://{dataset}", f"file://{out}", **LOCAL)
    assert (out / "meta/episodes_stats.jsonl").read_bytes() == local_result
