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
    root = args.root
    if args.repo_id:
        root = _hub_download(args)
        if root is None:
            return 0
    if args.dry_run:
        print(f"would convert {root} -> {args.output or root} (meta/episodes_stats.jsonl, meta/info.json at v2.1)"
              + (", then remove meta/stats.json" if args.delete_old_stats else ""))
        if args.push_to_hub and (Path(root) / "meta/info.json").is_file():
            print(_push_plan(args, root, pending=True))
        elif args.push_to_hub:
            print(f"would upload meta/ (info.json, episodes_stats.jsonl) to {args.repo_id}"
                  f"@{args.branch or 'main'}" + (", delete meta/stats.json there" if args.delete_old_stats else "")
                  + ", and tag it v2.1")
        return 0
    result = convert(root, args.output, **options.keywords(args, "convert"))
    if not args.quiet:
        if result.verification.warnings:
            print(result.verification.table(only_problems=True))
        print(result.summary())
    if args.push_to_hub:
        from . import hub

        plan = _push_plan(args, result.output)
        print(plan)
        print(hub.push(plan))
    return 0


def _hub_download(args):
    """Download a Hub dataset (or say it is already converted); returns its local root or None."""
    from . import hub

    if not args.force:
        try:
            converted = hub.hub_dataset_version(args.repo_id, hub.TARGET_TAG) == "v2.1"
        except hub.HubError:
            converted = False  # offline or no such tag: go on with the download
        if converted:
            print(f"{args.repo_id} is already at v2.1 on the Hub (tag {hub.TARGET_TAG}); nothing to do. "
                  "--force recomputes its stats and pushes them.")
            return None
    if args.dry_run:
        target = args.root or hub.default_root(args.repo_id)
        print(f"would download {args.repo_id}@{args.revision or hub.SOURCE_REVISION} (meta/, data/, videos/) "
              f"into {target}")
        return target
    return hub.download_dataset(args.repo_id, revision=args.revision, root=args.root, refresh=args.force)


def _push_plan(args, root, pending: bool = False):
    from . import hub

    return hub.plan_push(args.repo_id, root, branch=args.branch,
                         source_revision=args.revision or hub.SOURCE_REVISION,
                         delete_old_stats=args.delete_old_stats, private=args.private, move_tag=args.force,
                         pending=pending)


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return {"convert": _convert, "check": _check, "demo": _demo}[args.command](args)
    except TaskError as exc:
        if getattr(args, "debug", False):
            raise
        if exc.transient:  # timeouts, lost workers: the run failed, not the data
            print(f"dask_stats: incomplete: {len(exc.problems)} task(s) failed; nothing was committed. Finished work "
                  f"is checkpointed: the same command resumes it.\n{exc}", file=sys.stderr)
            return 4
        print(f"dask_stats: cannot convert: {len(exc.problems)} task(s) met bad data; nothing was committed. "
              f"Fix the files named below (or exclude their features); finished work is checkpointed.\n{exc}",
              file=sys.stderr)
        return 2
    except (DatasetError, HubError) as exc:
        if getattr(args, "debug", False):
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
            print("dask_stats: interrupted; nothing was committed", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a plain sentence, not a traceback, unless --debug
        if getattr(args, "debug", False):
            raise
        print(f"dask_stats: unexpected error: {type(exc).__name__}: {exc}\n(run again with --debug for the "
              "traceback, and please report it)", file=sys.stderr)
        return 3
