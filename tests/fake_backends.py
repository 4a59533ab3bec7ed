"""Video backends for fault tests: slow (to interrupt a run mid-way) and hanging (to trip timeouts)."""

from __future__ import annotations

import os
import time

from dask_stats.video.pyav_backend import PyAVBackend


class SlowBackend(PyAVBackend):
    """pyav, but each file takes DASK_STATS_TEST_DELAY seconds (default 0.4) longer to open."""

    name = "pyav"  # the same decoder with a fault injected: it shares pyav's checkpoints

    def open(self, path):
        time.sleep(float(os.environ.get("DASK_STATS_TEST_DELAY", "0.4")))
        return super().open(path)


class HangingBackend(PyAVBackend):
    """pyav, but opening the file of episode 1 never returns."""

    name = "pyav"  # the same decoder with a fault injected: it shares pyav's checkpoints

    def open(self, path):
        if str(path).endswith("episode_000001.mp4"):
            time.sleep(3600)
        return super().open(path)
