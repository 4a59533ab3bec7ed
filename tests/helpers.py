"""Helpers shared by the test modules: the options of a fast local run, the sample datasets several modules use,
the paths of an episode's files, small edits of a dataset's files, and the check-then-refuse assertion."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dask_stats.synthetic import Camera, SampleSpec

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# -- optional real data sets ---------------------------------------------------------------------------------------
REALDATA_VAR = "DASK_STATS_REALDATA"
"""The folder of optional real data sets (one sub-folder each, e.g. gr00t_pick_n_place/); default: the clone's sibling
../shared/realdata when it exists."""
GR00T = "gr00t_pick_n_place"


def realdata_dir() -> Path:
    """Where the optional real data sets are looked for: ``$DASK_STATS_REALDATA``, else ../shared/realdata."""
    value = os.environ.get(REALDATA_VAR, "").strip()
    return Path(value).expanduser().resolve() if value else REPO.parent / "shared" / "realdata"


def realdata(name: str = GR00T) -> Path:
    """The path of real data set ``name`` (which may not exist: ``require_realdata`` checks)."""
    return realdata_dir() / name


REALDATA = realdata()
"""The GR00T set's path at import time (it may not exist): tests call ``require_realdata()`` before using it."""


def require_realdata(name: str = GR00T) -> Path:
    """The path of real data set ``name``; skips the test, saying how to enable it, when it is not there. A folder
    named by DASK_STATS_REALDATA that lacks it fails the test instead: it was asked for."""
    path = realdata(name)
    if path.is_dir():
        return path
    if os.environ.get(REALDATA_VAR, "").strip():
        pytest.fail(f"{REALDATA_VAR}={os.environ[REALDATA_VAR]} has no {name}/ folder", pytrace=False)
    pytest.skip(f"real data set {name} not found at {path}: set {REALDATA_VAR}=/path/to/realdata (the folder that "
                f"holds {name}/) to run this test")

FAST = {"scheduler": "threads", "num_workers": 2, "quiet": True}
"""The options of a fast local run: two threads, no progress bars."""

CAM = "observation.images.top"
HUB_REPO = "someone/tiny"
"""The dataset repo that the Hub stand-in (hubstub.py) serves to the Hub tests."""

# -- sample datasets (built once per session by the ``make_sample`` fixture) ----------------------------------------
MESSY = SampleSpec(lengths=[30, 140, 1, 45, 12], chunks_size=2, string_column=True,
                   image_column="observation.images.cam_png")
"""Episode 0 is not the longest; a 1-frame episode; 3 chunks; 2 cameras; float64/bool/int/string/image columns."""

AV1 = SampleSpec(lengths=[25, 110], cameras={CAM: Camera(codec="libsvtav1")}, fixed_size_lists=False)
"""An AV1 camera and variable-size list columns."""

SMALL = SampleSpec(lengths=[20, 35, 12], cameras={CAM: Camera()}, chunks_size=2)
"""Three episodes over two chunks and one camera: the bad-input catalogue edits copies of it."""

SMALL32 = SampleSpec(lengths=[20, 35, 12], cameras={CAM: Camera(32, 32)}, chunks_size=2)
"""SMALL with a smaller camera: the faults (checkpoints, hangs, exit codes, verification) use copies of it."""

LONG_VIDEOS = SampleSpec(lengths=[90, 40], cameras={CAM: Camera(96, 128)}, chunks_size=2)
"""Videos long and large enough to be damaged in the middle."""

TWO_CAMERAS = SampleSpec(lengths=[20, 30, 25, 15, 22, 18], chunks_size=4,
                         cameras={CAM: Camera(32, 32), "observation.images.side": Camera(32, 32)})
"""Six episodes, two cameras: enough tasks to spread over workers, kill, hang and resume."""

TINY = SampleSpec(lengths=[5, 8], cameras={CAM: Camera(16, 16)})
"""Two short episodes and a 16x16 camera: for the command line."""


def tree_digest(root: Path) -> str:
    """A hash of every file's path and bytes under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def episodes_stats(output: Path) -> bytes:
    """The bytes of a v2.1 output's meta/episodes_stats.jsonl."""
    return (Path(output) / "meta/episodes_stats.jsonl").read_bytes()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- an episode's files in a v2.0 tree made with chunks_size=2 --------------------------------------------------------
def data(root: Path, episode: int) -> Path:
    return root / f"data/chunk-{episode // 2:03d}/episode_{episode:06d}.parquet"


def video(root: Path, episode: int, camera: str = CAM) -> Path:
    return root / f"videos/chunk-{episode // 2:03d}/{camera}/episode_{episode:06d}.mp4"


# -- edits ------------------------------------------------------------------------------------------------------------
def edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj, indent=4))


def edit_jsonl(path: Path, change) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    change(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def rewrite_parquet(path: Path, change) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def damage(path: Path, seed: int = 0, size: int = 300) -> None:
    """Overwrite ``size`` random bytes in the middle of ``path`` (FFmpeg conceals such damage)."""
    import numpy as np

    blob = bytearray(path.read_bytes())
    middle = len(blob) // 2
    blob[middle:middle + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(blob))


def fail_when_writing(monkeypatch, name: str, error: BaseException) -> None:
    """Make ``Store.write_text`` raise ``error`` for the file whose path ends with ``name``."""
    from dask_stats.storage import Store

    real = Store.write_text

    def write_text(self, path, text):
        if path.endswith(name):
            raise error
        return real(self, path, text)

    monkeypatch.setattr(Store, "write_text", write_text)


# -- assertions and runs ----------------------------------------------------------------------------------------------
def expect(root: Path, *, message: str, episode=None, feature=None, path_end=None, severity="error",
           fix=None, options: dict | None = None, output=None):
    """check() reports the problem; convert() refuses and leaves the tree byte-identical."""
    import dask_stats
    from dask_stats.check import check
    from dask_stats.errors import DatasetError

    problems = check(root, output, **(options or {}))
    matching = [p for p in problems if message in p.message and p.severity == severity]
    assert matching, f"no {severity} containing {message!r} in:\n" + "\n".join(map(str, problems))
    problem = matching[0]
    if episode is not None:
        assert problem.episode == episode, problem
    if feature is not None:
        assert problem.feature == feature, problem
    if path_end is not None:
        assert problem.path and problem.path.endswith(path_end), problem
    if fix is not None:
        assert problem.fix and fix in problem.fix, problem
    if severity == "error":
        before = tree_digest(root)
        with pytest.raises(DatasetError) as refused:
            dask_stats.convert(root, output, **FAST, **(options or {}))
        assert tree_digest(root) == before
        assert any(message in p.message for p in refused.value.problems), refused.value  # the same words
    return problem


SLOW_RUN = """
import sys
sys.path.insert(0, {tests!r})
from fake_backends import SlowBackend
import dask_stats
import dask_stats.engine.tasks
dask_stats.engine.tasks.VIDEO_TASK_SECONDS = 0  # one task per episode
dask_stats.convert({root!r}, video_backend=SlowBackend, scheduler="threads", num_workers=2,
                   dashboard_address="127.0.0.1:0")
"""
"""A script converting ``root`` in place slowly (DASK_STATS_TEST_DELAY seconds per video), to kill or watch."""


def run_cli(*args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m dask_stats ARGS`` in a subprocess (``env`` added to this process's environment)."""
    return subprocess.run([sys.executable, "-m", "dask_stats", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def with_tests_on_path() -> dict:
    """This process's environment, with tests/ (fake backends) and the repository (dask_stats) importable: for
    subprocesses and Dask workers."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")])}
