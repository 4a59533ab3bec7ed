"""What the user is told: ``--dry-run`` for every target (or the real run's error), the summary (quantiles written,
the old tree kept, resume counts that agree), ``--quantiles`` that replace lerobot's, nothing to do on the Hub,
lerobot's flag spellings."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helpers import FAST, TINY, run_cli

import dask_stats
from dask_stats import cli
from dask_stats.options import Options, quantile_list
from dask_stats.stats.quantiles import DEFAULT_QUANTILES

QS = "q01, q10, q50, q90, q99"


@pytest.fixture(scope="module")
def tiny(make_sample) -> Path:
    return make_sample(TINY, "tiny")


@pytest.fixture(scope="module")
def v30(tiny, tmp_path_factory) -> Path:
    """tiny at v3.0, converted into a copy (also the finished --output of that command)."""
    out = tmp_path_factory.mktemp("v30") / "out"
    dask_stats.convert(tiny, out, to="v3.0", **FAST)
    return out


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root.parent)): p.stat().st_mtime_ns for p in root.parent.rglob("*")}


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["convert", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# --- --dry-run ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, argv, wanted, unwanted", [
    ("tiny", [], ["to v2.1", "meta/episodes_stats.jsonl", "quantiles: none", "(in place)"], ["then:"]),
    ("tiny", ["--output", "{tmp}/out"], ["to v2.1", "into:   {tmp}/out (a copy: the other files hard-linked"],
     ["then:"]),
    ("tiny", ["--to", "v3.0"], ["to v3.0", f"quantiles: {QS}", "then:   move the v2.x tree to {root}_old"], []),
    ("tiny", ["--to", "v3.0", "--output", "{tmp}/out"], ["to v3.0", "into:   {tmp}/out (a copy;"], ["then:"]),
    ("v30", ["--force"], ["would recompute the stats of {root}", "(meta/episodes and meta/stats.json)",
                          f"quantiles: {QS}", "(in place)"], ["then:"]),
    ("v30", ["--to", "v2.1"], ["to v2.1", "per-episode data and video files",
                               "then:   move the v3.0 tree to {root}_old"], []),
    ("tiny", ["--delete-old-stats"], ["then:   remove meta/stats.json"], []),
])
def test_dry_run_says_what_each_target_would_do(request, tmp_path, capsys, source, argv, wanted, unwanted):
    root = request.getfixturevalue(source)
    argv = [a.format(tmp=tmp_path) for a in argv]
    before = tree(root)
    code, out, err = run(capsys, "--root", root, "--dry-run", *argv)
    assert code == 0, err
    for text in wanted:
        assert text.format(root=root, tmp=tmp_path) in out, out
    for text in unwanted:
        assert text not in out, out
    assert tree(root) == before and list(tmp_path.iterdir()) == [], "a dry run writes nothing"


def test_dry_run_of_a_converted_dataset_or_output_is_nothing_to_do(v30, tiny, capsys):
    code, out, _ = run(capsys, "--root", v30, "--dry-run")
    assert code == 0 and "already at v3.0; nothing to do" in out and "would" not in out
    code, out, _ = run(capsys, "--root", tiny, "--output", v30, "--to", "v3.0", "--dry-run")
    assert code == 0 and f"{v30} already holds the v3.0 conversion" in out and "would" not in out


def test_dry_run_of_a_missing_root_gives_the_real_runs_error(tmp_path, capsys):
    missing = tmp_path / "missing"
    dry = run(capsys, "--root", missing, "--dry-run")
    real = run(capsys, "--root", missing, "--quiet")
    assert dry[0] == real[0] == 2 and dry[2] == real[2] and "meta/info.json is missing" in dry[2]
    assert dry[1] == "" and not missing.exists()


# --- quantiles ---------------------------------------------------------------------------------------------

def test_quantiles_keep_lerobots_unless_replaced():
    assert quantile_list("default") == DEFAULT_QUANTILES
    assert quantile_list("default,0.02") == (0.01, 0.02, 0.1, 0.5, 0.9, 0.99)
    assert quantile_list("0.98, default") == (0.01, 0.1, 0.5, 0.9, 0.98, 0.99)
    assert quantile_list("0.02,0.98") == (0.02, 0.98)
    with pytest.raises(ValueError, match="whole percents"):
        quantile_list("defaults,0.02")
    assert Options.of(quantiles="default,0.02").stats.quantile_problems() == []
    assert Options.of().stats.quantile_problems() == [] and Options.of(quantiles=False).stats.quantile_problems() == []
    [warning] = Options.of(quantiles="0.02,0.98").stats.quantile_problems()
    assert warning.severity == "warning" and "q01" in warning.message and "q99" in warning.message
    assert "--quantiles default,0.02,0.98" in warning.fix


def test_replaced_quantiles_are_warned_in_the_dry_run_and_the_summary(tiny, tmp_path, capsys):
    code, out, _ = run(capsys, "--root", tiny, "--dry-run", "--quantiles", "0.02,0.98")
    assert code == 0 and "quantiles: q02, q98" in out and "[warning] --quantiles 0.02,0.98 replaces" in out
    code, out, _ = run(capsys, "--root", tiny, "--dry-run", "--quantiles", "default,0.02")
    assert code == 0 and "quantiles: q01, q02, q10, q50, q90, q99" in out and "[warning]" not in out
    summary = dask_stats.convert(tiny, tmp_path / "out", quantiles="0.02,0.98", **FAST).summary()
    assert "quantiles:    q02, q98" in summary and "q01, q10, q50, q90, q99 are not written" in summary


# --- summaries ---------------------------------------------------------------------------------------------

def test_resumed_in_place_v30_summary_names_the_old_tree_and_agreeing_counts(tiny, tmp_path, monkeypatch, capsys):
    from dask_stats.formats.v30.writer import V30Writer

    root = tmp_path / "ds"
    shutil.copytree(tiny, root)
    commit = V30Writer.commit

    def interrupted(self, computed):
        raise KeyboardInterrupt

    monkeypatch.setattr(V30Writer, "commit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dask_stats.convert(root, to="v3.0", **FAST)
    monkeypatch.setattr(V30Writer, "commit", commit)
    capsys.readouterr()
    result = dask_stats.convert(root, to="v3.0", **{**FAST, "quiet": False, "dashboard_address": "off"})
    printed = re.findall(r"Resuming: (\d+) of (\d+) (tasks|follow-up tasks)", capsys.readouterr().out)
    assert [kind for *_, kind in printed] == ["tasks", "follow-up tasks"]
    phases = [(int(done), int(total)) for done, total, _ in printed]
    assert result.phases == phases and result.resumed == result.tasks == sum(total for _, total in phases)
    summary = result.summary()
    (first, first_total), (later, later_total) = phases
    assert f"({first} of {first_total} tasks, then {later} of {later_total} follow-up tasks resumed" in summary
    assert f"quantiles:    {QS}" in summary
    assert f"old tree:     {root}_old (the v2.x dataset, kept" in summary and (root.parent / "ds_old").is_dir()


def test_v21_summary_says_no_quantiles_and_the_removed_stats(tiny, tmp_path):
    summary = dask_stats.convert(tiny, tmp_path / "out", delete_old_stats=True, **FAST).summary()
    assert "quantiles:    none" in summary and "removed:      meta/stats.json" in summary
    assert "old tree" not in summary and not (tmp_path / "out/meta/stats.json").exists()


# --- flags -------------------------------------------------------------------------------------------------

def test_lerobots_force_conversion_is_answered_with_force(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["convert", "--repo-id", "a/b", "--force-conversion"])
    assert exit_.value.code == 2 and "--force-conversion: did you mean --force?" in capsys.readouterr().err


# --- the Hub -----------------------------------------------------------------------------------------------

@pytest.mark.usefixtures("hf_env")
@pytest.mark.parametrize("to", [None, "v3.0"])
def test_hub_dataset_already_at_v30_is_nothing_to_do(stub, api, v30, to):
    from hubstub import dataset_files

    from dask_stats import convert_hub

    stub.add_repo("someone/v30", dataset_files(v30), tag="v3.0")
    lines = []
    result = convert_hub("someone/v30", api=api, echo=lines.append, **({"to": to} if to else {}))
    assert result.status == "already-converted" and result.download is None and result.conversion is None
    assert lines == ["someone/v30 is already at v3.0 on the Hub (tag v3.0); nothing to do. --force recomputes its "
                     "stats."]
    assert stub.writes() == []


def test_hub_nothing_to_do_exits_0_on_the_command_line(stub, v30, tmp_path):
    from hubstub import dataset_files

    stub.add_repo("someone/v30", dataset_files(v30), tag="v3.0")
    env = {"HF_ENDPOINT": stub.url, "HF_TOKEN": "hf_test", "HF_HUB_CACHE": str(tmp_path / "cache"),
           "HF_LEROBOT_HOME": str(tmp_path / "lerobot"), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0"}
    done = run_cli("convert", "--repo-id", "someone/v30", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("someone/v30 is already at v3.0 on the Hub") and "nothing to do" in done.stdout
    assert stub.writes() == [] and not (tmp_path / "lerobot").exists()
