"""Convert a local v2.1 dataset to v3.0 with lerobot 0.4.x, offline, then open the result with it.

Runs INSIDE the lerobot-0.4.x reference environment (tests/parity/refenv.py).

    python lerobot04_v30.py DATASET_DIR WORK_DIR OUT_JSON [--repo-id local/dataset] [--no-frames]
                            [--data-file-size-in-mb MB] [--video-file-size-in-mb MB]

DATASET_DIR (a v2.1 dataset) is copied to WORK_DIR/<repo_id>; then
``lerobot.datasets.v30.convert_dataset_v21_to_v30.convert_dataset(repo_id, root=WORK_DIR,
push_to_hub=False)`` runs.  In 0.4.x ``root`` is the *parent* directory: the converter works on
``Path(root) / repo_id`` in place, leaves the v2.1 tree as ``<repo_id>_old`` and never touches the Hub
when ``root`` is given and ``push_to_hub`` is false.  The v3.0 result is opened with lerobot 0.4's
``LeRobotDataset(repo_id, root=WORK_DIR/<repo_id>)`` and described in OUT_JSON: codebase_version, the
counts, ``meta.stats`` (aggregated by lerobot from our episodes_stats), the per-episode stats that the
converter stored in ``meta/episodes/*.parquet``, and the keys of the first and last frames (which
decodes video through lerobot's default backend) unless ``--no-frames``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
import warnings
from pathlib import Path

from _common import LogCollector, jsonable, run, write_report  # noqa: E402 - next to this script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("out_json", type=Path)
    parser.add_argument("--repo-id", default="local/dataset")
    parser.add_argument("--no-frames", action="store_true", help="do not read the first/last frame")
    parser.add_argument("--data-file-size-in-mb", type=float, default=None, help="the converter's data file limit")
    parser.add_argument("--video-file-size-in-mb", type=float, default=None, help="the converter's video file limit")
    args = parser.parse_args()

    collector = LogCollector()
    logging.getLogger().addHandler(collector)
    logging.getLogger().setLevel(logging.INFO)
    warnings.simplefilter("always")

    import lerobot
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.datasets.v30 import convert_dataset_v21_to_v30 as v30

    src = args.dataset_dir.resolve()
    work = args.work_dir.resolve()
    target = work / args.repo_id
    for d in (target, target.parent / f"{target.name}_old", target.parent / f"{target.name}_v30"):
        if d.exists():
            shutil.rmtree(d)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, target)

    out: dict = {"lerobot": getattr(lerobot, "__version__", None), "source": str(src), "v30_root": str(target)}
    t0 = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        v30.convert_dataset(repo_id=args.repo_id, root=str(work), push_to_hub=False,
                            data_file_size_in_mb=args.data_file_size_in_mb,
                            video_file_size_in_mb=args.video_file_size_in_mb)
        out["convert_s"] = round(time.monotonic() - t0, 3)

        t1 = time.monotonic()
        ds = LeRobotDataset(args.repo_id, root=target)
        out["load_s"] = round(time.monotonic() - t1, 3)
        info = ds.meta.info
        out["codebase_version"] = info["codebase_version"]
        out["total_episodes"] = info["total_episodes"]
        out["total_frames"] = info["total_frames"]
        out["num_episodes"] = ds.num_episodes
        out["num_frames"] = ds.num_frames
        out["features"] = list(ds.meta.features)
        out["stats"] = jsonable(ds.meta.stats)

        # Per-episode stats as stored by the converter: "stats/<feature>/<stat>" columns of
        # meta/episodes/chunk-*/file-*.parquet (0.4.4's ds.meta.episodes drops those columns on load,
        # so read the files themselves).
        import pyarrow.parquet as pq

        per_episode = []
        for path in sorted((target / "meta" / "episodes").glob("*/*.parquet")):
            table = pq.read_table(path).to_pylist()
            for row in table:
                rec: dict = {}
                for col, val in row.items():
                    if col.startswith("stats/"):
                        feat, stat = col[len("stats/"):].rsplit("/", 1)
                        rec.setdefault(feat, {})[stat] = jsonable(val)
                per_episode.append({"episode_index": int(row["episode_index"]), "length": row.get("length"),
                                    "stats": rec})
        per_episode.sort(key=lambda r: r["episode_index"])
        out["episodes_stats"] = [{"episode_index": r["episode_index"], "stats": r["stats"]} for r in per_episode]
        out["episode_lengths"] = [r["length"] for r in per_episode]

        if not args.no_frames and len(ds) > 0:
            first, last = ds[0], ds[len(ds) - 1]
            out["first_frame_keys"] = sorted(first)
            out["last_frame_index"] = int(np.asarray(last["index"]).reshape(-1)[0])
            out["frame_shapes"] = {k: list(v.shape) for k, v in first.items() if hasattr(v, "shape")}
    out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    out["log"] = collector.records
    write_report(out, args.out_json, ("codebase_version", "num_episodes", "num_frames", "convert_s", "load_s"))
    return 0


if __name__ == "__main__":
    run(main)
