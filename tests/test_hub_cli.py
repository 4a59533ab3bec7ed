"""`convert --repo-id ... --push-to-hub` end to end, against the local Hub stand-in (no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dask_stats.sample import Camera, SampleSpec, make_dataset

try:
    from hubstub import HubStub, dataset_files
except ImportError:  # tests/ made a package
    from tests.hubstub import HubStub, dataset_files

REPO = "someone/robot"


@pytest.fixture
def hub(tmp_path):
    source = make_dataset(tmp_path / "src", SampleSpec(lengths=[6, 4], cameras={"observation.images.top": Camera(16, 16)}))
    with HubStub() as stub:
        stub.add_repo(REPO, {**dataset_files(source), "README.md": b"# robot\n"}, tag="v2.0")
        env = {**os.environ, "HF_ENDPOINT": stub.url, "HF_TOKEN": "hf_test", "HF_HUB_CACHE": str(tmp_path / "cache"),
               "HF_LEROBOT_HOME": str(tmp_path / "lerobot"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        yield stub, env


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "dask_stats", "convert", *args, "--num-workers", "1",
                           "--scheduler", "threads"], capture_output=True, text=True, env=env, timeout=300)


def test_convert_by_repo_id_push_tag_and_rerun(hub, tmp_path):
    stub, env = hub
    dry = cli(env, "--repo-id", REPO, "--push-to-hub", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would download someone/robot@v2.0" in dry.stdout and "v2.1" in dry.stdout
    assert "v2.1" not in stub.repos[REPO].tags

    done = cli(env, "--repo-id", REPO, "--push-to-hub", "--delete-old-stats")
    assert done.returncode == 0, done.stderr
    local = tmp_path / "lerobot" / REPO
    assert json.loads((local / "meta/info.json").read_text())["codebase_version"] == "v2.1"
    repo = stub.repos[REPO]
    tagged = repo.commits[repo.tags["v2.1"]]
    assert json.loads(tagged["meta/info.json"])["codebase_version"] == "v2.1"
    assert "meta/episodes_stats.jsonl" in tagged and "meta/stats.json" not in tagged
    assert tagged["meta/episodes_stats.jsonl"] == (local / "meta/episodes_stats.jsonl").read_bytes()

    again = cli(env, "--repo-id", REPO, "--push-to-hub")
    assert again.returncode == 0, again.stderr
    assert "already at v2.1 on the Hub" in again.stdout
    assert stub.repos[REPO].tags["v2.1"] == repo.tags["v2.1"]


def test_missing_v20_tag_suggests_revision_main(tmp_path):
    source = make_dataset(tmp_path / "src", SampleSpec(lengths=[3], cameras={}))
    with HubStub() as stub:
        stub.add_repo(REPO, dataset_files(source))
        env = {**os.environ, "HF_ENDPOINT": stub.url, "HF_TOKEN": "hf_test", "HF_HUB_CACHE": str(tmp_path / "c"),
               "HF_LEROBOT_HOME": str(tmp_path / "l")}
        run = cli(env, "--repo-id", REPO)
    assert run.returncode == 2 and "--revision main" in run.stderr and "Traceback" not in run.stderr
