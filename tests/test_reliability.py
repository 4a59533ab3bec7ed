"""Reliability faults from the adversarial review: stale checkpoints, cache hygiene, corrupt videos, file modes,
listening sockets, hangs, resume and locks, exit codes, bad metadata, blame, NaN."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from fake_backends import HangingBackend

import dask_stats
from dask_stats.errors import TaskError, VerificationError
from dask_stats.sample import Camera, SampleSpec, make_dataset

FAST = {"scheduler": "threads", "num_workers": 2, "quiet": True}
CAM = "observation.images.top"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    spec = SampleSpec(lengths=[20, 35, 12], cameras={CAM: Camera(32, 32)}, chunks_size=2)
    return make_dataset(tmp_path_factory.mktemp("rel") / "ds", spec)


@pytest.fixture
def ds(small, copy_of) -> Path:
    return copy_of(small)


def data(root: Path, episode: int) -> Path:
    return root / f"data/chunk-{episode // 2:03d}/episode_{episode:06d}.parquet"


def video(root: Path, episode: int) -> Path:
    return root / f"videos/chunk-{episode // 2:03d}/{CAM}/episode_{episode:06d}.mp4"


def interrupted_run(root: Path) -> None:
    """A run that checkpoints every task but episode 1's video task (it hangs and times out)."""
    with pytest.raises(TaskError):
        dask_stats.convert(root, video_backend=HangingBackend, task_timeout=2, retries=0, **FAST)


# -- 1. stale checkpoints ----------------------------------------------------------------------------------------
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


# -- 2. the checkpoint store ---------------------------------------------------------------------------------------
def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    from dask_stats.checkpoint import cache_dir

    monkeypatch.delenv("DASK_STATS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "dask_stats"
    monkeypatch.setenv("DASK_STATS_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_one_checkpoint_file_per_run_listed_expired_and_cleared(ds, monkeypatch, tmp_path):
    from dask_stats import checkpoint

    monkeypatch.setenv("DASK_STATS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("dask_stats.tasks.SAMPLED_FRAMES_PER_VIDEO_TASK", 1)  # one task per episode
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


# -- 3. damaged videos -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def video_dataset(tmp_path_factory) -> Path:
    spec = SampleSpec(lengths=[90, 40], cameras={CAM: Camera(96, 128)}, chunks_size=2)
    return make_dataset(tmp_path_factory.mktemp("vid") / "ds", spec)


def damage(path: Path, seed: int = 0, size: int = 300) -> None:
    """Overwrite ``size`` random bytes in the middle of ``path`` (FFmpeg conceals such damage)."""
    import numpy as np

    blob = bytearray(path.read_bytes())
    middle = len(blob) // 2
    blob[middle:middle + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_damaged_mp4_fails_naming_episode_feature_file_and_frame(video_dataset, copy_of, tmp_path, seed):
    from conftest import tree_digest

    root = copy_of(video_dataset)
    damage(video(root, 0), seed)
    before = tree_digest(root)
    with pytest.raises(TaskError) as info:
        dask_stats.convert(root, tmp_path / "out", skip_verify=True, **FAST)
    [problem] = info.value.problems
    assert problem.episode == 0 and problem.feature == CAM and problem.path.endswith("episode_000000.mp4")
    assert "damaged at frame " in problem.message, problem
    assert tree_digest(root) == before and not (tmp_path / "out").exists()


def test_clean_videos_still_convert(video_dataset, tmp_path):
    assert dask_stats.convert(video_dataset, tmp_path / "out", **FAST).verification.failures == []


# -- 4. file modes -----------------------------------------------------------------------------------------------
def test_modes_are_kept_and_new_files_follow_the_umask(ds, tmp_path):
    os.chmod(ds / "meta/info.json", 0o604)
    old = os.umask(0o027)
    try:
        dask_stats.convert(ds, **FAST)
        dask_stats.convert(ds, tmp_path / "out", force=True, **FAST)
    finally:
        os.umask(old)
    assert (ds / "meta/info.json").stat().st_mode & 0o777 == 0o604
    assert (ds / "meta/episodes_stats.jsonl").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "out/meta/info.json").stat().st_mode & 0o777 == 0o604
    assert (tmp_path / "out/meta/episodes_stats.jsonl").stat().st_mode & 0o777 == 0o640


def test_write_text_replaces_a_link_instead_of_writing_through_it(tmp_path):
    from dask_stats.storage import Store

    outside = tmp_path / "outside.json"
    outside.write_text("keep")
    os.chmod(outside, 0o644)
    (tmp_path / "ds/meta").mkdir(parents=True)
    link = tmp_path / "ds/meta/info.json"
    link.symlink_to(outside)
    Store(tmp_path / "ds").write_text(str(link), "new")
    assert outside.read_text() == "keep" and not link.is_symlink() and link.read_text() == "new"
    assert link.stat().st_mode & 0o777 == 0o644


# -- 5. listening sockets ----------------------------------------------------------------------------------------
LISTENER = """
import sys
sys.path.insert(0, {tests!r})
from fake_backends import SlowBackend
import dask_stats
dask_stats.convert({root!r}, {out!r}, video_backend=SlowBackend, scheduler={scheduler!r}, num_workers=2, quiet=True)
"""


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_a_local_run_listens_on_loopback_only(small, tmp_path, scheduler):
    import subprocess
    import sys

    psutil = pytest.importorskip("psutil")
    script = LISTENER.format(tests=str(Path(__file__).parent), root=str(small), out=str(tmp_path / "out"),
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


# -- 6. hangs that hold the GIL ------------------------------------------------------------------------------------
def test_gil_holding_hang_is_cut_off_in_processes_mode(small, tmp_path):
    from fake_backends import GilHangBackend

    start = time.monotonic()
    with pytest.raises(TaskError) as info:
        dask_stats.convert(small, tmp_path / "out", video_backend=GilHangBackend, scheduler="processes",
                           num_workers=2, task_timeout=2, retries=0, quiet=True)
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


def test_gil_holding_hang_in_threads_mode_ends_the_process(small, tmp_path):
    import subprocess
    import sys

    script = GIL_HANG.format(tests=str(Path(__file__).parent), root=str(small), out=str(tmp_path / "out"))
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and time.monotonic() - start < 60
    assert "Timeout" in run.stderr and "GilHangBackend" not in run.stdout
    assert not (tmp_path / "out").exists()


# -- 8. exit codes -------------------------------------------------------------------------------------------------
def cli(*args, env=None, timeout=300):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "dask_stats", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_bad_data_found_by_a_task_exits_2_not_4(video_dataset, copy_of, tmp_path):
    root = copy_of(video_dataset)
    damage(video(root, 0))
    run = cli("convert", "--root", root, "--output", tmp_path / "out", "--num-workers", "2", "--quiet")
    assert run.returncode == 2, run.stderr
    assert "damaged at frame" in run.stderr and "the same command resumes it" not in run.stderr
    assert "Traceback" not in run.stderr


def test_a_timeout_exits_4(small, tmp_path):
    env = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    script = ("import sys, fake_backends, dask_stats.video as v; v.BACKENDS['pyav'] = fake_backends.HangingBackend; "
              "from dask_stats.cli import main; sys.exit(main(sys.argv[1:]))")
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", script, "convert", "--root", str(small), "--output",
                          str(tmp_path / "out"), "--task-timeout", "2", "--retries", "0", "--quiet"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert run.returncode == 4, run.stderr
    assert "the same command resumes it" in run.stderr


# -- 7. resume and concurrency -------------------------------------------------------------------------------------
def fail_when_writing(monkeypatch, name: str, error: BaseException):
    from dask_stats.storage import Store

    real = Store.write_text

    def write_text(self, path, text):
        if path.endswith(name):
            raise error
        return real(self, path, text)

    monkeypatch.setattr(Store, "write_text", write_text)


def test_output_interrupted_while_committing_is_resumed_by_the_same_command(small, tmp_path, monkeypatch):
    from dask_stats.errors import DatasetError

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
    with pytest.raises(DatasetError, match="not empty"):  # complete now: not this tool's unfinished copy
        dask_stats.convert(small, out, **FAST)


def test_a_second_run_on_the_same_target_is_refused(small, tmp_path):
    from dask_stats.checkpoint import target_lock
    from dask_stats.errors import DatasetError
    from dask_stats.storage import Store

    with target_lock(Store(tmp_path / "out")):
        with pytest.raises(DatasetError, match="another dask_stats run is converting into this target"):
            dask_stats.convert(small, tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists()
    assert dask_stats.convert(small, tmp_path / "out", **FAST).episodes == 3


def test_temporary_files_of_a_killed_run_are_removed(ds):
    (ds / "meta/.info.json.k1ll3d.tmp").write_text("{")
    dask_stats.convert(ds, **FAST)
    assert not list((ds / "meta").glob(".*.tmp"))


def test_interrupt_after_episodes_stats_does_not_claim_nothing_was_committed(ds, monkeypatch, capsys):
    from dask_stats.cli import main

    fail_when_writing(monkeypatch, "meta/info.json", KeyboardInterrupt())
    assert main(["convert", "--root", str(ds), "--quiet", "--num-workers", "2"]) == 130
    err = capsys.readouterr().err
    assert "nothing was committed" not in err and "the same command finishes the conversion" in err
    assert (ds / "meta/episodes_stats.jsonl").exists()


def test_output_that_is_a_file_or_under_one(small, tmp_path):
    from dask_stats.check import check
    from dask_stats.errors import DatasetError

    (tmp_path / "file").write_text("")
    for output, words in ((tmp_path / "file", "--output is a file"), (tmp_path / "file/out", "is inside")):
        assert any(words in p.message for p in check(small, output)), check(small, output)
        with pytest.raises(DatasetError, match=words):
            dask_stats.convert(small, output, **FAST)


def test_a_full_disk_names_the_file_being_written(ds, monkeypatch):
    import errno

    from dask_stats.errors import DatasetError
    from dask_stats.storage import Store

    monkeypatch.setattr(Store, "_write_local", staticmethod(lambda path, text: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device"))))
    with pytest.raises(DatasetError) as info:
        dask_stats.convert(ds, **FAST)
    [problem] = info.value.problems
    assert "No space left on device" in problem.message and problem.path.endswith("meta/episodes_stats.jsonl")


# -- 9. bad metadata: no crash, and check predicts it ----------------------------------------------------------------
from test_check import edit_json, edit_jsonl, expect  # noqa: E402


def test_no_episodes(ds):
    (ds / "meta/episodes.jsonl").write_text("")
    expect(ds, message="lists no episodes", path_end="meta/episodes.jsonl")


def test_zero_sized_feature(ds):
    edit_json(ds / "meta/info.json", lambda i: i["features"]["action"].update(shape=[0]))
    expect(ds, message="zero-sized feature", feature="action", fix="--exclude-features action")


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"action": {"mean": "high"}}', "not an array of numbers"),
    ('{"action": {"mean": [[1, 2], [3]]}}', "not an array of numbers"),
    ('{"action": 3}', "not a JSON object"),
])
def test_malformed_stats_json_is_found_before_computing(ds, text, words):
    (ds / "meta/stats.json").write_text(text)
    expect(ds, message=words, path_end="meta/stats.json", fix="--skip-verify")
    assert dask_stats.convert(ds, skip_verify=True, **FAST).episodes == 3


@pytest.mark.parametrize("change, words", [
    (lambda i: i.update(data_path="data/{chunk}/episode_{episode_index:06d}.parquet"), "cannot be filled in"),
    (lambda i: i.update(data_path=["data"]), "not a path template string"),
    (lambda i: i.update(video_path=7), "not a path template string"),
    (lambda i: i.update(fps="thirty"), "fps is 'thirty'"),
    (lambda i: i.update(chunks_size="2"), "chunks_size is '2'"),
    (lambda i: i["features"].update(action="float32"), "not a JSON object"),
    (lambda i: i["features"]["action"].update(shape="4"), "not a list of non-negative integers"),
])
def test_malformed_info_json_fields(ds, change, words):
    edit_json(ds / "meta/info.json", change)
    expect(ds, message=words, path_end="meta/info.json")


def test_fifo_in_the_tree(ds):
    os.mkfifo(ds / "videos/notes.fifo")
    expect(ds, message="not a regular file", path_end="notes.fifo")


def test_fifo_as_metadata_file(ds):
    (ds / "meta/tasks.jsonl").unlink()
    os.mkfifo(ds / "meta/tasks.jsonl")
    expect(ds, message="not a regular file", path_end="meta/tasks.jsonl")


# -- 10. errors name the right place ------------------------------------------------------------------------------------
def test_duplicate_episode_lines_are_called_duplicates(ds):
    edit_jsonl(ds / "meta/episodes.jsonl", lambda r: r.append(dict(r[1])))
    problem = expect(ds, message="listed twice", episode=1)
    assert "duplicate" in problem.message
    assert not [p for p in dask_stats.check(ds) if "not contiguous" in p.message]


def test_chunk_index_placeholder_is_accepted_with_a_warning(ds):
    edit_json(ds / "meta/info.json", lambda i: i.update(
        data_path=i["data_path"].replace("{episode_chunk", "{chunk_index"),
        video_path=i["video_path"].replace("{episode_chunk", "{chunk_index")))
    expect(ds, message="read as {episode_chunk}", severity="warning")
    assert not [p for p in dask_stats.check(ds) if p.severity == "error"]
    assert dask_stats.convert(ds, **FAST).episodes == 3
