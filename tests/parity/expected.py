"""The straightforward per-episode stats of decisions.md, computed the obvious way (the test oracle).

Deliberately independent of ``dask_stats`` and of lerobot: pyarrow + PyAV + Pillow + numpy, whole
episodes in memory, float64 everywhere, nothing clever.  It is what "the reference's intent, computed
correctly" means:

- parquet features: every row of the episode, float64 accumulation, float64 features left as float64;
  min/max are the data's own values (int and bool keep their type);
- videos: the reference's sample positions (``S`` from ``estimate_num_samples``, numpy ``linspace`` +
  round-half-even) taken in *the episode's own rows*; each sampled timestamp is matched with the decoded
  frame of nearest presentation time, which must lie within ``tolerance_s``;
- images and videos: uint8 RGB / 255, per-channel stats of shape (3, 1, 1), full resolution;
- ``string`` features get no stats.

``quirk_video_timestamps`` reproduces the official converter's global-row timestamps (reference.md
§2.3 step 3), to explain where the official output goes wrong.
"""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

STAT_KEYS = ("min", "max", "mean", "std", "count")


def estimate_num_samples(length: int, min_num_samples: int = 100, max_num_samples: int = 10_000,
                         power: float = 0.75) -> int:
    if length < min_num_samples:
        min_num_samples = length
    return max(min_num_samples, min(int(length**power), max_num_samples))


def sample_indices(length: int) -> list[int]:
    num = estimate_num_samples(length)
    return np.round(np.linspace(0, length - 1, num)).astype(int).tolist()


def load_meta(root: Path) -> tuple[dict, list[dict]]:
    info = json.loads((root / "meta" / "info.json").read_text())
    episodes = [json.loads(line) for line in (root / "meta" / "episodes.jsonl").read_text().splitlines() if line.strip()]
    return info, sorted(episodes, key=lambda e: e["episode_index"])


def _path(info: dict, template_key: str, episode_index: int, **kw) -> str:
    chunk = episode_index // info["chunks_size"]
    return info[template_key].format(episode_chunk=chunk, episode_index=episode_index, **kw)


def decode_with_times(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All frames of a video as uint8 RGB (N, H, W, 3) and their presentation times in seconds."""
    import av

    frames, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = Fraction(stream.time_base)
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * tb))
    return np.stack(frames), np.asarray(times)


def pick_frames(frames: np.ndarray, times: np.ndarray, query: list[float], tolerance_s: float) -> np.ndarray:
    """Nearest-presentation-time frame for each query timestamp (first on ties), within tolerance."""
    q = np.asarray(query, dtype=np.float64)
    dist = np.abs(q[:, None] - times[None, :])
    nearest = dist.argmin(axis=1)
    worst = dist[np.arange(len(q)), nearest].max()
    if worst >= tolerance_s:
        raise ValueError(f"a query timestamp is {worst:.3g}s from the nearest frame (tolerance {tolerance_s})")
    return frames[nearest]


def pixel_stats(frames_u8: np.ndarray) -> dict:
    """(N, H, W, 3) uint8 -> per-channel float64 stats of x/255, shaped (3, 1, 1) like the reference."""
    x = frames_u8.reshape(-1, frames_u8.shape[-1]).astype(np.float64) / 255.0
    out = {
        "min": x.min(axis=0), "max": x.max(axis=0), "mean": x.mean(axis=0), "std": x.std(axis=0),
    }
    stats = {k: v.reshape(-1, 1, 1).tolist() for k, v in out.items()}
    stats["count"] = [int(frames_u8.shape[0])]
    return stats


def column_stats(values: np.ndarray) -> dict:
    """Stats over axis 0; scalars give shape (1,), vectors (D,).  float64 accumulation."""
    x = np.asarray(values)
    keep = x.ndim == 1
    acc = x.astype(np.float64) if x.dtype != np.float64 else x
    stats = {
        "min": np.min(x, axis=0, keepdims=keep),
        "max": np.max(x, axis=0, keepdims=keep),
        "mean": np.mean(acc, axis=0, keepdims=keep),
        "std": np.std(acc, axis=0, keepdims=keep),
    }
    out = {k: v.tolist() for k, v in stats.items()}
    out["count"] = [int(x.shape[0])]
    return out


def _column_array(table, name: str) -> np.ndarray:
    col = table.column(name).combine_chunks()
    if hasattr(col.type, "value_type") and not hasattr(col.type, "fields"):  # (fixed size) list
        return np.stack([np.asarray(v) for v in col.to_pylist()])
    return col.to_numpy(zero_copy_only=False)


def episode_video_timestamps(timestamps: np.ndarray, length: int) -> list[float]:
    """decisions.md §1: the episode's own rows at the reference's sample positions."""
    return [float(timestamps[i]) for i in sample_indices(length)]


def quirk_video_timestamps(global_timestamps: np.ndarray, length: int) -> list[float]:
    """What lerobot 0.3.3 does: *global* rows 0..L-1 at those positions (episode 0's timestamps)."""
    return [float(global_timestamps[i]) for i in sample_indices(length)]


def straightforward_stats(root: str | Path, tolerance_s: float = 1e-4, *, quirk: bool = False) -> list[dict]:
    """Per-episode stats records ``{"episode_index": i, "stats": {...}}``, in episode order.

    With ``quirk=True`` the video sample timestamps are the official converter's global rows, which
    models lerobot 0.3.3's output (used to explain a difference, never as an expectation for ours).
    """
    from PIL import Image

    root = Path(root)
    info, episodes = load_meta(root)
    features = info["features"]
    tables = {
        ep["episode_index"]: pq.read_table(root / _path(info, "data_path", ep["episode_index"]))
        for ep in episodes
    }
    global_ts = np.concatenate([_column_array(tables[ep["episode_index"]], "timestamp") for ep in episodes])
    records = []
    for ep in episodes:
        e, length = ep["episode_index"], ep["length"]
        table = tables[e]
        if table.num_rows != length:
            raise ValueError(f"episode {e}: episodes.jsonl says {length} rows, parquet has {table.num_rows}")
        ts = _column_array(table, "timestamp")
        stats = {}
        for key, ft in features.items():
            dtype = ft["dtype"]
            if dtype == "string":
                continue
            if dtype == "video":
                frames, times = decode_with_times(root / _path(info, "video_path", e, video_key=key))
                query = quirk_video_timestamps(global_ts, length) if quirk else episode_video_timestamps(ts, length)
                stats[key] = pixel_stats(pick_frames(frames, times, query, tolerance_s))
            elif dtype == "image":
                cells = table.column(key).to_pylist()
                imgs = np.stack([np.asarray(Image.open(io.BytesIO(c["bytes"])).convert("RGB")) for c in cells])
                stats[key] = pixel_stats(imgs)
            else:
                stats[key] = column_stats(_column_array(table, key))
        records.append({"episode_index": e, "stats": stats})
    return records
