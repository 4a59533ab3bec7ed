"""Per-episode moments of Parquet features, from a Dask dataframe read with pyarrow.

The dataframe has one partition per batch of episodes (``dd.from_map``), only the needed columns,
pyarrow-backed dtypes, and an ``__episode__`` column.  Each partition is reduced *vectorized*: list
columns become (rows, D) arrays through their flat Arrow values, and episode segments are reduced with
``ufunc.reduceat``.  Partitions return a table of partial moments per feature (rows keyed by episode), so
an episode split across partitions merges exactly.
"""

from __future__ import annotations

import io

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import Problem, TaskError, episode_spans
from ..plan import Plan, channels_of
from ..stats.moments import Moments, MomentsTable
from ..stats.pixels import PixelHistogram
from ..storage import Store

EPISODE = "__episode__"
# Partitions: enough of them to keep every core busy on small datasets, large enough to amortise task overhead
# on huge ones (DROID: ~500 tasks; 256 short episodes take ~0.1 s, next to Dask's few ms per task), small enough
# to bound memory.
ROWS_PER_PARTITION = 50_000
FILES_PER_PARTITION = 256

PartitionMoments = dict[str, MomentsTable]  # feature -> moments of the partition's episodes


Batch = list[tuple[int, str, tuple[int, int] | None]]  # (episode, data file, its rows in the file or None: all)


def read_episodes(batch: Batch, columns: list[str], store: Store) -> pd.DataFrame:
    """Read a batch of episodes (only ``columns``) into one pyarrow-backed pandas frame.  An episode is a whole
    file (v2.x) or a row range of a file that several episodes share (v3.0, read once per batch)."""
    tables, files = [], {}
    for episode, path, rows in batch:
        if path not in files:
            try:
                # ParquetFile.read: half the cost of read_table's dataset machinery on small files; Dask owns threads
                with store.source(path) as source:
                    files[path] = pq.ParquetFile(source, pre_buffer=False).read(columns=columns, use_threads=False)
            except Exception as exc:
                held = episode_spans(e for e, p, _ in batch if p == path)
                raise TaskError(Problem(f"cannot read Parquet: {type(exc).__name__}: {str(exc).strip()}",
                                        episode=episode, path=store.display(path),
                                        fix=f"restore the file (it holds {held})")) from exc
        table = files[path]
        tables.append(table if rows is None else table.slice(rows[0], rows[1] - rows[0]))
    # one contiguous chunk per column (reductions then see plain arrays), plus the episode of every row
    table = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    ids = np.repeat(np.array([episode for episode, _, _ in batch], dtype=np.int64), [t.num_rows for t in tables])
    return table.append_column(EPISODE, pa.array(ids)).to_pandas(types_mapper=pd.ArrowDtype)


def batches(plan: Plan, rows_per_partition: int = ROWS_PER_PARTITION,
            files_per_partition: int = FILES_PER_PARTITION) -> list[list[tuple[int, str, tuple[int, int] | None]]]:
    """Consecutive episodes grouped into partitions of at most about ``rows_per_partition`` rows and
    ``files_per_partition`` files; the episodes of a shared (v3.0) data file form one partition."""
    out, current, rows = [], [], 0
    for ep in plan.episodes:
        if ep.rows is not None:
            full = current and current[-1][1] != ep.data_path
        else:
            full = current and (rows + ep.length > rows_per_partition or len(current) == files_per_partition)
        if full:
            out.append(current)
            current, rows = [], 0
        current.append((ep.index, ep.data_path, ep.rows))
        rows += ep.length
    if current:
        out.append(current)
    return out


def episode_frame(plan: Plan, parts: list[list[tuple[int, str]]], columns: list[str] | None = None) -> dd.DataFrame:
    """The Dask dataframe of all episodes (one partition per batch), restricted to ``columns`` (default: the
    features with Parquet stats)."""
    columns = plan.numeric + plan.images if columns is None else columns
    first_file = [item for item in parts[0] if item[1] == parts[0][0][1]]  # read once all the same: errors name them
    meta = read_episodes(first_file, columns, plan.store).iloc[:0]
    return dd.from_map(read_episodes, parts, columns=columns, store=plan.store, meta=meta, enforce_metadata=False,
                       label="read-episodes")


def arrow_array(series: pd.Series) -> pa.Array:
    """A pandas column as one contiguous Arrow array (zero-copy when it is pyarrow-backed)."""
    values = series.array
    if isinstance(values, pd.arrays.ArrowExtensionArray):
        return values.__arrow_array__().combine_chunks()  # the Arrow protocol gives its ChunkedArray
    return pa.array(values)


def column_values(series: pd.Series, feature: str, shape: list[int]) -> np.ndarray:
    """A numeric column as a (rows, prod(shape)) numpy array, without touching rows in Python."""
    array = arrow_array(series)
    width = int(np.prod(shape)) if shape else 1
    while pa.types.is_list(array.type) or pa.types.is_large_list(array.type) or \
            pa.types.is_fixed_size_list(array.type):
        lengths = pc.list_value_length(array)
        if array.null_count or pc.any(pc.not_equal(lengths, lengths[0])).as_py():
            raise ValueError("rows have different vector lengths (or nulls)")
        array = array.flatten()
    if array.null_count:
        raise ValueError(f"{array.null_count} null values")
    if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_boolean(array.type)):
        raise ValueError(f"non-numeric data of type {array.type}")
    values = array.to_numpy(zero_copy_only=False)
    if values.size != len(series) * width:
        raise ValueError(f"declared shape {shape} but found {values.size // max(len(series), 1)} values per row")
    return values.reshape(len(series), width)


def image_moments(series: pd.Series, starts: np.ndarray, channels: int, qs: tuple[float, ...] = ()) -> list[Moments]:
    """Per-segment moments of encoded images (PNG/JPEG bytes in a ``{bytes, path}`` struct)."""
    from PIL import Image

    encoded = arrow_array(series).field("bytes").to_pylist()
    ends = np.append(starts[1:], len(encoded))
    out = []
    for start, end in zip(starts, ends):
        histogram = PixelHistogram(channels)
        for blob in encoded[start:end]:
            with Image.open(io.BytesIO(blob)) as image:
                histogram.add(np.asarray(image.convert("RGB") if channels == 3 else image))
        out.append(histogram.moments(qs))
    return out


def partition_moments(df: pd.DataFrame, plan_features: dict[str, dict], numeric: list[str],
                      images: list[str], files: dict[int, str], qs: tuple[float, ...] = ()) -> PartitionMoments:
    """Partial moments (and the exact quantiles ``qs``) of every episode in one partition, a table per feature."""
    episodes = df[EPISODE].to_numpy()
    if len(episodes) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, episodes[1:] != episodes[:-1]])
    ids = episodes[starts]
    result: PartitionMoments = {}
    with np.errstate(all="ignore"):  # NaN/inf follow numpy; the episodes holding them are named by a warning
        for feature in numeric + images:
            try:
                result[feature] = _feature_moments(df, feature, plan_features, images, ids, starts, qs)
            except Exception as exc:
                bad = _failing_episode(df, feature, plan_features, images, ids, starts)
                raise TaskError(Problem(f"cannot compute stats: {exc}", episode=bad, feature=feature,
                                        path=files.get(bad))) from exc
    return result


def _feature_moments(df, feature, plan_features, images, ids, starts, qs=()) -> MomentsTable:
    if feature in images:
        return MomentsTable.of(ids, image_moments(df[feature], starts, channels_of(plan_features[feature]), qs))
    values = column_values(df[feature], feature, plan_features[feature]["shape"])
    return MomentsTable.segments(ids, values, starts, qs)


def _failing_episode(df, feature, plan_features, images, ids, starts) -> int:
    """The first episode of the partition whose rows alone fail (the partition's first if none does alone)."""
    ends = np.append(starts[1:], len(df))
    for episode, start, end in zip(ids, starts, ends):
        try:
            _feature_moments(df.iloc[start:end], feature, plan_features, images, ids[:1] * 0 + episode,
                             np.zeros(1, dtype=np.int64))
        except Exception:  # noqa: BLE001 - this is the one
            return int(episode)
    return int(ids[0])


def quantile_pass(df: pd.DataFrame, requests: dict, plan_features: dict[str, dict]) -> dict:
    """One refinement pass of the dataset-wide quantiles (``quantiles.partition_pass``) over one partition,
    for every feature in ``requests``."""
    from ..stats.quantiles import partition_pass

    return {feature: partition_pass(request, column_values(df[feature], feature, plan_features[feature]["shape"]))
            for feature, request in requests.items()}
