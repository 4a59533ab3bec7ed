"""dask_stats.engine.runner: where the tasks run and what happens when they misbehave. A real distributed scheduler
with worker processes on loopback (the same output as a local run, a worker lost mid-run), the scheduler address
from Dask's config, hung tasks cut off and reported (also hangs holding the GIL), the longest episodes first, the
dashboard link, and local runs listening on loopback only."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import weakref

import pytest
from fake_backends import GilHangBackend, HangingBackend, RecordingBackend, SlowBackend
from helpers import FAST, SLOW_RUN, SMALL32, TESTS, TWO_CAMERAS, episodes_stats, run_cli

import dask_stats
from dask_stats.errors import TaskError


@pytest.fixture(scope="module")
def dataset(make_sample):
    return make_sample(TWO_CAMERAS, "cluster")


@pytest.fixture(scope="module")
def reference_output(dataset, local_stats) -> bytes:
    return local_stats(dataset)


# -- a distributed scheduler -------------------------------------------------------------------------------------
def test_distributed_run_equals_local(dask_cluster, dataset, reference_output, tmp_path):
    address, client, _ = dask_cluster
    dask_stats.convert(dataset, tmp_path / "api", client=client, quiet=True)
    assert episodes_stats(tmp_path / "api") == reference_output
    cli = run_cli("convert", "--root", dataset, "--output", tmp_path / "cli", "--scheduler-address", address)
    assert cli.returncode == 0, cli.stderr
    assert episodes_stats(tmp_path / "cli") == reference_output


def test_losing_a_worker_mid_run_still_completes(dask_cluster, dataset, reference_output, tmp_path):
    _, client, procs = dask_cluster
    worker = procs[1]
    killer = threading.Timer(1.5, lambda: os.kill(worker.pid, signal.SIGKILL))
    killer.start()
    start = time.monotonic()
    result = dask_stats.convert(dataset, tmp_path / "out", client=client, video_backend=SlowBackend, quiet=True)
    killer.join()
    assert time.monotonic() - start > 1.5, "the run should still have been going when the worker died"
    assert worker.poll() is not None
    assert result.episodes == 6
    assert episodes_stats(tmp_path / "out") == reference_output


def test_task_results_are_folded_as_they_arrive_and_not_kept(dask_cluster, dataset, reference_output, tmp_path,
                                                             monkeypatch):
    """O(1) client memory per task: once a result is folded in, nothing (futures, checkpoint, run) still holds it,
    and the client holds the futures of a window of tasks, not of the whole run."""
    from dask_stats.engine.tasks import Results

    _, client, _ = dask_cluster
    folded, add, tables = [], Results.add, Results.tables

    def recording_add(self, task, result):
        assert len(client.futures) <= 4
        parts = result.tables if task.kind == "video" else result
        folded.extend(weakref.ref(table) for table in parts.values())
        add(self, task, result)

    def checked_tables(self):
        gc.collect()
        assert len(folded) > 6 * 2 and all(ref() is None for ref in folded)  # 6 episodes x 2 cameras, Parquet
        return tables(self)

    monkeypatch.setattr(Results, "add", recording_add)
    monkeypatch.setattr(Results, "tables", checked_tables)
    monkeypatch.setattr("dask_stats.engine.tasks.VIDEO_TASK_SECONDS", 0)  # one video task per episode
    monkeypatch.setattr("dask_stats.engine.runner.MIN_IN_FLIGHT", 4)
    monkeypatch.setattr("dask_stats.engine.runner.IN_FLIGHT_PER_THREAD", 1)  # 2 single-threaded workers: window 4
    dask_stats.convert(dataset, tmp_path / "out", client=client, quiet=True)
    assert episodes_stats(tmp_path / "out") == reference_output


def test_scheduler_address_comes_from_dask_config_and_its_environment_variable():
    import dask

    from dask_stats.options import RunOptions

    assert RunOptions(scheduler_address="tcp://a:1").address() == "tcp://a:1"
    with dask.config.set({"scheduler-address": "tcp://b:2"}):
        assert RunOptions().address() == "tcp://b:2"
        assert RunOptions(scheduler_address="tcp://a:1").address() == "tcp://a:1"
    code = "from dask_stats.options import RunOptions; print(RunOptions().address())"
    env = {**os.environ, "DASK_SCHEDULER_ADDRESS": "tcp://c:3"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert run.stdout.strip() == "tcp://c:3", run.stderr


# -- hangs -------------------------------------------------------------------------------------------------------
def test_hanging_task_is_cut_off_reported_and_the_rest_resumes(dataset, reference_output, tmp_path):
    with pytest.raises(TaskError) as info:
        dask_stats.convert(dataset, tmp_path / "out", video_backend=HangingBackend, task_timeout=3, retries=0,
                           **FAST)
    problems = info.value.problems
    assert {(p.episode, p.feature) for p in problems} == {(1, "observation.images.top"), (1, "observation.images.side")}
    assert all("timed out after 3 s" in p.message and p.path.endswith("episode_000001.mp4") for p in problems)
    assert not (tmp_path / "out").exists(), "nothing is committed for an incomplete run"
    result = dask_stats.convert(dataset, tmp_path / "out", **FAST)
    assert result.resumed == result.tasks - 1  # only the hung episode's task ran again
    assert episodes_stats(tmp_path / "out") == reference_output


def test_gil_holding_hang_is_cut_off_in_processes_mode(make_sample, tmp_path, monkeypatch):
    monkeypatch.setattr("dask_stats.engine.tasks.VIDEO_TASK_SECONDS", 0)  # one video task per episode
    start = time.monotonic()
    with pytest.raises(TaskError) as info:
        dask_stats.convert(make_sample(SMALL32), tmp_path / "out", video_backend=GilHangBackend,
                           scheduler="processes", num_workers=2, task_timeout=2, retries=0, quiet=True)
    assert time.monotonic() - start < 120
    problems = info.value.problems  # tasks waiting on the same worker may be lost with it, and reported too
    assert 1 in {p.episode for p in problems}
    assert all("worker process running it died" in p.message and p.transient for p in problems)
    assert info.value.transient


GIL_HANG = """
import sys
sys.path.insert(0, {tests!r})
from fake_backends import GilHangBackend
import dask_stats
dask_stats.convert({root!r}, {out!r}, video_backend=GilHangBackend, num_workers=2, task_timeout=2, quiet=True)
"""


def test_gil_holding_hang_in_threads_mode_ends_the_process(make_sample, tmp_path):
    script = GIL_HANG.format(tests=str(TESTS), root=str(make_sample(SMALL32)), out=str(tmp_path / "out"))
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and time.monotonic() - start < 60
    assert "Timeout" in run.stderr and "GilHangBackend" not in run.stdout
    assert not (tmp_path / "out").exists()


SLOW_TASK = """
import os, sys
sys.path.insert(0, {tests!r})
os.environ["DASK_STATS_TEST_DELAY"] = "1.0"
from fake_backends import SlowBackend
import dask_stats
dask_stats.convert({root!r}, {out!r}, video_backend=SlowBackend, num_workers=1, task_timeout=3, quiet=True)
"""


def test_the_stall_watchdog_counts_units_not_tasks(dataset, tmp_path):
    """One video task of 12 videos of ~1 s each outlasts twice the 3 s limit of a video: the watchdog of a threads
    run must see each video finish, not wait for the whole task (it would end a healthy run)."""
    script = SLOW_TASK.format(tests=str(TESTS), root=str(dataset), out=str(tmp_path / "out"))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "out/meta/episodes_stats.jsonl").is_file()


# -- order -------------------------------------------------------------------------------------------------------
def test_longest_episodes_are_decoded_first(dataset, tmp_path, monkeypatch):
    """So that a run ends on short tasks instead of one core finishing a long video alone (also when the tasks are
    submitted a window at a time)."""
    monkeypatch.setattr("dask_stats.engine.tasks.VIDEO_TASK_SECONDS", 0)  # one task per episode
    monkeypatch.setattr("dask_stats.engine.runner.MIN_IN_FLIGHT", 3)
    monkeypatch.setattr("dask_stats.engine.runner.IN_FLIGHT_PER_THREAD", 1)
    RecordingBackend.opened.clear()
    dask_stats.convert(dataset, tmp_path / "out", video_backend=RecordingBackend, **{**FAST, "num_workers": 1})
    lengths = [json.loads(line)["length"] for line in (dataset / "meta/episodes.jsonl").read_text().splitlines()]
    opened = [lengths[int(path[-10:-4])] for path in RecordingBackend.opened]
    assert len(opened) == 2 * len(lengths) and opened == sorted(opened, reverse=True)


# -- the dashboard and listening sockets -------------------------------------------------------------------------
def test_dashboard_link_answers_while_running(dataset, copy_of):
    root = copy_of(dataset)
    script = SLOW_RUN.format(tests=str(TESTS), root=str(root))
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


LISTENER = """
import sys
sys.path.insert(0, {tests!r})
from fake_backends import SlowBackend
import dask_stats
dask_stats.convert({root!r}, {out!r}, video_backend=SlowBackend, scheduler={scheduler!r}, num_workers=2, quiet=True)
"""


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_a_local_run_listens_on_loopback_only(make_sample, tmp_path, scheduler):
    psutil = pytest.importorskip("psutil")
    script = LISTENER.format(tests=str(TESTS), root=str(make_sample(SMALL32)), out=str(tmp_path / "out"),
                             scheduler=scheduler)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "DASK_STATS_TEST_DELAY": "0.7"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = set()
    try:
        while proc.poll() is None:
            try:
                family = psutil.Process(proc.pid)
                for process in [family, *family.children(recursive=True)]:
                    seen |= {(c.laddr.ip, c.laddr.port) for c in process.net_connections("inet")
                             if c.status == psutil.CONN_LISTEN}
            except psutil.Error:
                pass
            time.sleep(0.1)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert seen, "the run should have been watched while its cluster was up"
    assert all(ip in ("127.0.0.1", "::1") for ip, _ in seen), seen
    assert 8787 not in {port for _, port in seen}


# -- the local cluster's kind ------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheduler, videos, workers, safe, kind", [
    ("auto", 999, 2, True, "threads"),  # a small run: no start-up cost
    ("auto", 1000, 2, True, "processes"),
    ("auto", 1000, 1, True, "threads"),  # one worker: nothing to contend with
    ("auto", 1000, 2, False, "threads"),  # an unguarded script would run again in each worker
    ("threads", 10**6, 2, True, "threads"),
    ("processes", 1, 2, False, "processes"),
])
def test_auto_picks_worker_processes_for_many_videos_when_safe(monkeypatch, scheduler, videos, workers, safe, kind):
    from dask_stats.engine.runner import local_kind
    from dask_stats.options import RunOptions

    monkeypatch.setattr("dask_stats.engine.runner.spawn_safe", lambda: safe)
    assert local_kind(RunOptions(scheduler=scheduler, num_workers=workers), videos) == kind


@pytest.mark.parametrize("how, safe", [
    (["-c", "import dask_stats.engine.runner as s; print(s.spawn_safe())"], True),  # no __main__ file
    (["-m", "dask_stats", "--help"], True),  # guarded by dask_stats/__main__.py
    (["SCRIPT"], False),  # a script: it may call convert without a guard
])
def test_spawn_safe_knows_who_started_python(how, safe, tmp_path):
    script = tmp_path / "convert_my_data.py"
    script.write_text("import dask_stats.engine.runner as s\nprint(s.spawn_safe())\n")
    if how[0] == "-m":  # ask from inside the command line's own process
        code = ("import runpy, sys, dask_stats.engine.runner as s, dask_stats.cli as c; "
                "c.main = lambda argv=None: print(s.spawn_safe()) or 0; sys.argv = ['dask_stats']; "
                "runpy.run_module('dask_stats', run_name='__main__', alter_sys=True)")
        how = ["-c", code]
    argv = [str(script)] if how == ["SCRIPT"] else how
    run = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip().splitlines()[-1] == str(safe), run.stderr


def test_two_runs_at_once_on_one_scheduler_never_meet(dask_cluster, make_sample, local_stats, tmp_path):
    """Two conversions of different datasets with the same episodes and cameras, started together on one shared
    scheduler with worker processes, each write exactly what a run of their own writes (task keys carry a token of
    the run: the same keys would hand one run the other's results)."""
    from dataclasses import replace
    from threading import Thread

    _, client, _ = dask_cluster
    first = make_sample(TWO_CAMERAS, "cluster")
    second = make_sample(replace(TWO_CAMERAS, seed=7), "cluster-seed7")
    outputs, errors = {}, []

    def run(name, root):
        try:
            dask_stats.convert(root, tmp_path / name, client=client, quiet=True)
            outputs[name] = episodes_stats(tmp_path / name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [Thread(target=run, args=("first", first)), Thread(target=run, args=("second", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert outputs["first"] != outputs["second"]  # different data: a mix-up would show
    assert outputs["first"] == local_stats(first)
    assert outputs["second"] == local_stats(second)


def test_task_keys_are_unique_to_the_run_and_stable_for_its_resume(make_sample, tmp_path):
    from dask_stats.engine.tasks import build_tasks
    from dask_stats.formats import plan_dataset
    from dask_stats.options import Options
    from dask_stats.storage import Store
    from dask_stats.video import get_backend

    root = make_sample(TWO_CAMERAS, "cluster")
    options = Options.of(**FAST)

    def keys(target: str) -> list[str]:
        plan, _ = plan_dataset(Store(str(root)), options.stats)
        plan.bind(options.stats, target)
        return [task.key for task in build_tasks(plan, options, get_backend("pyav"))]

    again, other = keys(str(tmp_path / "a")), keys(str(tmp_path / "b"))
    assert keys(str(tmp_path / "a")) == again  # a re-run of the same command finds its checkpointed results
    assert not set(again) & set(other)  # another target (or dataset, or options) never shares a key
    assert all(key.startswith(("parquet-stats-ep", "video-stats-ep")) for key in again)  # readable on the dashboard
