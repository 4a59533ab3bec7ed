"""dask_stats.cli: the command line as a newcomer meets it. Help, flags, exit codes (2 for bad data, 4 for a timeout,
130 for an interrupt, 1 for `check` finding errors), nothing to do, the demo, `checkpoints`."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import (
    CAM,
    FAST,
    LONG_VIDEOS,
    REPO,
    SMALL,
    SMALL32,
    TINY,
    damage,
    data,
    edit_json,
    fail_when_writing,
    rewrite_parquet,
    run_cli,
    video,
    with_tests_on_path,
)

import dask_stats
from dask_stats import cli
from dask_stats.errors import DatasetError


@pytest.fixture(scope="module")
def tiny(make_sample) -> Path:
    return make_sample(TINY, "tiny")


@pytest.fixture(scope="module")
def converted(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("converted") / "out"
    dask_stats.convert(tiny, out, **FAST)
    return out


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(list(argv))


# --- flags ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, attr", [("--push-to-hub", "push_to_hub"), ("--dry-run", "dry_run"),
                                        ("--private", "private"), ("--force", "force"), ("--quiet", "quiet"),
                                        ("--skip-verify", "skip_verify"), ("--delete-old-stats", "delete_old_stats"),
                                        ("--debug", "debug")])
def test_boolean_flags_take_lerobots_spellings(flag, attr):
    assert getattr(parse("convert", "--root", "x", flag), attr) is True
    assert getattr(parse("convert", "--root", "x", f"{flag}=true"), attr) is True
    assert getattr(parse("convert", "--root", "x", f"{flag}=false"), attr) is False
    assert getattr(parse("convert", "--root", "x", flag, "no"), attr) is False


def test_boolean_defaults_and_resume():
    args = parse("convert", "--root", "x")
    assert args.push_to_hub is False and args.dry_run is False and args.private is None and args.resume is True
    assert parse("convert", "--root", "x", "--no-resume").resume is False
    assert parse("convert", "--root", "x", "--resume=false").resume is False


def test_bad_boolean_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse("convert", "--root", "x", "--push-to-hub=maybe")
    assert exit_.value.code == 2 and "invalid boolean value: 'maybe'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, hint", [(["convert", "--root", "x", "--ouput", "y"], "did you mean --output?"),
                                        (["convert", "--root", "x", "--ouput=y"], "did you mean --output?"),
                                        (["check", "--root", "x", "--video-backed", "pyav"],
                                         "did you mean --video-backend?"),
                                        (["demo", "--dri", "x"], "did you mean --dir?")])
def test_unknown_flag_suggests_the_closest(argv, hint, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and hint in err and "unrecognized arguments" in err


@pytest.mark.parametrize("argv", [["--vers"], ["convert", "--roo", "x"], ["convert", "--root", "x", "--out", "y"],
                                  ["check", "--ro", "x"], ["demo", "--di", "x"], ["checkpoints", "--cle"],
                                  ["checkpoints", "--older-than", "3"]])
def test_no_abbreviations_anywhere(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(argv)
    assert exit_.value.code == 2


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_option_has_help_and_no_abbreviations():
    for parser in _parsers(cli.build_parser()):
        assert parser.allow_abbrev is False, parser.prog
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:
                assert any(s.startswith("--no-") for s in action.option_strings), action  # --no-resume
                continue
            assert action.help and action.help.strip(), f"{parser.prog} {action.option_strings or action.dest}"


def test_usage_names_the_command_as_invoked(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/dask-stats", "--help"])
    assert cli.build_parser().prog == "dask-stats"
    assert cli.build_parser().commands["convert"].prog == "dask-stats convert"
    monkeypatch.setattr(sys, "argv", [str(REPO / "dask_stats/__main__.py"), "--help"])
    assert cli.build_parser().prog == "python -m dask_stats"


def test_help_is_fast_and_imports_no_heavy_library():
    help_ = run_cli("convert", "--help", timeout=120)
    assert help_.returncode == 0 and help_.stdout.startswith("usage: python -m dask_stats convert")
    assert "--push-to-hub [BOOL]" in help_.stdout
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "dask_stats", "--help"],
                           capture_output=True, text=True, timeout=60)
    imported = {line.split("|")[-1].strip() for line in timed.stderr.splitlines() if line.startswith("import time")}
    heavy = {"dask", "distributed", "pandas", "pyarrow", "av", "tqdm", "huggingface_hub", "fsspec"}
    assert not heavy & imported, heavy & imported
    best = min(_seconds([sys.executable, "-m", "dask_stats", "--help"]) for _ in range(3))
    if best > 0.5:  # a loaded machine: compare with importing the conversion's stack on the same machine
        stack = _seconds([sys.executable, "-c", "import dask_stats.convert"])
        assert best < stack / 2, f"--help took {best:.2f} s, importing the stack {stack:.2f} s"


def _seconds(command) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, timeout=60, check=True)
    return time.perf_counter() - start


def test_package_names_are_imported_lazily_and_stay_the_functions():
    code = ("import sys, dask_stats; assert 'dask' not in sys.modules; "
            "import dask_stats.convert, dask_stats.check; from dask_stats import cli; "
            "assert callable(dask_stats.convert) and callable(dask_stats.check), (dask_stats.convert,); "
            "from dask_stats import ConversionResult, DatasetError, Problem; print('ok')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "ok", run.stderr


# --- API validation ------------------------------------------------------------------------------------------

def test_api_validates_scheduler_and_option_names(tiny, tmp_path):
    with pytest.raises(DatasetError, match="expected one of auto, threads, processes, got 'thread'"):
        dask_stats.convert(tiny, tmp_path / "out", scheduler="thread")
    with pytest.raises(DatasetError, match="did you mean 'scheduler'"):
        dask_stats.convert(tiny, tmp_path / "out", schedular="threads")
    assert not (tmp_path / "out").exists()


# --- nothing to do -------------------------------------------------------------------------------------------

def test_already_converted_is_success_with_one_line(converted, capsys):
    before = (converted / "meta/episodes_stats.jsonl").read_bytes()
    assert cli.main(["convert", "--root", str(converted)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{converted} is already at v2.1; nothing to do. --force recomputes its " \
                          "meta/episodes_stats.jsonl."
    assert "[error]" not in out + err
    assert (converted / "meta/episodes_stats.jsonl").read_bytes() == before


def test_check_reports_already_converted_as_information(converted, capsys):
    assert cli.main(["check", "--root", str(converted)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("[info] the dataset is already at v2.1") and "--force" in lines[0]
    assert lines[-1] == "0 error(s), 0 warning(s), 1 info: nothing to convert (--force recomputes the stats)"


def test_a_real_error_still_exits_2(tiny, tmp_path, capsys):
    assert cli.main(["convert", "--root", str(tmp_path / "missing")]) == 2
    assert "[error]" in capsys.readouterr().err


def test_a_root_that_is_a_file_exits_2_for_convert_and_1_for_check(tmp_path, capsys):
    root = tmp_path / "a-file"
    root.write_text("not a dataset")
    assert cli.main(["convert", "--root", str(root)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert cli.main(["check", "--root", str(root)]) == 1
    out = capsys.readouterr()
    assert "is a file, not a directory" in out.out + out.err and "unexpected" not in out.out + out.err


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:99999", "no-such-host.invalid:8787"])
def test_a_bad_dashboard_address_is_refused_as_a_flag(tiny, address, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["convert", "--root", str(tiny), "--dashboard-address", address])
    assert exit_.value.code == 2 and "--dashboard-address: invalid HOST:PORT value" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="dashboard_address"):
        dask_stats.convert(tiny, dashboard_address=address)


def test_an_s3_root_without_credentials_names_them_and_exits_2(monkeypatch, tmp_path, capsys):
    s3fs = pytest.importorskip("s3fs")
    s3fs.S3FileSystem.clear_instance_cache()  # an instance made by another test would carry its credentials
    monkeypatch.setattr(s3fs.S3FileSystem, "_cache", {})  # and ours, made without any, must not outlive the test
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup (no network)
    for command in ("convert", "check"):
        assert cli.main([command, "--root", "s3://some-bucket/dataset"]) == 2
        err = capsys.readouterr().err
        assert "no S3 credentials for s3://some-bucket/dataset" in err and "AWS_ACCESS_KEY_ID" in err
        assert "~/.aws/credentials" in err and "storage_options" in err and "unexpected" not in err


# --- demo ----------------------------------------------------------------------------------------------------

def test_demo_refuses_a_directory_it_did_not_create(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert cli.main(["demo", "--dir", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "not empty and was not created by the demo; nothing was removed" in err
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"] and (mine / "thesis.tex").read_text() == "precious"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert cli.main(["demo", "--dir", str(a_file)]) == 2 and a_file.read_text() == "x"


def test_demo_reruns_in_its_own_directory_and_removes_nothing_else(tmp_path, capsys):
    demo = tmp_path / "demo"
    assert cli.main(["demo", "--dir", str(demo), "--num-workers", "2", "--quiet"]) == 0
    assert (demo / cli.DEMO_MARKER).is_file()
    assert capsys.readouterr().out.strip() == f"v2.1 dataset: {demo / 'v2.1'}"
    (demo / "notes.txt").write_text("mine")
    assert cli.main(["demo", "--dir", str(demo), "--num-workers", "2"]) == 0
    out = capsys.readouterr().out
    assert f"v2.1 dataset: {demo / 'v2.1'}" in out and "Sample v2.0 dataset" in out
    assert (demo / "notes.txt").read_text() == "mine"
    assert json.loads((demo / "v2.1/meta/info.json").read_text())["codebase_version"] == "v2.1"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["demo", "--dir", str(empty), "--quiet"]) == 0 and (empty / cli.DEMO_MARKER).is_file()


# --- checkpoints -------------------------------------------------------------------------------------------------

def _saved_checkpoint(target: Path, tasks: int, age_days: float = 0.0) -> Path:
    from dask_stats.engine.checkpoint import Checkpoint
    from dask_stats.storage import Store

    saved = Checkpoint(Store(target), "fingerprint")
    for i in range(tasks):
        saved.save(f"task-{i}", {"result": i})
    saved.close()
    when = time.time() - age_days * 86400
    for part in saved.path.parent.glob(saved.path.name + "*"):
        os.utime(part, (when, when))
    return saved.path


def test_checkpoints_command_lists_and_clears(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DASK_STATS_CACHE", str(tmp_path / "cache"))
    assert cli.main(["checkpoints"]) == 0
    assert "no checkpoints" in capsys.readouterr().out
    recent = _saved_checkpoint(tmp_path / "recent", tasks=3)
    old = _saved_checkpoint(tmp_path / "old", tasks=1, age_days=5)
    other = _saved_checkpoint(tmp_path / "other", tasks=2, age_days=1)

    assert cli.main(["checkpoints"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if str(tmp_path) in line and ".sqlite" in line]
    assert [line.split()[0] for line in lines] == [str(tmp_path / n) for n in ("recent", "other", "old")]
    assert lines[0].split()[3] == "3" and str(recent) in lines[0] and "5.0 d" in lines[2]
    assert "3 checkpoint(s)" in out

    assert cli.main(["checkpoints", "--older-than-days", "2"]) == 0  # listing with the same filter as --clear
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines() if ".sqlite" in line] == [
        str(tmp_path / "old")]
    assert cli.main(["checkpoints", "--clear", "--older-than-days", "2"]) == 0
    assert "removed 1 checkpoint(s)" in capsys.readouterr().out
    assert recent.exists() and other.exists() and not old.exists()

    assert cli.main(["checkpoints", "--root", str(tmp_path / "other")]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines() if ".sqlite" in line] == [
        str(tmp_path / "other")]
    assert cli.main(["checkpoints", "--clear", "--root", str(tmp_path / "other")]) == 0
    assert recent.exists() and not other.exists()
    assert cli.main(["checkpoints", "--clear"]) == 0
    assert "removed 1 checkpoint(s)" in capsys.readouterr().out and not recent.exists()


def test_checkpoints_command_refuses_a_negative_age(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["checkpoints", "--clear", "--older-than-days", "-1"])
    assert exit_.value.code == 2 and "--older-than-days" in capsys.readouterr().err


# --- convert and demo in a subprocess, exit codes --------------------------------------------------------------

def test_cli_help_version_and_convert(messy_dataset, tmp_path):
    assert "convert" in run_cli("--help").stdout
    assert run_cli("--version").stdout.strip() == f"dask_stats {dask_stats.__version__}"
    done = run_cli("convert", "--root", messy_dataset, "--output", tmp_path / "out", "--num-workers", "2")
    assert done.returncode == 0, done.stderr
    assert "Converted 5 episodes, 228 frames" in done.stdout and str(tmp_path / "out") in done.stdout
    assert "passed against meta/stats.json" in done.stdout
    again = run_cli("convert", "--root", tmp_path / "out")
    assert again.returncode == 0 and "already at v2.1; nothing to do" in again.stdout and not again.stderr


def test_demo_command_converts_a_generated_dataset(tmp_path):
    run = run_cli("demo", "--dir", tmp_path / "demo")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "demo" / "v2.1"
    assert f"v2.1 dataset: {out}" in run.stdout and "no stats for language_instruction" in run.stdout
    assert json.loads((out / "meta/info.json").read_text())["codebase_version"] == "v2.1"
    assert len((out / "meta/episodes_stats.jsonl").read_text().splitlines()) == 4


def test_bad_data_found_by_a_task_exits_2_not_4(make_sample, copy_of, tmp_path):
    root = copy_of(make_sample(LONG_VIDEOS))
    damage(video(root, 0))
    run = run_cli("convert", "--root", root, "--output", tmp_path / "out", "--num-workers", "2", "--quiet")
    assert run.returncode == 2, run.stderr
    assert "damaged at frame" in run.stderr and "re-run the same command to resume" not in run.stderr
    assert "Traceback" not in run.stderr


def test_a_timeout_exits_4(make_sample, tmp_path):
    script = ("import sys, fake_backends, dask_stats.video as v; v.BACKENDS['pyav'] = fake_backends.HangingBackend; "
              "from dask_stats.cli import main; sys.exit(main(sys.argv[1:]))")
    run = subprocess.run([sys.executable, "-c", script, "convert", "--root", str(make_sample(SMALL32)), "--output",
                          str(tmp_path / "out"), "--task-timeout", "2", "--retries", "0", "--quiet"],
                         capture_output=True, text=True, timeout=300, env=with_tests_on_path())
    assert run.returncode == 4, run.stderr
    assert "re-run the same command to resume" in run.stderr


def test_interrupt_after_episodes_stats_does_not_claim_nothing_was_committed(make_sample, copy_of, monkeypatch,
                                                                             capsys):
    ds = copy_of(make_sample(SMALL32))
    fail_when_writing(monkeypatch, "meta/info.json", KeyboardInterrupt())
    assert cli.main(["convert", "--root", str(ds), "--quiet", "--num-workers", "2"]) == 130
    err = capsys.readouterr().err
    assert "nothing was committed" not in err and "the same command finishes the conversion" in err
    assert (ds / "meta/episodes_stats.jsonl").exists()


def test_cli_check_reports_everything_and_exit_codes(make_sample, copy_of):
    ds = copy_of(make_sample(SMALL))
    edit_json(ds / "meta/info.json", lambda i: i["features"].update(
        {"observation.images.missing": {**i["features"][CAM]}}))
    rewrite_parquet(data(ds, 1), lambda t: t.set_column(t.schema.get_field_index("timestamp"), "timestamp",
                                                        pa.array((np.arange(1, 36) / 30).astype(np.float32))))
    run = run_cli("check", "--root", ds, timeout=120)
    assert run.returncode == 1
    assert "observation.images.missing" in run.stdout and "offset" in run.stdout  # both problems, at once
    assert "Traceback" not in run.stdout + run.stderr
    ok = run_cli("check", "--root", ds, "--frame-lookup", "index", "--exclude-features", "observation.images.missing",
                 timeout=120)
    assert ok.returncode == 0, ok.stdout
