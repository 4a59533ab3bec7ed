"""Local clusters keep Dask's scratch space (``dask-scratch-space/``, lock files) under the dask_stats cache, not in
the system temporary directory, and remove it when they close."""

from __future__ import annotations

import tempfile

import pytest

from dask_stats.engine.runner import open_client
from dask_stats.options import RunOptions


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_local_cluster_scratch_space_is_in_the_cache_and_removed(scheduler, tmp_path, monkeypatch):
    system_tmp, cache = tmp_path / "tmp", tmp_path / "cache"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    monkeypatch.setenv("DASK_STATS_CACHE", str(cache))
    with open_client(RunOptions(scheduler=scheduler, num_workers=1, quiet=True)) as client:
        directories = list(client.run(lambda dask_worker: dask_worker.local_directory).values())
        assert directories and all(d.startswith(str(cache / "scratch")) for d in directories)
    assert list(system_tmp.iterdir()) == [], "nothing of Dask's is left in the system temporary directory"
    assert list((cache / "scratch").iterdir()) == [], "the scratch space is removed"
