"""Where the stats graph runs: a given ``distributed.Client``, an existing scheduler, or a local cluster.

The stats code builds ``dask.delayed`` objects with readable keys; this module runs them with retries, a window
of tasks at a time, hands each result on as it finishes (checkpoint + progress in episodes) and keeps none,
guards every task with a timeout, and collects every failure instead of stopping at the first.
"""

from __future__ import annotations

import errno
import faulthandler
import itertools
import logging
import os
import sys
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dask
import numpy as np
from distributed import Client, KilledWorker, LocalCluster, Worker, as_completed
from tqdm.auto import tqdm

from ..errors import DatasetError, Problem, TaskError
from ..options import RunOptions
from . import guards
from .checkpoint import scratch_dir
from .guards import HARD_TIMEOUT_ENV

if TYPE_CHECKING:
    from .tasks import Task

log = logging.getLogger(__name__)

LOCAL_CLUSTER_CONFIG = {
    # Dask makes worker processes return freed memory to the OS at once (MALLOC_TRIM_THRESHOLD_=64 KiB), so
    # every decoded frame buffer is mapped and unmapped again: 8 s of system time on the h264 benchmark.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": str(64 << 20),
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "distributed.worker.profile.enabled": False,  # the statistical profiler costs CPU we want for decoding
}


def stall_limit_s(tasks: list[Task]) -> float | None:
    """How long an in-process (threads) run may go without any unit of work finishing (a video, a Parquet
    partition, a file) before its watchdog ends the process: twice the longest time limit of a unit (a hang that
    does not hold the GIL is cut off by that limit long before; only a hang holding the GIL, which stops every
    thread, reaches this)."""
    return 2 * max(task.timeout_s for task in tasks) if tasks else None


AUTO_PROCESSES_VIDEOS = 1_000  # --scheduler auto: worker processes from this many videos on


def local_kind(options: RunOptions, videos: int) -> str:
    """The kind of local cluster to start, "threads" or "processes".  ``auto``: worker processes for runs of
    ``AUTO_PROCESSES_VIDEOS`` videos or more on several workers (there, each video's Python work would contend
    for one GIL in threads: 1.7x slower on 2,000 short episodes) when they can start safely; threads otherwise,
    which start at once (small runs are over in seconds)."""
    if options.scheduler != "auto":
        return options.scheduler
    workers = options.num_workers or os.cpu_count() or 1
    return "processes" if videos >= AUTO_PROCESSES_VIDEOS and workers > 1 and spawn_safe() else "threads"


def spawn_safe() -> bool:
    """Whether worker processes can start without running the caller's code again: they import ``__main__``
    anew, which is harmless for an interactive session (none), ``python -m dask_stats`` and the ``dask-stats``
    script (both guarded), but would re-run a script that calls ``convert`` without an ``if __name__ ==
    "__main__":`` guard."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__file__", None) is None:
        return True
    if getattr(main.__spec__, "name", None) == "dask_stats.__main__":
        return True
    cli = sys.modules.get("dask_stats.cli")
    return cli is not None and getattr(main, "main", None) is cli.main  # the console script


@contextmanager
def open_client(options: RunOptions, client: Client | None = None) -> Iterator[Client]:
    """Yield ``client``, a client of ``options.scheduler_address``, or one of a fresh local cluster."""
    if client is not None:
        yield client
        return
    address = options.address()
    if address:
        with Client(address) as remote:
            yield remote
        return
    workers = options.num_workers or os.cpu_count() or 1
    dashboard = options.dashboard()
    # The scheduler and the workers always run an HTTP server (distributed starts one even without a dashboard,
    # on port 8787 of every interface by default): bind it to a free loopback port, like everything else here.
    http = {"dashboard_address": dashboard,
            "scheduler_kwargs": {"dashboard_address": dashboard or LOOPBACK_ANY_PORT,
                                 "dashboard": dashboard is not None}}
    if options.scheduler == "processes":  # "auto" was resolved by the caller (local_kind)
        # one single-threaded worker process per core (isolates decoders: a crash or a GIL-holding hang
        # costs one worker, which distributed replaces); TCP on loopback between them
        workers_kind = {"n_workers": workers, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1",
                  "env": {"OMP_NUM_THREADS": "1", HARD_TIMEOUT_ENV: "1"}}
        # a worker lost to a crash or a cut-off hang: its tasks are tried again on other workers (at least once,
        # as tasks merely assigned to it are lost with it), then reported
        config = {**LOCAL_CLUSTER_CONFIG, "distributed.scheduler.allowed-failures": max(1, options.retries)}
    else:
        # one in-process worker with a thread per core: PyAV, Pillow and numpy release the GIL, and this was
        # fastest on every benchmark set (benchmarks/RESULTS.md), with a single process's memory; the scheduler
        # and worker talk in memory (inproc), no socket
        workers_kind = {"n_workers": 1, "threads_per_worker": workers, "processes": False, "protocol": "inproc://",
                  "worker_class": _LoopbackWorker}
        config = LOCAL_CLUSTER_CONFIG
    with scratch_dir() as scratch, dask.config.set({**config, "temporary-directory": scratch}), \
            LocalCluster(**workers_kind, **http, silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as local:
        local.dask_stats_in_process = options.scheduler != "processes"  # its workers share this process
        yield local


LOOPBACK_ANY_PORT = "127.0.0.1:0"


class _LoopbackWorker(Worker):
    """An in-process worker whose (always started) HTTP server listens on a free loopback port only."""

    def __init__(self, *args, dashboard_address=None, **kwargs):
        super().__init__(*args, dashboard_address=dashboard_address or LOOPBACK_ANY_PORT, **kwargs)


def dashboard_url(client: Client, options: RunOptions) -> str | None:
    """The dashboard's address as bound (distributed's link names the machine's IP even for a loopback bind)."""
    link = client.dashboard_link
    if options.address():
        return link
    if options.dashboard() is None:
        return None  # distributed names a default link even when no dashboard runs
    host = options.dashboard().rpartition(":")[0]
    if not link or not host or host == "0.0.0.0":
        return link
    # distributed's own link template, with the host we bound instead of the machine's
    with dask.config.set({"distributed.dashboard.link": "{scheme}://" + host + ":{port}/status"}):
        return client.dashboard_link


def run(client: Client, tasks: list[Task], done: Collection[str], on_result: Callable[[Task, object], None],
        retries: int = 0, quiet: bool = False, stall_s: float | None = None, label: str = "episodes") -> None:
    """Compute the ``tasks`` whose keys are not in ``done`` on ``client``, handing each result to ``on_result`` as it
    lands (nothing is kept here once it is handed on).

    Raises TaskError listing every failed task (the others completed).
    With ``stall_s``, on a client whose workers run in this process (threads mode), a watchdog that needs no
    GIL ends the process (exit status 1, every thread's stack on stderr) when no task has finished for
    ``stall_s`` seconds: a hang that holds the GIL stops every thread, so nothing else could act.
    Checkpointed results are kept: the same command resumes.
    """
    watchdog = stall_s is not None and getattr(client, "dask_stats_in_process", False)
    guards.set_stall_limit(stall_s if watchdog else None)
    try:
        _run(client, tasks, done, on_result, retries, quiet, stall_s if watchdog else None, label)
    finally:
        guards.set_stall_limit(None)
        if watchdog:
            faulthandler.cancel_dump_traceback_later()


IN_FLIGHT_PER_THREAD = 16  # tasks submitted ahead per worker thread (at least MIN_IN_FLIGHT)
MIN_IN_FLIGHT = 1_000


def _run(client, tasks, done, on_result, retries, quiet, stall_s, label) -> None:
    # highest priority first, as the scheduler would run them; submitted a window at a time, so that the client
    # holds the graph and futures of a bounded number of tasks however many the run has
    todo = sorted((t for t in tasks if t.key not in done), key=lambda t: -t.priority)
    progress = _EpisodeProgress(tasks, todo)
    window = max(MIN_IN_FLIGHT, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values())) if todo else 0
    pending = iter(todo)
    by_key: dict[str, Task] = {}
    # as_completed holds each future until it is done; the result is then released on the cluster at once,
    # so workers do not keep finished results (nor recompute them when a worker dies later in the run)
    finished = as_completed()

    def submit(count: int) -> None:
        batch = list(itertools.islice(pending, count))
        graphs = [t.delayed for t in batch]
        for task in batch:
            task.delayed = None  # from now on the future stands for it
            by_key[task.key] = task
        finished.update(client.compute(graphs, retries=retries) if batch else [])

    problems = []
    with tqdm(total=progress.total, initial=progress.finished, unit="episode", disable=quiet, desc=label) as bar:
        submit(window)
        guards.arm(stall_s)
        for future in finished:
            guards.arm(stall_s)
            task = by_key.pop(future.key)
            try:
                on_result(task, future.result())
            except DatasetError as exc:
                problems += exc.problems
            except KilledWorker:
                problems.append(task.where.problem(
                    f"task {task.key} failed: the worker process running it died (a crash, or a hang holding the "
                    "GIL cut off after the task's timeout)", transient=True,
                    fix="run the same command again (finished work is resumed); raise --task-timeout if it is slow"))
            except (OSError, CancelledError) as exc:  # lost connections, a cluster going away, a full disk
                problems.append(_os_problem(task, exc))
            except Exception as exc:  # noqa: BLE001 - blame the task's episode/file
                problems.append(task.where.problem(f"task {task.key} failed: {type(exc).__name__}: {exc}"))
            future.release()
            bar.update(progress.task_done(task))
            if finished.count() <= window // 2:
                submit(window - finished.count())
    if problems:
        raise TaskError(list(dict.fromkeys(problems)))  # a file that fails two tasks (stats, video) is named once


def _os_problem(task: Task, exc: OSError | CancelledError) -> Problem:
    """A full disk names the file being written and is not transient; other OS errors (lost connections, a
    cluster going away) are."""
    if getattr(exc, "errno", None) == errno.ENOSPC:
        return Problem(f"no space left on the device while writing {exc.filename or 'the output'}",
                       path=exc.filename, fix="free some space (or write elsewhere with --output), then run the same "
                                              "command again: finished work is resumed", code="no-space")
    return task.where.problem(f"task {task.key} failed: {type(exc).__name__}: {exc}", transient=True)


class _EpisodeProgress:
    """Episodes whose every task is finished, counted in arrays (not a Python object per episode)."""

    def __init__(self, tasks: list[Task], todo: list[Task]):
        self.episodes = np.unique(np.fromiter((ep for t in tasks for ep in t.episodes), dtype=np.int64))
        self.remaining = np.zeros(len(self.episodes), dtype=np.int32)
        np.add.at(self.remaining, self._slots(todo), 1)
        self.total, self.finished = len(self.episodes), int((self.remaining == 0).sum())

    def _slots(self, tasks: list[Task]) -> np.ndarray:
        return np.searchsorted(self.episodes, np.fromiter((ep for t in tasks for ep in t.episodes), dtype=np.int64))

    def task_done(self, task: Task) -> int:
        """Count ``task`` as finished; returns how many episodes it finished."""
        slots = self._slots([task])
        self.remaining[slots] -= 1
        return int((self.remaining[slots] == 0).sum())
