"""Parity tier, issue 22 item 6: lerobot 0.6.1's own merge (``aggregate_datasets``) publishes wrong stats, and
``dask_stats.convert(merged, force=True)`` fixes them.

Two v3.0 datasets (generated v2.0 converted by ``dask_stats.convert(..., to="v3.0")``; the second one's tasks
renamed, so that the merge relabels its ``task_index``) are merged by lerobot 0.6.1 in its reference environment.
Then, against numpy over the merged data:

- lerobot's ``stats.json``: quantiles that are not those of the merged rows (a count-weighted average of the
  sources'), and ``index``, ``episode_index``, ``task_index`` entries that are the sources' (stale); its per-episode
  ``stats/index/*`` and ``stats/episode_index/*`` are shifted right (docs/differences.md says so);
- the read-only doctor (``dask_stats.doctor``; ``check --stats``, exit 1) flags them as dangerous, and writes nothing;
- after ``python -m dask_stats convert --root merged --force`` (docs/differences.md's fix), every dataset and
  per-episode stat is numpy's (quantiles over all rows), and lerobot 0.6.1 reads them.

Both merge layouts: lerobot's default (the sources' data concatenated into one file) and ``concatenate_data=False``
(one data file per source file).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import REF061, ParityWorld, _tree_digest, our_convert
from .refenv import require_env, run_in_env
from .test_v30_features_parity import _copy, _data_rows, _sha
from .test_v30_parity import QUANTILE_KEYS, QUANTILES, read_our_episodes, require_v30_convert

pytestmark = pytest.mark.parity

RENAMED = {"pick the cube": "open the drawer", "place the cube": "close the drawer"}  # the second source's tasks
INDEX_FEATURES = ("index", "episode_index", "task_index")
RTOL = 1e-12  # float64 sums in another order
LAYOUTS = {"one_file": (), "kept_files": ("--keep-files",)}  # reference/lerobot_merge.py's flags


def _specs() -> dict:
    from dask_stats.synthetic import SampleSpec

    # No camera: every stat is checked against numpy over the rows (cameras: tests/parity/test_v30_*).
    return {"merge_a": SampleSpec(lengths=[40, 25, 33], seed=71, cameras={}),
            "merge_b": SampleSpec(lengths=[30, 52], seed=72, cameras={})}


@pytest.fixture(scope="module")
def mw(tmp_path_factory):
    world = ParityWorld(tmp_path_factory.mktemp("parity_merge"))  # no prefetch: only lerobot 0.6.1 is used
    world.specs = _specs()
    return world


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request) -> str:
    return request.param


def _rename_tasks(root: Path) -> None:
    """The v2.0 dataset at ``root`` with its task strings replaced by RENAMED's."""
    for name in ("tasks.jsonl", "episodes.jsonl"):
        path = root / "meta" / name
        text = path.read_text()
        for old, new in RENAMED.items():
            text = text.replace(f'"{old}"', f'"{new}"')
        path.write_text(text)


def source_v30(mw, name: str) -> Path:
    def make() -> Path:
        convert = our_convert()
        require_v30_convert(convert)
        src = _copy(mw.dataset(name), mw.base / "v20" / name)
        if name == "merge_b":
            _rename_tasks(src)
        out = mw.base / "v30" / name
        convert(src, output=out, to="v3.0", quiet=True)
        return out

    return mw._once(("source_v30", name), make)


def lerobot_merged(mw, layout: str) -> Path:
    """lerobot 0.6.1's ``aggregate_datasets`` of the two sources (never written to afterwards)."""

    def make() -> Path:
        require_env(REF061)
        sources = [source_v30(mw, "merge_a"), source_v30(mw, "merge_b")]
        out = mw.base / "lerobot_merged" / layout
        report = mw.base / "lerobot_merged" / f"{layout}.json"
        run_in_env(REF061, "reference/lerobot_merge.py", out, report, *sources, *LAYOUTS[layout], env=mw.env,
                   timeout=600)
        view = json.loads(report.read_text())
        assert view["lerobot"] == "0.6.1"
        assert view["total_episodes"] == 5 and view["total_frames"] == 180, view
        assert view["tasks"] == ["pick the cube", "place the cube", *RENAMED.values()], view["tasks"]
        assert len(view["data_files"]) == (2 if layout == "kept_files" else 1), view["data_files"]
        return out

    return mw._once(("lerobot_merged", layout), make)


def _cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dask_stats", *map(str, args)], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL, check=False)


def fixed(mw, layout: str) -> Path:
    """A copy of lerobot's merge, recomputed in place by docs/differences.md's command."""

    def make() -> Path:
        our_convert()
        root = _copy(lerobot_merged(mw, layout), mw.base / "fixed" / layout)
        proc = _cli("convert", "--root", root, "--force")
        assert proc.returncode == 0, proc.stderr[-4000:]
        return root

    return mw._once(("fixed", layout), make)


def _episode_rows(root: Path) -> dict[int, dict[str, np.ndarray]]:
    """Every numeric column of the data files, split by episode_index."""
    rows = _data_rows(root)
    episodes = rows["episode_index"][:, 0].astype(int)
    return {int(e): {k: v[episodes == e] for k, v in rows.items()} for e in np.unique(episodes)}


def _numpy_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """The straightforward float64 stats of (n, d) rows, quantiles as np.quantile's."""
    out = {"min": values.min(0), "max": values.max(0), "mean": values.mean(0), "std": values.std(0)}
    out.update({key: np.quantile(values, q, axis=0) for q, key in zip(QUANTILES, QUANTILE_KEYS)})
    return out


def _as_vector(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64).reshape(-1)


def _assert_numpy(stats: dict, values: np.ndarray, where: str) -> None:
    want = _numpy_stats(values)
    for stat, expected in want.items():
        got = _as_vector(stats[stat])
        if stat in QUANTILE_KEYS or stat in ("min", "max"):
            np.testing.assert_array_equal(got, expected, err_msg=f"{where} {stat}")
        else:
            np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-12, err_msg=f"{where} {stat}")
    assert _as_vector(stats["count"])[0] == len(values), (where, stats["count"], len(values))


def _stats_json(root: Path) -> dict:
    return json.loads((root / "meta" / "stats.json").read_text())


def _numeric_features(root: Path) -> list[str]:
    stats = _stats_json(root)
    return [f for f in _data_rows(root) if f in stats and "q50" in stats[f]]


def test_lerobot_merge_publishes_averaged_quantiles_and_stale_index_stats(mw, layout):
    root = lerobot_merged(mw, layout)
    rows = _data_rows(root)
    published = _stats_json(root)
    n = len(rows["index"])
    # the data is right: lerobot re-indexed the rows and relabeled the second source's tasks
    np.testing.assert_array_equal(rows["index"][:, 0], np.arange(n))
    assert sorted(np.unique(rows["task_index"])) == [0, 1, 2, 3]
    # stats.json's bookkeeping entries are the sources' (each counted from 0), not the merged data's
    assert _as_vector(published["index"]["max"])[0] < n - 1, published["index"]
    assert _as_vector(published["episode_index"]["max"])[0] < 4, published["episode_index"]
    assert _as_vector(published["task_index"]["max"])[0] == 1, published["task_index"]
    for feature in INDEX_FEATURES:
        want = _numpy_stats(rows[feature])
        assert not np.array_equal(_as_vector(published[feature]["mean"]), want["mean"]), feature
    # quantiles: averaged, not those of the merged rows (each source's own are exact: ours)
    off = {}
    for feature in _numeric_features(root):
        if feature in INDEX_FEATURES:
            continue
        want = _numpy_stats(rows[feature])
        spread = np.where(want["max"] > want["min"], want["max"] - want["min"], 1.0)
        off[feature] = max(float(np.max(np.abs(_as_vector(published[feature][key]) - want[key]) / spread))
                           for key in QUANTILE_KEYS)
    print(f"\nlerobot 0.6.1's merged quantiles, largest difference / range per feature: {off}")
    assert {"observation.state", "action"} <= set(off), sorted(off)
    assert off["observation.state"] > 1e-3 and off["action"] > 1e-3, off
    # meanwhile the mean, min and max of a plain feature are right (a count-weighted average is exact for them)
    want = _numpy_stats(rows["observation.state"])
    np.testing.assert_allclose(_as_vector(published["observation.state"]["mean"]), want["mean"], rtol=1e-6)
    np.testing.assert_array_equal(_as_vector(published["observation.state"]["max"]), want["max"].astype(np.float32))


def test_lerobot_merge_per_episode_index_stats_shifted(mw, layout):
    """What docs/differences.md says: per-episode ``stats/index/*``, ``stats/episode_index/*`` are shifted right;
    per-episode ``task_index`` stats are over the episode's distinct task ids (one task per episode here: right)."""
    root = lerobot_merged(mw, layout)
    episodes = {e["episode_index"]: e for e in read_our_episodes(root)}
    data = _episode_rows(root)
    assert sorted(episodes) == sorted(data) == [0, 1, 2, 3, 4]
    for e, values in data.items():
        for feature in INDEX_FEATURES:
            want = _numpy_stats(values[feature])
            for stat in ("min", "max", "mean", "std"):
                got = _as_vector(episodes[e][f"stats/{feature}/{stat}"])
                np.testing.assert_allclose(got, want[stat], rtol=1e-6, err_msg=f"episode {e} {feature}/{stat}")


def test_doctor_flags_lerobot_merge(mw, layout):
    import dask_stats

    root = lerobot_merged(mw, layout)
    before = _tree_digest(root)
    report = dask_stats.doctor(root)
    assert _tree_digest(root) == before, "the doctor wrote into the dataset"
    print("\n" + report.table(limit=15))
    flagged = {(r.feature, r.stat) for r in report.dangerous if r.episode is None}
    for feature in INDEX_FEATURES:
        assert any(f == feature for f, _ in flagged), (feature, sorted(flagged))
    assert ("index", "max") in flagged and ("task_index", "max") in flagged, sorted(flagged)
    differing = {(r.feature, r.stat) for r in report.rows if r.episode is None}
    for feature in ("observation.state", "action"):
        assert any(f == feature and s in QUANTILE_KEYS for f, s in differing), (feature, sorted(differing))
    assert report.exit_status == 1
    proc = _cli("check", "--root", root, "--stats", "--json")  # docs/differences.md's report command
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-4000:])
    assert json.loads(proc.stdout)["dangerous"] == len(report.dangerous)
    assert _tree_digest(root) == before, "check --stats wrote into the dataset"
    # per episode, the published stats are right (ours before the merge, shifted by lerobot): nothing dangerous
    assert not [r for r in report.dangerous if r.episode is not None], report.table()


def test_recompute_fixes_lerobot_merge(mw, layout):
    root = fixed(mw, layout)
    merged = lerobot_merged(mw, layout)
    assert _sha(root, "data") == _sha(merged, "data"), "data files changed by the recompute"
    for name in ("tasks.parquet", "info.json"):
        assert (root / "meta" / name).read_bytes() == (merged / "meta" / name).read_bytes(), name
    rows = _data_rows(root)
    ours = _stats_json(root)
    features = _numeric_features(root)
    assert set(INDEX_FEATURES) | {"observation.state", "action"} <= set(features), features
    for feature in features:  # dataset stats: numpy over all merged rows, quantiles included
        _assert_numpy(ours[feature], rows[feature], f"stats.json {feature}")
    episodes = {e["episode_index"]: e for e in read_our_episodes(root)}
    for e, values in _episode_rows(root).items():
        stats = {}
        for col, value in episodes[e].items():
            if col.startswith("stats/"):
                feature, stat = col[len("stats/"):].rsplit("/", 1)
                stats.setdefault(feature, {})[stat] = value
        for feature in features:
            _assert_numpy(stats[feature], values[feature], f"episode {e} {feature}")
    # and the doctor finds nothing left to fix
    import dask_stats

    report = dask_stats.doctor(root)
    assert report.exit_status == 0 and not report.dangerous, report.table()


def test_recomputed_merge_opens_in_lerobot061(mw, layout):
    """lerobot 0.6.1 reads the recomputed stats as written (its reader, meta.stats)."""
    root = fixed(mw, layout)
    out = mw.base / "views" / f"fixed-{layout}.json"
    run_in_env(REF061, "reference/lerobot_v30_load.py", root, out, "--repo-id", "local/merged", "--no-frames",
               env=mw.env, timeout=600)
    view = json.loads(out.read_text())
    ours = _stats_json(root)
    assert view["len"] == 180 and view["num_episodes"] == 5, (view["len"], view["num_episodes"])
    for feature in INDEX_FEATURES:
        for stat in ("min", "max", *QUANTILE_KEYS):
            np.testing.assert_array_equal(_as_vector(view["stats"][feature][stat]), _as_vector(ours[feature][stat]),
                                          err_msg=f"{feature}/{stat}")
    assert _as_vector(view["stats"]["index"]["max"])[0] == 179
    assert _as_vector(view["stats"]["task_index"]["max"])[0] == 3

