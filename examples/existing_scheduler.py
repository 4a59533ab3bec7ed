"""Convert on a running Dask cluster (started with `dask scheduler` and `dask worker tcp://host:8786`).

    python examples/existing_scheduler.py tcp://scheduler:8786 path/to/dataset [--output DIR]

Every worker must see the dataset at the same path (shared filesystem). The CLI equivalent is
`python -m dask_stats convert --root DIR --scheduler-address tcp://scheduler:8786`
(or set DASK_SCHEDULER_ADDRESS).
"""

import argparse

from distributed import Client

import dask_stats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("root")
    parser.add_argument("--output")
    args = parser.parse_args()

    with Client(args.address) as client:
        print(f"{len(client.scheduler_info()['workers'])} workers, dashboard: {client.dashboard_link}")
        result = dask_stats.convert(args.root, args.output, client=client)
        print(result.summary())


if __name__ == "__main__":  # worker processes re-import this module
    main()
