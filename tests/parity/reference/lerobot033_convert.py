"""Run lerobot 0.3.3's own v2.0 -> v2.1 stats computation on a local dataset, offline.

Runs INSIDE the lerobot-0.3.3 reference environment (tests/parity/refenv.py), never in the project's.

    python lerobot033_convert.py DATASET_DIR OUT_JSONL [--backend pyav|torchcodec] [--check]
                                 [--keep-dataset DIR] [--report REPORT_JSON]

It follows ``lerobot.datasets.v21.convert_dataset_v20_to_v21.convert_dataset`` step by step, minus the
Hub: the dataset is first copied to a temporary directory (lerobot writes ``meta/episodes_stats.jsonl``
into the dataset root), ``LeRobotDataset(repo_id, root=copy, video_backend=backend)`` is built,
``convert_stats(dataset, num_workers=0)`` computes and writes the per-episode stats with lerobot's own
``write_episode_stats``, and that file is copied byte for byte to OUT_JSONL.  DATASET_DIR is never
written to.

--check          also run ``check_aggregate_stats(dataset, load_stats(root))`` (the official step 3);
                 its outcome goes to the report, and a failure makes the exit status 3.
--keep-dataset   finish the official local steps on the copy (codebase_version = v2.1 via write_info,
                 meta/stats.json deleted) and move it to DIR: the dataset the official converter leaves
                 on disk.
--report         JSON with lerobot/torch versions, backend, timings and the check result.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("out_jsonl", type=Path)
    parser.add_argument("--backend", choices=["pyav", "torchcodec"], default="pyav")
    parser.add_argument("--repo-id", default="dask_stats/parity_fixture")
    parser.add_argument("--check", action="store_true", help="run check_aggregate_stats against meta/stats.json")
    parser.add_argument("--keep-dataset", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--num-workers", type=int, default=0,
                        help="convert_stats' thread pool (0: serial, as the parity tier uses; the CLI default is 4)")
    args = parser.parse_args()

    import lerobot
    import numpy as np
    import torch
    from lerobot.datasets.lerobot_dataset import CODEBASE_VERSION, LeRobotDataset
    from lerobot.datasets.utils import EPISODES_STATS_PATH, STATS_PATH, load_stats, write_info
    from lerobot.datasets.v21.convert_stats import check_aggregate_stats, convert_stats

    src = args.dataset_dir.resolve()
    if not (src / "meta" / "info.json").is_file():
        print(f"not a LeRobot dataset: {src}", file=sys.stderr)
        return 2
    report: dict = {
        "lerobot": getattr(lerobot, "__version__", None),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "backend": args.backend,
        "dataset": str(src),
    }
    t0 = time.monotonic()
    status = 0
    with tempfile.TemporaryDirectory(prefix="lerobot033_convert_") as tmp:
        root = Path(tmp) / "dataset"
        shutil.copytree(src, root, ignore=shutil.ignore_patterns("episodes_stats.jsonl"))
        # As the official script: no stale episodes_stats (write_episode_stats appends).
        (root / EPISODES_STATS_PATH).unlink(missing_ok=True)

        dataset = LeRobotDataset(args.repo_id, root=root, video_backend=args.backend)
        report["load_s"] = round(time.monotonic() - t0, 3)
        report["codebase_version_in"] = dataset.meta.info["codebase_version"]
        report["video_backend_used"] = dataset.video_backend

        t1 = time.monotonic()
        convert_stats(dataset, num_workers=args.num_workers)
        report["convert_s"] = round(time.monotonic() - t1, 3)

        if args.check:
            try:
                check_aggregate_stats(dataset, load_stats(root))
                report["check_aggregate_stats"] = "passed"
            except AssertionError as exc:
                report["check_aggregate_stats"] = "failed: " + str(exc).strip()
                status = 3
                logging.error("check_aggregate_stats failed:\n%s", exc)

        args.out_jsonl.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / EPISODES_STATS_PATH, args.out_jsonl)

        if args.keep_dataset is not None:
            # Official steps 4 and 6, locally: bump the version, then delete the old stats.json.
            dataset.meta.info["codebase_version"] = CODEBASE_VERSION
            write_info(dataset.meta.info, root)
            (root / STATS_PATH).unlink(missing_ok=True)
            dest = args.keep_dataset
            if dest.exists():
                shutil.rmtree(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(root), dest)
            report["kept_dataset"] = str(dest)

    report["total_s"] = round(time.monotonic() - t0, 3)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001 - show the reference's own traceback to the test
        traceback.print_exc()
        sys.exit(1)
