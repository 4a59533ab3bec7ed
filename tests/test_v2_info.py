"""info.json totals that disagree with the episodes: the v2.1 output gets the counted values (key order kept), and
the warning says so, with --quiet too."""

from __future__ import annotations

import json
import shutil

from helpers import TINY, edit_json, tree_digest

from dask_stats import cli
from dask_stats.formats.v2.info import corrected_info


def test_corrected_info_sets_the_counted_totals_and_warns_for_each():
    info = {"codebase_version": "v2.0", "total_episodes": 4, "total_frames": 60, "total_tasks": 1,
            "total_videos": 4, "fps": 30, "features": {"cam": {"dtype": "video"}, "x": {"dtype": "float32"}}}
    fixed, warnings = corrected_info(info, 3, 67, "ds/meta/info.json")
    assert list(fixed) == list(info) and info["total_frames"] == 60, "key order kept, the input untouched"
    assert (fixed["total_episodes"], fixed["total_frames"], fixed["total_videos"]) == (3, 67, 3)
    assert [(w.severity, w.path) for w in warnings] == [("warning", "ds/meta/info.json")] * 3
    assert "total_frames 60" in warnings[1].message and "writes 67" in warnings[1].fix
    assert corrected_info(fixed, 3, 67) == (fixed, []), "right totals: nothing to say"
    bare = {"features": {}, "total_frames": True}
    assert corrected_info(bare, 3, 67) == (bare, []), "undeclared or odd totals are left alone"


def test_v21_output_gets_corrected_totals_and_quiet_prints_the_warnings(make_sample, tmp_path, capsys):
    root = tmp_path / "src"
    shutil.copytree(make_sample(TINY, "tiny"), root)
    right = json.loads((root / "meta/info.json").read_text())
    edit_json(root / "meta/info.json", lambda i: i.update(total_episodes=7, total_frames=1000, total_videos=9))
    before = tree_digest(root)
    assert cli.main(["convert", "--root", str(root), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    info = json.loads((tmp_path / "out/meta/info.json").read_text())
    for key in ("total_episodes", "total_frames", "total_videos"):
        assert info[key] == right[key], key
    assert info["codebase_version"] == "v2.1" and list(info) == list(right)
    err = capsys.readouterr().err
    assert err.count("[warning] info.json says total_") == 3 and "writes" in err
    assert tree_digest(root) == before
