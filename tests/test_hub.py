"""dask_stats.hub: download from a Hugging Face cache laid out as huggingface_hub does (offline), and
download / plan / push / tag against a local stand-in of the Hub (tests/hubstub.py). No network."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from huggingface_hub import HfApi, constants

from dask_stats import hub
from dask_stats.hub import (
    HubError,
    download_dataset,
    hub_dataset_version,
    plan_push,
    push,
)
from dask_stats.sample import Camera, SampleSpec, make_dataset

try:
    from hubstub import HubStub, dataset_files, git_blob_sha1
except ImportError:  # tests/ made a package
    from tests.hubstub import HubStub, dataset_files, git_blob_sha1

REPO = "someone/tiny"


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def v20(tmp_path_factory) -> Path:
    """A tiny v2.0 dataset (2 episodes, one 16x16 camera), made once."""
    root = tmp_path_factory.mktemp("v20") / "tiny"
    make_dataset(root, SampleSpec(lengths=[5, 3], cameras={"observation.images.top": Camera(16, 16)}))
    return root


@pytest.fixture(autouse=True)
def hf_env(tmp_path, monkeypatch):
    """Private HF cache and lerobot home; huggingface_hub read its constants at import, so patch them."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lerobot"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def stub():
    with HubStub() as s:
        yield s


@pytest.fixture
def api(stub):
    return HfApi(endpoint=stub.url, token="hf_test")


def convert_fake(src: Path, dest: Path) -> Path:
    """Stand-in for the real conversion: v2.1 info.json + an episodes_stats.jsonl; stats.json kept locally."""
    shutil.copytree(src, dest)
    info_path = dest / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["codebase_version"] = "v2.1"
    info_path.write_text(json.dumps(info, indent=4))
    lines = [{"episode_index": i, "stats": {"frame_index": {"min": [0], "count": [n]}}} for i, n in enumerate([5, 3])]
    (dest / "meta" / "episodes_stats.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return dest


@pytest.fixture
def converted(v20, tmp_path) -> Path:
    return convert_fake(v20, tmp_path / "converted")


@pytest.fixture
def hub_v20(stub, v20):
    """The Hub as a v2.0 dataset leaves it: main at the v2.0 commit, tagged v2.0, with meta/stats.json."""
    files = {**dataset_files(v20), "README.md": b"# tiny\n", "images/leftover.png": b"png"}
    return stub.add_repo(REPO, files, tag="v2.0")


# ------------------------------------------------------------------------------------------------ HF cache
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


def test_download_offline_resolves_tag_from_cache(v20, offline):
    v20_files = {**dataset_files(v20), "README.md": b"# tiny\n"}
    main_files = dict(v20_files)
    main_files["meta/info.json"] = v20_files["meta/info.json"].replace(b'"v2.0"', b'"v2.1"')
    seed_cache(Path(constants.HF_HUB_CACHE), REPO, {"v2.0": v20_files, "main": main_files})

    root = download_dataset(REPO)  # revision v2.0, root HF_LEROBOT_HOME/<repo_id>

    assert root == Path(os.environ["HF_LEROBOT_HOME"]) / REPO
    got = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    assert set(got) == set(dataset_files(v20)), "meta/, data/ and videos/ only (no README.md)"
    assert any(k.startswith("videos/") for k in got) and any(k.startswith("data/") for k in got)
    for rel, path in got.items():
        assert not path.is_symlink(), "materialised as real files, never links into the cache"
        assert path.read_bytes() == v20_files[rel]
    assert json.loads((root / "meta/info.json").read_text())["codebase_version"] == "v2.0"


def test_download_offline_keeps_existing_root(v20, tmp_path, offline):
    seed_cache(Path(constants.HF_HUB_CACHE), REPO, {"v2.0": dataset_files(v20)})
    target = tmp_path / "mine"
    download_dataset(REPO, root=target)
    (target / "meta" / "episodes_stats.jsonl").write_text("{}\n")  # work in progress is never overwritten
    (target / "meta" / "tasks.jsonl").unlink()  # a missing file is filled in again from the cache
    assert download_dataset(REPO, root=target) == target
    assert (target / "meta" / "episodes_stats.jsonl").read_text() == "{}\n"
    assert (target / "meta" / "tasks.jsonl").read_bytes() == (v20 / "meta" / "tasks.jsonl").read_bytes()

    other = tmp_path / "other"  # not cached at that revision, but already on disk: used as it is
    shutil.copytree(v20, other)
    assert download_dataset(REPO, revision="v9.9", root=other) == other


def test_download_offline_missing_tag_suggests_main(v20, tmp_path, offline):
    seed_cache(Path(constants.HF_HUB_CACHE), REPO, {"main": dataset_files(v20)})
    with pytest.raises(HubError) as err:
        download_dataset(REPO, root=tmp_path / "out")
    msg = str(err.value)
    assert "no `v2.0` tag" in msg and "--revision main" in msg and "HF_HUB_OFFLINE" in msg
    assert download_dataset(REPO, revision="main", root=tmp_path / "out").joinpath("meta/info.json").is_file()


def test_download_offline_uncached_repo(tmp_path, offline):
    with pytest.raises(HubError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE"):
        download_dataset("nobody/nothing", root=tmp_path / "out")


# ------------------------------------------------------------------------------------------------ online (stub)
def test_download_from_hub(stub, api, hub_v20, v20, tmp_path):
    main = dict(stub.tree(REPO, "main"))
    main["meta/info.json"] = b'{"codebase_version": "v2.1"}'
    stub.repos[REPO].commit_to("main", main)  # main moved on: v2.0 must come from the tag

    root = download_dataset(REPO, root=tmp_path / "out", api=api)

    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts}
    assert files == set(dataset_files(v20)), "images/ and README.md are not fetched"
    assert json.loads((root / "meta/info.json").read_text())["codebase_version"] == "v2.0"


def test_download_leaves_a_converted_root_alone(stub, api, hub_v20, converted):
    before = (converted / "meta/info.json").read_bytes()
    assert download_dataset(REPO, root=converted, api=api) == converted
    assert stub.log == [], "the Hub is not even asked"
    assert (converted / "meta/info.json").read_bytes() == before

    download_dataset(REPO, root=converted, refresh=True, api=api)
    assert json.loads((converted / "meta/info.json").read_text())["codebase_version"] == "v2.0"


def test_download_missing_revision_on_hub(stub, api, v20, tmp_path):
    stub.add_repo(REPO, dataset_files(v20))  # no v2.0 tag
    with pytest.raises(HubError) as err:
        download_dataset(REPO, root=tmp_path / "out", api=api)
    msg = str(err.value)
    assert "no `v2.0` tag" in msg and "--revision main" in msg and "it has: main" in msg


def test_download_missing_repo_on_hub(stub, api, tmp_path):
    with pytest.raises(HubError, match="was not found on the Hub"):
        download_dataset("nobody/nothing", root=tmp_path / "out", api=api)


def test_hub_dataset_version(stub, api, hub_v20, converted):
    assert hub_dataset_version(REPO, api=api) == "v2.0"
    assert hub_dataset_version(REPO, "v2.1", api=api) is None
    push(plan_push(REPO, converted, api=api), api=api)
    assert hub_dataset_version(REPO, "v2.1", api=api) == "v2.1"
    with pytest.raises(HubError, match="not found"):
        hub_dataset_version("nobody/nothing", api=api)


# ------------------------------------------------------------------------------------------------ push
def test_first_push(stub, api, hub_v20, converted):
    plan = plan_push(REPO, converted, api=api)
    assert stub.writes() == [], "planning writes nothing"
    status = {f.path_in_repo: f.status for f in plan.files}
    assert status == {
        "meta/episodes.jsonl": "unchanged",
        "meta/episodes_stats.jsonl": "new",
        "meta/info.json": "changed",
        "meta/tasks.jsonl": "unchanged",
    }
    assert (plan.create_branch, plan.stats_on_hub, plan.delete_stats, plan.tag_action) == (False, True, False, "create")

    result = push(plan, api=api)

    assert [w[1] for w in stub.writes()] == ["commit", "create-tag"]
    repo = stub.repos[REPO]
    assert repo.tags["v2.1"] == repo.branches["main"] == result.commit_oid
    assert repo.tags["v2.0"] == hub_v20, "the old tag stays"
    tree = stub.tree(REPO, "v2.1")
    assert tree["meta/info.json"] == (converted / "meta/info.json").read_bytes()
    assert tree["meta/episodes_stats.jsonl"] == (converted / "meta/episodes_stats.jsonl").read_bytes()
    assert "meta/stats.json" in tree, "kept on the Hub without delete_old_stats"
    sent = [line["value"]["path"] for line in stub.commit_payloads[0][1:]]
    assert sorted(sent) == ["meta/episodes_stats.jsonl", "meta/info.json"], "only changed meta files travel"
    assert sorted(result.uploaded) == sorted(sent) and result.tag_action == "created"
    assert "tagged v2.1" in str(result)


def test_rerun_is_a_noop(stub, api, hub_v20, converted):
    push(plan_push(REPO, converted, api=api), api=api)
    n_writes = len(stub.writes())

    plan = plan_push(REPO, converted, api=api)
    assert plan.is_noop and plan.tag_action == "keep" and not plan.needs_commit
    assert "nothing to do" in str(plan)
    result = push(plan, api=api)
    assert len(stub.writes()) == n_writes, "no commit, no tag request (no HTTP 409)"
    assert result.commit_url is None and result.tag_action == "kept"

    # main moves on with an unrelated commit: the tag still holds identical meta/ files -> left alone
    tree = dict(stub.tree(REPO, "main"))
    tagged = stub.repos[REPO].tags["v2.1"]
    tree["README.md"] = b"# tiny, edited\n"
    stub.repos[REPO].commit_to("main", tree)
    plan = plan_push(REPO, converted, api=api)
    assert plan.is_noop and plan.tag_commit == tagged
    push(plan, api=api)
    assert stub.repos[REPO].tags["v2.1"] == tagged and len(stub.writes()) == n_writes


def test_rerun_compares_lfs_files_by_sha256(stub, api, hub_v20, converted):
    stub.lfs_suffixes = (".jsonl",)  # large episodes_stats.jsonl files live in LFS/Xet on the Hub
    push(plan_push(REPO, converted, api=api), api=api)
    assert plan_push(REPO, converted, api=api).is_noop
    (converted / "meta" / "episodes_stats.jsonl").write_text("{}\n")
    plan = plan_push(REPO, converted, api=api)
    assert [f.path_in_repo for f in plan.uploads] == ["meta/episodes_stats.jsonl"]


def test_push_to_new_branch_from_source_revision(stub, api, hub_v20, converted):
    tree = dict(stub.tree(REPO, "main"))
    tree["README.md"] = b"# main moved on\n"
    main_head = stub.repos[REPO].commit_to("main", tree)

    plan = plan_push(REPO, converted, branch="convert-v21", source_revision="v2.0", api=api)
    assert plan.create_branch and plan.base_commit == hub_v20 and plan.revision == "convert-v21"
    assert "create `convert-v21` from `v2.0`" in str(plan)
    result = push(plan, api=api)

    assert [w[1] for w in stub.writes()] == ["create-branch", "commit", "create-tag"]
    repo = stub.repos[REPO]
    assert repo.branches["main"] == main_head, "main untouched"
    assert repo.tags["v2.1"] == repo.branches["convert-v21"] == result.commit_oid
    branch_tree = stub.tree(REPO, "convert-v21")
    assert branch_tree["README.md"] == b"# tiny\n", "branch starts from v2.0, not from main"
    assert json.loads(branch_tree["meta/info.json"])["codebase_version"] == "v2.1"
    assert result.branch_created

    assert plan_push(REPO, converted, branch="convert-v21", source_revision="v2.0", api=api).is_noop


def test_delete_old_stats_in_the_same_commit(stub, api, hub_v20, converted):
    plan = plan_push(REPO, converted, delete_old_stats=True, api=api)
    assert plan.delete_stats
    assert "- meta/stats.json (deleted in the same commit)" in str(plan)
    result = push(plan, api=api)

    assert [w[1] for w in stub.writes()] == ["commit", "create-tag"], "one atomic commit"
    ops = {(line["key"], line["value"]["path"]) for line in stub.commit_payloads[0][1:]}
    assert ("deletedFile", "meta/stats.json") in ops and ("file", "meta/info.json") in ops
    assert "meta/stats.json" not in stub.tree(REPO, "v2.1")
    assert result.stats_deleted
    assert (converted / "meta/stats.json").is_file(), "local files are not this module's business"
    assert plan_push(REPO, converted, delete_old_stats=True, api=api).is_noop


def test_failed_commit_creates_no_tag(stub, api, hub_v20, converted):
    plan = plan_push(REPO, converted, branch="convert-v21", source_revision="v2.0", api=api)
    stub.fail_next["commit"] = (500, "Internal Error - We're working hard to fix this as soon as possible!")
    with pytest.raises(HubError) as err:
        push(plan, api=api)
    msg = str(err.value)
    assert "No commit was made" in msg and "created branch `convert-v21`" in msg
    assert "tag was not touched" in msg and "re-run to retry" in msg.lower()
    repo = stub.repos[REPO]
    assert "v2.1" not in repo.tags and repo.branches["convert-v21"] == hub_v20
    assert [w[1] for w in stub.writes()] == ["create-branch", "commit"]

    result = push(plan_push(REPO, converted, branch="convert-v21", source_revision="v2.0", api=api), api=api)
    assert repo.tags["v2.1"] == result.commit_oid != hub_v20


def test_failed_tag_is_completed_by_a_rerun(stub, api, hub_v20, converted):
    stub.fail_next["create-tag"] = (403, "You don't have the rights to create a tag")
    with pytest.raises(HubError) as err:
        push(plan_push(REPO, converted, api=api), api=api)
    assert "pushed: commit" in str(err.value) and "Re-run" in str(err.value)
    head = stub.repos[REPO].branches["main"]
    assert "v2.1" not in stub.repos[REPO].tags

    plan = plan_push(REPO, converted, api=api)
    assert not plan.needs_commit and plan.tag_action == "create"
    push(plan, api=api)
    assert stub.repos[REPO].tags["v2.1"] == head


def test_tag_elsewhere_is_refused_then_moved(stub, api, hub_v20, converted):
    stub.repos[REPO].tags["v2.1"] = hub_v20  # someone tagged the unconverted commit
    plan = plan_push(REPO, converted, api=api)
    assert plan.tag_action == "conflict" and "PROBLEM" in str(plan)
    with pytest.raises(HubError) as err:
        push(plan, api=api)
    assert "already points to commit" in str(err.value)
    assert "hf repos tag delete someone/tiny v2.1 --repo-type dataset" in str(err.value)
    assert stub.writes() == [], "refused before writing anything"

    plan = plan_push(REPO, converted, move_tag=True, api=api)
    assert plan.tag_action == "move"
    result = push(plan, api=api)
    assert [w[1] for w in stub.writes()] == ["commit", "delete-tag", "create-tag"]
    assert stub.repos[REPO].tags["v2.1"] == result.commit_oid and result.tag_action == "moved"


def test_branch_moved_since_plan(stub, api, hub_v20, converted):
    plan = plan_push(REPO, converted, api=api)
    tree = dict(stub.tree(REPO, "main"))
    tree["README.md"] = b"# concurrent edit\n"
    stub.repos[REPO].commit_to("main", tree)
    with pytest.raises(HubError, match="changed since the plan"):
        push(plan, api=api)
    assert "v2.1" not in stub.repos[REPO].tags


def test_dry_run_report(stub, api, hub_v20, converted):
    text = str(plan_push(REPO, converted, api=api))
    assert text.startswith(f"Push {converted} to {stub.url}/datasets/{REPO}")
    for line in (
        "branch: `main` (head ",
        "commit: 2 file(s) to upload, 2 unchanged",
        "+ meta/episodes_stats.jsonl (new,",
        "~ meta/info.json (changed,",
        "= meta/tasks.jsonl (unchanged,",
        "meta/stats.json: kept on the Hub (--delete-old-stats removes it)",
        "tag: create `v2.1` at the new head of `main`",
    ):
        assert line in text, line
    assert "data/" not in text and "videos/" not in text
    assert stub.writes() == []


def test_dry_run_before_conversion(stub, api, hub_v20, v20):
    plan = plan_push(REPO, v20, delete_old_stats=True, pending=True, api=api)
    text = str(plan)
    assert "~ meta/info.json (written by the conversion)" in text
    assert "~ meta/episodes_stats.jsonl (written by the conversion)" in text
    assert "= meta/tasks.jsonl (unchanged," in text and "- meta/stats.json (deleted in the same commit)" in text
    assert "planned before the conversion" in text
    with pytest.raises(HubError, match="made before the conversion"):
        push(plan, api=api)
    assert stub.writes() == []


def test_push_new_repo_uploads_whole_dataset(stub, api, converted):
    plan = plan_push(REPO, converted, private=True, api=api)
    assert plan.create_repo and {f.status for f in plan.files} == {"new"}
    push(plan, api=api)
    assert [w[1] for w in stub.writes()] == ["create-repo", "commit", "create-tag"]
    repo = stub.repos[REPO]
    assert repo.private
    tree = stub.tree(REPO, "v2.1")
    expected = set(dataset_files(converted)) - {"meta/stats.json"}
    assert expected <= set(tree) and "meta/stats.json" not in tree
    assert plan_push(REPO, converted, api=api).is_noop


def test_push_refuses_unconverted_dataset(stub, api, hub_v20, v20):
    with pytest.raises(HubError, match="not converted yet.*Run the conversion"):
        plan_push(REPO, v20, api=api)


def test_skips_temporary_and_hidden_files(stub, api, hub_v20, converted):
    (converted / "meta" / "episodes_stats.jsonl.tmp").write_text("partial")
    (converted / "meta" / ".checkpoint").mkdir()
    (converted / "meta" / ".checkpoint" / "state.json").write_text("{}")
    paths = {f.path_in_repo for f in plan_push(REPO, converted, api=api).files}
    assert paths == {"meta/episodes.jsonl", "meta/episodes_stats.jsonl", "meta/info.json", "meta/tasks.jsonl"}


def test_plan_offline_is_a_clear_error(converted, offline):
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        plan_push(REPO, converted, api=HfApi(endpoint="http://127.0.0.1:9", token="hf_test"))


def test_lerobot_home(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_LEROBOT_HOME")
    assert hub.lerobot_home() == Path(constants.HF_HOME).expanduser() / "lerobot"
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "x"))
    assert hub.default_root("a/b") == tmp_path / "x" / "a" / "b"


# ------------------------------------------------------------------------------------------------ v3.0 push
def make_v30_tree(root: Path) -> Path:
    """A hand-made tiny v3.0 tree (contents are placeholders: only the layout matters to the push)."""
    files = {
        "meta/info.json": json.dumps({"codebase_version": "v3.0", "total_episodes": 2}).encode(),
        "meta/stats.json": b'{"frame_index": {"min": [0]}}',
        "meta/tasks.parquet": b"PAR1 tasks",
        "meta/episodes/chunk-000/file-000.parquet": b"PAR1 episodes",
        "data/chunk-000/file-000.parquet": b"PAR1 data",
        "videos/observation.images.top/chunk-000/file-000.mp4": b"\x00\x00\x00\x18ftypmp42",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_v30_push_replaces_the_v2_layout_in_one_commit(stub, api, hub_v20, tmp_path):
    tree = make_v30_tree(tmp_path / "v30")
    plan = plan_push(REPO, tree, to="v3.0", branch="v3", source_revision="v2.0", api=api)
    assert plan.tag == "v3.0" and plan.create_branch and stub.writes() == []
    status = {f.path_in_repo: f.status for f in plan.files}
    assert status["meta/info.json"] == status["meta/stats.json"] == "changed"
    assert status["data/chunk-000/file-000.parquet"] == "new"
    assert "meta/episodes.jsonl" in plan.deletes and "meta/tasks.jsonl" in plan.deletes
    assert any(p.startswith("data/chunk-000/episode_") for p in plan.deletes)
    assert any(p.startswith("videos/chunk-000/") for p in plan.deletes)
    assert "README.md" not in plan.deletes and "images/leftover.png" not in plan.deletes
    assert "(deleted in the same commit)" in str(plan)

    result = push(plan, api=api)

    assert [w[1] for w in stub.writes()] == ["create-branch", "commit", "create-tag"], "one commit switches layout"
    published = stub.tree(REPO, "v3.0")
    assert {p for p in published if p.split("/")[0] in ("meta", "data", "videos")} == set(dataset_files(tree))
    assert published["README.md"] == b"# tiny\n" and "images/leftover.png" in published
    assert stub.repos[REPO].branches["main"] == hub_v20, "main keeps the v2.0 layout"
    assert result.tag == "v3.0" and len(result.deleted) == len(plan.deletes)
    assert plan_push(REPO, tree, to="v3.0", branch="v3", source_revision="v2.0", api=api).is_noop


def test_v30_large_push_uploads_files_before_the_commit(stub, api, hub_v20, tmp_path):
    tree = make_v30_tree(tmp_path / "v30")
    plan = plan_push(REPO, tree, to="v3.0", api=api, large_upload_bytes=0)
    assert plan.large and "uploaded in batches first" in str(plan)
    push(plan, api=api)
    actions = [a for _, a in stub.log]
    assert actions.index("preupload") < actions.index("commit")
    assert [w[1] for w in stub.writes()] == ["commit", "create-tag"]


def test_v30_push_refuses_a_v21_tree(stub, api, hub_v20, converted):
    with pytest.raises(HubError, match="not converted yet.*v3.0"):
        plan_push(REPO, converted, to="v3.0", api=api)


# ------------------------------------------------------------------------------------------------ convert_hub
def test_convert_hub_round_trip(stub, api, hub_v20, tmp_path):
    from dask_stats import convert_hub

    lines = []
    dry = convert_hub(REPO, push_to_hub=True, dry_run=True, api=api, echo=lines.append)
    assert dry.status == "dry-run" and dry.download.source == "hub" and dry.conversion is None
    wanted = {p for p in stub.tree(REPO, "v2.0") if p.split("/")[0] in ("meta", "data", "videos")}
    assert {f.filename for f in dry.download.files} == wanted and all(f.will_download for f in dry.download.files)
    assert lines == str(dry).splitlines() and "would download" in lines[0] and stub.writes() == []

    done = convert_hub(REPO, push_to_hub=True, api=api, num_workers=1, quiet=True)
    assert done.status == "converted" and done.conversion.episodes == 2 and done.pushed.tag_action == "created"
    assert stub.repos[REPO].tags["v2.1"] == done.pushed.commit_oid

    again = convert_hub(REPO, push_to_hub=True, api=api, quiet=True)
    assert again.status == "already-converted" and "already at v2.1 on the Hub" in str(again)


def test_convert_hub_pushes_a_root_converted_earlier(stub, api, hub_v20, converted):
    from dask_stats import convert_hub

    result = convert_hub(REPO, root=converted, push_to_hub=True, api=api)
    assert result.status == "pushed-only" and result.conversion is None
    assert stub.repos[REPO].tags["v2.1"] == result.pushed.commit_oid


def test_convert_hub_root_already_converted_asks_nothing(stub, api, hub_v20, converted):
    from dask_stats import convert_hub

    result = convert_hub(REPO, root=converted, api=api)
    assert result.status == "already-converted" and stub.log == []
    assert str(result).count("\n") == 0 and "--force" in str(result)


def test_convert_hub_to_v30_then_recompute_pushes_only_the_stats(stub, api, hub_v20, tmp_path):
    from dask_stats import convert_hub

    first = convert_hub(REPO, root=tmp_path / "first", push_to_hub=True, api=api, to="v3.0", num_workers=1,
                        quiet=True)
    assert first.status == "converted" and first.pushed.tag_action == "created"
    published = stub.tree(REPO, "v3.0")
    assert "data/chunk-000/file-000.parquet" in published and "meta/episodes.jsonl" not in published
    assert b"q01" in published["meta/stats.json"], "v3.0 output has quantiles by default"

    again = convert_hub(REPO, root=tmp_path / "again", revision="v3.0", push_to_hub=True, api=api, force=True,
                        quantiles="0.02,0.98", num_workers=1, quiet=True)
    assert again.status == "converted"
    changed = {f.path_in_repo for f in again.plan.uploads}
    assert changed and all(p == "meta/stats.json" or p.startswith("meta/episodes/") for p in changed), changed
    assert not again.plan.deletes
    republished = stub.tree(REPO, "v3.0")
    assert b"q02" in republished["meta/stats.json"] and b"q01" not in republished["meta/stats.json"]
    assert republished["data/chunk-000/file-000.parquet"] == published["data/chunk-000/file-000.parquet"]
