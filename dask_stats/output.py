"""Turn moments into v2.1 stats (reference shapes and types) and the exact text of the metadata files."""

from __future__ import annotations

import io
import json

import jsonlines
import numpy as np

from .moments import Moments

PIXEL_DTYPES = ("video", "image")


STATS = ("min", "max", "mean", "std", "count")


def _shape(feature: dict) -> tuple[int, ...]:
    """The reference's shape of a stat: (C,1,1) for pixels, (1,) for scalars, (D,) for vectors."""
    return (-1, 1, 1) if feature["dtype"] in PIXEL_DTYPES else tuple(feature.get("shape") or [1])


def finalize(moments: Moments, feature: dict) -> dict[str, np.ndarray]:
    """min/max/mean/std/count in the reference's shapes and types."""
    shape = _shape(feature)
    return {
        "min": moments.min.reshape(shape),
        "max": moments.max.reshape(shape),
        "mean": moments.mean.reshape(shape),
        "std": moments.std.reshape(shape),
        "count": np.array([moments.samples], dtype=np.int64),
    }


def episode_records(indices: list[int], per_episode: list[dict[str, Moments]], features: dict[str, dict]) -> list[dict]:
    """The lines of episodes_stats.jsonl: ``finalize`` for every episode, one feature at a time (vectorized),
    arrays as lists (float32 values keep their exact float64 repr)."""
    columns = {name: _finalize_episodes([ep[name] for ep in per_episode], feature) for name, feature in features.items()}
    return [{"episode_index": index,
             "stats": {name: {stat: column[stat][i] for stat in STATS} for name, column in columns.items()}}
            for i, index in enumerate(indices)]


def _finalize_episodes(parts: list[Moments], feature: dict) -> dict[str, list]:
    """``finalize`` of each of ``parts``, as lists; all at once when the parts share their types."""
    if len({(p.min.dtype, p.max.dtype, p.mean.shape) for p in parts}) > 1:  # e.g. float32 and float64 files
        rows = [finalize(p, feature) for p in parts]
        return {stat: [row[stat].tolist() for row in rows] for stat in STATS}
    shape = (len(parts), *_shape(feature))
    m2, count = np.stack([p.m2 for p in parts]), np.stack([p.count for p in parts])
    return {
        "min": np.stack([p.min for p in parts]).reshape(shape).tolist(),
        "max": np.stack([p.max for p in parts]).reshape(shape).tolist(),
        "mean": np.stack([p.mean for p in parts]).reshape(shape).tolist(),
        "std": np.sqrt(np.maximum(m2, 0.0) / count).reshape(shape).tolist(),  # Moments.std, all episodes at once
        "count": [[p.samples] for p in parts],
    }


def jsonl_text(records: list[dict]) -> str:
    """jsonlines defaults, as lerobot writes them: ", "/": " separators, ensure_ascii=False, "\\n" per line."""
    buffer = io.StringIO()
    jsonlines.Writer(buffer).write_all(records)
    return buffer.getvalue()


def info_text(info: dict) -> str:
    """info.json as lerobot writes it: indent 4, ensure_ascii=False, no trailing newline."""
    return json.dumps(info, indent=4, ensure_ascii=False)
