"""``convert --repo-id ... --revision v3.0 --to v2.1`` against the Hub stand-in (tests/hubstub.py), on a repo as
lerobot's converter leaves it: the ``v2.1`` tag at the dataset before its v3.0 conversion, ``main`` at the v3.0 dataset
(tagged ``v3.0``).  That v2.1 tag is not this conversion: the v3.0 revision is converted, and a push does not move
the tag unless asked to (--force).  No network."""

from __future__ import annotations

import json

import pytest
from helpers import HUB_REPO
from hubstub import dataset_files

import dask_stats
from dask_stats.errors import HubError


@pytest.fixture
def hub_v30(stub, tiny_v20, tiny_v21, tmp_path_factory):
    """v2.1 (tagged) then v3.0 on main (tagged), as lerobot 0.4's converter publishes a dataset."""
    v30 = tmp_path_factory.mktemp("hub-v30") / "v30"
    dask_stats.convert(tiny_v20, v30, to="v3.0", scheduler="threads", num_workers=1, quiet=True)
    stub.add_repo(HUB_REPO, dataset_files(tiny_v21), tag="v2.1")
    repo = stub.repos[HUB_REPO]
    repo.tags["v3.0"] = repo.commit_to("main", dataset_files(v30))
    return repo


@pytest.mark.usefixtures("hf_env")
def test_the_v30_revision_is_converted_although_a_v21_tag_exists(stub, api, hub_v30, tmp_path):
    from dask_stats import convert_hub

    result = convert_hub(HUB_REPO, root=tmp_path / "ds", output=tmp_path / "v21", revision="v3.0", to="v2.1",
                         api=api, num_workers=1, quiet=True)
    assert result.status == "converted" and result.conversion.format == "v2.1", str(result)
    assert "has a `v2.1` tag, made from an older revision than v3.0" in str(result)
    info = json.loads((tmp_path / "v21/meta/info.json").read_text())
    assert info["codebase_version"] == "v2.1" and (tmp_path / "v21/data/chunk-000/episode_000001.parquet").is_file()
    assert stub.writes() == []


@pytest.mark.usefixtures("hf_env")
def test_a_push_does_not_move_the_old_v21_tag_unless_forced(stub, api, hub_v30, tmp_path):
    from dask_stats import convert_hub

    old_tag = hub_v30.tags["v2.1"]
    with pytest.raises(HubError, match="Tag `v2.1`.*--force"):
        convert_hub(HUB_REPO, root=tmp_path / "ds", revision="v3.0", to="v2.1", push_to_hub=True, branch="v2.1-back",
                    api=api, num_workers=1, quiet=True)
    assert hub_v30.tags["v2.1"] == old_tag and "v2.1-back" not in hub_v30.branches
    assert json.loads(stub.tree(HUB_REPO, "main")["meta/info.json"])["codebase_version"] == "v3.0"

    forced = convert_hub(HUB_REPO, root=tmp_path / "again", revision="v3.0", to="v2.1", push_to_hub=True,
                         branch="v2.1-back", force=True, api=api, num_workers=1, quiet=True)
    assert forced.pushed.tag_action == "moved" and hub_v30.tags["v2.1"] == hub_v30.branches["v2.1-back"]
    pushed = stub.tree(HUB_REPO, "v2.1")
    assert json.loads(pushed["meta/info.json"])["codebase_version"] == "v2.1"
    assert "data/chunk-000/episode_000000.parquet" in pushed and "meta/episodes_stats.jsonl" in pushed
    assert json.loads(stub.tree(HUB_REPO, "main")["meta/info.json"])["codebase_version"] == "v3.0", "main untouched"


@pytest.mark.usefixtures("hf_env")
def test_the_default_revision_still_finds_the_v21_tag(stub, api, hub_v30, tmp_path):
    from dask_stats import convert_hub

    tree = dict(stub.tree(HUB_REPO, "v2.1"))  # the default revision: a v2.0 tag, older than the v2.1 tag
    tree["meta/info.json"] = json.dumps({**json.loads(tree["meta/info.json"]), "codebase_version": "v2.0"}).encode()
    hub_v30.tags["v2.0"] = hub_v30.new_commit(tree)
    result = convert_hub(HUB_REPO, root=tmp_path / "ds", to="v2.1", api=api, quiet=True)
    assert result.status == "already-converted" and "already at v2.1 on the Hub" in str(result)
