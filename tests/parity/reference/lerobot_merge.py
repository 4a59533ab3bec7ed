"""lerobot's own merge: ``aggregate_datasets`` of two or more local v3.0 datasets, offline.

Runs INSIDE the lerobot-0.6.1 reference environment (tests/parity/refenv.py).

    python lerobot_merge.py OUT_ROOT OUT_JSON SRC_ROOT [SRC_ROOT ...] [--keep-files]

Each source is opened as ``local/src<i>`` from its root; the merge is written to OUT_ROOT as ``local/merged``
with lerobot's default file sizes; ``--keep-files``: ``concatenate_data=False, concatenate_videos=False`` (one data
file per source file, as a merge of large datasets ends up).  OUT_JSON: ``{"lerobot": version, "total_episodes", "total_frames",
"tasks": [task, ...]}`` as the merged metadata says (the stats are read from OUT_ROOT by the test).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import run, write_report  # next to this script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_root", type=Path)
    parser.add_argument("out_json", type=Path)
    parser.add_argument("sources", type=Path, nargs="+")
    parser.add_argument("--keep-files", action="store_true")
    args = parser.parse_args()

    import lerobot
    from lerobot.datasets.aggregate import aggregate_datasets
    from lerobot.datasets.dataset_metadata import LeRobotDatasetMetadata

    aggregate_datasets(repo_ids=[f"local/src{i}" for i in range(len(args.sources))], aggr_repo_id="local/merged",
                       roots=list(args.sources), aggr_root=args.out_root,
                       concatenate_data=not args.keep_files, concatenate_videos=not args.keep_files)
    meta = LeRobotDatasetMetadata("local/merged", root=args.out_root)
    out = {"lerobot": lerobot.__version__, "total_episodes": meta.total_episodes, "total_frames": meta.total_frames,
           "tasks": [str(t) for t in meta.tasks.index],
           "data_files": sorted(str(p.relative_to(args.out_root)) for p in args.out_root.glob("data/*/*.parquet"))}
    write_report(out, args.out_json, ("lerobot", "total_episodes", "total_frames", "tasks", "data_files"))
    return 0


if __name__ == "__main__":
    run(main)
