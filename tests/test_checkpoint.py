"""dask_stats.engine.checkpoint: finished tasks are saved as they complete, so that the same command resumes an
interrupted run (a hang, kill -9, an error while committing); a checkpoint is used only for the same inputs and
options, lives in a cache folder that follows XDG, expires, can be cleared, and a locked target refuses a second
run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from fake_backends import HangingBackend
from helpers import FAST, SLOW_RUN, SMALL32, TESTS, TWO_CAMERAS, data, episodes_stats, fail_when_writing, video

import dask_stats
from dask_stats.engine import checkpoint
from dask_stats.engine.checkpoint import checkpoint_path, list_checkpoints, target_lock
from dask_stats.errors import DatasetError, NothingToDo, TaskError, VerificationError
from dask_stats.storage import Store


@pytest.fixture
def ds(make_sample, copy_of):
    return copy_of(make_sample(SMALL32))


def interrupted_run(root) -> None:
    """A run that checkpoints every task but episode 1's video task (it hangs and times out)."""
    with pytest.raises(TaskError):
        dask_stats.convert(root, video_backend=HangingBackend, task_timeout=2, retries=0, **FAST)


# -- stale checkpoints ---------------------------------------------------------------------------------------------
def test_checkpoint_is_not_reused_when_a_file_is_rewritten_with_its_old_mtime(ds):
    interrupted_run(ds)
    time.sleep(0.05)
    path = data(ds, 2)
    st = path.stat()
    path.write_bytes(path.read_bytes())  # edited (here: the same bytes), then `touch -r`'d back
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size
    assert dask_stats.convert(ds, **FAST).resumed == 0


def test_checkpoint_is_not_reused_after_cp_p(ds, tmp_path):
    interrupted_run(ds)
    time.sleep(0.05)
    path = video(ds, 0)
    shutil.copy2(path, tmp_path / "saved.mp4")
    path.unlink()
    shutil.copy2(tmp_path / "saved.mp4", path)  # `cp -p`: same size and mtime, another inode and ctime
    assert dask_stats.convert(ds, **FAST).resumed == 0


def test_results_that_failed_verification_are_not_resumed(ds):
    stats = json.loads((ds / "meta/stats.json").read_text())
    stats["action"]["mean"][0] += 0.5
    (ds / "meta/stats.json").write_text(json.dumps(stats))
    with pytest.raises(VerificationError):
        dask_stats.convert(ds, **FAST)
    result = dask_stats.convert(ds, skip_verify=True, **FAST)
    assert result.resumed == 0


def test_checkpoint_from_other_inputs_is_not_reused(make_sample, copy_of):
    root = copy_of(make_sample(TWO_CAMERAS))
    interrupted_run(root)
    stats = (root / "meta/stats.json")
    stats.write_text(stats.read_text())  # same bytes: not an input of the stats
    path = next(root.glob("data/*/episode_000003.parquet"))
    os.utime(path, ns=(time.time_ns(), time.time_ns()))  # a data file changed
    result = dask_stats.convert(root, **FAST)
    assert result.resumed == 0


def test_checkpoint_from_other_options_is_not_reused(make_sample, copy_of):
    root = copy_of(make_sample(TWO_CAMERAS))
    interrupted_run(root)
    assert dask_stats.convert(root, video_backend="decord", **FAST).resumed == 0


# -- the checkpoint store ------------------------------------------------------------------------------------------
def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("DASK_STATS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert checkpoint.cache_dir() == tmp_path / "xdg" / "dask_stats"
    monkeypatch.setenv("DASK_STATS_CACHE", str(tmp_path / "mine"))
    assert checkpoint.cache_dir() == tmp_path / "mine"


def test_one_checkpoint_file_per_run_listed_expired_and_cleared(ds, monkeypatch, tmp_path):
    monkeypatch.setenv("DASK_STATS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("dask_stats.engine.tasks.VIDEO_TASK_SECONDS", 0)  # one task per episode
    interrupted_run(ds)
    [saved] = checkpoint.list_checkpoints()
    assert saved.target == str(ds) and saved.tasks >= 2
    assert {p.suffix for p in saved.path.parent.iterdir()} <= {".sqlite", ".sqlite-wal", ".sqlite-shm"}
    old = time.time() - 15 * 86400
    for part in saved.path.parent.iterdir():
        os.utime(part, (old, old))
    assert dask_stats.convert(ds, **FAST).resumed == 0  # expired at start
    with pytest.raises(TaskError):
        dask_stats.convert(ds, video_backend=HangingBackend, task_timeout=2, retries=0, force=True, **FAST)
    assert checkpoint.clear_checkpoints(ds) == 1
    assert checkpoint.list_checkpoints() == []


def test_unwritable_cache_warns_once_and_runs_without_resume(ds, monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("DASK_STATS_CACHE", str(blocker / "cache"))
    caplog.set_level("WARNING", logger="dask_stats")  # an earlier in-process CLI run with --quiet may have raised it
    result = dask_stats.convert(ds, **FAST)
    assert result.episodes == 3
    warnings = [r for r in caplog.records if "checkpoints cannot be saved" in r.getMessage()]
    assert len(warnings) == 1 and str(ds) not in warnings[0].getMessage()


# -- resume and concurrency ----------------------------------------------------------------------------------------
def test_kill9_leaves_metadata_intact_and_the_rerun_resumes(make_sample, local_stats, copy_of, monkeypatch):
    dataset = make_sample(TWO_CAMERAS)
    root = copy_of(dataset)
    info_before = (root / "meta/info.json").read_bytes()
    path = checkpoint_path(Store(root))  # this dataset's (other tests leave theirs)
    script = SLOW_RUN.format(tests=str(TESTS), root=str(root))
    env = {**os.environ, "DASK_STATS_TEST_DELAY": "0.6"}  # 6 tasks of 2 videos on 2 threads: >= 3.6 s per run

    def saved() -> int:
        return sum(c.tasks for c in list_checkpoints() if c.path == path)

    # kill at several points of the run: during start-up, then each time once one more result is checkpointed
    for more in (0, 1, 1):
        before = saved()
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        deadline = time.monotonic() + (1.0 if more == 0 else 60)
        while time.monotonic() < deadline and saved() < before + more and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert (root / "meta/info.json").read_bytes() == info_before
        assert not (root / "meta/episodes_stats.jsonl").exists()
    finished = saved()
    assert finished >= 2, "finished tasks should have been checkpointed before the kills"
    monkeypatch.setattr("dask_stats.engine.tasks.VIDEO_TASK_SECONDS", 0)  # the tasks of the killed runs
    result = dask_stats.convert(root, **FAST)
    assert result.resumed >= finished
    assert episodes_stats(root) == local_stats(dataset)
    assert json.loads((root / "meta/info.json").read_text())["codebase_version"] == "v2.1"


def test_output_interrupted_while_committing_is_resumed_by_the_same_command(make_sample, tmp_path, monkeypatch):
    small = make_sample(SMALL32)
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        fail_when_writing(patch, "meta/info.json", DatasetError("disk full"))
        with pytest.raises(DatasetError) as info:
            dask_stats.convert(small, out, **FAST)
        assert getattr(info.value, "partial_commit", False)
    assert (out / "meta/episodes_stats.jsonl").exists()
    result = dask_stats.convert(small, out, **FAST)
    assert result.resumed == result.tasks
    assert json.loads((out / "meta/info.json").read_text())["codebase_version"] == "v2.1"
    assert not (out / ".dask_stats-output").exists()
    with pytest.raises(NothingToDo, match="already holds the v2.1 conversion"):  # complete now: nothing to resume
        dask_stats.convert(small, out, **FAST)


def test_a_second_run_on_the_same_target_is_refused(make_sample, tmp_path):
    small = make_sample(SMALL32)
    with target_lock(Store(tmp_path / "out")):
        with pytest.raises(DatasetError, match="another dask_stats run is converting into this target"):
            dask_stats.convert(small, tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists()
    assert dask_stats.convert(small, tmp_path / "out", **FAST).episodes == 3
