"""Issue 6: a real distributed scheduler with 2 worker processes on loopback, lost workers, hangs, resume,
and the dashboard."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from fake_backends import HangingBackend, RecordingBackend, SlowBackend

import dask_stats
from dask_stats.checkpoint import checkpoint_path, list_checkpoints
from dask_stats.errors import TaskError
from dask_stats.options import RunOptions
from dask_stats.sample import Camera, SampleSpec, make_dataset
from dask_stats.storage import Store

TESTS = Path(__file__).parent
LOCAL = {"scheduler": "threads", "num_workers": 2, "quiet": True}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    spec = SampleSpec(lengths=[20, 30, 25, 15, 22, 18], chunks_size=4,
                      cameras={"observation.images.top": Camera(32, 32), "observation.images.side": Camera(32, 32)})
    return make_dataset(tmp_path_factory.mktemp("cluster") / "ds", spec)


@pytest.fixture(scope="module")
def reference_output(dataset, tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("ref") / "out"
    dask_stats.convert(dataset, out, **LOCAL)
    return (out / "meta/episodes_stats.jsonl").read_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster():
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1 (tests/ importable by the workers)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    address = f"tcp://127.0.0.1:{port}"
    for _ in range(2):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                       "--nthreads", "1", "--nworkers", "1", "--no-dashboard"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    client = Client(address, timeout=60)
    client.wait_for_workers(2, timeout=60)
    yield address, client, procs
    client.close()
    for proc in procs:
        proc.kill()
        proc.wait()


def test_distributed_run_equals_local(cluster, dataset, reference_output, tmp_path):
    address, client, _ = cluster
    dask_stats.convert(dataset, tmp_path / "api", client=client, quiet=True)
    assert (tmp_path / "api/meta/episodes_stats.jsonl").read_bytes() == reference_output
    cli = subprocess.run([sys.executable, "-m", "dask_stats", "convert", "--root", str(dataset), "--output",
                          str(tmp_path / "cli"), "--scheduler-address", address], capture_output=True, text=True,
                         timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert (tmp_path / "cli/meta/episodes_stats.jsonl").read_bytes() == reference_output


def test_losing_a_worker_mid_run_still_completes(cluster, dataset, reference_output, tmp_path):
    _, client, procs = cluster
    worker = procs[1]
    killer = threading.Timer(1.5, lambda: os.kill(worker.pid, signal.SIGKILL))
    killer.start()
    start = time.monotonic()
    result = dask_stats.convert(dataset, tmp_path / "out", client=client, video_backend=SlowBackend, quiet=True)
    killer.join()
    assert time.monotonic() - start > 1.5, "the run should still have been going when the worker died"
    assert worker.poll() is not None
    assert result.episodes == 6
    assert (tmp_path / "out/meta/episodes_stats.jsonl").read_bytes() == reference_output


def test_hanging_task_is_cut_off_reported_and_the_rest_resumes(dataset, reference_output, tmp_path):
    with pytest.raises(TaskError) as info:
        dask_stats.convert(dataset, tmp_path / "out", video_backend=HangingBackend, task_timeout=3, retries=0,
                           **LOCAL)
    problems = info.value.problems
    assert {(p.episode, p.feature) for p in problems} == {(1, "observation.images.top"), (1, "observation.images.side")}
    assert all("timed out after 3 s" in p.message and p.path.endswith("episode_000001.mp4") for p in problems)
    assert not (tmp_path / "out").exists(), "nothing is committed for an incomplete run"
    result = dask_stats.convert(dataset, tmp_path / "out", **LOCAL)
    assert result.resumed == result.tasks - 1  # only the hung episode's task ran again
    assert (tmp_path / "out/meta/episodes_stats.jsonl").read_bytes() == reference_output


RUNNER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from fake_backends import SlowBackend
    import dask_stats
    import dask_stats.tasks
    dask_stats.tasks.SAMPLED_FRAMES_PER_VIDEO_TASK = 1  # one task per episode
    dask_stats.convert({root!r}, video_backend=SlowBackend, scheduler="threads", num_workers=2,
                       dashboard_address="127.0.0.1:0")
""")


def test_longest_episodes_are_decoded_first(dataset, tmp_path, monkeypatch):
    """So that a run ends on short tasks instead of one core finishing a long video alone."""
    monkeypatch.setattr("dask_stats.tasks.SAMPLED_FRAMES_PER_VIDEO_TASK", 1)  # one task per episode
    RecordingBackend.opened.clear()
    dask_stats.convert(dataset, tmp_path / "out", video_backend=RecordingBackend, **{**LOCAL, "num_workers": 1})
    lengths = [json.loads(line)["length"] for line in (dataset / "meta/episodes.jsonl").read_text().splitlines()]
    opened = [lengths[int(path[-10:-4])] for path in RecordingBackend.opened]
    assert len(opened) == 2 * len(lengths) and opened == sorted(opened, reverse=True)


def test_kill9_leaves_metadata_intact_and_the_rerun_resumes(dataset, reference_output, tmp_path, copy_of,
                                                            monkeypatch):
    root = copy_of(dataset)
    info_before = (root / "meta/info.json").read_bytes()
    checkpoint = checkpoint_path(Store(root))  # this dataset's (other tests leave theirs)
    script = RUNNER.format(tests=str(TESTS), root=str(root))
    env = {**os.environ, "DASK_STATS_TEST_DELAY": "0.6"}  # 6 tasks of 2 videos on 2 threads: >= 3.6 s per run
    for delay in (2.0, 3.0, 4.0):  # kill at several points of the run (startup, first tasks, mid-way)
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert (root / "meta/info.json").read_bytes() == info_before
        assert not (root / "meta/episodes_stats.jsonl").exists()
    saved = [c.tasks for c in list_checkpoints() if c.path == checkpoint]
    assert saved and saved[0], "finished tasks should have been checkpointed before the kill"
    monkeypatch.setattr("dask_stats.tasks.SAMPLED_FRAMES_PER_VIDEO_TASK", 1)  # the tasks of the killed runs
    result = dask_stats.convert(root, **LOCAL)
    assert result.resumed >= saved[0]
    assert (root / "meta/episodes_stats.jsonl").read_bytes() == reference_output
    assert json.loads((root / "meta/info.json").read_text())["codebase_version"] == "v2.1"


def test_checkpoint_from_other_inputs_is_not_reused(dataset, tmp_path, copy_of):
    root = copy_of(dataset)
    with pytest.raises(TaskError):
        dask_stats.convert(root, video_backend=HangingBackend, task_timeout=2, retries=0, **LOCAL)
    stats = (root / "meta/stats.json")
    stats.write_text(stats.read_text())  # same bytes: not an input of the stats
    data = next(root.glob("data/*/episode_000003.parquet"))
    os.utime(data, ns=(time.time_ns(), time.time_ns()))  # a data file changed
    result = dask_stats.convert(root, **LOCAL)
    assert result.resumed == 0


def test_checkpoint_from_other_options_is_not_reused(dataset, copy_of):
    root = copy_of(dataset)
    with pytest.raises(TaskError):
        dask_stats.convert(root, video_backend=HangingBackend, task_timeout=2, retries=0, **LOCAL)
    assert dask_stats.convert(root, video_backend="decord", **LOCAL).resumed == 0


def test_dashboard_link_answers_while_running(dataset, tmp_path, copy_of):
    root = copy_of(dataset)
    script = RUNNER.format(tests=str(TESTS), root=str(root))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, "DASK_STATS_TEST_DELAY": "1.0"})
    try:
        line = ""
        while "Dask dashboard:" not in line:
            line = proc.stdout.readline()
            assert line, "no dashboard link printed"
        url = line.split("Dask dashboard:")[1].strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
            assert "Dask" in response.read().decode(errors="replace")
        assert proc.poll() is None, "the run should still be going"
    finally:
        proc.kill()
        proc.wait()


def test_dashboard_only_where_its_link_is_shown():
    assert RunOptions().dashboard() == "127.0.0.1:0"
    assert RunOptions(quiet=True).dashboard() is None  # nobody would learn its port
    assert RunOptions(quiet=True, dashboard_address="127.0.0.1:8799").dashboard() == "127.0.0.1:8799"
    assert RunOptions(dashboard_address="off").dashboard() is None


EXAMPLES = TESTS.parent / "examples"


def test_example_local_cluster(dataset, reference_output, tmp_path):
    run = subprocess.run([sys.executable, str(EXAMPLES / "local_cluster.py"), str(dataset), "--output",
                          str(tmp_path / "out"), "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "dashboard: http://" in run.stdout and "Converted 6 episodes" in run.stdout
    assert (tmp_path / "out/meta/episodes_stats.jsonl").read_bytes() == reference_output


def test_example_existing_scheduler(cluster, dataset, reference_output, tmp_path):
    address = cluster[0]
    run = subprocess.run([sys.executable, str(EXAMPLES / "existing_scheduler.py"), address, str(dataset),
                          "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "2 workers" in run.stdout
    assert (tmp_path / "out/meta/episodes_stats.jsonl").read_bytes() == reference_output


@pytest.mark.parametrize("name", ["slurm_cluster.py", "ssh_cluster.py"])
def test_examples_needing_other_machines_at_least_compile(name):
    """SLURM and SSH clusters cannot run here; make sure the scripts are valid Python that uses our API."""
    source = (EXAMPLES / name).read_text()
    compile(source, name, "exec")
    assert "dask_stats.convert(" in source and "client=client" in source
