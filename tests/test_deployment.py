"""The normal case at scale: a Dask cluster started separately (scheduler and worker processes), the dataset on
S3 (a real S3 protocol server, moto), work spread over the workers, a worker killed mid-run without losing
results, and the same output as a local run."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest
from distributed import get_task_stream
from fake_backends import SlowBackend
from helpers import FAST

import dask_stats
from dask_stats.cli import main
from dask_stats.errors import DatasetError
from dask_stats.storage import Store
from dask_stats.synthetic import Camera, SampleSpec


@pytest.fixture(scope="module")
def dataset(make_sample) -> Path:
    spec = SampleSpec(lengths=[24, 30, 18, 26, 22, 20, 28, 16], chunks_size=4,
                      cameras={"observation.images.top": Camera(32, 32), "observation.images.side": Camera(32, 32)})
    return make_sample(spec, "deploy")


@pytest.mark.parametrize("storage, to", [("s3", "v2.1"), ("shared", "v3.0"), ("s3", "v3.0")])
def test_cluster_spreads_work_survives_a_lost_worker_and_matches_local(s3_server, dask_cluster, dataset, tmp_path,
                                                                       monkeypatch, storage, to):
    """v3.0 from S3 goes into S3: the workers write the data and video files there, the client only meta/."""
    fs, options = s3_server
    root, storage_options = str(dataset), None  # shared storage: every worker sees the same path
    if storage == "s3":
        fs.put(str(dataset), f"robots/deploy-{to}", recursive=True)  # a new prefix (put into one nests)
        root, storage_options = f"s3://robots/deploy-{to}", options
    into_s3 = storage == "s3" and to == "v3.0"

    def output(name: str):
        return f"s3://robots/{tmp_path.name}-{name}" if into_s3 else tmp_path / name

    def written(name: str) -> Path:
        if into_s3:
            fs.invalidate_cache()
            fs.get(f"robots/{tmp_path.name}-{name}", str(tmp_path / name), recursive=True)
        return tmp_path / name

    by_client = []
    real = Store.writing
    monkeypatch.setattr(Store, "writing", lambda self, path: by_client.append(path) or real(self, path))
    local = dask_stats.convert(dataset, tmp_path / "local", to=to, **FAST)
    by_client.clear()
    monkeypatch.setattr("dask_stats.engine.tasks.VIDEO_TASK_SECONDS", 0)  # one task per episode: many tasks
    monkeypatch.setenv("DASK_STATS_TEST_DELAY", "0.3")
    _, client, procs = dask_cluster
    with get_task_stream(client) as stream:
        dask_stats.convert(root, output("spread"), client=client, to=to, storage_options=storage_options,
                           quiet=True)
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2, f"the work ran on {workers} only"
    same_files(tmp_path / "local", written("spread"))
    if into_s3:
        assert by_client and all("/meta/" in path for path in by_client), "no data or video bytes through the client"

    victim = procs[2]
    killer = threading.Timer(2.0, lambda: os.kill(victim.pid, signal.SIGKILL))
    killer.start()
    result = dask_stats.convert(root, output("killed"), client=client, to=to, video_backend=SlowBackend,
                                storage_options=storage_options, quiet=True)
    killer.join()
    assert victim.poll() is not None, "the worker was killed during the run"
    assert result.episodes == local.episodes
    same_files(tmp_path / "local", written("killed"))


def test_preflight_checks_remote_episodes_on_the_workers(s3_server, dask_cluster, dataset, tmp_path, monkeypatch,
                                                         capsys):
    """The episodes of a dataset on S3 are checked by the cluster's workers, in batches named by the episodes they
    cover; what they find (a damaged Parquet footer; for check, an empty video) names episode and file, check
    exits 1 and convert refuses with it."""
    fs, options = s3_server
    broken = shutil.copytree(dataset, tmp_path / "broken")
    parquet = broken / "data/chunk-001/episode_000005.parquet"
    parquet.write_bytes(parquet.read_bytes()[:-20])
    (broken / "videos/chunk-000/observation.images.side/episode_000002.mp4").write_bytes(b"")
    fs.put(str(broken), "robots/broken", recursive=True)
    root = "s3://robots/broken"
    monkeypatch.setattr(importlib.import_module("dask_stats.check"), "CHECK_BATCH", 3)
    address, client, _ = dask_cluster
    batches = {"check-ep000000-000002", "check-ep000003-000005", "check-ep000006-000007"}

    with get_task_stream(client) as stream:
        problems = dask_stats.check(root, client=client, storage_options=options)
    assert {task["key"].rsplit("-", 1)[0] for task in stream.data} == batches  # less the run's token
    found = {(p.episode, p.feature, p.path.rsplit("/", 1)[1]): p.message for p in problems}
    assert found.keys() == {(2, "observation.images.side", "episode_000002.mp4"), (5, None, "episode_000005.parquet")}
    assert "cannot be read" in found[5, None, "episode_000005.parquet"]

    with get_task_stream(client) as stream:  # the command line, through the scheduler's address
        assert main(["check", "--root", root, "--scheduler-address", address]) == 1
    assert {task["key"].rsplit("-", 1)[0] for task in stream.data} == batches  # less the run's token
    out = capsys.readouterr().out
    assert f"(episode 5, file {root}/data/chunk-001/episode_000005.parquet)" in out
    assert f"(episode 2, feature 'observation.images.side', file {root}/videos/chunk-000/" in out

    with get_task_stream(client) as stream, pytest.raises(DatasetError) as refused:
        dask_stats.convert(root, "s3://robots/broken-out", client=client, storage_options=options, quiet=True)
    assert {task["key"].rsplit("-", 1)[0] for task in stream.data} == batches  # the preflight's only
    [problem] = refused.value.problems
    assert (problem.episode, problem.path) == (5, f"{root}/data/chunk-001/episode_000005.parquet")
    assert not fs.exists("robots/broken-out/meta")


def same_files(expected: Path, actual: Path) -> None:
    files = sorted(p.relative_to(expected) for p in expected.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(actual) for p in actual.rglob("*") if p.is_file())
    for path in files:
        assert (actual / path).read_bytes() == (expected / path).read_bytes(), path
