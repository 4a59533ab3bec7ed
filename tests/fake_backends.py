"""Video backends for fault and scheduling tests: slow (to interrupt a run mid-way), hanging (to trip
timeouts) and recording (the order in which videos are opened)."""

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


class RecordingBackend(PyAVBackend):
    """pyav, noting every opened path in ``opened`` (in-process workers share it)."""

    name = "pyav"
    opened: list[str] = []

    def open(self, path):
        RecordingBackend.opened.append(str(path))
        return super().open(path)


class FailingBackend(PyAVBackend):
    """pyav, but the file of the episode named by DASK_STATS_TEST_FAIL (default 1) cannot be opened."""

    name = "pyav"  # the same decoder with a fault injected: it shares pyav's checkpoints

    def open(self, path):
        if str(path).endswith(f"episode_{int(os.environ.get('DASK_STATS_TEST_FAIL', '1')):06d}.mp4"):
            raise OSError("injected failure")
        return super().open(path)


class GilHangBackend(PyAVBackend):
    """pyav, but opening the file of episode 1 blocks in C while holding the GIL (no other thread can run)."""

    name = "pyav"

    def open(self, path):
        if str(path).endswith("episode_000001.mp4"):
            import ctypes

            ctypes.PyDLL(None).sleep(3600)  # PyDLL: the GIL stays held during the call
        return super().open(path)
