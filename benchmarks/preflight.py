"""The preflight check at scale: the per-episode checks (Parquet footers; with ``--videos``, also every video's
header, as ``check`` does) of one dataset, serially in this process, in this process's threads, and in batches on a
local cluster of worker processes (``check_plan`` with a client).

    python benchmarks/preflight.py DATASET [--videos] [--modes serial threads cluster] [--workers 2]
    python benchmarks/preflight.py DATASET --s3      # the dataset uploaded to a moto S3 server first

Prints one JSON line per mode: seconds for planning (``plan_dataset``, in this process in every mode) and for the
per-episode checks (the cluster's start is timed apart), and the number of problems found (0 for a clean set).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext


@contextmanager
def moto_store(dataset: str) -> Iterator[tuple[str, dict]]:
    """``dataset`` uploaded to a fresh moto S3 server (its address through the AWS variables, for the workers)."""
    import fsspec

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "key": "test", "secret": "test"}
    fs = fsspec.filesystem("s3", **options)
    for _ in range(100):
        try:
            fs.mkdir("bench")
            break
        except Exception:  # noqa: BLE001 - the server is still starting
            time.sleep(0.1)
    start = time.perf_counter()
    fs.put(dataset, "bench/dataset", recursive=True)
    print(f"uploaded in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    try:
        yield "s3://bench/dataset", options
    finally:
        server.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("--videos", action="store_true", help="also every video's header (as `check` does)")
    parser.add_argument("--modes", nargs="+", default=["serial", "threads", "cluster"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--s3", action="store_true")
    args = parser.parse_args()
    with moto_store(args.dataset) if args.s3 else nullcontext((args.dataset, None)) as (root, storage_options):
        for mode in args.modes:
            print(json.dumps(measure(root, storage_options, mode, args)), flush=True)


def measure(root: str, storage_options: dict | None, mode: str, args: argparse.Namespace) -> dict:
    from distributed import Client, LocalCluster

    from dask_stats.check import EpisodeChecker, _on_cluster
    from dask_stats.formats import plan_dataset
    from dask_stats.options import Options
    from dask_stats.storage import Store
    from dask_stats.video import get_backend

    options = Options()
    start = time.perf_counter()
    plan, _ = plan_dataset(Store(root, storage_options), options.stats)
    planned = time.perf_counter()
    work = EpisodeChecker(plan, options, get_backend(options.stats.video_backend), videos=args.videos)
    row = {"mode": mode, "episodes": len(plan.episodes), "videos": args.videos, "s3": args.s3,
           "plan_s": round(planned - start, 2)}
    if mode == "cluster":
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            started = time.perf_counter()
            problems = _on_cluster(client, work, plan.episodes, retries=0)
            row["cluster_start_s"] = round(started - planned, 2)
            planned = started
    elif mode == "threads":
        with ThreadPoolExecutor(16 if args.s3 else os.cpu_count()) as pool:
            problems = [p for found in pool.map(work, plan.episodes) for p in found]
    else:
        problems = [p for ep in plan.episodes for p in work(ep)]
    return {**row, "episodes_s": round(time.perf_counter() - planned, 2), "problems": len(problems),
            "load": os.getloadavg()[0]}


if __name__ == "__main__":
    main()
