"""Write one v3.0 data file from the episodes' v2.x Parquet files, or from row ranges of v3.0 data files (re-chunking),
streaming row group by row group."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ...errors import DatasetError, Problem
from ...storage import Store
from ...storage.atomic import atomic_path


@dataclass(frozen=True)
class DataFileSummary:
    """What :func:`write_data_file` wrote: rows per source episode, total rows, bytes, and the identity of the file
    written (:meth:`Store.identity`: a resumed run reuses the file only while it is unchanged)."""

    path: str
    rows: int
    nbytes: int
    episode_rows: tuple[int, ...]
    episode_times: tuple[tuple[float, float], ...] = ()  # first and last timestamp of each source episode
    identity: str | None = None


def _store(store: Store | str) -> Store:
    return store if isinstance(store, Store) else Store(store)


def write_data_file(
    store: Store | str,
    sources: Sequence[str],
    dest: str,
    first_index: int,
    *,
    target: Store | None = None,
    compression: str = "snappy",
) -> DataFileSummary:
    """Concatenate ``sources`` (paths relative to ``store``, in episode order) into ``dest``, a path of ``target``
    (by default a local path): written where it runs, e.g. on a worker straight into an object store.

    The ``index`` column becomes the global row position (``first_index`` + running count); every other
    column is copied unchanged, with the first source's schema and its metadata (the Hugging Face
    ``huggingface`` key included). One row group in memory at a time; ``dest`` appears only when complete.
    """
    store = _store(store)
    target = target if target is not None else Store(os.path.dirname(os.path.abspath(dest)))
    if not sources:
        raise ValueError("write_data_file needs at least one source file")
    episode_rows: list[int] = []
    episode_times: list[tuple[float, float]] = []
    position = first_index
    with target.writing(dest) as tmp:
        writer: pq.ParquetWriter | None = None
        schema: pa.Schema | None = None
        try:
            for relative in sources:
                full = store.path(relative)
                with store.source(full) as source, _parquet(source, store.display(full)) as reader:
                    if schema is None:
                        schema = reader.schema_arrow
                        if "index" not in schema.names:
                            raise DatasetError(Problem("no 'index' column", path=store.display(full)))
                        writer = pq.ParquetWriter(tmp, schema, compression=compression)
                    rows, times = 0, []
                    for group in range(reader.num_row_groups):
                        table = reader.read_row_group(group)
                        table = _conform(table, schema, store.display(full))
                        table = _reindex(table, schema, position)
                        writer.write_table(table)
                        position += table.num_rows
                        rows += table.num_rows
                        if "timestamp" in schema.names and table.num_rows:
                            column = table.column("timestamp")
                            times += [float(column[0].as_py()), float(column[-1].as_py())]
                    episode_rows.append(rows)
                    episode_times.append((times[0], times[-1]) if times else (float("nan"), float("nan")))
        finally:
            if writer is not None:
                writer.close()
        nbytes = os.path.getsize(tmp)
    return DataFileSummary(dest, position - first_index, nbytes, tuple(episode_rows), tuple(episode_times),
                           target.identity(dest))


class RowRange(NamedTuple):
    """One episode's rows in a data file: half-open positions in the file at ``path`` (relative to the store)."""

    path: str
    start: int
    stop: int


def copy_rows(store: Store | str, ranges: Sequence[RowRange], dest: str, *,
              compression: str = "snappy") -> DataFileSummary:
    """Concatenate the row ranges (in order; the ranges of one file adjacent) into the local file ``dest``,
    every column unchanged (``index`` included), with the first file's schema and metadata.  One row group in memory
    at a time; ``dest`` appears only when complete."""
    store = _store(store)
    if not ranges:
        raise ValueError("copy_rows needs at least one row range")
    episode_rows: list[int] = []
    with atomic_path(dest) as tmp:
        writer: pq.ParquetWriter | None = None
        try:
            for relative, pieces in groupby(ranges, key=lambda r: r.path):
                pieces = list(pieces)
                full = store.path(relative)
                where = store.display(full)
                with store.source(full) as source, _parquet(source, where) as reader:
                    if writer is None:
                        schema = reader.schema_arrow
                        writer = pq.ParquetWriter(tmp, schema, compression=compression)
                    start, stop = pieces[0].start, pieces[-1].stop
                    if stop > reader.metadata.num_rows:
                        raise DatasetError(Problem(f"meta/episodes puts rows {start}..{stop} in the file, which has "
                                                   f"{reader.metadata.num_rows} rows", path=where))
                    for table in _row_slices(reader, start, stop):
                        writer.write_table(_conform(table, schema, where))
                    episode_rows += [piece.stop - piece.start for piece in pieces]
        finally:
            if writer is not None:
                writer.close()
    return DataFileSummary(dest, sum(episode_rows), os.path.getsize(dest), tuple(episode_rows))


def _row_slices(reader: pq.ParquetFile, start: int, stop: int) -> Iterator[pa.Table]:
    """Rows ``start..stop`` (half-open) of the file, one row group's part at a time."""
    first = 0
    for group in range(reader.num_row_groups):
        count = reader.metadata.row_group(group).num_rows
        low, high = max(start, first), min(stop, first + count)
        if low < high:
            yield reader.read_row_group(group).slice(low - first, high - low)
        first += count
        if first >= stop:
            return


@contextlib.contextmanager
def _parquet(source, where: str):
    """``source`` opened as a ParquetFile (closed on exit), or a DatasetError naming the file."""
    try:
        reader = pq.ParquetFile(source)
    except (OSError, pa.ArrowException) as err:
        raise DatasetError(Problem(f"cannot read the Parquet file: {err}", path=where)) from err
    with reader:
        yield reader


def _conform(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """``table`` with ``schema``'s columns and types (a safe cast), or a DatasetError naming the file."""
    if table.schema.equals(schema, check_metadata=False):
        return table
    if set(table.schema.names) != set(schema.names):
        missing = sorted(set(schema.names) - set(table.schema.names))
        extra = sorted(set(table.schema.names) - set(schema.names))
        raise DatasetError(Problem(
            f"columns differ from the first episode of the file (missing {missing}, extra {extra})", path=where))
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise DatasetError(Problem(f"column types differ from the first episode of the file: {err}",
                                   path=where)) from err


def _reindex(table: pa.Table, schema: pa.Schema, start: int) -> pa.Table:
    position = schema.get_field_index("index")
    field = schema.field(position)
    values = pa.array(np.arange(start, start + table.num_rows, dtype=np.int64)).cast(field.type)
    return table.set_column(position, field, values)
