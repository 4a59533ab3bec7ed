"""``python -m dask_stats`` / ``dask-stats``: a thin argparse layer over :func:`dask_stats.convert`.

Only the standard library and the option declarations are imported here: ``--help`` and bad flags are
answered at once; dask, pandas and PyAV are imported when the work starts.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import importlib
import logging
import sys
from pathlib import Path

from . import __version__, options
from .errors import DatasetError, HubError, NothingToDo, Problem, TaskError

DEMO_MARKER = ".dask_stats_demo"  # written into the directories the demo creates: the only ones it empties
LEROBOT_FLAGS = {"--force-conversion": "--force"}  # lerobot's converters' flags that we spell differently


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations, where an unknown flag gets the closest known one as a suggestion (lerobot's
    own spellings get ours).  Only public argparse: the flags are recorded as they are added."""

    def __init__(self, *args, **kwargs):
        self.flags: list[str] = []  # every option string of this parser (filled by add_argument, before super())
        self.commands: dict[str, Parser] = {}  # the sub-commands' parsers, by name
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        self.flags += action.option_strings
        return action

    def add_argument_group(self, *args, **kwargs):
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument

        def add_recorded(*a, **k):
            action = add(*a, **k)
            self.flags.extend(action.option_strings)
            return action

        group.add_argument = add_recorded
        return group

    def add_subparsers(self, **kwargs):
        action = super().add_subparsers(**kwargs)
        self.commands = action.choices
        return action

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self.commands:  # the top-level parser: judge against the command's flags
            parser = self.commands.get(getattr(namespace, "command", None), self)
            parser.error(parser.unknown(extras))
        return namespace, extras

    def unknown(self, extras: list[str]) -> str:
        """The message for unknown arguments, with the closest known flag for each unknown one."""
        hints = []
        for arg in extras:
            flag = arg.split("=", 1)[0]
            close = difflib.get_close_matches(flag, self.flags, n=1, cutoff=0.6) if flag.startswith("-") else []
            close = [LEROBOT_FLAGS[flag]] if LEROBOT_FLAGS.get(flag) in self.flags else close
            if close:
                hints.append(f"{flag}: did you mean {close[0]}?")
        return f"unrecognized arguments: {' '.join(extras)}" + "".join(f"\n  {hint}" for hint in hints)


def prog_name() -> str:
    """The command as invoked: the ``dask-stats`` console script or ``python -m dask_stats``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "dask-stats" if name.startswith("dask-stats") else "python -m dask_stats"


def _flag(parser, name: str, help: str, default=False) -> None:
    """A boolean flag that also takes lerobot's ``--name=true/false`` spelling."""
    parser.add_argument(name, nargs="?", const=True, default=default, type=options.parse_bool, metavar="BOOL",
                        help=help)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = Parser(prog=prog or prog_name(),
                    description="Statistics of LeRobot datasets with Dask: v2.0 -> v2.1 or v3.0, exact quantiles.",
                    epilog="Boolean flags take --flag, --flag=true or --flag=false. Exit codes: 0 done or nothing "
                           "to do, 1 check found errors, 2 bad input or options (nothing written), 3 unexpected "
                           "error, 4 incomplete (the same command resumes it).")
    parser.add_argument("--version", action="version", version=f"dask_stats {__version__}",
                        help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, title="commands", help="what to do")

    conv = commands.add_parser("convert", help="compute per-episode stats and write a v2.1 (default) or v3.0 dataset",
                               description="Compute every episode's stats and write them as v2.1 (meta/episodes_stats"
                                           ".jsonl beside the v2.0 files) or as a v3.0 dataset (--to v3.0); a v3.0 "
                                           "dataset gets new stats with --force.")
    conv.add_argument("--root", help="the v2.0 dataset: a directory or an fsspec URL (s3://..., hf://datasets/...), "
                                     "converted in place; with --repo-id, where to download it (default: "
                                     "$HF_LEROBOT_HOME/<repo_id>)")
    conv.add_argument("--repo-id", help="a LeRobot dataset on the Hugging Face Hub, e.g. lerobot/pusht")
    conv.add_argument("--revision", help="Hub revision to convert (default: the v2.0 tag)")
    _flag(conv, "--push-to-hub", "upload meta/ back and tag v2.1")
    conv.add_argument("--branch", help="push to this branch (created from --revision when missing)")
    _flag(conv, "--private", "create the Hub repo private (--private=false: public)", default=None)
    _flag(conv, "--dry-run", "print what would be downloaded, written, pushed")
    conv.add_argument("--output", help="write a converted copy here instead; the source is left untouched")
    options.add_arguments(conv, "convert")
    _flag(conv, "--debug", "show tracebacks")

    chk = commands.add_parser("check", help="find every problem a conversion would meet (no decoding)",
                              description="Find every problem a conversion would meet, without decoding videos. "
                                          "Exit code 0: the conversion can proceed, or there is nothing to do; "
                                          "1: it cannot; 2: bad options.")
    chk.add_argument("--root", required=True, help="the dataset to check: a directory or an fsspec URL")
    chk.add_argument("--output", help="the conversion will write a copy here (a read-only source is then fine)")
    options.add_arguments(chk, "check")
    doc = chk.add_argument_group("stats doctor")
    _flag(doc, "--stats", "recompute the stats in memory and report how wrong the published ones are (writes nothing "
          "to the dataset; exit 1 when a published stat is dangerous: a std of 0 or far below the truth, q01/q99 off "
          "by more than 3%% of the range, stale index stats)")
    _flag(doc, "--json", "with --stats: print the whole report as JSON")
    doc.add_argument("--report", metavar="PATH.html", help="with --stats: also write the report as one "
                     "self-contained HTML page")
    doc.add_argument("--quantiles", default=None, metavar="Q,...", help="with --stats: the quantiles to compare "
                     "(default lerobot's q01,q10,q50,q90,q99)")
    _flag(chk, "--debug", "show tracebacks")

    demo = commands.add_parser("demo", help="generate a small sample v2.0 dataset and convert it",
                               description="Generate a small LeRobot v2.0 dataset in DIR/v2.0 and convert it to "
                                           "DIR/v2.1. DIR must be new, empty, or made by an earlier demo.")
    demo.add_argument("--dir", default="dask_stats_demo",
                      help="where to put the sample (default ./dask_stats_demo); a non-empty directory the demo "
                           "did not create is refused")
    demo.add_argument("--num-workers", type=options.positive_int, default=None,
                      help="parallel workers (default: all cores)")
    _flag(demo, "--quiet", "no progress, only where the result is")
    _flag(demo, "--debug", "show tracebacks")

    ckp = commands.add_parser("checkpoints", help="list (or --clear) the checkpoints of interrupted runs",
                              description="List the checkpoints that interrupted conversions left in the cache "
                                          "($DASK_STATS_CACHE, else the user cache directory): target, age, saved "
                                          "tasks, size and file. --clear removes them.")
    _flag(ckp, "--clear", "remove the checkpoints listed (all, or those of --root, or those older than "
                          "--older-than-days) instead of only listing them")
    ckp.add_argument("--older-than-days", type=options.non_negative_float, default=None, metavar="N",
                     help="only checkpoints unused for more than N days (with --clear: keep the recent ones)")
    ckp.add_argument("--root", help="only the checkpoint of conversions into this target (the dataset converted "
                                    "in place, or the --output of the conversion): a directory or an fsspec URL")
    _flag(ckp, "--debug", "show tracebacks")
    return parser


def _work(module: str):
    """Import a module of the conversion (dask, distributed, pandas, PyAV...) when the work starts.

    Importing that stack creates millions of objects and no garbage: the cyclic collector only costs time there
    (0.1-0.2 s). Collect nothing while importing, then set the imported objects aside (gc.freeze) so that later
    collections do not scan them again."""
    if f"{__package__}.{module}" in sys.modules:
        return sys.modules[f"{__package__}.{module}"]
    gc.disable()
    try:
        return importlib.import_module(f".{module}", __package__)
    finally:
        gc.freeze()
        gc.enable()


def _already_converted_line(root, output, exc: NothingToDo) -> str:
    if exc.output:
        return f"{exc.output} already holds the {exc.version} conversion of {root}; nothing to do."
    return (f"{root} is already at {exc.version}; nothing to do"
            + (f" (no copy written to {output})" if output else "") + f". --force recomputes {exc.recomputes}.")


def _convert(args) -> int:
    convert = _work("convert").convert

    if args.repo_id is None and args.root is None:
        raise DatasetError("give --root DIR (a local dataset) or --repo-id OWNER/NAME (a Hub dataset)")
    if args.push_to_hub and args.repo_id is None:
        raise DatasetError("--push-to-hub needs --repo-id")
    if args.repo_id:
        return _convert_hub(args)
    root = args.root
    try:
        if args.dry_run:
            print(_work("convert").describe(root, args.output, **options.keywords(args, "convert")))
            return 0
        result = convert(root, args.output, **options.keywords(args, "convert"))
    except NothingToDo as exc:
        print(_already_converted_line(root, args.output, exc))
        return 0
    if result.verification.warnings:
        print(result.verification.table(only_problems=True))
    if args.quiet:  # warnings still print, without the summary
        print("".join(f"{warning}\n" for warning in result.warnings), end="", file=sys.stderr)
    else:
        print(result.summary())
    return 0


def _convert_hub(args) -> int:
    """``convert --repo-id``: :func:`dask_stats.roundtrip.convert_hub` with the same option names."""
    from huggingface_hub.utils import disable_progress_bars
    from huggingface_hub.utils import logging as hf_logging

    from .roundtrip import convert_hub

    if args.quiet:  # huggingface_hub's own warnings and progress bars too
        hf_logging.set_verbosity_error()
        disable_progress_bars()
    convert_hub(args.repo_id, root=args.root, revision=args.revision, output=args.output,
                push_to_hub=args.push_to_hub, branch=args.branch, private=args.private, dry_run=args.dry_run,
                echo=print, **options.keywords(args, "convert"))
    return 0


def _check(args) -> int:
    if args.stats:
        return _doctor(args)
    if args.json or args.report:
        raise DatasetError(Problem("--json and --report go with --stats", fix="add --stats"))
    check = _work("check").check

    problems = check(args.root, args.output, **options.keywords(args, "check"))
    counts = {severity: sum(p.severity == severity for p in problems) for severity in ("error", "warning", "info")}
    for problem in problems:
        print(problem)
    if counts["error"]:
        outcome = "conversion cannot proceed"
    elif any(p.code == "already-converted" for p in problems):
        outcome = "nothing to convert (--force recomputes the stats)"
    else:
        outcome = "conversion can proceed"
    print(f"{counts['error']} error(s), {counts['warning']} warning(s)"
          + (f", {counts['info']} info" if counts["info"] else "") + f": {outcome}")
    return 1 if counts["error"] else 0


def _doctor(args) -> int:
    """``check --stats``: the doctor's report (text or --json; --report writes the HTML page); exit 1 when dangerous."""
    import json

    keywords = options.keywords(args, "check")
    if args.quantiles is not None:
        keywords["quantiles"] = args.quantiles
    report = _work("doctor").doctor(args.root, html=args.report, **keywords)
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(report.table())
        if args.report:
            print(f"report: {args.report}")
    return report.exit_status


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 86400 else f"{seconds / 86400:.1f} d"


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def _checkpoints(args) -> int:
    """``checkpoints``: list them, or remove them with ``--clear`` (built on ``list_checkpoints`` and
    ``clear_checkpoints``)."""
    import time

    checkpoint = _work("engine.checkpoint")
    now = time.time()
    wanted = None if args.root is None else checkpoint.checkpoint_path(args.root)
    found = [c for c in checkpoint.list_checkpoints() if (wanted is None or c.path == wanted)
             and (args.older_than_days is None or (now - c.modified) / 86400 > args.older_than_days)]
    if args.clear:
        removed = checkpoint.clear_checkpoints(args.root, older_than_days=args.older_than_days)
        print(f"removed {removed} checkpoint(s) from {checkpoint.checkpoints_dir()}")
        return 0
    if not found:
        print(f"no checkpoints in {checkpoint.checkpoints_dir()}")
        return 0
    print(f"{'target':50} {'age':>8} {'tasks':>6} {'size':>10}  path")
    for c in found:
        target = c.target or "(unreadable)"
        print(f"{target:50} {_age(now - c.modified):>8} {c.tasks:6d} {_size(c.bytes):>10}  {c.path}")
    print(f"{len(found)} checkpoint(s); `checkpoints --clear` removes them (a conversion removes its own once "
          f"committed, and any unused for {checkpoint.EXPIRY_DAYS:g} days)")
    return 0


def _demo(args) -> int:
    base = Path(args.dir)
    if not _claim_demo_dir(base):
        print(f"dask_stats: {base} is not empty and was not created by the demo; nothing was removed. Choose a new "
              "or empty directory with --dir.", file=sys.stderr)
        return 2
    convert = _work("convert").convert  # first: it sets up distributed's logging (see _work)
    make_dataset, SampleSpec = _work("synthetic").make_dataset, _work("synthetic").SampleSpec
    source = make_dataset(base / "v2.0", SampleSpec(string_column=True))
    if not args.quiet:
        print(f"Sample v2.0 dataset: {source}")
    result = convert(source, base / "v2.1", num_workers=args.num_workers, quiet=args.quiet)
    print(result.summary() if not args.quiet else f"v2.1 dataset: {result.output}")
    return 0


def _claim_demo_dir(base: Path) -> bool:
    """Make ``base`` ready for the demo: create it (marked as the demo's), or empty the v2.0/v2.1 that an earlier
    demo made there. False, touching nothing, when ``base`` holds anything and is not marked."""
    marker = base / DEMO_MARKER
    if base.is_symlink() or base.exists() and not base.is_dir():
        return False
    if base.is_dir() and not marker.is_file() and any(base.iterdir()):
        return False
    base.mkdir(parents=True, exist_ok=True)
    marker.write_text("created by `dask_stats demo`; the demo may replace v2.0/ and v2.1/ in this directory\n")
    for name in ("v2.0", "v2.1"):  # only what the demo itself writes
        old = base / name
        if old.is_symlink() or old.is_file():
            old.unlink()
        elif old.is_dir():
            import shutil

            shutil.rmtree(old)
    return True


def _log_to_stderr() -> None:
    """dask_stats' own warnings on stderr (with ``--quiet`` too); other libraries keep their own handlers (a root
    handler would print huggingface_hub's messages a second time)."""
    log = logging.getLogger("dask_stats")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.WARNING)


def _partial(exc: BaseException) -> str:
    where = getattr(exc, "partial", None)
    return f" The unfinished tree is in {where}." if where else ""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _log_to_stderr()
    try:
        return {"convert": _convert, "check": _check, "demo": _demo, "checkpoints": _checkpoints}[args.command](args)
    except TaskError as exc:
        if args.debug:
            raise
        if exc.transient:  # timeouts, lost workers: the run failed, not the data
            print(f"dask_stats: incomplete: {len(exc.problems)} task(s) failed; nothing was committed. Finished work "
                  f"is checkpointed: re-run the same command to resume.{_partial(exc)}\n{exc}", file=sys.stderr)
            return 4
        if any(p.code == "no-space" for p in exc.problems):
            print(f"dask_stats: cannot convert: no space left on the device; nothing was committed.{_partial(exc)}"
                  f"\n{exc}", file=sys.stderr)
            return 2
        print(f"dask_stats: cannot convert: {len(exc.problems)} task(s) met bad data; nothing was committed. "
              f"Fix the files named below (or exclude their features); finished work is checkpointed.\n{exc}",
              file=sys.stderr)
        return 2
    except HubError as exc:  # one line: what happened on the Hub and what to do
        if args.debug:
            raise
        print(f"dask_stats: {exc}", file=sys.stderr)
        return 2
    except DatasetError as exc:
        if args.debug:
            raise
        partly = " (while writing the new metadata: part of it may be in place; once fixed, the same command " \
                 "finishes the conversion)" if getattr(exc, "partial_commit", False) else ""
        print(f"dask_stats: cannot convert{partly}:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if getattr(exc, "partial_commit", False):
            print("dask_stats: interrupted while writing the new metadata (part of it may be in place); the same "
                  "command finishes the conversion", file=sys.stderr)
        else:
            print("dask_stats: interrupted; nothing was committed. Finished work is checkpointed: re-run the same "
                  f"command to resume.{_partial(exc)}", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        from .storage import missing_credentials

        hint = missing_credentials(exc, getattr(args, "root", None))
        if hint:
            print(f"dask_stats: {hint}", file=sys.stderr)
            return 2
        print(f"dask_stats: unexpected error: {type(exc).__name__}: {exc}\n(run again with --debug for the "
              "traceback, and please report it)", file=sys.stderr)
        return 3
