"""The client's own memory and time for ``convert``: planning, preflight, graph construction, result collection,
checkpointing, verification and writing, with nothing decoded.

    python benchmarks/client_memory.py DATASET OUTPUT [--workers 2] [--phases]

A separate process runs the cluster (its scheduler, and ``--workers`` single-threaded worker processes), so that
this process is the client alone; videos go through ``fake_video.ConstantBackend`` (constant frames, no
decoding, no probing).  Prints one JSON line: the client's RSS before ``convert`` (after imports and connecting)
and its peak (VmHWM, the kernel's high-water mark), the scheduler process's peak, and ``convert``'s timings.
``--phases`` also records, per step of ``convert`` (``PHASES``), its time, the RSS before and after it and its own
peak (the high-water mark is reset at the start of each step).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CLUSTER = """
import logging, sys
from distributed import LocalCluster
cluster = LocalCluster(n_workers=int(sys.argv[1]), threads_per_worker=1, processes=True, host="127.0.0.1",
                       dashboard_address=None, silence_logs=logging.CRITICAL)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the client closes our stdin
cluster.close()
"""


def _status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


PHASES = (  # (module, function): the steps of convert() whose memory is recorded
    ("dask_stats.convert", "preflight"), ("dask_stats.convert", "build_tasks"), ("dask_stats.engine.runner", "run"),
    ("dask_stats.convert", "verify_or_stop"),
    ("dask_stats.convert", "episode_records"), ("dask_stats.formats.v2.writer", "V21Writer.commit"),
)


def _reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (``clear_refs`` 5); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def instrument(phases: list[dict]) -> None:
    """Wrap the steps of ``PHASES``: each call appends its name, seconds, RSS before/after and its own peak."""
    import functools
    import importlib

    for module_name, name in PHASES:
        owner = importlib.import_module(module_name)
        *path, attribute = name.split(".")  # "Class.method" wraps a method
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def wrapper(*args, __original=original, __name=name, **kwargs):
            before = _status_mb(os.getpid(), "VmRSS")
            reset = _reset_peak()
            t0 = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                phases.append({"phase": __name, "s": round(time.perf_counter() - t0, 3), "rss_before_mb": round(before),
                               "rss_after_mb": round(_status_mb(os.getpid(), "VmRSS")),
                               "peak_mb": round(_status_mb(os.getpid(), "VmHWM")) if reset else None})

        setattr(owner, attribute, wrapper)


def main(argv: list[str]) -> int:
    dataset, output = argv[0], argv[1]
    workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    cluster = subprocess.Popen([sys.executable, "-c", CLUSTER, str(workers)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env)
    try:
        address = cluster.stdout.readline().strip()
        sys.path.insert(0, str(HERE))
        from distributed import Client
        from fake_video import ConstantBackend

        import dask_stats
        from dask_stats import convert  # noqa: F401 - imported before the baseline is read

        phases: list[dict] = []
        if "--phases" in argv:
            instrument(phases)
        with Client(address) as client:
            before = _status_mb(os.getpid(), "VmRSS")
            t0 = time.perf_counter()
            result = dask_stats.convert(dataset, output, client=client, video_backend=ConstantBackend, quiet=True)
            seconds = time.perf_counter() - t0
            peak = max([_status_mb(os.getpid(), "VmHWM")] + [p["peak_mb"] or 0 for p in phases])
            scheduler = _status_mb(cluster.pid, "VmHWM")
        print(json.dumps({"episodes": result.episodes, "tasks": result.tasks, "timings": result.timings,
                          "call_s": seconds, "client_before_mb": before, "client_peak_mb": peak,
                          "scheduler_peak_mb": scheduler, "workers": workers, "phases": phases}))
    finally:
        cluster.stdin.close()
        cluster.wait(timeout=60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
