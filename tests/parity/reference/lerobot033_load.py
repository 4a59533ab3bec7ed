"""Open a converted v2.1 dataset with lerobot 0.3.3's own loader, offline, and describe what it sees.

Runs INSIDE the lerobot-0.3.3 reference environment (tests/parity/refenv.py).

    python lerobot033_load.py DATASET_DIR OUT_JSON [--repo-id ID] [--no-frames]

``LeRobotDataset(repo_id, root=DATASET_DIR)`` is built with HF_HUB_OFFLINE=1 (set by refenv): any file
missing from the dataset would make it try the Hub and fail.  OUT_JSON gets:

- ``codebase_version`` as lerobot read it, ``num_episodes``, ``num_frames``;
- ``episodes_stats``: ``meta.episodes_stats`` (what lerobot parsed from episodes_stats.jsonl), as records
  ``{"episode_index", "stats"}`` in episode order;
- ``stats``: ``meta.stats``, lerobot's own aggregate of those (``aggregate_stats``);
- ``log`` / ``warnings``: every log record and Python warning emitted while loading, and
  ``version_messages``: those that mention a version (e.g. V21_MESSAGE for a v2.0 dataset);
- ``first_frame_keys`` etc.: ``dataset[0]`` and ``dataset[-1]`` are read (decodes video) unless
  ``--no-frames``.

DATASET_DIR is not modified (lerobot only mkdirs the root; its datasets cache goes to HF_HOME).
"""

from __future__ import annotations

import argparse
import logging
import re
import time
import warnings
from pathlib import Path

from _common import LogCollector, jsonable, run, write_report  # noqa: E402 - next to this script

# Messages about the *dataset* format version (V21_MESSAGE says "... is in v2.0 format ... backward-compatible").
# Deliberately not plain "version": torchvision's deprecation warning says "from version 0.22".
VERSION_RE = re.compile(r"codebase.?version|\bv\d\.\d\b|backward.compatib|forward.compatib", re.IGNORECASE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("out_json", type=Path)
    parser.add_argument("--repo-id", default="dask_stats/parity_converted")
    parser.add_argument("--no-frames", action="store_true")
    args = parser.parse_args()

    collector = LogCollector()
    root_logger = logging.getLogger()
    root_logger.addHandler(collector)
    root_logger.setLevel(logging.DEBUG)

    out: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import lerobot
        from lerobot.datasets.lerobot_dataset import CODEBASE_VERSION, LeRobotDataset

        out["lerobot"] = getattr(lerobot, "__version__", None)
        out["lerobot_codebase_version"] = CODEBASE_VERSION
        n_import = len(caught)
        first_record = len(collector.records)

        t0 = time.monotonic()
        ds = LeRobotDataset(args.repo_id, root=args.dataset_dir.resolve())
        out["load_s"] = round(time.monotonic() - t0, 3)
        out["codebase_version"] = ds.meta.info["codebase_version"]
        out["meta_version"] = str(ds.meta._version)
        out["num_episodes"] = ds.num_episodes
        out["num_frames"] = ds.num_frames
        out["features"] = list(ds.meta.features)
        out["episodes_stats"] = [
            {"episode_index": int(e), "stats": jsonable(s)} for e, s in sorted(ds.meta.episodes_stats.items())
        ]
        out["stats"] = jsonable(ds.meta.stats)

        if not args.no_frames and len(ds) > 0:
            first, last = ds[0], ds[len(ds) - 1]
            out["first_frame_keys"] = sorted(first)
            out["frame_shapes"] = {k: list(v.shape) for k, v in first.items() if hasattr(v, "shape")}
            out["last_frame_index"] = int(last["index"].reshape(-1)[0])
        load_warnings = caught[n_import:]
    load_records = collector.records[first_record:]

    out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in load_warnings]
    out["log"] = load_records
    texts = out["warnings"] + [r["message"] for r in load_records if r["level"] in ("WARNING", "ERROR", "CRITICAL")]
    out["version_messages"] = [t for t in texts if VERSION_RE.search(t)]
    write_report(out, args.out_json, ("codebase_version", "num_episodes", "num_frames", "version_messages"))
    return 0


if __name__ == "__main__":
    run(main)
