"""The command line as a newcomer meets it: help, flags, exit codes, the demo, progress of long phases."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dask_stats
from dask_stats import cli, progress
from dask_stats.errors import DatasetError
from dask_stats.sample import Camera, SampleSpec, make_dataset

FAST = {"scheduler": "threads", "num_workers": 2, "quiet": True}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    spec = SampleSpec(lengths=[5, 8], cameras={"observation.images.top": Camera(16, 16)})
    return make_dataset(tmp_path_factory.mktemp("tiny") / "ds", spec)


@pytest.fixture(scope="module")
def converted(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("converted") / "out"
    dask_stats.convert(tiny, out, **FAST)
    return out


def python_m(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dask_stats", *args], capture_output=True, text=True, timeout=120,
                          **kwargs)


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
    assert cli.build_parser()._subparsers._group_actions[0].choices["convert"].prog == "dask-stats convert"
    monkeypatch.setattr(sys, "argv", [str(REPO / "dask_stats/__main__.py"), "--help"])
    assert cli.build_parser().prog == "python -m dask_stats"


def test_help_is_fast_and_imports_no_heavy_library():
    help_ = python_m("convert", "--help")
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
    with pytest.raises(DatasetError, match="expected one of threads, processes, got 'thread'"):
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


# --- progress of the phases around the episode bar -----------------------------------------------------------

def test_phases_show_while_long_and_stay_silent_when_short_or_quiet(capsys):
    with progress.Phases(delay=0.1, interval=0.05)("verifying"):
        time.sleep(0.4)
    err = capsys.readouterr().err
    assert "verifying:   0%" in err and "verifying: 100%" in err and "[00:00]" in err
    with progress.Phases(delay=0.5)("writing"):
        pass
    with progress.Phases(quiet=True, delay=0)("planning"):
        time.sleep(0.1)
    assert capsys.readouterr().err == ""
    with pytest.raises(ZeroDivisionError), progress.Phases(delay=0)("failing"):
        1 / 0
    assert "100%" not in capsys.readouterr().err


def test_convert_shows_its_phases_unless_quiet(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress.Phases.__init__, "__defaults__", (False, 0.0, 0.5))  # show even short phases
    dask_stats.convert(tiny, tmp_path / "loud", num_workers=2, dashboard_address="off")
    err = capsys.readouterr().err
    for phase in ("planning and checking: 100%", "episodes: 100%", "verifying: 100%", "writing: 100%"):
        assert phase in err, err
    assert err.index("planning") < err.index("episodes") < err.index("verifying") < err.index("writing")
    dask_stats.convert(tiny, tmp_path / "quiet", **FAST)
    assert capsys.readouterr().err == ""


# --- what dask already does ----------------------------------------------------------------------------------

def test_scheduler_address_comes_from_dask_config_and_its_environment_variable():
    import dask

    from dask_stats.options import RunOptions
    from dask_stats.scheduling import scheduler_address

    assert scheduler_address(RunOptions(scheduler_address="tcp://a:1")) == "tcp://a:1"
    with dask.config.set({"scheduler-address": "tcp://b:2"}):
        assert scheduler_address(RunOptions()) == "tcp://b:2"
        assert scheduler_address(RunOptions(scheduler_address="tcp://a:1")) == "tcp://a:1"
    code = "from dask_stats.options import RunOptions; from dask_stats.scheduling import scheduler_address; " \
           "print(scheduler_address(RunOptions()))"
    env = {**__import__("os").environ, "DASK_SCHEDULER_ADDRESS": "tcp://c:3"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert run.stdout.strip() == "tcp://c:3", run.stderr


# --- checkpoints -------------------------------------------------------------------------------------------------

def _saved_checkpoint(target: Path, tasks: int, age_days: float = 0.0) -> Path:
    import os

    from dask_stats.checkpoint import Checkpoint
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
