"""``python -m dask_stats``: a thin argparse layer over :func:`dask_stats.convert`."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .errors import DatasetError
from .video import BACKENDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dask_stats",
                                     description="Convert LeRobot v2.0 datasets to v2.1 (per-episode stats).")
    parser.add_argument("--version", action="version", version=f"dask_stats {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    conv = commands.add_parser("convert", help="compute meta/episodes_stats.jsonl and set codebase_version v2.1")
    conv.add_argument("--root", required=True, help="the v2.0 dataset directory (converted in place)")
    conv.add_argument("--output", help="write a converted copy here instead; the source is left untouched")
    conv.add_argument("--video-backend", choices=sorted(BACKENDS), default="pyav")
    conv.add_argument("--num-workers", type=int, default=None, help="parallel workers (default: all cores)")
    conv.add_argument("--scheduler", choices=["processes", "threads"], default="processes",
                      help="local cluster kind (default: processes; decoders hold the GIL)")
    conv.add_argument("--scheduler-address", help="run on an existing Dask scheduler (tcp://host:8786)")
    conv.add_argument("--dashboard-address", default="127.0.0.1:0",
                      help="where the local cluster serves its dashboard (default: a free port on 127.0.0.1)")
    conv.add_argument("--tolerance-s", type=float, default=1e-4,
                      help="max distance between a sampled timestamp and its video frame (default 1e-4 s)")
    conv.add_argument("--frame-lookup", choices=["timestamp", "index"], default="timestamp",
                      help="match sampled rows to video frames by timestamp (default) or by position")
    conv.add_argument("--exclude-features", nargs="+", default=[], metavar="NAME",
                      help="features that get no stats (e.g. declared but absent)")
    conv.add_argument("--skip-check", action="store_true", help="do not run the preflight check first")
    conv.add_argument("--skip-verify", action="store_true", help="do not compare with meta/stats.json")
    conv.add_argument("--strict-verify", action="store_true",
                      help="also stop on video/image stats that differ from meta/stats.json")
    conv.add_argument("--delete-old-stats", action="store_true",
                      help="remove meta/stats.json once the new stats are committed")
    conv.add_argument("--force", action="store_true", help="recompute a dataset already at v2.1")
    conv.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    conv.add_argument("--debug", action="store_true", help="show tracebacks")

    chk = commands.add_parser("check", help="find every problem a conversion would meet (no decoding)")
    chk.add_argument("--root", required=True)
    chk.add_argument("--output", help="the conversion will write a copy here (a read-only source is then fine)")
    for flag in ("--video-backend", "--tolerance-s", "--frame-lookup", "--exclude-features", "--force"):
        chk._add_action(next(a for a in conv._actions if flag in a.option_strings))
    chk.add_argument("--debug", action="store_true", help="show tracebacks")

    demo = commands.add_parser("demo", help="generate a small sample v2.0 dataset and convert it")
    demo.add_argument("--dir", default="dask_stats_demo", help="where to put the sample (default ./dask_stats_demo)")
    demo.add_argument("--num-workers", type=int, default=None)
    return parser


def _convert(args) -> int:
    from .convert import convert

    result = convert(
        args.root, args.output, video_backend=args.video_backend, num_workers=args.num_workers,
        scheduler=args.scheduler, scheduler_address=args.scheduler_address,
        dashboard_address=args.dashboard_address, tolerance_s=args.tolerance_s, frame_lookup=args.frame_lookup,
        exclude_features=tuple(args.exclude_features), skip_check=args.skip_check, skip_verify=args.skip_verify,
        strict_verify=args.strict_verify, delete_old_stats=args.delete_old_stats, force=args.force,
        quiet=args.quiet,
    )
    if not args.quiet:
        if result.verification.warnings:
            print(result.verification.table(only_problems=True))
        print(result.summary())
    return 0


def _check(args) -> int:
    from .check import check
    from .plan import Options

    options = Options(video_backend=args.video_backend, tolerance_s=args.tolerance_s, frame_lookup=args.frame_lookup,
                      exclude_features=tuple(args.exclude_features), force=args.force)
    problems = check(args.root, options, output=args.output)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        print(problem)
    print(f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s): "
          + ("conversion cannot proceed" if errors else "conversion can proceed"))
    return 1 if errors else 0


def _demo(args) -> int:
    import shutil
    from pathlib import Path

    from .convert import convert
    from .sample import make_dataset

    base = Path(args.dir)
    shutil.rmtree(base, ignore_errors=True)
    source = make_dataset(base / "v2.0")
    print(f"Sample v2.0 dataset: {source}")
    result = convert(source, base / "v2.1", num_workers=args.num_workers)
    print(result.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return {"convert": _convert, "check": _check, "demo": _demo}[args.command](args)
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
