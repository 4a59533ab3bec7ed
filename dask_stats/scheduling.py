"""Where the stats graph runs: a given ``distributed.Client``, an existing scheduler, or a local cluster.

The stats code builds ``dask.delayed`` objects with readable keys; this module runs them, streams the
results back as they finish (progress bar), and collects every failure instead of stopping at the first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from dask.delayed import Delayed
from distributed import Client, LocalCluster, as_completed
from tqdm.auto import tqdm

from .errors import DatasetError, Problem, TaskError
from .plan import Options

log = logging.getLogger(__name__)


@contextmanager
def open_client(options: Options, client: Client | None = None) -> Iterator[Client]:
    """Yield ``client``, a client of ``options.scheduler_address``, or one of a fresh local cluster."""
    if client is not None:
        yield client
        return
    address = options.scheduler_address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        with Client(address) as remote:
            yield remote
        return
    workers = options.num_workers or os.cpu_count() or 1
    if options.scheduler == "processes":
        # one single-threaded worker process per core: decoders hold the GIL, and Dask keeps every core busy
        layout = {"n_workers": workers, "threads_per_worker": 1, "processes": True, "env": {"OMP_NUM_THREADS": "1"}}
    else:
        layout = {"n_workers": 1, "threads_per_worker": workers, "processes": False}
    with LocalCluster(**layout, dashboard_address=options.dashboard_address, silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as local:
        yield local


def run(client: Client, tasks: list[Delayed], quiet: bool = False) -> dict[str, object]:
    """Compute ``tasks`` on ``client``; return results by key, or raise TaskError listing every failure."""
    futures = client.compute(tasks)
    results, problems = {}, []
    with tqdm(total=len(futures), unit="task", disable=quiet, desc="stats") as bar:
        for future in as_completed(futures):
            try:
                results[future.key] = future.result()
            except DatasetError as exc:
                problems += exc.problems
            except Exception as exc:  # noqa: BLE001 - report it with the task that failed
                problems.append(Problem(f"task {future.key} failed: {type(exc).__name__}: {exc}"))
            bar.update()
    if problems:
        raise TaskError(problems)
    return results
