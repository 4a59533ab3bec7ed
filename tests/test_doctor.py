"""The stats doctor: verification that knows lerobot's float32 arithmetic, the report of how wrong published stats
are (check --stats, --json, --report), and recomputing v3.0 datasets as people have them (absent videos, video/
folders, excluded cameras keep their stats).  Fixtures reproduce the real faults on a generated v3.0 dataset."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import CAM, FAST, SMALL32, tree_digest

import dask_stats
from dask_stats.cli import main
from dask_stats.formats.v30.reader import read_episode_stats
from dask_stats.stats.doctor import stats_report
from dask_stats.stats.moments import MomentsTable
from dask_stats.stats.verify import FOREIGN, IMPRECISE, verify
from dask_stats.synthetic import SampleSpec

FEATURE = {"dtype": "float32", "shape": [2], "names": ["still", "moving"]}


def _lerobot_float32_stats(episodes: list[np.ndarray]) -> dict:
    """stats.json as lerobot 0.6.1 computes it: per episode, float32 mean and mean of squares, std =
    sqrt(E[x^2] - E[x]^2); then aggregate_stats' count-weighted merge."""
    means, variances, counts = [], [], []
    for x in episodes:
        x32 = x.astype(np.float32)
        mean = x32.mean(axis=0, dtype=np.float32)
        variance = np.maximum(np.float32((x32 ** 2).mean(axis=0, dtype=np.float32)) - mean ** 2, 0)
        means.append(mean.astype(np.float64))
        variances.append(np.sqrt(variance).astype(np.float64) ** 2)
        counts.append(len(x))
    counts = np.array(counts, np.float64)[:, None]
    total = (np.array(means) * counts).sum(0) / counts.sum()
    variance = ((np.array(variances) + (np.array(means) - total) ** 2) * counts).sum(0) / counts.sum()
    data = np.concatenate(episodes)
    return {"mean": total.tolist(), "std": np.sqrt(variance).tolist(), "min": data.min(0).tolist(),
            "max": data.max(0).tolist()}


def _episodes() -> list[np.ndarray]:
    """A joint held nearly still at 152.28 (std ~0.027: lerobot's float32 std is far off) beside a moving one."""
    rng = np.random.default_rng(0)
    return [np.stack([152.28 + 0.027 * rng.standard_normal(n), 30 * rng.standard_normal(n)], axis=1)
            .astype(np.float32).astype(np.float64) for n in (400, 900, 650)]


def _table(episodes: list[np.ndarray]) -> MomentsTable:
    data = np.concatenate(episodes).astype(np.float32)
    starts = np.cumsum([0] + [len(x) for x in episodes[:-1]])
    return MomentsTable.segments(np.arange(len(episodes)), data, starts)


def test_a_float32_reference_verifies_and_a_foreign_one_fails_naming_the_cause():
    episodes = _episodes()
    reference = _lerobot_float32_stats(episodes)
    exact_std = np.concatenate(episodes).std(axis=0)
    assert abs(reference["std"][0] - exact_std[0]) > 6e-5 + 5e-6 * exact_std[0], "lerobot's own tolerance refuses it"
    report = verify({"x": _table(episodes)}, {"x": FEATURE}, {"x": reference})
    assert report.checked and not report.failures, report.table()
    assert any(c.cause == IMPRECISE for c in report.checks) and "float32" in report.outcome
    foreign = dict(reference, mean=[reference["mean"][0] + 0.5, reference["mean"][1]])  # other data's stats
    failed = verify({"x": _table(episodes)}, {"x": FEATURE}, {"x": foreign})
    assert [c.stat for c in failed.failures] == ["mean"] and failed.failures[0].cause == FOREIGN
    message = str(failed.problem("meta/stats.json"))
    assert FOREIGN in message and "--skip-verify" in message
    wide = dict(reference, std=[reference["std"][0], reference["std"][1] * 1.1])
    assert [c.stat for c in verify({"x": _table(episodes)}, {"x": FEATURE}, {"x": wide}).failures] == ["std"]


def test_a_recompute_reports_and_strict_verify_gates():
    episodes = _episodes()
    foreign = dict(_lerobot_float32_stats(episodes), mean=[0.0, 0.0])
    report = verify({"x": _table(episodes)}, {"x": FEATURE}, {"x": foreign}, mode="report")
    assert report.checked and not report.failures and report.warnings and "not a gate" in report.outcome
    strict = verify({"x": _table(episodes)}, {"x": FEATURE}, {"x": foreign}, mode="report", strict=True)
    assert strict.failures


def test_averaged_quantiles_lie_in_the_envelope_and_others_do_not():
    episodes = _episodes()
    data = np.concatenate(episodes).astype(np.float32)
    starts = np.cumsum([0] + [len(x) for x in episodes[:-1]])
    table = MomentsTable.segments(np.arange(3), data, starts, qs=(0.01, 0.99))
    weights = np.array([len(x) for x in episodes], np.float64)
    averaged = (table.quantiles * weights[:, None, None]).sum(0) / weights.sum()  # lerobot's stats.json q01/q99
    reference = dict(_lerobot_float32_stats(episodes), q01=averaged[0].tolist(), q99=averaged[1].tolist())
    assert not verify({"x": table}, {"x": FEATURE}, {"x": reference}, levels=(0.01, 0.99)).failures
    reference["q99"] = [reference["q99"][0], reference["q99"][1] + 40]
    failed = verify({"x": table}, {"x": FEATURE}, {"x": reference}, levels=(0.01, 0.99)).failures
    assert [c.stat for c in failed] == ["q99"]


def test_the_report_puts_dangerous_rows_first():
    features = {"x": FEATURE, "episode_index": {"dtype": "int64", "shape": [1]}}
    exact = {"x": {"min": [152.2, -90], "max": [152.4, 90], "mean": [152.28, 0.5], "std": [0.027, 30.0],
                   "q01": [152.21, -70.0], "q50": [152.28, 0.4], "q99": [152.35, 70.0], "count": [100]},
             "episode_index": {"min": [0], "max": [9], "mean": [4.5], "std": [2.9], "count": [100]}}
    published = {"x": {"min": [152.2, -90], "max": [152.4, 90], "mean": [152.28, 0.5001], "std": [0.0, 30.0],
                       "q01": [152.21, -50.0], "q50": [152.28, 3.0], "q99": [152.35, 70.0], "count": [100]},
                 "episode_index": {"min": [0], "max": [4], "mean": [2.0], "std": [2.9], "count": [100]}}
    records = [{"episode_index": 0, "stats": {"x": {**exact["x"], "std": [0.03, 29.0]}}}]
    report = stats_report(exact, published, features, records, {0: {"x": exact["x"]}})
    dangers = [(r.feature, r.name, r.stat, r.episode) for r in report.dangerous]
    assert set(dangers) == {("x", "still", "std", None), ("x", "moving", "q01", None),
                            ("episode_index", "0", "max", None), ("episode_index", "0", "mean", None)}
    assert all(r.danger for r in report.rows[:4]) and report.rows[4].danger is None
    rest = [r.relative for r in report.rows[4:]]
    assert rest == sorted(rest, reverse=True) and len(rest) == 3, "then by difference relative to the spread"
    assert "std 0" in next(r.danger for r in report.rows if r.stat == "std")
    assert report.exit_status == 1 and json.loads(json.dumps(report.to_json()))["dangerous"] == 4
    assert stats_report(exact, exact, features).exit_status == 0


# -- a generated v3.0 dataset with the faults of real ones ---------------------------------------------------------

@pytest.fixture(scope="module")
def v30_small(make_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("doctor") / "v30"
    dask_stats.convert(make_sample(SMALL32), out, to="v3.0", **FAST)
    return out


def _publish_lerobot_faults(root):
    """What lerobot publishes: observation.state dimension 0 with std 0 (episode 1 and stats.json), stats.json's
    q01/q99 as frame-weighted averages of the episodes' quantiles."""
    for path in (root / "meta/episodes").rglob("*.parquet"):
        table = pq.read_table(path)
        std = table.column("stats/observation.state/std").to_pylist()
        std[1] = [0.0] + std[1][1:]
        position = table.column_names.index("stats/observation.state/std")
        column = pa.array(std, table.schema.field(position).type)
        table = table.set_column(position, "stats/observation.state/std", column)
        pq.write_table(table, path)
    stats = json.loads((root / "meta/stats.json").read_text())
    from dask_stats.formats.v30.reader import read_episode_stats

    per_episode = read_episode_stats(str(root))
    counts = np.array([per_episode[i]["observation.state"]["count"][0] for i in sorted(per_episode)], np.float64)
    for key in ("q01", "q99"):
        values = np.array([per_episode[i]["observation.state"][key] for i in sorted(per_episode)], np.float64)
        stats["observation.state"][key] = ((values * counts[:, None]).sum(0) / counts.sum()).tolist()
    stats["observation.state"]["std"][0] = 0.0
    (root / "meta/stats.json").write_text(json.dumps(stats))


def test_doctor_reports_the_faults_writes_nothing_and_draws_them(v30_small, tmp_path, capsys):
    root = tmp_path / "ds"
    shutil.copytree(v30_small, root)
    _publish_lerobot_faults(root)
    before = tree_digest(root)
    page = tmp_path / "report.html"
    code = main(["check", "--root", str(root), "--stats", "--json", "--report", str(page), "--num-workers", "2",
                 "--scheduler", "threads"])
    assert tree_digest(root) == before, "check --stats writes nothing to the dataset"
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["exit_status"] == 1
    dangers = {(r["feature"], r["dimension"], r["stat"], r["episode"]) for r in report["rows"] if r["danger"]}
    assert {("observation.state", 0, "std", None), ("observation.state", 0, "std", 1)} <= dangers
    assert any(r["stat"] in ("q01", "q99") and r["episode"] is None for r in report["rows"] if r["danger"])
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "<script" not in html and "http" not in html
    first_card = html.index("class='card")
    assert html[first_card:].startswith("class='card flagged' data-feature='observation.state' data-dimension='0'")
    assert f"data-feature='{CAM}' data-dimension='2'" in html, "cameras per channel"


def test_recompute_with_absent_videos_lists_them_keeps_excluded_stats_and_reports(v30_small, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(v30_small, root)
    _publish_lerobot_faults(root)
    shutil.move(root / "videos", root / "video")  # another writer's folder name
    problems = dask_stats.check(root)
    absent = [p for p in problems if p.severity == "error"]
    assert absent and all(p.feature == CAM and p.episode == 0 and "videos/" in p.path for p in absent)
    assert "under video/" in absent[0].message and f"--exclude-features {CAM}" in absent[0].fix
    with pytest.raises(dask_stats.DatasetError, match="no video files"):
        dask_stats.convert(root, force=True, **FAST)
    published = json.loads((root / "meta/stats.json").read_text())[CAM]
    camera_columns = {c: pq.read_table(p).column(c) for p in (root / "meta/episodes").rglob("*.parquet")
                      for c in pq.read_schema(p).names if c.startswith(f"stats/{CAM}/")}
    result = dask_stats.convert(root, force=True, exclude_features=[CAM], **FAST)
    assert "its published stats" in result.summary() and "published stats were wrong" in result.summary()
    assert result.verification.checked and not result.verification.failures
    assert json.loads((root / "meta/stats.json").read_text())[CAM] == published
    for path in (root / "meta/episodes").rglob("*.parquet"):
        for column, values in camera_columns.items():
            assert pq.read_table(path).column(column).equals(values)
    assert json.loads((root / "meta/stats.json").read_text())["observation.state"]["std"][0] > 0


def test_a_declared_codec_other_than_the_files_is_a_warning(v30_small, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(v30_small, root)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"][CAM].setdefault("info", {})["video.codec"] = "mpeg4"
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    warnings = [p for p in dask_stats.check(root) if "declares codec" in p.message]
    assert warnings and warnings[0].severity == "warning" and "decoding follows the file" in warnings[0].message


# -- the doctor is a reader: v2.x datasets too, nothing written ----------------------------------------------------

def test_doctor_reads_a_v21_dataset_and_writes_nothing(make_sample, tmp_path):
    root = tmp_path / "v21"
    dask_stats.convert(make_sample(SMALL32), root, **FAST)
    lines = [json.loads(line) for line in (root / "meta/episodes_stats.jsonl").read_text().splitlines()]
    lines[1]["stats"]["observation.state"]["std"][0] = 0.0  # lerobot's float32 std of a joint held still
    (root / "meta/episodes_stats.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    stats = json.loads((root / "meta/stats.json").read_text())
    stats["action"]["mean"][1] += 10 * stats["action"]["std"][1]
    (root / "meta/stats.json").write_text(json.dumps(stats))
    before = tree_digest(root)
    report = dask_stats.doctor(root, **FAST)
    assert tree_digest(root) == before, "the doctor writes nothing, not even a checkpoint or a temporary file"
    dangers = {(r.feature, r.dimension, r.stat, r.episode) for r in report.dangerous}
    assert ("observation.state", 0, "std", 1) in dangers and report.exit_status == 1
    assert any((r.feature, r.dimension, r.stat, r.episode) == ("action", 1, "mean", None) for r in report.rows)
    assert not any(r.stat.startswith("q") for r in report.rows), "v2.1 publishes no quantiles: none compared"


def test_doctor_of_a_v20_dataset_compares_its_stats_json(make_sample, tmp_path):
    root = tmp_path / "v20"
    shutil.copytree(make_sample(SMALL32), root)
    before = tree_digest(root)
    report = dask_stats.doctor(root, **FAST)
    assert tree_digest(root) == before and not (root / "meta/episodes_stats.jsonl").exists()
    assert all(r.episode is None for r in report.rows) and report.missing == []
    assert report.exit_status == 0, [str(r) for r in report.dangerous]


def test_read_through_refuses_a_writer_that_writes(v30_small):
    from dask_stats.convert import read_through
    from dask_stats.formats.v30.restat import RestatWriter

    with pytest.raises(ValueError, match="writes"):
        read_through(v30_small, RestatWriter, **FAST)


# -- a merged v3.0 dataset: several data and meta/episodes files, an image feature stored in the Parquet ---------

MERGED = SampleSpec(lengths=[40, 25, 60, 33, 18], cameras={}, image_column="observation.image")


def test_a_merged_v30_dataset_with_parquet_images_is_diagnosed_and_recomputed_exactly(make_sample, tmp_path):
    source = make_sample(MERGED)
    v21 = tmp_path / "v21"
    dask_stats.convert(source, v21, **FAST)
    root = tmp_path / "v30"
    dask_stats.convert(source, root, to="v3.0", data_file_size_in_mb=0.005, **FAST)
    assert all(len(list((root / folder).rglob("*.parquet"))) > 1 for folder in ("data", "meta/episodes"))
    exact = json.loads((root / "meta/stats.json").read_text())
    stats = json.loads(json.dumps(exact))
    stats["observation.image"]["std"] = [[[0.0]], [[0.0]], [[0.0]]]  # a camera published with std 0
    stats["index"]["max"] = [stats["index"]["max"][0] - 18]  # stale after a merge
    (root / "meta/stats.json").write_text(json.dumps(stats))
    before = tree_digest(root)
    report = dask_stats.doctor(root, **FAST)
    assert tree_digest(root) == before
    flagged = {(r.feature, r.stat) for r in report.dangerous}
    assert {("observation.image", "std"), ("index", "max")} <= flagged
    dask_stats.convert(root, force=True, **FAST)
    assert json.loads((root / "meta/stats.json").read_text()) == exact
    ours = read_episode_stats(str(root))
    for line in (v21 / "meta/episodes_stats.jsonl").read_text().splitlines():
        line = json.loads(line)
        for stat in ("mean", "std", "min", "max"):
            assert ours[line["episode_index"]]["observation.image"][stat] == \
                line["stats"]["observation.image"][stat], "the same numbers as the v2.1 conversion"
