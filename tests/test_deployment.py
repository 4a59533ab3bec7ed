"""The normal case at scale: a Dask cluster started separately (scheduler and worker processes), the dataset on
S3 (a real S3 protocol server, moto), work spread over the workers, a worker killed mid-run without losing
results, and the same output as a local run."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from distributed import get_task_stream
from fake_backends import SlowBackend
from helpers import FAST

import dask_stats
from dask_stats.sample import Camera, SampleSpec


@pytest.fixture(scope="module")
def dataset(make_sample) -> Path:
    spec = SampleSpec(lengths=[24, 30, 18, 26, 22, 20, 28, 16], chunks_size=4,
                      cameras={"observation.images.top": Camera(32, 32), "observation.images.side": Camera(32, 32)})
    return make_sample(spec, "deploy")


@pytest.mark.parametrize("storage, to", [("s3", "v2.1"), ("shared", "v3.0")])
def test_cluster_spreads_work_survives_a_lost_worker_and_matches_local(s3_server, dask_cluster, dataset, tmp_path,
                                                                       monkeypatch, storage, to):
    fs, options = s3_server
    root, storage_options = str(dataset), None  # shared storage: every worker sees the same path
    if storage == "s3":
        fs.put(str(dataset), "robots/deploy", recursive=True)
        root, storage_options = "s3://robots/deploy", options
    local = dask_stats.convert(dataset, tmp_path / "local", to=to, **FAST)
    monkeypatch.setattr("dask_stats.tasks.VIDEO_TASK_SECONDS", 0)  # one task per episode: many tasks
    monkeypatch.setenv("DASK_STATS_TEST_DELAY", "0.3")
    _, client, procs = dask_cluster
    with get_task_stream(client) as stream:
        dask_stats.convert(root, tmp_path / "spread", client=client, to=to, storage_options=storage_options,
                           quiet=True)
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2, f"the work ran on {workers} only"
    same_files(tmp_path / "local", tmp_path / "spread")

    victim = procs[2]
    killer = threading.Timer(2.0, lambda: os.kill(victim.pid, signal.SIGKILL))
    killer.start()
    result = dask_stats.convert(root, tmp_path / "killed", client=client, to=to, video_backend=SlowBackend,
                                storage_options=storage_options, quiet=True)
    killer.join()
    assert victim.poll() is not None, "the worker was killed during the run"
    assert result.episodes == local.episodes
    same_files(tmp_path / "local", tmp_path / "killed")


def same_files(expected: Path, actual: Path) -> None:
    files = sorted(p.relative_to(expected) for p in expected.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(actual) for p in actual.rglob("*") if p.is_file())
    for path in files:
        assert (actual / path).read_bytes() == (expected / path).read_bytes(), path
