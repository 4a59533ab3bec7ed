"""Worker-side time limits: run units of work (a video, a Parquet partition) each under its own limit, and the
stall watchdog of in-process runs.  Runs on the workers: imports nothing of distributed's client."""

from __future__ import annotations

import faulthandler
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial

from ..errors import Location, TaskError

HARD_TIMEOUT_ENV = "DASK_STATS_HARD_TIMEOUT"  # set in the worker processes of a local "processes" cluster
HARD_GRACE_S = 5.0  # how long after a task's timeout its worker process is killed if the timeout could not act


def guarded(function: Callable, argument, timeout_s: float, where: Location):
    """Run ``function(argument)`` but give up after ``timeout_s`` seconds with an error naming the work."""
    [(value, error)] = guarded_each([(partial(function, argument), timeout_s, where)])
    if error is not None:
        raise error
    return value


Unit = tuple[Callable[[], object], float, Location]  # the work, its time limit (s), what to blame if it hangs


def guarded_each(units: Sequence[Unit]) -> Iterator[tuple[object, BaseException | None]]:
    """Run the units one after another and yield ``(value, None)`` or ``(None, error)`` for each, in order; a
    unit that outlasts its time limit yields a transient TaskError naming its Location.

    The work runs in one helper thread (one per unit would cost a thread start per video: a third of the Python
    time of a tiny video); a hung unit stays behind in it, and the units after it go on in a fresh thread.  A
    hang that holds the GIL stops every thread of its process, this one included; in the single-threaded
    worker processes of ``--scheduler processes`` a watchdog that needs no GIL (faulthandler's) then ends the
    process ``HARD_GRACE_S`` after the time limit, distributed replaces the worker, and the task fails as a
    lost worker (a transient problem: re-running retries it).  The watchdog is armed before the helper thread
    starts and re-armed (never disarmed) as each unit ends: a unit that takes the GIL at once is covered too.
    """
    hard = os.environ.get(HARD_TIMEOUT_ENV) == "1"
    first = 0
    try:
        while first < len(units):
            outcomes: queue.SimpleQueue = queue.SimpleQueue()
            abandoned = threading.Event()
            thread = threading.Thread(target=_run_units, args=(units[first:], outcomes, abandoned), daemon=True,
                                      name=f"dask_stats-episode-{units[first][2].episode}")
            for n, (_, timeout_s, where) in enumerate(units[first:]):
                if hard:
                    faulthandler.dump_traceback_later(timeout_s + HARD_GRACE_S, exit=True)
                if n == 0:
                    thread.start()
                first += 1
                try:
                    outcome = outcomes.get(timeout=timeout_s)
                except queue.Empty:
                    outcome = None, TaskError(where.problem(
                        f"timed out after {timeout_s:g} s (hung decoder or unreadable file?)",
                        fix="inspect the file; raise --task-timeout if it is just slow", transient=True))
                    abandoned.set()  # should the hung unit ever return, its thread stops there
                arm(_stall_s)  # a unit ended (or was given up on): the process is not stuck
                yield outcome
                if abandoned.is_set():
                    break
    finally:
        if hard:
            faulthandler.cancel_dump_traceback_later()


def _run_units(units: Sequence[Unit], outcomes: queue.SimpleQueue, abandoned: threading.Event) -> None:
    for function, _, _ in units:
        if abandoned.is_set():
            return
        try:
            outcomes.put((function(), None))
        except BaseException as exc:  # noqa: BLE001 - handed back to the waiting thread
            outcomes.put((None, exc))


_stall_s: float | None = None  # the stall limit of the in-process run going on, re-armed as each unit finishes
_arming = threading.Lock()  # worker threads and the run loop re-arm the one faulthandler timer


def arm(stall_s: float | None) -> None:
    """(Re-)start the in-process stall watchdog: end the process if nothing finishes for ``stall_s`` seconds."""
    if stall_s is None:
        return
    for stream in (sys.stderr, sys.__stderr__):  # a real file is needed (captured streams have none)
        try:
            stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue
        with _arming:
            faulthandler.dump_traceback_later(stall_s, exit=True, file=stream)
        return


def set_stall_limit(stall_s: float | None) -> None:
    """The stall limit of the in-process run going on (None: no watchdog), re-armed as each unit finishes."""
    global _stall_s
    _stall_s = stall_s
