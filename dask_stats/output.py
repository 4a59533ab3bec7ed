"""Turn moments into v2.1 stats (reference shapes and types) and the exact text of the metadata files."""

from __future__ import annotations

import io
import json

import jsonlines
import numpy as np

from .moments import Moments

PIXEL_DTYPES = ("video", "image")


def finalize(moments: Moments, feature: dict) -> dict[str, np.ndarray]:
    """min/max/mean/std/count in the reference's shapes: (C,1,1) pixels, (1,) scalars, (D,) vectors."""
    if feature["dtype"] in PIXEL_DTYPES:
        shape = (-1, 1, 1)
    else:
        shape = tuple(feature.get("shape") or [1])
    return {
        "min": moments.min.reshape(shape),
        "max": moments.max.reshape(shape),
        "mean": moments.mean.reshape(shape),
        "std": moments.std.reshape(shape),
        "count": np.array([moments.samples], dtype=np.int64),
    }


def episode_record(episode: int, stats: dict[str, dict[str, np.ndarray]]) -> dict:
    """One line of episodes_stats.jsonl (arrays -> lists; float32 values -> their exact float64 repr)."""
    return {"episode_index": episode,
            "stats": {feature: {key: value.tolist() for key, value in s.items()} for feature, s in stats.items()}}


def jsonl_text(records: list[dict]) -> str:
    """jsonlines defaults, as lerobot writes them: ", "/": " separators, ensure_ascii=False, "\\n" per line."""
    buffer = io.StringIO()
    jsonlines.Writer(buffer).write_all(records)
    return buffer.getvalue()


def info_text(info: dict) -> str:
    """info.json as lerobot writes it: indent 4, ensure_ascii=False, no trailing newline."""
    return json.dumps(info, indent=4, ensure_ascii=False)
