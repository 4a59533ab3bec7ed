"""Convert on a running Dask cluster (started with `dask scheduler` and `dask worker tcp://host:8786`).

    python examples/existing_scheduler.py tcp://scheduler:8786 path/to/dataset [--output DIR] [--to v3.0]
    python examples/existing_scheduler.py tcp://scheduler:8786 s3://bucket/dataset --output DIR

Every worker must see the dataset at the same path (shared filesystem), or read it from object storage (an
fsspec URL; the workers need the same credentials, e.g. the AWS_* variables). A worker lost mid-run costs only
its unfinished tasks: Dask reruns them elsewhere, and finished results are already with this process. The CLI
equivalent is
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
    parser.add_argument("--to", default="v2.1", choices=["v2.1", "v3.0"])
    args = parser.parse_args()

    with Client(args.address) as client:
        print(f"{len(client.scheduler_info()['workers'])} workers, dashboard: {client.dashboard_link}")
        result = dask_stats.convert(args.root, args.output, client=client, to=args.to)
        print(result.summary())


if __name__ == "__main__":  # worker processes re-import this module
    main()
