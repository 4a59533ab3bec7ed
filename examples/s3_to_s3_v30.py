"""Convert a v2.x dataset on S3 into a v3.0 dataset on S3, on a Dask cluster: the workers read the episodes where
they live and write the v3.0 data and video files straight into the output prefix (each built in a temporary file
on the worker, checked frame by frame, then uploaded in parts); this machine writes only meta/.  Nothing needs
the dataset's size on any local disk.

    python examples/s3_to_s3_v30.py s3://bucket/dataset s3://bucket/dataset-v3.0 [--scheduler tcp://host:8786]

Credentials and endpoint come from the usual AWS_* variables (AWS_ENDPOINT_URL for S3-compatible stores), on
this machine and on every worker.  Interrupted, the same command resumes: finished files are reused while their
ETag is unchanged, and until the commit the output prefix holds a `.dask_stats-output` marker and no
`meta/info.json` (no reader takes it for a dataset).  The CLI equivalent is
`python -m dask_stats convert --root s3://bucket/dataset --output s3://bucket/dataset-v3.0 --to v3.0
--scheduler-address tcp://host:8786`.
"""

import argparse

from distributed import Client, LocalCluster

import dask_stats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("output")
    parser.add_argument("--scheduler", help="a running scheduler's address (default: a local cluster)")
    args = parser.parse_args()

    cluster = None if args.scheduler else LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1")
    with Client(args.scheduler or cluster) as client:
        print(f"{len(client.scheduler_info()['workers'])} workers, dashboard: {client.dashboard_link}")
        result = dask_stats.convert(args.root, args.output, client=client, to="v3.0")
        print(result.summary())
    if cluster is not None:
        cluster.close()


if __name__ == "__main__":  # worker processes re-import this module
    main()
