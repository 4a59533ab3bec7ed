"""Open a local v3.0 dataset with the installed lerobot (0.4.x or 0.6.x), offline, and report what it sees.

Runs INSIDE a reference environment (tests/parity/refenv.py: ``lerobot-0.4.x`` or ``lerobot-0.6.1``).

    python lerobot_v30_load.py DATASET_DIR OUT_JSON [--repo-id local/dataset] [--npz OUT_NPZ]
                               [--backend BACKEND] [--no-frames] [--rows]

``LeRobotDataset(repo_id, root=DATASET_DIR)`` with lerobot's default video backend (torchcodec when it
imports, else pyav; ``--backend`` forces one).  OUT_JSON holds:

- versions (lerobot, python, torch, torchcodec, av, datasets) and the backend actually used;
- ``len(dataset)``, ``num_episodes``, ``num_frames``, the info.json fields as lerobot parsed them;
- ``stats``: ``dataset.meta.stats`` for every feature (q01..q99 included when the dataset has them);
- ``episodes``: the rows of ``dataset.meta.episodes`` as lerobot keeps them (it drops the stats columns);
- ``episodes_stats``: the ``stats/<feature>/<stat>`` columns of ``meta/episodes``, read through lerobot's
  own ``load_nested_dataset`` (the reader lerobot uses for that directory);
- ``frames``: for the first and last frame of every episode, ``dataset[i]``'s row values (index,
  episode_index, frame_index, timestamp, task_index, task) and, per camera, the name of an array in
  OUT_NPZ: the decoded frame as uint8 HWC (lerobot returns float32 CHW in [0, 1]; ``round(x * 255)``),
  with the largest distance of ``x * 255`` from an integer (a check that the conversion is lossless).
  A frame that fails to decode is reported with its error instead of stopping the run;
- ``rows`` (with ``--rows``): ``dataset[i]``'s index, episode_index, frame_index and timestamp for EVERY
  row i (decodes every frame when the dataset has cameras: meant for small camera-less datasets); a row that
  fails is reported with its error;
- ``video_files``: per video file, what PyAV says about it (frames, first/last pts in seconds);
- warnings and log records.

The dataset directory is only read.  Exit status 0 when the report is written, 1 on an exception.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
import warnings
from pathlib import Path

from _common import LogCollector, jsonable, run, write_report  # next to this script

ROW_KEYS = ("index", "episode_index", "frame_index", "timestamp", "task_index")


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - not installed
        return None


def _info_get(info, key, default=None):
    """info.json fields: a dict in 0.4.x, a DatasetInfo dataclass in 0.6.x (dict access is deprecated)."""
    if isinstance(info, dict):
        return info.get(key, default)
    return getattr(info, key, default)


def _backend(ds) -> tuple[str | None, str | None]:
    """The decoder in use and the attribute that holds it (0.6.x: ``_video_backend``; 0.4.x: ``video_backend``)."""
    for attr in ("_video_backend", "video_backend"):
        if hasattr(ds, attr):
            return getattr(ds, attr), attr
    return None, None


def _to_uint8_hwc(tensor):
    """lerobot's float32 CHW [0, 1] frame -> uint8 HWC, and the largest |x*255 - round(x*255)|."""
    import numpy as np

    x = tensor.detach().cpu().numpy().astype(np.float64) * 255.0
    r = np.round(x)
    err = float(np.abs(x - r).max()) if x.size else 0.0
    if x.ndim == 3 and x.shape[0] in (1, 3, 4):
        r = r.transpose(1, 2, 0)
    return np.clip(r, 0, 255).astype(np.uint8), err


def _scalar(v):
    if hasattr(v, "detach"):
        v = v.detach().cpu()
        return v.item() if v.numel() == 1 else v.tolist()
    return jsonable(v)


def _episodes_stats(root: Path) -> list[dict]:
    """``stats/<feature>/<stat>`` per episode, read as lerobot reads meta/episodes (HF datasets)."""
    try:
        from lerobot.datasets.io_utils import load_nested_dataset  # 0.6.x
    except ImportError:
        from lerobot.datasets.utils import load_nested_dataset  # 0.4.x
    table = load_nested_dataset(root / "meta" / "episodes")
    out = []
    for row in table:
        rec: dict = {}
        for col, val in row.items():
            if col.startswith("stats/"):
                feat, stat = col[len("stats/"):].rsplit("/", 1)
                rec.setdefault(feat, {})[stat] = jsonable(val)
        out.append({"episode_index": int(row["episode_index"]), "stats": rec})
    out.sort(key=lambda r: r["episode_index"])
    return out


def _video_files(root: Path) -> dict:
    try:
        import av
    except ImportError:
        return {}
    out = {}
    for path in sorted((root / "videos").glob("*/*/*.mp4")):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            pts = [float(p.pts * stream.time_base) for p in container.demux(stream) if p.pts is not None]
        pts.sort()
        out[str(path.relative_to(root))] = {
            "packets": len(pts), "first_pts_s": pts[0] if pts else None, "last_pts_s": pts[-1] if pts else None,
            "codec": stream.codec_context.name, "average_rate": float(stream.average_rate or 0),
            "time_base": str(stream.time_base),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("out_json", type=Path)
    parser.add_argument("--repo-id", default="local/dataset")
    parser.add_argument("--npz", type=Path, help="where the decoded frames go (default: OUT_JSON with .npz)")
    parser.add_argument("--backend", default=None, help="force a video backend (default: lerobot's choice)")
    parser.add_argument("--no-frames", action="store_true", help="do not read any frame")
    parser.add_argument("--rows", action="store_true", help="report the row values of every dataset[i]")
    args = parser.parse_args()

    collector = LogCollector()
    logging.getLogger().addHandler(collector)
    logging.getLogger().setLevel(logging.INFO)

    import lerobot
    import numpy as np
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = args.dataset_dir.resolve()
    npz_path = args.npz or args.out_json.with_suffix(".npz")
    out: dict = {
        "lerobot": getattr(lerobot, "__version__", None) or _version("lerobot"),
        "python": platform.python_version(),
        "versions": {m: _version(m) for m in ("torch", "torchvision", "torchcodec", "av", "datasets", "pyarrow",
                                              "numpy", "pandas")},
        "dataset_dir": str(root),
        "repo_id": args.repo_id,
        "npz": str(npz_path),
    }
    arrays: dict[str, np.ndarray] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.monotonic()
        kwargs = {"video_backend": args.backend} if args.backend else {}
        ds = LeRobotDataset(args.repo_id, root=root, **kwargs)
        out["load_s"] = round(time.monotonic() - t0, 3)
        out["video_backend"], out["video_backend_attr"] = _backend(ds)

        meta = ds.meta
        info = meta.info
        out["info"] = {k: jsonable(_info_get(info, k)) for k in (
            "codebase_version", "fps", "total_episodes", "total_frames", "total_tasks", "chunks_size",
            "data_files_size_in_mb", "video_files_size_in_mb", "data_path", "video_path", "robot_type", "splits")}
        out["codebase_version"] = out["info"]["codebase_version"]
        out["len"] = len(ds)
        out["num_episodes"] = int(ds.num_episodes)
        out["num_frames"] = int(ds.num_frames)
        out["features"] = jsonable(dict(meta.features))
        out["video_keys"] = list(meta.video_keys)
        out["camera_keys"] = list(meta.camera_keys)
        out["tasks"] = [str(t) for t in meta.tasks.index]
        out["stats"] = jsonable(meta.stats) if meta.stats is not None else None
        episodes = meta.episodes
        out["episodes"] = [jsonable(dict(episodes[i])) for i in range(len(episodes))] if episodes is not None else []
        out["episodes_stats"] = _episodes_stats(root)

        frames: list[dict] = []
        if not args.no_frames:
            t1 = time.monotonic()
            wanted: list[tuple[int, str, int]] = []
            for ep in out["episodes"]:
                lo, hi = int(ep["dataset_from_index"]), int(ep["dataset_to_index"])
                wanted += [(int(ep["episode_index"]), "first", lo), (int(ep["episode_index"]), "last", hi - 1)]
            for ep_index, which, i in wanted:
                rec: dict = {"episode": ep_index, "which": which, "position": i}
                try:
                    item = ds[i]
                except Exception as exc:  # noqa: BLE001 - report it, go on with the others
                    rec["error"] = f"{type(exc).__name__}: {exc}"
                    frames.append(rec)
                    continue
                rec["row"] = {k: _scalar(item[k]) for k in ROW_KEYS if k in item}
                rec["task"] = item.get("task")
                rec["cameras"] = {}
                for key in meta.camera_keys:
                    value = item.get(key)
                    if value is None or not isinstance(value, torch.Tensor):
                        rec["cameras"][key] = {"error": f"no tensor for {key!r}: {type(value).__name__}"}
                        continue
                    pixels, err = _to_uint8_hwc(value)
                    name = f"{key}|{i}"
                    arrays[name] = pixels
                    rec["cameras"][key] = {"npz": name, "dtype": str(value.dtype), "shape": list(value.shape),
                                           "max_rounding": err}
                frames.append(rec)
            out["frames_s"] = round(time.monotonic() - t1, 3)
        out["frames"] = frames
        if args.rows:
            rows = []
            for i in range(len(ds)):
                try:
                    item = ds[i]
                    rows.append({"position": i, **{k: _scalar(item[k]) for k in ROW_KEYS if k in item}})
                except Exception as exc:  # noqa: BLE001 - report it, go on with the others
                    rows.append({"position": i, "error": f"{type(exc).__name__}: {exc}"})
            out["rows"] = rows
        out["video_files"] = _video_files(root)
    out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    out["log"] = collector.records
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz_path, **arrays)
    write_report(out, args.out_json, ("lerobot", "codebase_version", "len", "num_episodes", "video_backend",
                                      "load_s"))
    return 0


if __name__ == "__main__":
    run(main)
