"""`convert --repo-id ... --push-to-hub` end to end, against the local Hub stand-in (no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

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


# ------------------------------------------------------------------------------------------------ offline
def _local_env(tmp_path, endpoint, offline=False):
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(tmp_path / "cache"),
           "HF_LEROBOT_HOME": str(tmp_path / "lerobot"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def _stopped_stub_url():
    with HubStub() as stub:
        return stub.url  # nothing listens there any more: connections are refused


@pytest.mark.parametrize("offline", [False, True], ids=["stub-stopped", "HF_HUB_OFFLINE"])
def test_root_holding_the_dataset_never_asks_the_hub(tmp_path, offline):
    """lerobot's `--repo-id=local/x --root=x`: quick, silent with --quiet, and a re-run says it is done."""
    make_dataset(tmp_path / "x", SampleSpec(lengths=[3, 2], cameras={}))
    endpoint = "http://10.255.255.1" if offline else _stopped_stub_url()  # unroutable: would hang if asked
    env = _local_env(tmp_path, endpoint, offline)
    start = time.perf_counter()
    run = cli(env, "--repo-id=local/x", f"--root={tmp_path / 'x'}", "--quiet")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [] and run.stderr.splitlines() == []
    assert time.perf_counter() - start < 20
    assert json.loads((tmp_path / "x/meta/info.json").read_text())["codebase_version"] == "v2.1"

    again = cli(env, "--repo-id=local/x", f"--root={tmp_path / 'x'}", "--quiet")
    assert again.returncode == 0, again.stderr
    assert len(again.stdout.splitlines()) == 1 and again.stderr == ""
    assert "already at v2.1" in again.stdout and "--force" in again.stdout

    dry = cli(env, "--repo-id=local/x", f"--root={tmp_path / 'x'}", "--dry-run", "--force")
    assert dry.returncode == 0 and "would download" not in dry.stdout and "would convert" in dry.stdout


@pytest.mark.parametrize("offline", [False, True], ids=["stub-stopped", "HF_HUB_OFFLINE"])
def test_unreachable_hub_fails_fast_in_one_line(tmp_path, offline):
    endpoint = "http://10.255.255.1" if offline else _stopped_stub_url()
    env = _local_env(tmp_path, endpoint, offline)
    start = time.perf_counter()
    runs = [cli(env, "--repo-id", REPO, "--quiet"), cli(env, "--repo-id", REPO, "--dry-run"),
            cli(env, "--repo-id", REPO, "--root", str(tmp_path / "x"), "--push-to-hub", "--quiet")]
    assert time.perf_counter() - start < 20 * len(runs)
    for run in runs:
        assert run.returncode == 2 and run.stdout == ""
        assert len(run.stderr.splitlines()) == 1, run.stderr
        assert ("HF_HUB_OFFLINE is set" if offline else "could not be reached") in run.stderr
    assert "not in the local Hugging Face cache" in runs[0].stderr and "would download" not in runs[1].stdout
    assert "Cannot push to someone/robot" in runs[2].stderr and not (tmp_path / "x").exists()


def test_dry_run_lists_the_real_files(hub, tmp_path):
    stub, env = hub
    dry = cli(env, "--repo-id", REPO, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    n_files = sum(1 for path in stub.tree(REPO, "v2.0") if path.split("/")[0] in ("meta", "data", "videos"))
    assert f"would download someone/robot@v2.0 (meta/, data/, videos/): {n_files} file(s)" in dry.stdout
    local = tmp_path / "lerobot" / REPO  # huggingface_hub leaves only its own lock files under .cache/
    assert [p for p in local.rglob("*") if p.is_file() and ".cache" not in p.relative_to(local).parts] == []
    assert stub.writes() == []
