"""``python -m dask_stats``: a thin argparse layer over :func:`dask_stats.convert`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import DatasetError, HubError, TaskError
from . import options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dask_stats",
                                     description="Convert LeRobot v2.0 datasets to v2.1 (per-episode stats).")
    parser.add_argument("--version", action="version", version=f"dask_stats {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    conv = commands.add_parser("convert", help="compute meta/episodes_stats.jsonl and set codebase_version v2.1")
    conv.add_argument("--root", help="the v2.0 dataset: a directory or an fsspec URL (s3://..., hf://datasets/...), "
                                     "converted in place; with --repo-id, where to download it (default: "
                                     "$HF_LEROBOT_HOME/<repo_id>)")
    conv.add_argument("--repo-id", help="a LeRobot dataset on the Hugging Face Hub, e.g. lerobot/pusht")
    conv.add_argument("--revision", help="Hub revision to convert (default: the v2.0 tag)")
    conv.add_argument("--push-to-hub", action="store_true", help="upload meta/ back and tag v2.1")
    conv.add_argument("--branch", help="push to this branch (created from --revision when missing)")
    conv.add_argument("--private", action="store_true", default=None, help="create the Hub repo private")
    conv.add_argument("--dry-run", action="store_true", help="print what would be downloaded, written, pushed")
    conv.add_argument("--output", help="write a converted copy here instead; the source is left untouched")
    options.add_arguments(conv, "convert")
    conv.add_argument("--debug", action="store_true", help="show tracebacks")

    chk = commands.add_parser("check", help="find every problem a conversion would meet (no decoding)")
    chk.add_argument("--root", required=True, help="the dataset to check: a directory or an fsspec URL")
    chk.add_argument("--output", help="the conversion will write a copy here (a read-only source is then fine)")
    options.add_arguments(chk, "check")
    chk.add_argument("--debug", action="store_true", help="show tracebacks")

    demo = commands.add_parser("demo", help="generate a small sample v2.0 dataset and convert it")
    demo.add_argument("--dir", default="dask_stats_demo", help="where to put the sample (default ./dask_stats_demo)")
    demo.add_argument("--num-workers", type=int, default=None)
    return parser


def _convert(args) -> int:
    from .convert import convert

    if args.repo_id is None and args.root is None:
        raise DatasetError("give --root DIR (a local dataset) or --repo-id OWNER/NAME (a Hub dataset)")
    if args.push_to_hub and args.repo_id is None:
        raise DatasetError("--push-to-hub needs --repo-id")
    if args.repo_id:
        return _convert_hub(args)
    root = args.root
    if args.dry_run:
        print(f"would convert {root} -> {args.output or root} (meta/episodes_stats.jsonl, meta/info.json at v2.1)"
              + (", then remove meta/stats.json" if args.delete_old_stats else ""))
        return 0
    result = convert(root, args.output, **options.keywords(args, "convert"))
    if not args.quiet:
        if result.verification.warnings:
            print(result.verification.table(only_problems=True))
        print(result.summary())
    return 0


def _convert_hub(args) -> int:
    """``convert --repo-id``: :func:`dask_stats.roundtrip.convert_hub` with the same option names."""
    from huggingface_hub.utils import disable_progress_bars, logging as hf_logging

    from .roundtrip import convert_hub

    if args.quiet:  # huggingface_hub's own warnings and progress bars too
        hf_logging.set_verbosity_error()
        disable_progress_bars()
    convert_hub(args.repo_id, root=args.root, revision=args.revision, output=args.output,
                push_to_hub=args.push_to_hub, branch=args.branch, private=args.private, dry_run=args.dry_run,
                echo=print, **options.keywords(args, "convert"))
    return 0


def _check(args) -> int:
    from .check import check

    problems = check(args.root, args.output, **options.keywords(args, "check"))
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        print(problem)
    print(f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s): "
          + ("conversion cannot proceed" if errors else "conversion can proceed"))
    return 1 if errors else 0


def _demo(args) -> int:
    import shutil

    from .convert import convert
    from .sample import SampleSpec, make_dataset

    base = Path(args.dir)
    shutil.rmtree(base, ignore_errors=True)
    source = make_dataset(base / "v2.0", SampleSpec(string_column=True))
    print(f"Sample v2.0 dataset: {source}")
    result = convert(source, base / "v2.1", num_workers=args.num_workers)
    print(result.summary())
    return 0


def _log_to_stderr(quiet: bool) -> None:
    """dask_stats' own warnings on stderr (errors only with ``--quiet``); other libraries keep their own handlers
    (a root handler would print huggingface_hub's messages a second time)."""
    log = logging.getLogger("dask_stats")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.ERROR if quiet else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _log_to_stderr(quiet=getattr(args, "quiet", False))
    try:
        return {"convert": _convert, "check": _check, "demo": _demo}[args.command](args)
    except TaskError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"dask_stats: incomplete: {len(exc.problems)} task(s) failed; nothing was committed. Finished work "
              f"is checkpointed: the same command resumes it.\n{exc}", file=sys.stderr)
        return 4
    except HubError as exc:  # one line: what happened on the Hub and what to do
        if getattr(args, "debug", False):
            raise
        print(f"dask_stats: {exc}", file=sys.stderr)
        return 2
    except DatasetError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"dask_stats: cannot convert:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dask_stats: interrupted; nothing was committed", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a plain sentence, not a traceback, unless --debug
        if getattr(args, "debug", False):
            raise
        print(f"dask_stats: unexpected error: {type(exc).__name__}: {exc}\n(run again with --debug for the "
              "traceback, and please report it)", file=sys.stderr)
        return 3
