"""Every benchmark row kind of ``benchmarks/rows.py`` runs end to end at a tiny size and prints its rows.

Timings are never asserted: only that each entry point runs and produces the rows it promises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"

TINY = ["--reps", "1", "--v30-sets", "mini", "--quantile-sets", "mini", "--droid-set", "mini",
        "--tiny-episodes", "30", "--client-episodes", "20", "40", "--remote-sets", "mini", "--skip-official"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench_data")


def bench(script: str, *args: str, tmp: Path) -> tuple[str, dict]:
    out = tmp / "rows.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args, "--json", str(out)], capture_output=True,
                          text=True, env=env, timeout=600, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout, json.loads(out.read_text())


ROW_MARKERS = {
    "v30": ["| mini | ours-v3.0 |", "| mini | ours-v2.1 |", "| mini | copy-videos |", "target >= 3x"],
    "quantiles": ["| mini | v2.1 |", "| mini | v2.1 --quantiles |", "| mini | v3.0 --no-quantiles |",
                  "| mini | v3.0 (quantiles: default) |"],
    "tiny": ["| tiny-30 | ours |", "| tiny-30 | command-floor-decode-all |", "Tasks: ", "video tasks",
             "(ours - command floor) / task"],
    "client": ["| 20 x 3 |", "| 40 x 3 |"],
    "droid": ["| mini v2.1, 1 worker |", "| mini v2.1, 2 workers |", "| mini v3.0, 1 worker |",
              "| mini v3.0, 2 workers |", "DROID on 256 cores"],
    "remote": ["| mini | local v3.0 |", "| mini | S3 -> S3 v3.0 (moto) |", "shares its cores"],
}


@pytest.mark.parametrize("kind", list(ROW_MARKERS))
def test_row_kind_produces_its_rows(kind, data, tmp_path):
    stdout, raw = bench("rows.py", "--data", str(data), "--sets", kind, *TINY, tmp=tmp_path)
    for marker in ROW_MARKERS[kind]:
        assert marker in stdout, f"{marker!r} missing from:\n{stdout}"
    assert raw["rows"][kind]["lines"]
    if kind == "client":
        for n in ("20", "40"):
            result = raw["rows"]["client"]["results"][n]
            assert result["episodes"] == int(n) and result["client_peak_mb"] > 0
    if kind == "tiny":
        assert raw["rows"]["tiny"]["results"]["tiny-api"]["episodes"] == 30
        tasks = raw["rows"]["tiny"]["results"]["tiny-tasks"]
        assert 1 <= tasks["video"] <= 30 and tasks["total"] == tasks["video"] + tasks["parquet"]


def test_run_py_dispatches_the_row_kinds(data, tmp_path):
    stdout, raw = bench("run.py", "--data", str(data), "--sets", "tiny", *TINY, tmp=tmp_path)
    assert "| tiny-30 | ours |" in stdout
    assert "tiny" in raw["rows"]


def test_replicated_dataset_is_consistent(data):
    sys.path.insert(0, str(BENCH))
    try:
        from datasets import ensure_replicated
    finally:
        sys.path.remove(str(BENCH))
    import pyarrow.parquet as pq

    root = ensure_replicated("tiny", 30, data)
    info = json.loads((root / "meta/info.json").read_text())
    episodes = [json.loads(line) for line in (root / "meta/episodes.jsonl").read_text().splitlines()]
    assert info["total_episodes"] == len(episodes) == 30
    assert info["total_frames"] == sum(e["length"] for e in episodes)
    last = pq.read_table(root / "data/chunk-000/episode_000029.parquet")
    assert set(last.column("episode_index").to_pylist()) == {29}
    assert last.num_rows == episodes[29]["length"]
    assert last.column("index").to_pylist()[-1] == info["total_frames"] - 1
