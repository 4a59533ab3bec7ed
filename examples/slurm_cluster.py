"""Convert a large dataset (e.g. DROID) on a SLURM cluster with dask-jobqueue (`pip install dask-jobqueue`).

    python examples/slurm_cluster.py /shared/datasets/droid --jobs 32 --partition cpu

Each SLURM job runs one single-threaded worker per core. An interrupted run (pre-empted jobs, lost
workers, Ctrl-C of this script) resumes where it stopped when started again with the same arguments.
"""

import argparse

from dask_jobqueue import SLURMCluster
from distributed import Client

import dask_stats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--output")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--cores", type=int, default=16, help="cores per job")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--walltime", default="04:00:00")
    args = parser.parse_args()

    cluster = SLURMCluster(
        cores=args.cores, processes=args.cores, memory=f"{args.cores}GB",  # one process per core, 1 GB each
        queue=args.partition, walltime=args.walltime, job_extra_directives=["--requeue"],
        worker_extra_args=["--nthreads", "1"], job_script_prologue=["export OMP_NUM_THREADS=1"],
    )
    cluster.scale(jobs=args.jobs)
    with Client(cluster) as client:
        print("dashboard:", client.dashboard_link)
        result = dask_stats.convert(args.root, args.output, client=client, task_timeout=1800, retries=2)
        print(result.summary())
    cluster.close()


if __name__ == "__main__":  # worker processes re-import this module
    main()
