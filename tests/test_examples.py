"""The cluster examples (examples/), run for real: a LocalCluster, and a `dask scheduler` + `dask worker` started as
processes; the SLURM and SSH examples need other machines and are only compiled."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import CAM, REPO, TWO_CAMERAS, episodes_stats, with_tests_on_path

from dask_stats.synthetic import Camera, SampleSpec

EXAMPLES = REPO / "examples"
DATASETS = {"one camera": (SampleSpec(lengths=[12, 20, 7], cameras={CAM: Camera(32, 32)}), "3 episodes, 39 frames"),
            "two cameras": (TWO_CAMERAS, "6 episodes, 130 frames")}


def run_example(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=with_tests_on_path())


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_local_cluster_example(make_sample, local_stats, tmp_path, dataset):
    spec, converted = DATASETS[dataset]
    root = make_sample(spec)
    run = run_example("local_cluster.py", root, "--output", tmp_path / "out", "--workers", "2")
    assert run.returncode == 0, run.stderr
    assert "dashboard: http://" in run.stdout and f"Converted {converted}" in run.stdout
    assert episodes_stats(tmp_path / "out") == local_stats(root)


@pytest.mark.parametrize("dask_cluster, dataset", [(1, "one camera"), (2, "two cameras")],
                         indirect=["dask_cluster"])
def test_existing_scheduler_example(dask_cluster, make_sample, local_stats, tmp_path, dataset):
    address, _, procs = dask_cluster
    spec, converted = DATASETS[dataset]
    root = make_sample(spec)
    run = run_example("existing_scheduler.py", address, root, "--output", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"{len(procs) - 1} workers, dashboard: http://")
    assert f"Converted {converted.split(',')[0]}" in run.stdout
    assert episodes_stats(tmp_path / "out") == local_stats(root)


@pytest.mark.parametrize("name", ["slurm_cluster.py", "ssh_cluster.py"])
def test_examples_needing_other_machines_compile(name):
    source = (EXAMPLES / name).read_text()
    compile(source, name, "exec")
    assert "dask_stats.convert(" in source and "client=client" in source and '__name__ == "__main__"' in source


def test_s3_to_s3_v30_example(s3_server, dask_cluster, make_sample, tmp_path):
    """The S3 example on a cluster: v2.0 in a bucket (moto) becomes v3.0 in the bucket, committed (no marker)."""
    fs, _ = s3_server
    address, _, _ = dask_cluster
    spec, converted = DATASETS["two cameras"]
    fs.put(str(make_sample(spec)), "robots/example", recursive=True)
    run = run_example("s3_to_s3_v30.py", "s3://robots/example", "s3://robots/example-v3.0", "--scheduler", address)
    assert run.returncode == 0, run.stderr
    assert f"Converted {converted.split(',')[0]}" in run.stdout
    assert "v3.0 dataset: s3://robots/example-v3.0" in run.stdout
    fs.invalidate_cache()
    assert fs.exists("robots/example-v3.0/meta/info.json") and not fs.exists("robots/example-v3.0/.dask_stats-output")
    assert len(fs.find("robots/example-v3.0/videos")) == 2, "one file per camera"
