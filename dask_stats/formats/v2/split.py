"""Write v2.x per-episode Parquet files from a v3.0 data file: exactly each episode's rows, every column unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from ...errors import DatasetError, Problem
from ...storage import Store
from ...storage.atomic import atomic_path


class EpisodeRows(NamedTuple):
    """An episode's rows in a shared data file (half-open, file positions) and where its own file goes."""

    index: int
    start: int
    stop: int
    dest: str  # local path


@dataclass(frozen=True)
class EpisodeFile:
    """What :func:`split_data_file` wrote for one episode: rows, and its first and last timestamps."""

    index: int
    rows: int
    first_time: float
    last_time: float


def split_data_file(store: Store, path: str, episodes: Sequence[EpisodeRows], *,
                    compression: str = "snappy") -> list[EpisodeFile]:
    """Write each episode's rows of the Parquet file ``path`` (on ``store``) to its own file, with the source's
    schema and metadata (the Hugging Face ``huggingface`` key included), one row group in memory at a time."""
    where = store.display(path)
    wanted = sorted(episodes, key=lambda ep: ep.start)
    for before, ep in zip([None, *wanted], wanted):
        if ep.stop <= ep.start or (before is not None and ep.start < before.stop):
            raise DatasetError(Problem(f"rows {ep.start}..{ep.stop} of the data file are empty or overlap another "
                                       "episode's", episode=ep.index, path=where))
    with store.source(path) as source:
        try:
            reader = pq.ParquetFile(source)
        except (OSError, pa.ArrowException) as err:
            raise DatasetError(Problem(f"cannot read the Parquet file: {err}", path=where)) from err
        with reader:
            rows = reader.metadata.num_rows
            for ep in wanted:
                if ep.stop > rows:
                    raise DatasetError(Problem(f"meta/episodes puts the episode at rows {ep.start}..{ep.stop} but "
                                               f"the file has {rows} rows", episode=ep.index, path=where))
            out = _split(reader, wanted, compression)
    return out


def _split(reader: pq.ParquetFile, wanted: Sequence[EpisodeRows], compression: str) -> list[EpisodeFile]:
    """One pass over the row groups (each read once), the current episode's file open (they are contiguous)."""
    schema = reader.schema_arrow
    out: list[EpisodeFile] = []
    pending = list(wanted)
    first = 0
    with ExitStack() as stack:
        writer, times = None, []
        for group in range(reader.num_row_groups):
            count = reader.metadata.row_group(group).num_rows
            table = None
            while pending and pending[0].start < first + count:
                ep = pending[0]
                low, high = max(ep.start, first), min(ep.stop, first + count)
                if writer is None:
                    tmp = stack.enter_context(atomic_path(ep.dest))
                    writer = stack.enter_context(pq.ParquetWriter(tmp, schema, compression=compression))
                    times = []
                table = table if table is not None else reader.read_row_group(group)
                part = table.slice(low - first, high - low)
                writer.write_table(part)
                if "timestamp" in schema.names:
                    column = part.column("timestamp")
                    times += [float(column[0].as_py()), float(column[-1].as_py())]
                if ep.stop > first + count:
                    break  # continues in the next row group
                stack.close()  # the writer, then the atomic rename
                writer = None
                out.append(EpisodeFile(ep.index, ep.stop - ep.start, times[0] if times else float("nan"),
                                       times[-1] if times else float("nan")))
                pending.pop(0)
            first += count
    return out
