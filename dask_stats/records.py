"""Stats records: moments turned into v2.1 stats (the reference shapes and types), and the exact text of the
metadata files."""

from __future__ import annotations

import io
import json

import jsonlines
import numpy as np

from .moments import Moments, MomentsTable

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


def episode_records(indices: list[int], tables: dict[str, MomentsTable], features: dict[str, dict],
                    qs: tuple[float, ...] = ()) -> list[dict]:
    """The lines of episodes_stats.jsonl: ``finalize`` of every episode (row of ``tables``), one feature at a
    time, as lists (float32 values keep their exact float64 repr); quantiles ``qs`` after ``count``."""
    columns = {name: _finalize_rows(table, features[name], qs) for name, table in tables.items()}
    return [{"episode_index": index,
             "stats": {name: {stat: values[i] for stat, values in column.items()} for name, column in columns.items()}}
            for i, index in enumerate(indices)]


def _finalize_rows(table: MomentsTable, feature: dict, qs: tuple[float, ...]) -> dict[str, list]:
    from .quantiles import quantile_stats

    shape = (len(table.keys), *_shape(feature))
    rows = {
        "min": table.min.reshape(shape).tolist(),
        "max": table.max.reshape(shape).tolist(),
        "mean": table.mean.reshape(shape).tolist(),
        "std": table.std.reshape(shape).tolist(),
        "count": table.samples[:, None].tolist(),
    }
    if qs:
        rows.update((key, values.tolist()) for key, values in quantile_stats(table.quantiles, qs, feature).items())
    return rows


def jsonl_text(records: list[dict]) -> str:
    """jsonlines defaults, as lerobot writes them: ", "/": " separators, ensure_ascii=False, "\\n" per line."""
    buffer = io.StringIO()
    jsonlines.Writer(buffer).write_all(records)
    return buffer.getvalue()


def info_text(info: dict) -> str:
    """info.json as lerobot writes it: indent 4, ensure_ascii=False, no trailing newline."""
    return json.dumps(info, indent=4, ensure_ascii=False)
