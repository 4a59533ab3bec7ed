"""Where a conversion's time goes: one ``dask_stats.convert`` call with the steps of ``STEPS`` wrapped, each
reporting its calls and its summed wall time (summed over the worker threads: with 2 threads, up to twice the
wall clock of the run).

    python benchmarks/breakdown.py DATASET [--to v3.0] [--no-quantiles | --quantiles]

Prints one JSON object: the conversion's own timings and, per step, calls and seconds.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
import tempfile
import threading
import time

STEPS = (  # (module, function) as the caller looks it up
    ("dask_stats.engine.runner", "run"),  # every Dask phase, client side (v3.0: stats + files, then stream copies)
    ("dask_stats.engine.tasks", "video_stats"), ("dask_stats.engine.numeric", "partition_moments"),
    ("dask_stats.formats.v30.writer", "write_data_file"), ("dask_stats.formats.v30.writer", "_signatures"),
    ("dask_stats.formats.v30.writer", "concat_videos"), ("dask_stats.formats.v30.writer", "verify_episode_frames"),
    ("dask_stats.formats.v30.writer", "first_last_frame_times"),
    ("dask_stats.convert", "dataset_quantiles"), ("dask_stats.engine.numeric", "quantile_pass"),
    ("dask_stats.convert", "verify_or_stop"), ("dask_stats.convert", "episode_records"),
)


def instrument() -> dict:
    totals: dict[str, list] = {}
    lock = threading.Lock()
    for module_name, name in STEPS:
        module = importlib.import_module(module_name)
        original = getattr(module, name, None)
        if original is None:
            continue

        @functools.wraps(original)
        def wrapper(*args, __original=original, __name=name, **kwargs):
            t0 = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                with lock:
                    entry = totals.setdefault(__name, [0, 0.0])
                    entry[0] += 1
                    entry[1] += time.perf_counter() - t0

        setattr(module, name, wrapper)
        home = importlib.import_module(original.__module__)  # tasks pickle functions by reference: the
        if getattr(home, name, None) is original:            # defining module must name the wrapper too
            setattr(home, name, wrapper)
    return totals


def main(argv: list[str]) -> int:
    import dask_stats

    dataset = argv[0]
    options = {}
    if "--to" in argv:
        options["to"] = argv[argv.index("--to") + 1]
    if "--no-quantiles" in argv:
        options["quantiles"] = ()
    elif "--quantiles" in argv:
        options["quantiles"] = (0.01, 0.1, 0.5, 0.9, 0.99)
    totals = instrument()
    with tempfile.TemporaryDirectory(prefix="bench_breakdown_") as tmp:
        t0 = time.perf_counter()
        result = dask_stats.convert(dataset, f"{tmp}/out", quiet=True, **options)
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": round(seconds, 2), "timings": {k: round(v, 2) for k, v in result.timings.items()},
                      "tasks": result.tasks,
                      "steps": {k: {"calls": c, "s": round(s, 2)} for k, (c, s) in totals.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
