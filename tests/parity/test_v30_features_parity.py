"""Parity tier for the new features: quantiles, recomputing a v3.0 dataset's stats, and where the official
two-step path (v2.1 -> v3.0 with lerobot 0.4.4) fails and ours does not.  Every check runs the real releases
(refenv.py) offline:

1. v2.1 with quantiles (``convert(v20, out, quantiles=True)``) still opens in lerobot 0.3.3;
2. lerobot 0.6.1 reads the quantiles of a v3.0 dataset recomputed in place (``convert(v3, force=True,
   quantiles=True)``) on the official converter's own output, frames and files unchanged;
3. our per-episode quantiles vs lerobot 0.6.1's 5000-bin histogram estimate on the same arrays, and how far
   lerobot's stats.json aggregation (count-weighted mean of per-episode quantiles) is from the true dataset
   quantiles; the numbers go to the test output and ``QUANTILES.md``;
4. the real GR00T dataset (``$DASK_STATS_REALDATA`` or ../shared/realdata: tests/helpers.py) to v3.0, opened by 0.6.1;
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
from helpers import realdata, require_realdata

from .conftest import REF04, REF061, our_convert
from .refenv import require_env, run_in_env
from .test_v30_parity import (
    QUANTILE_KEYS,
    QUANTILES,
    V30_FIXTURE,
    assert_same_numbers,
    check_frames,
    check_opens,
    our_episode_stats,
    read_our_episodes,
    require_v30_convert,
    source_frames,
)

pytestmark = pytest.mark.parity

HERE = Path(__file__).parent
REALDATA = realdata()  # $DASK_STATS_REALDATA/gr00t_pick_n_place or ../shared/realdata/...: tests/helpers.py
GR00T_FLAGS = {"exclude_features": ("observation.images.egoview",), "frame_lookup": "index"}
QUANT_FIXTURE = "quantiles"
B_FRAMES_FIXTURE = "b_frames"
ROLLOVER_FIXTURE = "rollover"
NUM_BINS = 5000  # lerobot 0.6.1's RunningQuantileStats(num_quantile_bins=5000); the script reports its own


def _specs() -> dict:
    from dask_stats.synthetic import Camera, SampleSpec

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


# --------------------------------------------------------------------------------------------------
# 3. Per-episode quantiles vs lerobot 0.6.1's histogram estimate; its aggregation vs the true quantiles
# --------------------------------------------------------------------------------------------------

def _positions(length: int) -> np.ndarray:
    """docs/statistics.md "Which frames": lerobot's sampled positions."""
    m = 100 if length >= 100 else length
    s = max(m, min(int(length ** 0.75), 10000))
    return np.round(np.linspace(0, length - 1, s)).astype(int)


def _episode_arrays(root: Path, records: list[dict], tag: str) -> dict[str, np.ndarray]:
    """``num|tag/feature|ep`` rows of every numeric feature that we gave quantiles, and ``pix|tag/camera|ep``
    the sampled frames (PyAV, rgb24) of every video camera; frames by position (GR00T: frame_lookup index,
    and every generated video has one frame per row at its timestamp)."""
    from dask_stats.synthetic import decode_all

    info = json.loads((root / "meta" / "info.json").read_text())
    arrays: dict[str, np.ndarray] = {}
    for rec in records:
        e = rec["episode_index"]
        chunk = e // info["chunks_size"]
        table = pq.read_table(root / info["data_path"].format(episode_chunk=chunk, episode_index=e))
        for feat, stats in rec["stats"].items():
            if "q50" not in stats:
                continue
            dtype = info["features"][feat]["dtype"]
            if dtype == "video":
                frames = decode_all(root / info["video_path"].format(episode_chunk=chunk, video_key=feat,
                                                                     episode_index=e))
                arrays[f"pix|{tag}/{feat}|{e}"] = frames[_positions(table.num_rows)]
            elif dtype in ("float32", "float64", "int64", "bool"):
                col = table[feat]
                if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type):
                    values = np.asarray(col.to_pylist())
                else:
                    values = col.to_numpy(zero_copy_only=False)
                arrays[f"num|{tag}/{feat}|{e}"] = values.astype({"float32": np.float32, "float64": np.float64,
                                                                  "int64": np.int64, "bool": np.bool_}[dtype])
    return arrays


class _Sorted:
    """Order statistics per dimension of an array as both sides see it (pixels / 255, per channel): a sort
    for numeric rows, the 256-level histogram for uint8 pixels (10^7 values: no float64 copy, no sort)."""

    def __init__(self, name: str, arrays: list[np.ndarray]):
        self.pixels = name.startswith("pix|")
        if self.pixels:
            flat = [a.reshape(-1, a.shape[-1]) for a in arrays]
            counts = np.stack([sum(np.bincount(f[:, c], minlength=256) for f in flat) for c in range(flat[0].shape[1])])
            self.cum = np.cumsum(counts, axis=1)  # (C, 256)
            self.n = int(self.cum[0, -1])
            levels = np.arange(256) / 255.0
            self.sum = (counts * levels).sum(1)
            occupied = counts > 0
            self.lo = np.array([levels[o].min() for o in occupied])
            self.hi = np.array([levels[o].max() for o in occupied])
        else:
            values = np.concatenate([a.astype(np.float64).reshape(a.shape[0], -1) for a in arrays])
            self.srt = np.sort(values, axis=0)
            self.n = values.shape[0]
            self.sum = values.sum(0)
            self.lo, self.hi = self.srt[0], self.srt[-1]

    @property
    def mean(self) -> np.ndarray:
        return self.sum / self.n

    def at(self, j: int) -> np.ndarray:
        """The (j+1)-th smallest value of every dimension."""
        if self.pixels:
            return np.array([np.searchsorted(c, j, side="right") for c in self.cum]) / 255.0
        return self.srt[j]

    def quantile(self, q: float) -> np.ndarray:
        """np.quantile(values, q, axis=0) ("linear": between the ranks either side of (n-1)q)."""
        h = (self.n - 1) * q
        k = math.floor(h)
        a, b = self.at(k), self.at(min(k + 1, self.n - 1))
        return a + (h - k) * (b - a)

    def rank_error(self, v: np.ndarray, q: float) -> np.ndarray:
        """How far q is from the fractions of values below / up to v (0 when v is a q-quantile), per dim."""
        out = []
        for d, x in enumerate(v):
            if self.pixels:
                level = x * 255.0
                cum = self.cum[d]
                below = cum[math.ceil(level - 1e-9) - 1] if math.ceil(level - 1e-9) >= 1 else 0
                upto = cum[min(math.floor(level + 1e-9), 255)] if level >= -1e-9 else 0
            else:
                tol = 1e-9 + 1e-7 * abs(x)  # lerobot pads its histogram range by 1e-10: a constant stays one value
                below = np.searchsorted(self.srt[:, d], x - tol, side="left")
                upto = np.searchsorted(self.srt[:, d], x + tol, side="right")
            lo, hi = below / self.n, upto / self.n
            out.append(max(lo - q, q - hi, 0.0))
        return np.asarray(out)


def gr00t_v21_quantiles(fw) -> Path:
    def make() -> Path:
        require_realdata()
        out = fw.base / "gr00t_v21_q"
        if out.exists():
            shutil.rmtree(out)
        our_convert()(REALDATA, output=out, quantiles=True, quiet=True, **GR00T_FLAGS)
        return out

    return fw._once(("gr00t_v21_q",), make)


def quantile_comparison(fw) -> dict:
    def make() -> dict:
        require_env(REF061)
        sets = {"generated": ours_v21_quantiles(fw), "gr00t": gr00t_v21_quantiles(fw)}
        arrays, ours = {}, {}
        for tag, root in sets.items():
            records = _jsonl(root / "meta" / "episodes_stats.jsonl")
            arrays.update(_episode_arrays(root, records, tag))
            for rec in records:
                for feat, stats in rec["stats"].items():
                    ours[(f"{tag}/{feat}", rec["episode_index"])] = stats
        work = fw.base / "quantiles"
        work.mkdir(parents=True, exist_ok=True)
        np.savez(work / "arrays.npz", **arrays)
        run_in_env(REF061, "reference/lerobot_quantiles.py", work / "arrays.npz", work / "lerobot.json",
                   env=fw.env, timeout=600)
        return {"arrays": arrays, "ours": ours, "lerobot": json.loads((work / "lerobot.json").read_text())}

    return fw._once(("quantile_comparison",), make)


def test_episode_quantiles_vs_lerobot_histogram(fw):
    """Ours are np.quantile's; lerobot's estimate is within one of its bins of the order statistic its
    definition targets, so ours and its differ by at most one bin plus the gap between the two definitions.

    lerobot's estimate (RunningQuantileStats, 5000 bins over [min, max]) looks for the first bin where the
    cumulative count reaches q*n, the (ceil(q*n))-th smallest value x_j, and interpolates inside that bin;
    numpy's "linear" quantile interpolates between x_k and x_k+1 at h = (n-1)q.  Where x_k = x_k+1 = x_j
    (most pixel cases: 256 levels, 10^4..10^7 values) the two agree within one bin; otherwise (numeric rows;
    a pixel quantile whose rank falls on the boundary between two levels, ~20 bins apart) they differ by up
    to the gap x_k+1 - x_k: reported in bins.
    """
    data = quantile_comparison(fw)
    lerobot = data["lerobot"]
    assert lerobot["lerobot"] == "0.6.1" and lerobot["num_quantile_bins"] == NUM_BINS
    eps32 = float(np.finfo(np.float32).eps)
    rows, problems = {}, []
    for name, array in data["arrays"].items():
        kind, feat, ep = name.split("|")
        values = _Sorted(name, [array])
        theirs, ours = lerobot["episodes"][name], data["ours"][(feat, int(ep))]
        # the same values on both sides: our moments are those of these arrays
        np.testing.assert_allclose(np.asarray(ours["mean"], np.float64).reshape(-1), values.mean, rtol=1e-9,
                                   atol=1e-12, err_msg=f"{name}: not the values we computed from")
        n, lo, hi = values.n, values.lo, values.hi
        width = (hi - lo) / NUM_BINS
        slack = (hi - lo + 2e-10) / NUM_BINS + 1e-10 + 8 * eps32 * np.maximum(np.abs(lo), np.abs(hi))
        row = rows.setdefault((feat.split("/")[0], feat, kind), {"max_bins": 0.0, "max_bins_same_def": 0.0,
                                                                 "over_one_bin": 0, "cases": 0})
        for q, key in zip(QUANTILES, QUANTILE_KEYS):
            exact = values.quantile(q)
            o = np.asarray(ours[key], np.float64).reshape(-1)
            t = np.asarray(theirs[key], np.float64).reshape(-1)
            if not np.allclose(o, exact, rtol=1e-12, atol=1e-15):
                problems.append(f"{name} {key}: ours {o} != np.quantile {exact}")
            j = min(max(math.ceil(q * n) - 1, 0), n - 1)
            targeted = values.at(j)  # the order statistic lerobot's definition aims at
            if np.any(np.abs(t - targeted) > slack):
                problems.append(f"{name} {key}: lerobot {t} more than one bin from x_{j} = {targeted}")
            gap = np.abs(exact - targeted)
            if np.any(np.abs(o - t) > slack + gap):
                problems.append(f"{name} {key}: |ours - lerobot| {np.abs(o - t)} > one bin {slack} + gap {gap}")
            safe = np.where(width > 0, width, np.inf)
            bins = np.abs(o - t) / safe
            row["max_bins"] = max(row["max_bins"], float(bins.max()))
            row["max_bins_same_def"] = max(row["max_bins_same_def"], float((np.abs(targeted - t) / safe).max()))
            row["over_one_bin"] += int((np.abs(o - t) > slack).sum())
            row["cases"] += bins.size
    fw._memo[("quantile_rows",)] = ("ok", rows)
    assert not problems, "\n".join(problems[:40])
    # every case more than one bin apart is one where the two definitions pick different values (checked
    # above: within one bin + gap); without that gap they meet within one bin everywhere
    assert all(row["max_bins_same_def"] <= 1 + 1e-6 for row in rows.values()), rows
    print("\nper-episode |ours - lerobot 0.6.1| in its bins ((max-min)/5000 of the episode):")
    for (tag, feat, kind), row in sorted(rows.items()):
        print(f"  {feat:55s} {kind}  max {row['max_bins']:10.3f} bins  (lerobot vs the order statistic it "
              f"targets: {row['max_bins_same_def']:.3f}); over 1 bin: {row['over_one_bin']}/{row['cases']}")


def test_lerobot_aggregated_quantiles_vs_true(fw):
    """lerobot's stats.json quantiles (aggregate_stats: count-weighted mean of per-episode quantiles) vs the
    true quantiles of the whole set (np.quantile over all rows / all sampled pixels, what ours writes).
    A report (test output and QUANTILES.md); the asserts check that the aggregation is what it is said to be."""
    data = quantile_comparison(fw)
    lerobot = data["lerobot"]
    by_feature: dict[str, list[str]] = {}
    for name in data["arrays"]:
        by_feature.setdefault(name.split("|")[1], []).append(name)
    lines = []
    for feat, names in sorted(by_feature.items()):
        names.sort(key=lambda n: int(n.split("|")[2]))
        kind = names[0].split("|")[0]
        values = _Sorted(names[0], [data["arrays"][n] for n in names])
        agg = lerobot["aggregated"][feat]
        counts = np.asarray([lerobot["episodes"][n]["count"][0] for n in names], np.float64)
        width = np.where(values.hi > values.lo, (values.hi - values.lo) / NUM_BINS, np.inf)
        cells = []
        for q, key in zip(QUANTILES, QUANTILE_KEYS):
            per_ep = np.stack([np.asarray(lerobot["episodes"][n][key], np.float64).reshape(-1) for n in names])
            got = np.asarray(agg[key], np.float64).reshape(-1)
            np.testing.assert_allclose(got, (per_ep * counts[:, None]).sum(0) / counts.sum(), rtol=1e-6, atol=1e-9,
                                       err_msg=f"{feat} {key}: lerobot's aggregate is not the weighted mean")
            true = values.quantile(q)
            diff = np.abs(got - true)
            rank = values.rank_error(got, q) * 100
            d = int(np.argmax(diff))
            cells.append((key, float(diff.max()), float((diff / width).max()), float(rank.max()), d))
        worst = max(cells, key=lambda c: c[2])
        lines.append((feat, kind, values.n, len(values.lo), cells, worst))
    assert lines
    table = ["| set/feature | kind | values | dims | " + " | ".join(f"{k}: max abs (bins; rank pts)" for k in
                                                                    QUANTILE_KEYS) + " |",
             "|---|---|---|---|" + "---|" * len(QUANTILE_KEYS)]
    for feat, kind, n, dims, cells, _ in lines:
        table.append(f"| {feat} | {kind} | {n} | {dims} | " + " | ".join(
            f"{a:.4g} ({b:.1f}; {r:.2f})" for _, a, b, r, _ in cells) + " |")
    rows = fw._memo.get(("quantile_rows",), ("", {}))[1]
    per_ep = ["| set/feature | kind | max (bins) | same definition (bins) | over 1 bin |", "|---|---|---|---|---|"]
    for (tag, feat, kind), row in sorted(rows.items()):
        per_ep.append(f"| {feat} | {kind} | {row['max_bins']:.3f} | {row['max_bins_same_def']:.3f} | "
                      f"{row['over_one_bin']}/{row['cases']} |")
    text = "\n".join([
        "# Quantiles: ours vs lerobot 0.6.1 (written by test_v30_features_parity.py)", "",
        "Sets: `generated` = dask_stats.synthetic fixture (episodes of 150, 60, 37 rows; one 24x32 h264 camera, "
        "100/60/37 sampled frames); `gr00t` = ../shared/realdata/gr00t_pick_n_place (5 episodes, 2096 rows, "
        "ego_view 256x256, 100 sampled frames each).  Pixels in [0, 1].", "",
        "## Per episode: |ours (np.quantile) - lerobot's 5000-bin estimate|, in its bins ((max-min)/5000 of the "
        "episode and dimension)", "",
        "`same definition`: lerobot vs the order statistic its own definition targets (the ceil(q*n)-th smallest; "
        "numpy interpolates at (n-1)q); the difference between the two definitions is what exceeds 1 bin "
        "for numeric features with few, spread rows.", "", *per_ep, "",
        "## Dataset-wide: lerobot's stats.json quantile (count-weighted mean of its per-episode estimates, "
        "`aggregate_stats`) vs the true quantile of the set (np.quantile over all rows / sampled pixels: ours)",
        "", "Per cell, worst over dimensions: absolute difference (in bins of the whole set's (max-min)/5000; "
        "in percentile points: how far q is from the share of the data below / up to lerobot's value, 0 when \
lerobot's value is a true q-quantile).", "",
        *table, ""])
    (HERE / "QUANTILES.md").write_text(text)
    print("\n" + text)


# --------------------------------------------------------------------------------------------------
# 4. The real GR00T dataset to v3.0, opened by lerobot 0.6.1
# --------------------------------------------------------------------------------------------------

def test_gr00t_to_v30_with_its_flags(fw, tmp_path):
    require_realdata()
    out = tmp_path / "out"
    our_convert()(REALDATA, output=out, to="v3.0", quiet=True, **GR00T_FLAGS)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert "observation.images.egoview" not in info["features"], "the camera without files is left out"


def gr00t_v30(fw) -> Path:
    """GR00T to v3.0 with the flags its quirks need (the camera without files left out, frames looked up by
    position: its timestamps start one frame after its videos)."""

    def make() -> Path:
        require_realdata()
        convert = our_convert()
        require_v30_convert(convert)
        out = fw.base / "gr00t_v30" / "local" / "dataset"
        if out.exists():
            shutil.rmtree(out)
        convert(REALDATA, output=out, to="v3.0", quiet=True, **GR00T_FLAGS)
        return out

    return fw._once(("gr00t_v30",), make)


def test_gr00t_v30_opens_in_lerobot061(fw):
    root = gr00t_v30(fw)
    view = fw.view(REF061, root)
    assert view["lerobot"] == "0.6.1" and view["codebase_version"] == "v3.0"
    assert view["len"] == view["num_frames"] == 2096 and view["num_episodes"] == 5
    ours = json.loads((root / "meta" / "stats.json").read_text())
    for feat in ("observation.state", "action", "observation.images.ego_view"):
        for key in QUANTILE_KEYS:
            assert key in view["stats"][feat], (feat, sorted(view["stats"][feat]))
            assert_same_numbers(view["stats"][feat][key], ours[feat][key], f"meta.stats[{feat!r}][{key!r}]")
    assert [e["length"] for e in view["episodes"]] == [416, 470, 470, 412, 328]


def _gr00t_frame_problems(view: dict, src: dict) -> list[str]:
    problems = []
    for rec in view["frames"]:
        e, which = rec["episode"], rec["which"]
        if "error" in rec:
            problems.append(f"episode {e} {which} (row {rec['position']}): {rec['error']}")
            continue
        got = view["pixels"][rec["cameras"]["observation.images.ego_view"]["npz"]]
        want = src["pixels"][("observation.images.ego_view", e)][0 if which == "first" else 1]
        if not np.array_equal(got, want):
            problems.append(f"episode {e} {which} (row {rec['position']}): not the episode's {which} frame "
                            f"(max pixel difference {np.abs(got.astype(int) - want).max()})")
    return problems


def test_gr00t_v30_frames_in_lerobot061(fw):
    """Its timestamps start one frame after its videos: our from_timestamp absorbs that offset, so 0.6.1 (which
    looks frames up at from_timestamp + timestamp) returns every episode's exact first and last frame."""
    root = gr00t_v30(fw)
    view = fw.view(REF061, root)
    problems = _gr00t_frame_problems(view, gr00t_source_frames(fw))
    assert not problems, "\n".join(problems)


def gr00t_source_frames(fw) -> dict:
    """{"pixels": {(camera, episode): (first, last)}}: the ego_view episode videos decoded with PyAV."""
    from dask_stats.synthetic import decode_all

    def make() -> dict:
        out = {"pixels": {}}
        for e in range(5):
            frames = decode_all(REALDATA / f"videos/chunk-000/observation.images.ego_view/episode_{e:06d}.mp4")
            out["pixels"][("observation.images.ego_view", e)] = (frames[0], frames[-1])
        return out

    return fw._once(("gr00t_frames",), make)


# --------------------------------------------------------------------------------------------------
# 5. Where the official two-step path fails and ours does not
# --------------------------------------------------------------------------------------------------

def _official_attempt(fw, name: str, *extra: str) -> dict:
    """lerobot 0.4.4's v2.1 -> v3.0 converter on our v2.1 copy of fixture ``name``; never fails the test."""

    def make() -> dict:
        require_env(REF04)
        v21 = fw.ours(name)
        work = fw.base / "official_attempt" / name
        if work.exists():
            shutil.rmtree(work)
        out = fw.base / "official_attempt" / f"{name}.json"
        proc = run_in_env(REF04, "reference/lerobot04_v30.py", v21, work, out, *extra, env=fw.env, check=False,
                          timeout=600)
        return {"returncode": proc.returncode, "stderr": proc.stderr, "root": work / "local" / "dataset",
                "report": json.loads(out.read_text()) if out.is_file() else None}

    return fw._once(("official_attempt", name, extra), make)


def b_frames_dataset(fw) -> Path:
    """B_FRAMES_FIXTURE re-encoded by PyAV's libx264: episode 0 (1 frame) plain, episodes 1 and 2 with
    B-frames (their first packet's dts is below its pts: the muxer's negative dts)."""
    import av

    from dask_stats.synthetic import _frames

    def make() -> Path:
        root = fw.dataset(B_FRAMES_FIXTURE)
        info = json.loads((root / "meta" / "info.json").read_text())
        for e, n in enumerate(fw.specs[B_FRAMES_FIXTURE].lengths):
            path = root / info["video_path"].format(episode_chunk=0, video_key="observation.images.top", episode_index=e)
            frames = _frames(200 + e, n, 48, 64)
            with av.open(str(path), "w") as container:
                stream = container.add_stream("libx264", rate=info["fps"])
                stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
                # every episode by the same encoder (as tests/test_v30_videos.py; the 1-frame one has no B-frame)
                stream.options = {"crf": "18"} if n == 1 else {"crf": "18", "bf": "2"}
                for i, rgb in enumerate(frames):
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    frame.pts = i
                    container.mux(stream.encode(frame))
                container.mux(stream.encode())
            with av.open(str(path)) as container:
                first = next(p for p in container.demux(container.streams.video[0]) if p.dts is not None)
                if n > 1:  # really starts with B-frame reordering
                    assert first.dts < first.pts, (e, first.dts, first.pts)
        (root / "meta" / "stats.json").unlink()  # its video entries are the old videos': verify nothing
        return root

    return fw._once(("b_frames_dataset",), make)


def test_one_frame_then_b_frames_official_fails(fw):
    root = b_frames_dataset(fw)
    assert fw.specs[B_FRAMES_FIXTURE].lengths[0] == 1
    official = _official_attempt(fw, B_FRAMES_FIXTURE)
    print(f"\nlerobot 0.4.4's converter: exit {official['returncode']}; {official['stderr'].strip()[-300:]}")
    if official["returncode"] == 0:  # converted: then the frames it wrote must be wrong or unreadable
        view = fw.view(REF061, official["root"])
        with pytest.raises(AssertionError):
            check_frames(view, source_frames(root), json.loads((root / "meta" / "info.json").read_text()))
    else:
        assert "non monotonically increasing dts" in official["stderr"], official["stderr"][-3000:]


def ours_b_frames(fw) -> Path:
    def make() -> Path:
        convert = our_convert()
        require_v30_convert(convert)
        out = fw.base / "ours_v30_b" / "local" / "dataset"
        if out.exists():
            shutil.rmtree(out)
        convert(b_frames_dataset(fw), output=out, to="v3.0", quiet=True)
        return out

    return fw._once(("ours_b_frames",), make)


def _check_ours_b_frames(fw, backend):
    root = b_frames_dataset(fw)
    info = json.loads((root / "meta" / "info.json").read_text())
    view = fw.view(REF061, ours_b_frames(fw), backend)
    check_opens(view, REF061, info, fw.specs[B_FRAMES_FIXTURE].lengths)
    check_frames(view, source_frames(root), info)


def test_one_frame_then_b_frames_ours_read_exactly_pyav(fw):
    _check_ours_b_frames(fw, "pyav")


def test_one_frame_then_b_frames_ours_read_exactly_torchcodec(fw):
    _check_ours_b_frames(fw, None)


def _file_problems(root: Path) -> list[str]:
    """Episodes whose meta/episodes data/chunk_index, data/file_index name a file that does not hold their rows."""
    problems = []
    for ep in read_our_episodes(root):
        e = ep["episode_index"]
        path = root / "data" / f"chunk-{ep['data/chunk_index']:03d}" / f"file-{ep['data/file_index']:03d}.parquet"
        if not path.is_file():
            problems.append(f"episode {e}: {path.relative_to(root)} does not exist")
            continue
        table = pq.read_table(path, columns=["episode_index", "index"])
        index = [i for i, x in zip(table["index"].to_pylist(), table["episode_index"].to_pylist()) if x == e]
        if index != list(range(ep["dataset_from_index"], ep["dataset_to_index"])):
            problems.append(f"episode {e}: {path.relative_to(root)} holds rows {index[:3]}... of it, not "
                            f"{ep['dataset_from_index']}..{ep['dataset_to_index'] - 1}")
    return problems


def test_data_file_rollover_official_wrong_ours_right(fw):
    lengths = fw.specs[ROLLOVER_FIXTURE].lengths
    official = _official_attempt(fw, ROLLOVER_FIXTURE, "--data-file-size-in-mb", "0.001", "--no-frames")
    assert official["root"].joinpath("meta", "info.json").is_file(), official["stderr"][-3000:]
    wrong = _file_problems(official["root"])
    assert wrong, "lerobot 0.4.4's converter wrote right data file indices at a 0.001 MB limit"
    convert = our_convert()
    require_v30_convert(convert)
    out = fw.base / "ours_v30_rollover" / "local" / "dataset"
    if out.exists():
        shutil.rmtree(out)
    convert(fw.dataset(ROLLOVER_FIXTURE), output=out, to="v3.0", data_file_size_in_mb=0.001, quiet=True)
    assert len(list((out / "data").glob("*/*.parquet"))) > 1, "no rollover: the test proves nothing"
    assert _file_problems(out) == []
    require_env(REF061)
    report = fw.base / "views" / "rollover-rows.json"
    run_in_env(REF061, "reference/lerobot_v30_load.py", out, report, "--rows", env=fw.env, timeout=600)
    view = json.loads(report.read_text())
    episode_of = np.repeat(np.arange(len(lengths)), lengths)
    assert view["len"] == len(view["rows"]) == sum(lengths)
    bad = [r for r in view["rows"] if "error" in r or r["index"] != r["position"]
           or r["episode_index"] != episode_of[r["position"]]]
    assert not bad, bad[:5]
    print(f"\nlerobot 0.4.4 at data_file_size_in_mb=0.001: {wrong}")
