"""Convert on a few machines reachable over SSH (`pip install asyncssh`), all seeing the dataset at the
same path (NFS or similar).

    python examples/ssh_cluster.py path/to/dataset host1 host2 host3

The first host runs the scheduler, the others one single-threaded worker per core.
"""

import argparse
import os

from distributed import Client, SSHCluster

import dask_stats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("hosts", nargs="+")
    parser.add_argument("--procs-per-host", type=int, default=os.cpu_count())
    args = parser.parse_args()

    with SSHCluster(args.hosts, connect_options={"known_hosts": None},
                    worker_options={"n_workers": args.procs_per_host, "nthreads": 1}) as cluster, \
            Client(cluster) as client:
        print("dashboard:", client.dashboard_link)
        print(dask_stats.convert(args.root, client=client).summary())


if __name__ == "__main__":  # worker processes re-import this module
    main()
