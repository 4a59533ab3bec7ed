"""Parity tier, issue 22 item 5: datasets recorded by lerobot 0.6.1 itself (``LeRobotDataset.create`` +
``add_frame`` + ``save_episode`` + ``finalize``, reference/lerobot_record.py), their stats recomputed by
``dask_stats.convert(root, force=True)`` and compared, per episode, with the stats lerobot computed while recording.

Depth maps (``is_depth_map``): lerobot computes their stats from the raw depth before it quantizes it to 12-bit
codes; we compute them from the video (the codes, dequantized as lerobot's reader does).  The difference is at most
one quantization step (docs/statistics.md, "Depth maps"), and ours are exactly numpy's over the dequantized raw
frames at lerobot's sampled positions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from .conftest import REF061, ParityWorld, _tree_digest, our_convert
from .refenv import require_env, run_in_env
from .test_v30_features_parity import _copy, _sha
from .test_v30_parity import QUANTILE_KEYS, QUANTILES, read_our_episodes

pytestmark = pytest.mark.parity

DEPTH_CAMERAS = ("observation.images.depth_mm", "observation.images.depth_m")
LENGTHS = (40, 120)  # the second one sampled (100 of 120 frames), as lerobot samples it
STATS = ("min", "max", "mean", "std", *QUANTILE_KEYS)


@pytest.fixture(scope="module")
def rw(tmp_path_factory):
    return ParityWorld(tmp_path_factory.mktemp("parity_recorded"))  # no prefetch: only lerobot 0.6.1 is used


def recorded(rw, kind: str) -> tuple[Path, dict, dict[str, np.ndarray]]:
    """lerobot 0.6.1's recording of ``kind`` (never written to afterwards): root, its report, the raw frames."""

    def make():
        require_env(REF061)
        root = rw.base / "recorded" / kind
        report = rw.base / "recorded" / f"{kind}.json"
        run_in_env(REF061, "reference/lerobot_record.py", root, report, "--kind", kind,
                   "--lengths", ",".join(map(str, LENGTHS)), env=rw.env, timeout=600)
        view = json.loads(report.read_text())
        assert view["lerobot"] == "0.6.1" and view["lengths"] == list(LENGTHS), view
        with np.load(report.with_suffix(".npz")) as npz:
            raw = {name: npz[name] for name in npz.files}
        return root, view, raw

    return rw._once(("recorded", kind), make)


def recomputed(rw, kind: str) -> Path:
    """A copy of the recording with its stats recomputed by ``dask_stats.convert(force=True)``."""

    def make() -> Path:
        root = _copy(recorded(rw, kind)[0], rw.base / "recomputed" / kind)
        our_convert()(root, force=True, quiet=True)
        return root

    return rw._once(("recomputed", kind), make)


def _episode_stats(root: Path) -> dict[int, dict[str, dict[str, np.ndarray]]]:
    """{episode: {feature: {stat: float64 vector}}} from meta/episodes' ``stats/*`` columns."""
    out: dict[int, dict] = {}
    for row in read_our_episodes(root):
        stats: dict[str, dict] = {}
        for col, value in row.items():
            if col.startswith("stats/"):
                feature, stat = col[len("stats/"):].rsplit("/", 1)
                stats.setdefault(feature, {})[stat] = np.asarray(value, dtype=np.float64).reshape(-1)
        out[row["episode_index"]] = stats
    return out


def _step(coding, depth: float) -> float:
    """One quantization step of ``coding`` at ``depth`` (in its unit): the depth between two adjacent codes."""
    scale = 1000.0 if coding.unit == "mm" else 1.0
    if not coding.use_log:
        return (coding.depth_max - coding.depth_min) * scale / 4095
    ratio = (coding.depth_max + coding.shift) / (coding.depth_min + coding.shift)
    return (depth + coding.shift * scale) * math.expm1(math.log(ratio) / 4095)


def _dequantized(coding, frames: np.ndarray) -> np.ndarray:
    """The depth lerobot's reader returns for raw ``frames``: quantized, then each code's level."""
    return coding.levels()[coding.quantize(frames)]


def test_depth_recorded_by_lerobot_recomputed(rw):
    from dask_stats.stats.pixels import DepthCoding
    from dask_stats.stats.sampling import sample_positions

    root, view, raw = recorded(rw, "depth")
    before = {"data": _sha(root, "data"), "videos": _sha(root, "videos")}
    fixed = recomputed(rw, "depth")
    assert {"data": _sha(fixed, "data"), "videos": _sha(fixed, "videos")} == before, "data or videos changed"
    info = json.loads((fixed / "meta" / "info.json").read_text())["features"]
    theirs, ours = _episode_stats(root), _episode_stats(fixed)
    assert sorted(theirs) == sorted(ours) == list(range(len(LENGTHS)))
    report = []
    for camera in DEPTH_CAMERAS:
        coding = DepthCoding.of(info[camera])
        assert coding is not None and coding.unit == camera.rsplit("_", 1)[1], (camera, info[camera]["info"])
        for e, length in enumerate(LENGTHS):
            frames = raw[f"{camera}|{e}"][sample_positions(length)]
            theirs_e, ours_e = theirs[e][camera], ours[e][camera]
            assert ours_e["count"][0] == theirs_e["count"][0] == len(frames), (camera, e)
            # ours: numpy over the depth the video holds, at lerobot's sampled positions
            depth = _dequantized(coding, frames).reshape(-1)
            want = {"min": depth.min(), "max": depth.max(), "mean": depth.mean(), "std": depth.std(),
                    **{key: np.quantile(depth, q) for q, key in zip(QUANTILES, QUANTILE_KEYS)}}
            for stat in STATS:
                np.testing.assert_allclose(ours_e[stat], [want[stat]], rtol=1e-12, err_msg=f"{camera} ep {e} {stat}")
            # lerobot's (from the raw depth): within one quantization step at the episode's deepest point
            step = _step(coding, float(raw[f"{camera}|{e}"].max()))
            for stat in STATS:
                diff = abs(float(ours_e[stat][0] - theirs_e[stat][0]))
                report.append((camera, e, stat, diff / step))
                assert diff <= step, (f"{camera} episode {e} {stat}: ours {ours_e[stat][0]} vs lerobot's "
                                      f"{theirs_e[stat][0]}, {diff} > one step {step}")
    worst = max(report, key=lambda r: r[3])
    print(f"\ndepth stats, ours vs lerobot 0.6.1's recording-time ones: largest difference {worst[3]:.2f} "
          f"quantization step ({worst[0]} episode {worst[1]} {worst[2]})")
    assert any(r[3] > 0 for r in report), "no difference at all: the test did not see lerobot's raw-depth stats"


def test_depth_recorded_by_lerobot_doctor(rw):
    """The read-only doctor reads lerobot's own depth recording (it used to stop: "expected uint8 frames with 1
    channels") and writes nothing; the recording-time depth stats are within a step, so none is dangerous."""
    import dask_stats

    root, _, _ = recorded(rw, "depth")
    before = _tree_digest(root)
    report = dask_stats.doctor(root)
    assert _tree_digest(root) == before, "the doctor wrote into the dataset"
    assert report.compared > 0
    depth_rows = [r for r in report.rows if r.feature in DEPTH_CAMERAS]
    assert not [r for r in depth_rows if r.danger], report.table()
    assert all(r.relative < 0.01 for r in depth_rows), [r for r in depth_rows if r.relative >= 0.01]


def test_depth_recomputed_read_by_lerobot061(rw):
    """lerobot 0.6.1 opens the recomputed recording and its meta.stats are ours (its reader rescales depth stats
    from ``depth_unit`` to millimetres)."""
    fixed = recomputed(rw, "depth")
    out = rw.base / "views" / "depth.json"
    run_in_env(REF061, "reference/lerobot_v30_load.py", fixed, out, "--repo-id", "local/recorded", "--no-frames",
               env=rw.env, timeout=600)
    view = json.loads(out.read_text())
    assert view["len"] == sum(LENGTHS) and view["num_episodes"] == len(LENGTHS)
    ours = json.loads((fixed / "meta" / "stats.json").read_text())
    for camera in DEPTH_CAMERAS:
        factor = 1000.0 if camera.endswith("_m") else 1.0
        for stat in STATS:
            got = np.asarray(view["stats"][camera][stat], np.float64).reshape(-1)
            want = np.asarray(ours[camera][stat], np.float64).reshape(-1) * factor
            np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"{camera} {stat}")


def _channel_stats(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """numpy's per-channel stats of uint8 (..., 3) pixels as lerobot scales them (/ 255)."""
    values = pixels.reshape(-1, pixels.shape[-1]).astype(np.float64) / 255.0
    return {"min": values.min(0), "max": values.max(0), "mean": values.mean(0), "std": values.std(0),
            **{key: np.quantile(values, q, axis=0) for q, key in zip(QUANTILES, QUANTILE_KEYS)}}


def test_parquet_images_recorded_by_lerobot_recomputed(rw):
    """``dtype: image`` (PNG in the Parquet): ours are numpy's over every row (decisions.md §4: ``count`` = rows);
    lerobot 0.6.1 samples them at recording like video frames (``sample_indices``), so they agree on an episode
    shorter than 100 rows, and on a longer one lerobot's are those of its sampled rows."""
    from dask_stats.stats.sampling import sample_positions

    camera = "observation.images.rgb"
    root, view, raw = recorded(rw, "image")
    assert view["features"][camera]["dtype"] == "image"
    fixed = recomputed(rw, "image")
    assert _sha(fixed, "data") == _sha(root, "data"), "data files changed"
    theirs, ours = _episode_stats(root), _episode_stats(fixed)
    for e, length in enumerate(LENGTHS):
        frames = raw[f"{camera}|{e}"]
        assert frames.shape == (length, 24, 32, 3) and frames.dtype == np.uint8
        positions = sample_positions(length)
        assert ours[e][camera]["count"][0] == length and theirs[e][camera]["count"][0] == len(positions), e
        mine, lerobots = _channel_stats(frames), _channel_stats(frames[positions])
        for stat in STATS:  # ours: numpy over every row's pixels
            np.testing.assert_allclose(ours[e][camera][stat], mine[stat], rtol=1e-12, atol=1e-15,
                                       err_msg=f"episode {e} {stat}")
        # lerobot's: its sampled rows' pixels, in float32 (min/max/mean), its float32 variance (std) and its
        # 5000-bin histogram quantiles (within one pixel level)
        for stat, tol in (("min", 1e-7), ("max", 1e-7), ("mean", 1e-6), ("std", 1e-2),
                          *((key, 1 / 255) for key in QUANTILE_KEYS)):
            np.testing.assert_allclose(theirs[e][camera][stat], lerobots[stat], rtol=0, atol=tol,
                                       err_msg=f"lerobot episode {e} {stat}")
        if len(positions) == length:  # every row on both sides: the same pixels
            np.testing.assert_allclose(theirs[e][camera]["mean"], ours[e][camera]["mean"], rtol=1e-6)
        else:
            assert not np.allclose(theirs[e][camera]["mean"], ours[e][camera]["mean"], rtol=1e-6, atol=0), e


def test_language_recorded_by_lerobot_recomputed(rw):
    """lerobot 0.6.1's ``language`` columns (empty at record time) get no stats, on both sides; the other features'
    per-episode stats agree with lerobot's recording-time ones (min/max exactly, mean to float32)."""
    root, view, _ = recorded(rw, "language")
    language = [k for k, f in view["features"].items() if f["dtype"] == "language"]
    assert sorted(language) == ["language_events", "language_persistent"], view["features"]
    fixed = recomputed(rw, "language")
    assert _sha(fixed, "data") == _sha(root, "data"), "data files changed"
    theirs, ours = _episode_stats(root), _episode_stats(fixed)
    for e in range(len(LENGTHS)):
        assert not set(language) & (set(theirs[e]) | set(ours[e])), (e, sorted(ours[e]))
        assert set(theirs[e]) == set(ours[e]), (e, sorted(theirs[e]), sorted(ours[e]))
        for feature in ("observation.state", "action", "index", "episode_index", "task_index", "frame_index"):
            for stat in ("min", "max", "count"):
                np.testing.assert_array_equal(ours[e][feature][stat], theirs[e][feature][stat],
                                              err_msg=f"episode {e} {feature}/{stat}")
            np.testing.assert_allclose(ours[e][feature]["mean"], theirs[e][feature]["mean"], rtol=1e-6, atol=1e-7,
                                       err_msg=f"episode {e} {feature}/mean")
    stats_json = json.loads((fixed / "meta" / "stats.json").read_text())
    assert not set(language) & set(stats_json), sorted(stats_json)
    out = rw.base / "views" / "language.json"
    run_in_env(REF061, "reference/lerobot_v30_load.py", fixed, out, "--repo-id", "local/recorded", "--no-frames",
               env=rw.env, timeout=600)
    assert json.loads(out.read_text())["len"] == sum(LENGTHS)
