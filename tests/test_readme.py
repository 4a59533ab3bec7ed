"""The README's first two commands work on a fresh machine: the first one is run here, in a copy of the
repository (the demo part always; the whole command, fresh virtual environment and all, when ``CI=true`` or
``DASK_STATS_README=1``, since it installs the dependencies from the package index)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(".git", ".venv", ".venv-lowest", "dask_stats_demo", "__pycache__", "*.egg-info",
                                 "build", "dist", ".pytest_cache", "out")


def readme_commands() -> list[str]:
    """The commands of the README's first code block, comments removed."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL).group(1)
    return [re.split(r"\s+#", line)[0].strip() for line in block.strip().splitlines()]


def test_the_readme_starts_with_two_commands():
    setup_and_demo, tests = readme_commands()
    assert setup_and_demo.startswith("python3 -m venv .venv && ") and setup_and_demo.endswith("-m dask_stats demo")
    assert tests == "DASK_STATS_PARITY=1 ./scripts/test" and os.access(REPO / "scripts/test", os.X_OK)
    assert tests in (REPO / ".ci/run").read_text().splitlines()  # CI runs the README's test command
    text = (REPO / "README.md").read_text()
    assert "../" not in text and "shared/" not in text  # stands alone: nothing outside the repository


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "dask_stats"
    shutil.copytree(REPO, copy, ignore=IGNORED, symlinks=True)
    return copy


def _assert_demo_result(run: subprocess.CompletedProcess, cwd: Path) -> None:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    printed = re.search(r"v2\.1 dataset: (.+)", run.stdout)
    assert printed, run.stdout
    result = cwd / printed.group(1).strip()
    assert (result / "meta/episodes_stats.jsonl").is_file() and (result / "meta/info.json").is_file()
    assert result.resolve() == (cwd / "dask_stats_demo/v2.1").resolve()
    noise = [line for line in run.stderr.splitlines() if line.startswith(("INFO ", "Traceback"))]
    assert not noise, "\n".join(noise[:10])


def test_the_demo_part_of_the_first_command(tmp_path):
    copy = _copy(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    run = subprocess.run([sys.executable, "-m", "dask_stats", "demo"], cwd=copy, env=env, capture_output=True,
                         text=True, timeout=300)
    _assert_demo_result(run, copy)


@pytest.mark.readme
@pytest.mark.skipif(os.environ.get("CI", "").lower() != "true" and os.environ.get("DASK_STATS_README") != "1",
                    reason="installs the dependencies from the package index: CI=true or DASK_STATS_README=1")
def test_the_whole_first_command_in_a_fresh_virtual_environment(tmp_path):
    copy = _copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    run = subprocess.run(["bash", "-c", readme_commands()[0]], cwd=copy, env=env, capture_output=True, text=True,
                         timeout=600)
    _assert_demo_result(run, copy)
