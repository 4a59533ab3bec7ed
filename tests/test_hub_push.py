"""dask_stats.hub.push: planning (the --dry-run report) and carrying out the push of a converted dataset to a local
stand-in of the Hub (tests/hubstub.py): one commit of the changed files, the tag after it, re-runs that are no-ops,
failures that say what was and was not written, and the v3.0 layout replacing v2.x in one commit. No network."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import HUB_REPO as REPO
from hubstub import dataset_files
from huggingface_hub import HfApi

from dask_stats.hub import HubError, plan_push, push
from dask_stats.storage import OUTPUT_MARKER
from dask_stats.storage.atomic import TEMP_SUFFIX, atomic_path

pytestmark = pytest.mark.usefixtures("hf_env")


def test_first_push(stub, api, hub_v20, tiny_v21):
    plan = plan_push(REPO, tiny_v21, api=api)
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
    assert tree["meta/info.json"] == (tiny_v21 / "meta/info.json").read_bytes()
    assert tree["meta/episodes_stats.jsonl"] == (tiny_v21 / "meta/episodes_stats.jsonl").read_bytes()
    assert "meta/stats.json" in tree, "kept on the Hub without delete_old_stats"
    sent = [line["value"]["path"] for line in stub.commit_payloads[0][1:]]
    assert sorted(sent) == ["meta/episodes_stats.jsonl", "meta/info.json"], "only changed meta files travel"
    assert sorted(result.uploaded) == sorted(sent) and result.tag_action == "created"
    assert "tagged v2.1" in str(result)


def test_rerun_is_a_noop(stub, api, hub_v20, tiny_v21):
    push(plan_push(REPO, tiny_v21, api=api), api=api)
    n_writes = len(stub.writes())

    plan = plan_push(REPO, tiny_v21, api=api)
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
    plan = plan_push(REPO, tiny_v21, api=api)
    assert plan.is_noop and plan.tag_commit == tagged
    push(plan, api=api)
    assert stub.repos[REPO].tags["v2.1"] == tagged and len(stub.writes()) == n_writes


def test_rerun_compares_lfs_files_by_sha256(stub, api, hub_v20, tiny_v21):
    stub.lfs_suffixes = (".jsonl",)  # large episodes_stats.jsonl files live in LFS/Xet on the Hub
    push(plan_push(REPO, tiny_v21, api=api), api=api)
    assert plan_push(REPO, tiny_v21, api=api).is_noop
    (tiny_v21 / "meta" / "episodes_stats.jsonl").write_text("{}\n")
    plan = plan_push(REPO, tiny_v21, api=api)
    assert [f.path_in_repo for f in plan.uploads] == ["meta/episodes_stats.jsonl"]


def test_push_to_new_branch_from_source_revision(stub, api, hub_v20, tiny_v21):
    tree = dict(stub.tree(REPO, "main"))
    tree["README.md"] = b"# main moved on\n"
    main_head = stub.repos[REPO].commit_to("main", tree)

    plan = plan_push(REPO, tiny_v21, branch="convert-v21", source_revision="v2.0", api=api)
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

    assert plan_push(REPO, tiny_v21, branch="convert-v21", source_revision="v2.0", api=api).is_noop


def test_delete_old_stats_in_the_same_commit(stub, api, hub_v20, tiny_v21):
    plan = plan_push(REPO, tiny_v21, delete_old_stats=True, api=api)
    assert plan.delete_stats
    assert "- meta/stats.json (deleted in the same commit)" in str(plan)
    result = push(plan, api=api)

    assert [w[1] for w in stub.writes()] == ["commit", "create-tag"], "one atomic commit"
    ops = {(line["key"], line["value"]["path"]) for line in stub.commit_payloads[0][1:]}
    assert ("deletedFile", "meta/stats.json") in ops and ("file", "meta/info.json") in ops
    assert "meta/stats.json" not in stub.tree(REPO, "v2.1")
    assert result.stats_deleted
    assert (tiny_v21 / "meta/stats.json").is_file(), "local files are not this module's business"
    assert plan_push(REPO, tiny_v21, delete_old_stats=True, api=api).is_noop


def test_failed_commit_creates_no_tag(stub, api, hub_v20, tiny_v21):
    plan = plan_push(REPO, tiny_v21, branch="convert-v21", source_revision="v2.0", api=api)
    stub.fail_next["commit"] = (500, "Internal Error - We're working hard to fix this as soon as possible!")
    with pytest.raises(HubError) as err:
        push(plan, api=api)
    msg = str(err.value)
    assert "No commit was made" in msg and "created branch `convert-v21`" in msg
    assert "tag was not touched" in msg and "re-run to retry" in msg.lower()
    repo = stub.repos[REPO]
    assert "v2.1" not in repo.tags and repo.branches["convert-v21"] == hub_v20
    assert [w[1] for w in stub.writes()] == ["create-branch", "commit"]

    result = push(plan_push(REPO, tiny_v21, branch="convert-v21", source_revision="v2.0", api=api), api=api)
    assert repo.tags["v2.1"] == result.commit_oid != hub_v20


def test_failed_tag_is_completed_by_a_rerun(stub, api, hub_v20, tiny_v21):
    stub.fail_next["create-tag"] = (403, "You don't have the rights to create a tag")
    with pytest.raises(HubError) as err:
        push(plan_push(REPO, tiny_v21, api=api), api=api)
    assert "pushed: commit" in str(err.value) and "Re-run" in str(err.value)
    head = stub.repos[REPO].branches["main"]
    assert "v2.1" not in stub.repos[REPO].tags

    plan = plan_push(REPO, tiny_v21, api=api)
    assert not plan.needs_commit and plan.tag_action == "create"
    push(plan, api=api)
    assert stub.repos[REPO].tags["v2.1"] == head


def test_tag_elsewhere_is_refused_then_moved(stub, api, hub_v20, tiny_v21):
    stub.repos[REPO].tags["v2.1"] = hub_v20  # someone tagged the unconverted commit
    plan = plan_push(REPO, tiny_v21, api=api)
    assert plan.tag_action == "conflict" and "PROBLEM" in str(plan)
    with pytest.raises(HubError) as err:
        push(plan, api=api)
    assert "already points to commit" in str(err.value)
    assert "hf repos tag delete someone/tiny v2.1 --repo-type dataset" in str(err.value)
    assert stub.writes() == [], "refused before writing anything"

    plan = plan_push(REPO, tiny_v21, move_tag=True, api=api)
    assert plan.tag_action == "move"
    result = push(plan, api=api)
    assert [w[1] for w in stub.writes()] == ["commit", "delete-tag", "create-tag"]
    assert stub.repos[REPO].tags["v2.1"] == result.commit_oid and result.tag_action == "moved"


def test_branch_moved_since_plan(stub, api, hub_v20, tiny_v21):
    plan = plan_push(REPO, tiny_v21, api=api)
    tree = dict(stub.tree(REPO, "main"))
    tree["README.md"] = b"# concurrent edit\n"
    stub.repos[REPO].commit_to("main", tree)
    with pytest.raises(HubError, match="changed since the plan"):
        push(plan, api=api)
    assert "v2.1" not in stub.repos[REPO].tags


def test_dry_run_report(stub, api, hub_v20, tiny_v21):
    text = str(plan_push(REPO, tiny_v21, api=api))
    assert text.startswith(f"Push {tiny_v21} to {stub.url}/datasets/{REPO}")
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


def test_dry_run_before_conversion(stub, api, hub_v20, tiny_v20):
    plan = plan_push(REPO, tiny_v20, delete_old_stats=True, pending=True, api=api)
    text = str(plan)
    assert "~ meta/info.json (written by the conversion)" in text
    assert "~ meta/episodes_stats.jsonl (written by the conversion)" in text
    assert "= meta/tasks.jsonl (unchanged," in text and "- meta/stats.json (deleted in the same commit)" in text
    assert "planned before the conversion" in text
    with pytest.raises(HubError, match="made before the conversion"):
        push(plan, api=api)
    assert stub.writes() == []


def test_push_new_repo_uploads_whole_dataset(stub, api, tiny_v21):
    plan = plan_push(REPO, tiny_v21, private=True, api=api)
    assert plan.create_repo and {f.status for f in plan.files} == {"new"}
    push(plan, api=api)
    assert [w[1] for w in stub.writes()] == ["create-repo", "commit", "create-tag"]
    repo = stub.repos[REPO]
    assert repo.private
    tree = stub.tree(REPO, "v2.1")
    expected = set(dataset_files(tiny_v21)) - {"meta/stats.json"}
    assert expected <= set(tree) and "meta/stats.json" not in tree
    assert plan_push(REPO, tiny_v21, api=api).is_noop


def test_push_refuses_unconverted_dataset(stub, api, hub_v20, tiny_v20):
    with pytest.raises(HubError, match="not converted yet.*Run the conversion"):
        plan_push(REPO, tiny_v20, api=api)


def test_skips_temporary_and_hidden_files(stub, api, hub_v20, tiny_v21):
    (tiny_v21 / "meta" / "episodes_stats.jsonl.tmp").write_text("partial")
    (tiny_v21 / "meta" / ".checkpoint").mkdir()
    (tiny_v21 / "meta" / ".checkpoint" / "state.json").write_text("{}")
    paths = {f.path_in_repo for f in plan_push(REPO, tiny_v21, api=api).files}
    assert paths == {"meta/episodes.jsonl", "meta/episodes_stats.jsonl", "meta/info.json", "meta/tasks.jsonl"}


def test_temporaries_and_markers_are_never_pushed(stub, api, tmp_path):
    tree = make_v30_tree(tmp_path / "v30")
    real = set(dataset_files(tree))
    (tree / OUTPUT_MARKER).write_text("")
    (tree / "data" / ".cache" / "huggingface").mkdir(parents=True)
    (tree / "data" / ".cache" / "huggingface" / "upload.lock").write_text("")
    with atomic_path(tree / "videos" / "observation.images.top" / "chunk-000" / "file-001.mp4") as temp:
        Path(temp).write_bytes(b"half a video")  # a conversion writing this file right now
        plan = plan_push(REPO, tree, to="v3.0", api=api)  # a new repo: the whole tree is pushed
        push(plan, api=api)
        assert Path(temp).name.endswith(TEMP_SUFFIX) and Path(temp).name.startswith(".")
    pushed = set(stub.tree(REPO, "v3.0")) - {".gitattributes"}
    assert pushed == real
    assert {f.path_in_repo for f in plan.files} == pushed, "the dry-run lists what is pushed"
    assert not any(name.startswith(".") or name.endswith(TEMP_SUFFIX) for p in pushed for name in p.split("/"))


def test_unchanged_repush_makes_no_commit(stub, api, hub_v20, tmp_path):
    tree = make_v30_tree(tmp_path / "v30")
    push(plan_push(REPO, tree, to="v3.0", api=api), api=api)
    head, n_commits = stub.repos[REPO].branches["main"], len(stub.commit_payloads)
    (tree / "meta" / "info.json").write_bytes((tree / "meta" / "info.json").read_bytes())  # rewritten, same bytes
    plan = plan_push(REPO, tree, to="v3.0", api=api)
    assert plan.is_noop and "commit: none" in str(plan)
    n_log = len(stub.log)

    result = push(plan, api=api)

    asked = [a for _, a in stub.log[n_log:]]
    assert "info" in asked and "commit" not in asked, "create_commit with nothing to change answers the head"
    assert len(stub.commit_payloads) == n_commits and stub.repos[REPO].branches["main"] == head
    assert result.commit_url is None and result.commit_oid == head and "no commit needed" in str(result)


def test_tag_created_meanwhile_at_our_commit_is_fine(stub, api, hub_v20, tiny_v21):
    stub.fail_next["create-tag"] = (500, "Internal Error")
    with pytest.raises(HubError):
        push(plan_push(REPO, tiny_v21, api=api), api=api)
    plan = plan_push(REPO, tiny_v21, api=api)
    assert plan.tag_action == "create"
    head = stub.repos[REPO].branches["main"]
    stub.repos[REPO].tags["v2.1"] = head  # someone else tags the same commit meanwhile

    result = push(plan, api=api)

    assert ("POST", "create-tag") in stub.log[-3:], "create_tag(exist_ok=True) answered 409 and was accepted"
    assert stub.repos[REPO].tags["v2.1"] == head == result.commit_oid


def test_tag_created_meanwhile_elsewhere_is_an_error(stub, api, hub_v20, tiny_v21):
    plan = plan_push(REPO, tiny_v21, api=api)
    assert plan.tag_action == "create"
    stub.repos[REPO].tags["v2.1"] = hub_v20  # someone else tags the unconverted commit meanwhile
    with pytest.raises(HubError, match="created meanwhile at commit .*The commit is in place.*--force moves it"):
        push(plan, api=api)
    assert stub.repos[REPO].tags["v2.1"] == hub_v20, "not moved without --force"
    assert stub.repos[REPO].branches["main"] != hub_v20, "the commit is in place"


def test_plan_offline_is_a_clear_error(tiny_v21, hf_offline):
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        plan_push(REPO, tiny_v21, api=HfApi(endpoint="http://127.0.0.1:9", token="hf_test"))


# --------------------------------------------------------------------------------------- v3.0 push
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


def test_v30_push_resumes_without_sending_lfs_files_again(stub, api, hub_v20, tmp_path, monkeypatch):
    stub.lfs_suffixes = (".parquet", ".mp4")
    tree = make_v30_tree(tmp_path / "v30")
    monkeypatch.setattr(sys.modules[plan_push.__module__], "LARGE_UPLOAD_BYTES", 0)
    plan = plan_push(REPO, tree, to="v3.0", api=api)
    assert 'README: "Large pushes"' in str(plan)
    stub.fail_next["commit"] = (500, "Internal Error")
    with pytest.raises(HubError, match="files already uploaded are not sent again"):
        push(plan, api=api)
    uploaded = [a for _, a in stub.log].count("lfs-upload")
    assert uploaded == 4 and "v3.0" not in stub.repos[REPO].tags  # 3 parquet files and 1 video, no commit

    push(plan_push(REPO, tree, to="v3.0", api=api), api=api)
    assert [a for _, a in stub.log].count("lfs-upload") == uploaded, "nothing sent twice"
    published = stub.tree(REPO, "v3.0")
    assert all(published[rel] == data for rel, data in dataset_files(tree).items())


def test_v30_push_refuses_a_v21_tree(stub, api, hub_v20, tiny_v21):
    with pytest.raises(HubError, match="not converted yet.*v3.0"):
        plan_push(REPO, tiny_v21, to="v3.0", api=api)


def test_v30_push_finishes_a_large_folder_upload_in_one_commit(stub, api, hub_v20, tmp_path):
    """The README's large-push route: the v3.0 files were uploaded to a branch beforehand (hf upload-large-folder,
    many commits); the push then sends nothing again, removes the v2.x files in one commit and tags."""
    tree = make_v30_tree(tmp_path / "v30")
    stub.repos[REPO].commit_to("v3", {**stub.tree(REPO, "v2.0"), **dataset_files(tree)})
    plan = plan_push(REPO, tree, to="v3.0", branch="v3", api=api)
    assert not plan.uploads and plan.deletes and not plan.create_branch

    push(plan, api=api)

    assert [w[1] for w in stub.writes()] == ["commit", "create-tag"]
    assert {line["key"] for line in stub.commit_payloads[-1][1:]} == {"deletedFile"}, "no file sent again"
    published = stub.tree(REPO, "v3.0")
    assert {p for p in published if p.split("/")[0] in ("meta", "data", "videos")} == set(dataset_files(tree))
