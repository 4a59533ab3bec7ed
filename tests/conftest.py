"""Shared fixtures: sample datasets built once per session (``make_sample``; copied per test with ``copy_of`` when a
test changes them), a free port, a moto S3 server, a Dask cluster of separate processes, and a local stand-in of the
Hugging Face Hub. Shared helpers (the fast-run options, dataset edits) are in helpers.py."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

pytest.register_assert_rewrite("helpers", "float64_reference")

from helpers import AV1, FAST, HUB_REPO, MESSY, episodes_stats, with_tests_on_path  # noqa: E402

from dask_stats.synthetic import SampleSpec, make_dataset  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def private_checkpoint_cache(tmp_path_factory):
    """Checkpoints of test runs go to a temporary cache, not ~/.cache/dask_stats."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DASK_STATS_CACHE", str(tmp_path_factory.mktemp("dask_stats_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def make_sample(tmp_path_factory):
    """``make_sample(spec, name="sample")``: the path of a v2.0 dataset generated from ``spec``, built once per
    session for each distinct spec. Shared by every test asking for that spec: never change it, ``copy_of`` it."""
    built: dict[str, Path] = {}

    def make(spec: SampleSpec, name: str = "sample") -> Path:
        key = repr(spec)
        if key not in built:
            built[key] = make_dataset(tmp_path_factory.mktemp(name) / "ds", spec)
        return built[key]

    return make


@pytest.fixture(scope="session")
def messy_dataset(make_sample) -> Path:
    return make_sample(MESSY, "messy")


@pytest.fixture(scope="session")
def av1_dataset(make_sample) -> Path:
    return make_sample(AV1, "av1")


@pytest.fixture(scope="session")
def local_stats(tmp_path_factory):
    """``local_stats(root)``: the meta/episodes_stats.jsonl bytes of a fast local conversion of ``root`` (made once
    per session): what every other way of running the same conversion must write."""
    import dask_stats

    done: dict[Path, bytes] = {}

    def stats(root: Path) -> bytes:
        if root not in done:
            out = tmp_path_factory.mktemp("local") / "out"
            dask_stats.convert(root, out, **FAST)
            done[root] = episodes_stats(out)
        return done[root]

    return stats


@pytest.fixture
def copy_of(tmp_path):
    """Copy a session dataset into this test's tmp dir (for tests that convert in place or corrupt it)."""

    def _copy(source: Path, name: str | None = None) -> Path:
        target = tmp_path / (name or source.name)
        shutil.copytree(source, target)
        return target

    return _copy


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
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

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
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
def dask_cluster(request):
    """A Dask deployment as on SLURM or Kubernetes: ``dask scheduler`` and two ``dask worker`` processes (another
    number with ``@pytest.mark.parametrize("dask_cluster", [N], indirect=True)``), started separately on 127.0.0.1
    (tests/ importable by the workers).  Yields (address, client, processes)."""
    import subprocess
    import sys

    from distributed import Client

    workers = getattr(request, "param", 2)
    address = f"tcp://127.0.0.1:{free_port()}"
    quiet = {"env": with_tests_on_path(), "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", address.rsplit(":", 1)[1], "--dashboard-address", "127.0.0.1:0"], **quiet)]
    procs += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"], **quiet)
              for _ in range(workers)]
    client = Client(address, timeout=60)
    client.wait_for_workers(workers, timeout=60)
    yield address, client, procs
    client.close()
    for proc in procs:
        proc.kill()
        proc.wait()


# -- the Hugging Face Hub, stood in for on 127.0.0.1 (tests/hubstub.py) ------------------------------------------------
@pytest.fixture
def hf_env(tmp_path, monkeypatch):
    """Private HF cache and lerobot home; huggingface_hub read its constants at import, so patch them."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lerobot"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture
def hf_offline(monkeypatch):
    """HF_HUB_OFFLINE, as huggingface_hub read it at import."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def stub():
    from hubstub import HubStub

    with HubStub() as s:
        yield s


@pytest.fixture
def api(stub, monkeypatch):
    from huggingface_hub import HfApi, constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True, raising=False)  # the stand-in speaks LFS, not Xet
    return HfApi(endpoint=stub.url, token="hf_test")


@pytest.fixture(scope="session")
def tiny_v20(make_sample) -> Path:
    """A tiny v2.0 dataset (2 episodes, one 16x16 camera), made once."""
    from helpers import CAM

    from dask_stats.synthetic import Camera

    return make_sample(SampleSpec(lengths=[5, 3], cameras={CAM: Camera(16, 16)}), "tiny")


@pytest.fixture
def tiny_v21(tiny_v20, tmp_path) -> Path:
    """tiny_v20 as a conversion leaves it (stand-in stats): v2.1 info.json, an episodes_stats.jsonl, stats.json
    kept."""
    import json

    dest = tmp_path / "converted"
    shutil.copytree(tiny_v20, dest)
    info_path = dest / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["codebase_version"] = "v2.1"
    info_path.write_text(json.dumps(info, indent=4))
    lines = [{"episode_index": i, "stats": {"frame_index": {"min": [0], "count": [n]}}} for i, n in enumerate([5, 3])]
    (dest / "meta" / "episodes_stats.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return dest


@pytest.fixture
def hub_v20(stub, tiny_v20):
    """The Hub as a v2.0 dataset leaves it: main at the v2.0 commit, tagged v2.0, with meta/stats.json."""
    from hubstub import dataset_files

    files = {**dataset_files(tiny_v20), "README.md": b"# tiny\n", "images/leftover.png": b"png"}
    return stub.add_repo(HUB_REPO, files, tag="v2.0")
