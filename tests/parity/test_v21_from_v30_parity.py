"""Parity: lerobot 0.3.3 reads the v2.1 dataset that ``convert --to v2.1`` writes from a v3.0 one (issue 26).

The "h264" fixture goes v2.0 -> v3.0 (small files: several episodes per file, rollovers) -> v2.1 with dask_stats;
lerobot 0.3.3's ``LeRobotDataset`` must open the result with no version message, see every episode and frame, and
parse ``meta/episodes_stats.jsonl`` into exactly our records (its aggregate then equals ours).
"""

from __future__ import annotations

import json

import pytest

from .compare import aggregate, compare_aggregates
from .conftest import our_convert
from .test_parity import EXACT_RTOL, assert_ok

pytestmark = pytest.mark.parity


def test_lerobot033_reads_v21_cut_from_v30(world, tmp_path_factory):
    convert = our_convert()
    base = tmp_path_factory.mktemp("v21_from_v30")
    v30, v21 = base / "v30", base / "v21"
    convert(world.dataset("h264"), output=v30, to="v3.0", video_file_size_in_mb=0.05, data_file_size_in_mb=0.2,
            quiet=True)
    result = convert(v30, output=v21, to="v2.1", quiet=True)
    assert result.format == "v2.1" and not result.warnings
    info = world.info("h264")
    seen = world.load033(v21, "v21-from-v30")
    assert seen["codebase_version"] == "v2.1"
    assert seen["version_messages"] == [], f"lerobot 0.3.3 warned about versions: {seen['version_messages']}"
    assert seen["num_episodes"] == info["total_episodes"] and seen["num_frames"] == info["total_frames"]
    assert set(seen["first_frame_keys"]) >= set(info["features"]), seen["first_frame_keys"]
    ours = [json.loads(line) for line in (v21 / "meta/episodes_stats.jsonl").read_text().splitlines()]
    assert seen["episodes_stats"] == ours, "lerobot 0.3.3's meta.episodes_stats is not our episodes_stats.jsonl"
    assert_ok(compare_aggregates(aggregate(ours), seen["stats"], info["features"], rtol=EXACT_RTOL, pixel_atol=1e-12,
                                 label="our aggregate vs lerobot 0.3.3 meta.stats"))
