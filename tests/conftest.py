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
