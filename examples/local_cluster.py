"""Convert a dataset on a LocalCluster you size yourself, watching the dashboard.

    python examples/local_cluster.py path/to/dataset [--output DIR] [--workers 4]
"""

import argparse

from distributed import Client, LocalCluster

import dask_stats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--output")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    # One single-threaded worker process each, as the command line's --scheduler auto picks from 1,000 videos on:
    # a crashed or hung decoder costs one worker, which distributed replaces, and tiny videos do not contend for one
    # GIL. (Small runs are as fast in one process with a thread per core, which starts at once.)
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        print("dashboard:", client.dashboard_link)
        result = dask_stats.convert(args.root, args.output, client=client)
        print(result.summary())


if __name__ == "__main__":  # worker processes re-import this module
    main()
