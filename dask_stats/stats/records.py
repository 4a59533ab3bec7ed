"""Stats records: moments turned into v2.1 stats (the reference shapes and types), and the exact text of the
metadata files."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence

import jsonlines
import numpy as np

from .moments import Moments, MomentsTable
from .quantiles import quantile_key

PIXEL_DTYPES = ("video", "image")


STATS = ("min", "max", "mean", "std", "count")


def stat_shape(feature: dict) -> tuple[int, ...]:
    """The reference's shape of a stat: (C,1,1) for pixels, (1,) for scalars, (D,) for vectors."""
    return (-1, 1, 1) if feature["dtype"] in PIXEL_DTYPES else tuple(feature.get("shape") or [1])


def quantile_stats(values: np.ndarray, qs: Sequence[float], feature: dict) -> dict[str, np.ndarray]:
    """``{"q01": ..., ...}`` in the reference's shapes ((1,), (D,) or (C,1,1)) from (..., len(qs), D) values
    (leading axes, e.g. episodes, are kept)."""
    values = np.asarray(values)
    lead = values.shape[:-2]
    return {quantile_key(q): values[..., i, :].reshape(*lead, *stat_shape(feature)) for i, q in enumerate(qs)}


def finalize(moments: Moments, feature: dict) -> dict[str, np.ndarray]:
    """min/max/mean/std/count in the reference's shapes and types."""
    shape = stat_shape(feature)
    return {
        "min": moments.min.reshape(shape),
        "max": moments.max.reshape(shape),
        "mean": moments.mean.reshape(shape),
        "std": moments.std.reshape(shape),
        "count": np.array([moments.samples], dtype=np.int64),
    }


CHUNK = 1000  # episodes whose records exist as Python objects at a time


class EpisodeRecords:
    """The lines of episodes_stats.jsonl, ``{"episode_index": i, "stats": {feature: {stat: list}}}``: ``finalize``
    of every episode (row of ``tables``) as lists (float32 values keep their exact float64 repr), quantiles ``qs``
    after ``count``.  Made ``CHUNK`` episodes at a time whenever iterated, so that 100k episodes are never all held
    as Python objects."""

    def __init__(self, indices: list[int], tables: dict[str, MomentsTable], features: dict[str, dict],
                 qs: tuple[float, ...] = ()):
        self.indices, self.tables, self.features, self.qs = list(indices), tables, features, qs

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[dict]:
        for start in range(0, len(self.indices), CHUNK):
            rows = np.arange(start, min(start + CHUNK, len(self.indices)))
            columns = {name: _finalize_rows(table.take(rows), self.features[name], self.qs)
                       for name, table in self.tables.items()}
            for i, index in enumerate(self.indices[start:start + CHUNK]):
                yield {"episode_index": index,
                       "stats": {name: {stat: values[i] for stat, values in column.items()}
                                 for name, column in columns.items()}}


def episode_records(indices: list[int], tables: dict[str, MomentsTable], features: dict[str, dict],
                    qs: tuple[float, ...] = ()) -> EpisodeRecords:
    """The episodes' stats records (see :class:`EpisodeRecords`)."""
    return EpisodeRecords(indices, tables, features, qs)


def _finalize_rows(table: MomentsTable, feature: dict, qs: tuple[float, ...]) -> dict[str, list]:
    shape = (len(table.keys), *stat_shape(feature))
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


def jsonl_text(records: Iterable[dict]) -> Iterator[str]:
    """The JSON Lines text of ``records``, a chunk at a time, with jsonlines' defaults as lerobot writes them:
    ", "/": " separators, ensure_ascii=False, "\\n" per line."""
    buffer = io.StringIO()
    writer = jsonlines.Writer(buffer)
    for number, record in enumerate(records, 1):
        writer.write(record)
        if number % CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def info_text(info: dict) -> str:
    """info.json as lerobot writes it: indent 4, ensure_ascii=False, no trailing newline."""
    return json.dumps(info, indent=4, ensure_ascii=False)
