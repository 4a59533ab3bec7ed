"""Parity tier for the new features: quantiles, recomputing a v3.0 dataset's stats, and where the official
two-step path (v2.1 -> v3.0 with lerobot 0.4.4) fails and ours does not.  Every check runs the real releases
(refenv.py) offline:

1. v2.1 with quantiles (``convert(v20, out, quantiles=True)``) still opens in lerobot 0.3.3;
2. lerobot 0.6.1 reads the quantiles of a v3.0 dataset recomputed in place (``convert(v3, force=True,
   quantiles=True)``) on the official converter's own output, frames and files unchanged;
3. our per-episode quantiles vs lerobot 0.6.1's 5000-bin histogram estimate on the same arrays, and how far
   lerobot's stats.json aggregation (count-weighted mean of per-episode quantiles) is from the true dataset
   quantiles; the numbers go to the test output and ``QUANTILES.md``;
4. the real GR00T dataset (../shared/realdata) to v3.0, opened by 0.6.1;
5. a 1-frame episode followed by a B-frame video, and data files rolled over at a tiny size: the official
   converter fails, ours is read back exactly by 0.6.1.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import REF04, REF033, REF061, _tree_digest, our_convert
from .refenv import require_env, run_in_env
from .test_v30_parity import (QUANTILE_KEYS, QUANTILES, V30_FIXTURE, assert_same_numbers, check_frames,
                              check_opens, lerobot_view, our_episode_stats, read_our_episodes,
                              require_v30_convert, source_frames)

pytestmark = pytest.mark.parity

HERE = Path(__file__).parent
REALDATA = HERE.parents[2] / "shared" / "realdata" / "gr00t_pick_n_place"
if not REALDATA.is_dir():  # a worktree next to main: ../shared is the checkout's sibling
    REALDATA = Path("/work/shared/realdata/gr00t_pick_n_place")
GR00T_FLAGS = {"exclude_features": ("observation.images.egoview",), "frame_lookup": "index"}
QUANT_FIXTURE = "quantiles"
B_FRAMES_FIXTURE = "b_frames"
ROLLOVER_FIXTURE = "rollover"
NUM_BINS = 5000  # lerobot 0.6.1's RunningQuantileStats(num_quantile_bins=5000); the script reports its own


def _specs() -> dict:
    from dask_stats.sample import Camera, SampleSpec

    return {
        # Item 1 and 3: numeric columns of every kind, an h264 camera, a PNG column; episodes of 150 rows
        # (100 sampled frames), 60 and 37 (every frame).
        QUANT_FIXTURE: SampleSpec(lengths=[150, 60, 37], seed=41, image_column="observation.image",
                                  cameras={"observation.images.top": Camera(24, 32)}),
        # Item 5a: a 1-frame episode, then episodes whose videos are re-encoded with B-frames (_b_frame_videos).
        B_FRAMES_FIXTURE: SampleSpec(lengths=[1, 12, 9], seed=42, cameras={"observation.images.top": Camera(48, 64)}),
        # Item 5b: no camera (every row is read back), several episodes for several data files.
        ROLLOVER_FIXTURE: SampleSpec(lengths=[5, 7, 4, 6], seed=43, cameras={}, image_column=None),
    }


@pytest.fixture(scope="module")
def fw(v30world):
    v30world.specs = {**v30world.specs, **_specs()}
    return v30world


def _sha(root: Path, sub: str) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / sub).rglob("*")) if p.is_file()}


def _copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    for p in dst.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    return dst


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


# --------------------------------------------------------------------------------------------------
# 1. v2.1 with quantiles, opened by lerobot 0.3.3
# --------------------------------------------------------------------------------------------------

def ours_v21_quantiles(fw) -> Path:
    def make() -> Path:
        convert = our_convert()
        out = fw.base / "ours_v21_q" / QUANT_FIXTURE
        if out.exists():
            shutil.rmtree(out)
        convert(fw.dataset(QUANT_FIXTURE), output=out, quantiles=True, quiet=True)
        return out

    return fw._once(("ours_v21_q", QUANT_FIXTURE), make)


def test_v21_with_quantiles_opens_in_lerobot033(fw):
    root = ours_v21_quantiles(fw)
    ours = _jsonl(root / "meta" / "episodes_stats.jsonl")
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v2.1"
    for rec in ours:  # the file really carries quantiles, else this test proves nothing
        for feat, stats in rec["stats"].items():
            assert set(QUANTILE_KEYS) <= set(stats), (rec["episode_index"], feat, sorted(stats))
    view = fw.load033(root, "v21-quantiles")
    assert view["codebase_version"] == "v2.1"
    assert view["version_messages"] == [], view["version_messages"]
    assert view["num_frames"] == sum(fw.specs[QUANT_FIXTURE].lengths)
    assert view["last_frame_index"] == view["num_frames"] - 1  # dataset[-1] decoded (video + PNG)
    # meta.episodes_stats keeps every key as we wrote it, q01..q99 included
    assert [e["episode_index"] for e in view["episodes_stats"]] == [r["episode_index"] for r in ours]
    for got, want in zip(view["episodes_stats"], ours):
        assert set(got["stats"]) == set(want["stats"])
        for feat, stats in want["stats"].items():
            assert set(got["stats"][feat]) == set(stats), (feat, sorted(got["stats"][feat]))
            for stat, value in stats.items():
                assert_same_numbers(got["stats"][feat][stat], value, f"episode {want['episode_index']} {feat}/{stat}")
    # its aggregate (meta.stats) ignores the q-keys without error: min/max/mean/std/count only
    for feat, stats in view["stats"].items():
        assert {"min", "max", "mean", "std"} <= set(stats), (feat, sorted(stats))
        assert not set(QUANTILE_KEYS) & set(stats), (feat, sorted(stats))


# --------------------------------------------------------------------------------------------------
# 2. Recomputing the stats of the official converter's v3.0 output in place; 0.6.1 reads them
# --------------------------------------------------------------------------------------------------

def _strip_stats(root: Path) -> None:
    """Drop every ``stats/*`` column of meta/episodes and every quantile of stats.json."""
    for path in sorted((root / "meta" / "episodes").glob("*/*.parquet")):
        table = pq.read_table(path)
        table = table.drop_columns([c for c in table.column_names if c.startswith("stats/")])
        pq.write_table(table, path)
    stats_path = root / "meta" / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats_path.write_text(json.dumps({f: {k: v for k, v in s.items() if k not in QUANTILE_KEYS}
                                      for f, s in stats.items()}, indent=4))


def _data_rows(root: Path) -> dict[str, np.ndarray]:
    table = pa.concat_tables([pq.read_table(p) for p in sorted((root / "data").glob("*/*.parquet"))])
    out = {}
    for name in table.column_names:
        col = table[name]
        if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type):
            out[name] = np.asarray(col.to_pylist(), dtype=np.float64)
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
            out[name] = col.to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, 1)
    return out


def restated_official(fw) -> tuple[Path, dict]:
    def make():
        convert = our_convert()
        require_v30_convert(convert)
        root = _copy(fw.official_v30(V30_FIXTURE), fw.base / "restat" / "local" / "dataset")
        _strip_stats(root)
        before = {"data": _sha(root, "data"), "videos": _sha(root, "videos")}
        convert(root, force=True, quantiles=True, quiet=True)
        return root, before

    return fw._once(("restat", V30_FIXTURE), make)


def test_restat_official_v30_read_by_lerobot061(fw):
    root, before = restated_official(fw)
    assert {"data": _sha(root, "data"), "videos": _sha(root, "videos")} == before, "data or video files changed"
    view = fw.view(REF061, root)
    check_opens(view, REF061, fw.info(V30_FIXTURE), fw.specs[V30_FIXTURE].lengths)
    ours = json.loads((root / "meta" / "stats.json").read_text())
    assert set(view["stats"]) == set(ours)
    for feat, stats in ours.items():
        assert set(QUANTILE_KEYS) <= set(stats), (feat, sorted(stats))
        for stat, value in stats.items():
            assert_same_numbers(view["stats"][feat][stat], value, f"meta.stats[{feat!r}][{stat!r}]")
    our_eps = our_episode_stats(read_our_episodes(root))
    assert [e["episode_index"] for e in view["episodes_stats"]] == [e["episode_index"] for e in our_eps]
    for got, want in zip(view["episodes_stats"], our_eps):
        assert set(got["stats"]) == set(want["stats"])
        for feat, stats in want["stats"].items():
            assert set(QUANTILE_KEYS) <= set(stats), (want["episode_index"], feat)
            for stat, value in stats.items():
                assert_same_numbers(got["stats"][feat][stat], value, f"episode {want['episode_index']} {feat}/{stat}")
    # the numbers are the data's: dataset-wide quantiles of every numeric column are np.quantile's
    rows = _data_rows(root)
    checked = 0
    for feat, values in rows.items():
        if feat in ours and "q50" in ours[feat]:
            for q, key in zip(QUANTILES, QUANTILE_KEYS):
                want = np.quantile(values, q, axis=0)
                np.testing.assert_array_equal(np.asarray(ours[feat][key], np.float64).reshape(-1), want,
                                              err_msg=f"{feat} {key}")
            checked += 1
    assert checked >= 5, sorted(rows)


def test_restat_official_v30_frames_unchanged(fw):
    root, _ = restated_official(fw)
    view = fw.view(REF061, root)
    check_frames(view, fw.source_frames(V30_FIXTURE), fw.info(V30_FIXTURE))
    before = fw.view(REF061, fw.official_v30(V30_FIXTURE))
    assert view["episodes"] == before["episodes"]
    assert sorted(view["pixels"]) == sorted(before["pixels"])
    for k in before["pixels"]:
        np.testing.assert_array_equal(view["pixels"][k], before["pixels"][k], err_msg=k)
