"""Shared fixtures: generated v2.0 datasets (made once per session, copied per test when mutated)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from dask_stats.sample import Camera, SampleSpec, make_dataset

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "gr00t_pick_n_place"

# Episode 0 is not the longest; a 1-frame episode; 3 chunks; 2 cameras; float64/bool/int/string/image columns.
MESSY = SampleSpec(lengths=[30, 140, 1, 45, 12], chunks_size=2, string_column=True,
                   image_column="observation.images.cam_png")


@pytest.fixture(autouse=True, scope="session")
def private_checkpoint_cache(tmp_path_factory):
    """Checkpoints of test runs go to a temporary cache, not ~/.cache/dask_stats."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DASK_STATS_CACHE", str(tmp_path_factory.mktemp("dask_stats_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def messy_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("messy") / "ds", MESSY)


@pytest.fixture(scope="session")
def av1_dataset(tmp_path_factory) -> Path:
    spec = SampleSpec(lengths=[25, 110], cameras={"observation.images.top": Camera(codec="libsvtav1")},
                      fixed_size_lists=False)
    return make_dataset(tmp_path_factory.mktemp("av1") / "ds", spec)


@pytest.fixture
def copy_of(tmp_path):
    """Copy a session dataset into this test's tmp dir (for tests that convert in place or corrupt it)."""

    def _copy(source: Path) -> Path:
        target = tmp_path / source.name
        shutil.copytree(source, target)
        return target

    return _copy


def tree_digest(root: Path) -> str:
    """A hash of every file's path and bytes under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's standalone S3 server on 127.0.0.1, with a bucket ``robots``; credentials and endpoint through the
    standard AWS variables (so that subprocesses, e.g. Dask workers, reach it too).  Yields (filesystem, options)."""
    import os
    import subprocess
    import sys
    import time

    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    import fsspec

    endpoint = f"http://127.0.0.1:{free_port()}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", endpoint.rsplit(":", 1)[1]],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": endpoint}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    options = {"endpoint_url": endpoint, "key": "test", "secret": "test"}
    fs = fsspec.filesystem("s3", **options)
    for _ in range(100):
        try:
            fs.mkdir("robots")
            break
        except Exception:  # noqa: BLE001 - the server is still starting
            time.sleep(0.1)
    yield fs, options
    server.kill()
    server.wait()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def dask_cluster():
    """A Dask deployment as on SLURM or Kubernetes: ``dask scheduler`` and two ``dask worker`` processes, started
    separately on 127.0.0.1 (tests/ importable by the workers).  Yields (address, client, processes)."""
    import os
    import subprocess
    import sys

    from distributed import Client

    tests = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    address = f"tcp://127.0.0.1:{free_port()}"
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", address.rsplit(":", 1)[1], "--dashboard-address", "127.0.0.1:0"], **quiet)]
    procs += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"], **quiet) for _ in range(2)]
    client = Client(address, timeout=60)
    client.wait_for_workers(2, timeout=60)
    yield address, client, procs
    client.close()
    for proc in procs:
        proc.kill()
        proc.wait()
