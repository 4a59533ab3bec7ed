"""dask_stats.hub.download: fetching a dataset's v2.0 revision into HF_LEROBOT_HOME, from a Hugging Face cache laid out
as huggingface_hub does (offline), or from a local stand-in of the Hub (tests/hubstub.py); which version the Hub
holds. No network."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import HUB_REPO as REPO
from hubstub import dataset_files, git_blob_sha1
from huggingface_hub import constants

from dask_stats import hub
from dask_stats.hub import HubError, download_dataset, hub_dataset_version, plan_push, push

pytestmark = pytest.mark.usefixtures("hf_env")


# ---------------------------------------------------------------------------------------- HF cache
def seed_cache(cache: Path, repo_id: str, revisions: dict[str, dict[str, bytes]]) -> dict[str, str]:
    """Lay out ``datasets--owner--name/{blobs,snapshots/<commit>,refs/<revision>}`` as huggingface_hub does.

    Blobs are named by their etag (sha256 for LFS-tracked parquet/mp4 files, git blob sha1 otherwise);
    snapshot files are relative symlinks to them; ``refs/<name>`` holds the commit hash (tags too).
    """
    storage = cache / ("datasets--" + repo_id.replace("/", "--"))
    commits = {}
    for ref, files in revisions.items():
        commit = hashlib.sha1(ref.encode() + json.dumps(sorted(files)).encode()).hexdigest()
        for path, data in files.items():
            lfs = path.endswith((".parquet", ".mp4"))
            etag = hashlib.sha256(data).hexdigest() if lfs else git_blob_sha1(data)
            blob = storage / "blobs" / etag
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = storage / "snapshots" / commit / path
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(blob, link.parent), link)
        (storage / "refs").mkdir(parents=True, exist_ok=True)
        (storage / "refs" / ref).write_text(commit)
        commits[ref] = commit
    return commits


def test_download_offline_resolves_tag_from_cache(tiny_v20, hf_offline):
    v20_files = {**dataset_files(tiny_v20), "README.md": b"# tiny\n"}
    main_files = dict(v20_files)
    main_files["meta/info.json"] = v20_files["meta/info.json"].replace(b'"v2.0"', b'"v2.1"')
    seed_cache(Path(constants.HF_HUB_CACHE), REPO, {"v2.0": v20_files, "main": main_files})

    root = download_dataset(REPO)  # revision v2.0, root HF_LEROBOT_HOME/<repo_id>

    assert root == Path(os.environ["HF_LEROBOT_HOME"]) / REPO
    got = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    assert set(got) == set(dataset_files(tiny_v20)), "meta/, data/ and videos/ only (no README.md)"
    assert any(k.startswith("videos/") for k in got) and any(k.startswith("data/") for k in got)
    for rel, path in got.items():
        assert not path.is_symlink(), "materialised as real files, never links into the cache"
        assert path.read_bytes() == v20_files[rel]
    assert json.loads((root / "meta/info.json").read_text())["codebase_version"] == "v2.0"


def test_download_offline_keeps_existing_root(tiny_v20, tmp_path, hf_offline):
    seed_cache(Path(constants.HF_HUB_CACHE), REPO, {"v2.0": dataset_files(tiny_v20)})
    target = tmp_path / "mine"
    download_dataset(REPO, root=target)
    (target / "meta" / "episodes_stats.jsonl").write_text("{}\n")  # work in progress is never overwritten
    (target / "meta" / "tasks.jsonl").unlink()  # a missing file is filled in again from the cache
    assert download_dataset(REPO, root=target) == target
    assert (target / "meta" / "episodes_stats.jsonl").read_text() == "{}\n"
    assert (target / "meta" / "tasks.jsonl").read_bytes() == (tiny_v20 / "meta" / "tasks.jsonl").read_bytes()

    other = tmp_path / "other"  # not cached at that revision, but already on disk: used as it is
    shutil.copytree(tiny_v20, other)
    assert download_dataset(REPO, revision="v9.9", root=other) == other


def test_download_offline_missing_tag_suggests_main(tiny_v20, tmp_path, hf_offline):
    seed_cache(Path(constants.HF_HUB_CACHE), REPO, {"main": dataset_files(tiny_v20)})
    with pytest.raises(HubError) as err:
        download_dataset(REPO, root=tmp_path / "out")
    msg = str(err.value)
    assert "no `v2.0` tag" in msg and "--revision main" in msg and "HF_HUB_OFFLINE" in msg
    assert download_dataset(REPO, revision="main", root=tmp_path / "out").joinpath("meta/info.json").is_file()


def test_download_offline_uncached_repo(tmp_path, hf_offline):
    with pytest.raises(HubError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE"):
        download_dataset("nobody/nothing", root=tmp_path / "out")


# ----------------------------------------------------------------------------------- online (stub)
def test_download_from_hub(stub, api, hub_v20, tiny_v20, tmp_path):
    main = dict(stub.tree(REPO, "main"))
    main["meta/info.json"] = b'{"codebase_version": "v2.1"}'
    stub.repos[REPO].commit_to("main", main)  # main moved on: v2.0 must come from the tag

    root = download_dataset(REPO, root=tmp_path / "out", api=api)

    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts}
    assert files == set(dataset_files(tiny_v20)), "images/ and README.md are not fetched"
    assert json.loads((root / "meta/info.json").read_text())["codebase_version"] == "v2.0"


def test_download_leaves_a_converted_root_alone(stub, api, hub_v20, tiny_v21):
    before = (tiny_v21 / "meta/info.json").read_bytes()
    assert download_dataset(REPO, root=tiny_v21, api=api) == tiny_v21
    assert stub.log == [], "the Hub is not even asked"
    assert (tiny_v21 / "meta/info.json").read_bytes() == before

    download_dataset(REPO, root=tiny_v21, refresh=True, api=api)
    assert json.loads((tiny_v21 / "meta/info.json").read_text())["codebase_version"] == "v2.0"


def test_download_missing_revision_on_hub(stub, api, tiny_v20, tmp_path):
    stub.add_repo(REPO, dataset_files(tiny_v20))  # no v2.0 tag
    with pytest.raises(HubError) as err:
        download_dataset(REPO, root=tmp_path / "out", api=api)
    msg = str(err.value)
    assert "no `v2.0` tag" in msg and "--revision main" in msg and "it has: main" in msg


def test_download_missing_repo_on_hub(stub, api, tmp_path):
    with pytest.raises(HubError, match="was not found on the Hub"):
        download_dataset("nobody/nothing", root=tmp_path / "out", api=api)


def test_hub_dataset_version(stub, api, hub_v20, tiny_v21):
    assert hub_dataset_version(REPO, api=api) == "v2.0"
    assert hub_dataset_version(REPO, "v2.1", api=api) is None
    push(plan_push(REPO, tiny_v21, api=api), api=api)
    assert hub_dataset_version(REPO, "v2.1", api=api) == "v2.1"
    with pytest.raises(HubError, match="not found"):
        hub_dataset_version("nobody/nothing", api=api)


def test_lerobot_home(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_LEROBOT_HOME")
    assert hub.lerobot_home() == Path(constants.HF_HOME).expanduser() / "lerobot"
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "x"))
    assert hub.default_root("a/b") == tmp_path / "x" / "a" / "b"
