"""dask_stats.roundtrip: ``convert_hub`` (download, convert, plan the push, push) and its command line
``convert --repo-id ... [--push-to-hub]``, end to end against the local Hub stand-in (tests/hubstub.py); a root that
already holds the dataset never asks the Hub, and an unreachable Hub fails fast in one line. No network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from helpers import CAM, HUB_REPO
from hubstub import HubStub, dataset_files

from dask_stats.errors import HubError
from dask_stats.synthetic import Camera, SampleSpec

REPO = "someone/robot"


@pytest.mark.usefixtures("hf_env")
def test_convert_hub_round_trip(stub, api, hub_v20, tmp_path):
    from dask_stats import convert_hub

    lines = []
    dry = convert_hub(HUB_REPO, push_to_hub=True, dry_run=True, api=api, echo=lines.append)
    assert dry.status == "dry-run" and dry.download.source == "hub" and dry.conversion is None
    wanted = {p for p in stub.tree(HUB_REPO, "v2.0") if p.split("/")[0] in ("meta", "data", "videos")}
    assert {f.filename for f in dry.download.files} == wanted and all(f.will_download for f in dry.download.files)
    assert lines == str(dry).splitlines() and "would download" in lines[0] and stub.writes() == []

    done = convert_hub(HUB_REPO, push_to_hub=True, api=api, num_workers=1, quiet=True)
    assert done.status == "converted" and done.conversion.episodes == 2 and done.pushed.tag_action == "created"
    assert stub.repos[HUB_REPO].tags["v2.1"] == done.pushed.commit_oid

    again = convert_hub(HUB_REPO, push_to_hub=True, api=api, quiet=True)
    assert again.status == "already-converted" and "already at v2.1 on the Hub" in str(again)


@pytest.mark.usefixtures("hf_env")
def test_convert_hub_pushes_a_root_converted_earlier(stub, api, hub_v20, tiny_v21):
    from dask_stats import convert_hub

    result = convert_hub(HUB_REPO, root=tiny_v21, push_to_hub=True, api=api)
    assert result.status == "pushed-only" and result.conversion is None
    assert stub.repos[HUB_REPO].tags["v2.1"] == result.pushed.commit_oid


@pytest.mark.usefixtures("hf_env")
def test_convert_hub_root_already_converted_asks_nothing(stub, api, hub_v20, tiny_v21):
    from dask_stats import convert_hub

    result = convert_hub(HUB_REPO, root=tiny_v21, api=api)
    assert result.status == "already-converted" and stub.log == []
    assert str(result).count("\n") == 0 and "--force" in str(result)


@pytest.mark.usefixtures("hf_env")
def test_convert_hub_to_v30_then_recompute_pushes_only_the_stats(stub, api, hub_v20, tmp_path):
    from dask_stats import convert_hub

    first = convert_hub(HUB_REPO, root=tmp_path / "first", push_to_hub=True, api=api, to="v3.0", num_workers=1,
                        quiet=True)
    assert first.status == "converted" and first.pushed.tag_action == "created"
    published = stub.tree(HUB_REPO, "v3.0")
    assert "data/chunk-000/file-000.parquet" in published and "meta/episodes.jsonl" not in published
    assert b"q01" in published["meta/stats.json"], "v3.0 output has quantiles by default"

    again = convert_hub(HUB_REPO, root=tmp_path / "again", revision="v3.0", push_to_hub=True, api=api, force=True,
                        quantiles="0.02,0.98", num_workers=1, quiet=True)
    assert again.status == "converted"
    changed = {f.path_in_repo for f in again.plan.uploads}
    assert changed and all(p == "meta/stats.json" or p.startswith("meta/episodes/") for p in changed), changed
    assert not again.plan.deletes
    republished = stub.tree(HUB_REPO, "v3.0")
    assert b"q02" in republished["meta/stats.json"] and b"q01" not in republished["meta/stats.json"]
    assert republished["data/chunk-000/file-000.parquet"] == published["data/chunk-000/file-000.parquet"]


@pytest.mark.usefixtures("hf_env")
def test_convert_hub_to_v30_push_failed_then_rerun_pushes_the_whole_tree(stub, api, hub_v20, tmp_path):
    """A re-run after a failed push finds the root converted: it pushes the whole v3.0 tree (not only meta/, as
    for recomputed v3.0 stats) and removes the v2.x files, in one commit (also the README's large-push route)."""
    from dask_stats import convert_hub

    stub.fail_next["commit"] = (500, "Internal Error")
    with pytest.raises(HubError, match="No commit was made"):
        convert_hub(HUB_REPO, root=tmp_path / "root", push_to_hub=True, api=api, to="v3.0", num_workers=1, quiet=True)
    n_commits = len(stub.commit_payloads)

    again = convert_hub(HUB_REPO, root=tmp_path / "root", push_to_hub=True, api=api, to="v3.0", quiet=True)

    assert again.status == "pushed-only" and again.pushed.tag_action == "created"
    assert len(stub.commit_payloads) == n_commits + 1, "one commit"
    published = stub.tree(HUB_REPO, "v3.0")
    assert "data/chunk-000/file-000.parquet" in published and "meta/episodes.jsonl" not in published
    assert not any(p.startswith("data/chunk-000/episode_") for p in published)


# ------------------------------------------------------------------------------------------------ command line
@pytest.fixture
def hub(tmp_path, make_sample):
    source = make_sample(SampleSpec(lengths=[6, 4], cameras={CAM: Camera(16, 16)}), "robot")
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


def test_missing_v20_tag_suggests_revision_main(tmp_path, make_sample):
    source = make_sample(SampleSpec(lengths=[3], cameras={}))
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
def test_root_holding_the_dataset_never_asks_the_hub(tmp_path, make_sample, copy_of, offline):
    """lerobot's `--repo-id=local/x --root=x`: quick, silent with --quiet, and a re-run says it is done."""
    copy_of(make_sample(SampleSpec(lengths=[3, 2], cameras={})), "x")
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
