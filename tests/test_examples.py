"""The cluster examples, run for real: a LocalCluster, and a `dask scheduler` + `dask worker` started as
processes; the SLURM and SSH examples need other machines and are only compiled."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import dask_stats
from dask_stats.sample import Camera, SampleSpec, make_dataset

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    spec = SampleSpec(lengths=[12, 20, 7], cameras={"observation.images.top": Camera(32, 32)})
    return make_dataset(tmp_path_factory.mktemp("examples") / "ds", spec)


@pytest.fixture(scope="module")
def expected(dataset, tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("expected") / "out"
    dask_stats.convert(dataset, out, scheduler="threads", num_workers=2, quiet=True)
    return (out / "meta/episodes_stats.jsonl").read_bytes()


@pytest.fixture
def scheduler_and_worker():
    """`python -m distributed.cli.dask_scheduler` and one `dask_worker` process on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"env": ENV, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", "127.0.0.1:0"], **quiet),
             subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "2",
                               "--no-dashboard"], **quiet)]
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_example(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=300, env=ENV)


def test_local_cluster_example(dataset, expected, tmp_path):
    run = run_example("local_cluster.py", str(dataset), "--output", str(tmp_path / "out"), "--workers", "2")
    assert run.returncode == 0, run.stderr
    assert "dashboard: http://" in run.stdout and "Converted 3 episodes, 39 frames" in run.stdout
    assert (tmp_path / "out/meta/episodes_stats.jsonl").read_bytes() == expected


def test_existing_scheduler_example(scheduler_and_worker, dataset, expected, tmp_path):
    run = run_example("existing_scheduler.py", scheduler_and_worker, str(dataset), "--output", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("1 workers, dashboard: http://") and "Converted 3 episodes" in run.stdout
    assert (tmp_path / "out/meta/episodes_stats.jsonl").read_bytes() == expected


@pytest.mark.parametrize("name", ["slurm_cluster.py", "ssh_cluster.py"])
def test_examples_needing_other_machines_compile(name):
    source = (EXAMPLES / name).read_text()
    compile(source, name, "exec")
    assert "dask_stats.convert(" in source and "client=client" in source and '__name__ == "__main__"' in source
