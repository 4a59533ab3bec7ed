"""Writers for v3.0 metadata: meta/episodes/*.parquet, meta/tasks.parquet, meta/info.json, meta/stats.json."""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ...storage import Store
from .grouping import group_by_size
from .layout import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_FILES_SIZE_IN_MB,
    DATA_PATH,
    EPISODES_FILES_SIZE_IN_MB,
    VIDEO_FILES_SIZE_IN_MB,
    VIDEO_PATH,
    FileIndex,
    episodes_path,
)

EPISODES_FILE_COLUMNS = ("meta/episodes/chunk_index", "meta/episodes/file_index")  # where each row is written
_INT_COLUMNS = {"episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
                "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index"}


def flatten_stats(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{feature: {stat: value}}`` -> ``{"stats/<feature>/<stat>": value}`` (values as nested lists): ``count`` as
    integers, every other stat as float64, as lerobot 0.6.1 stores them (it casts integer features to float64
    before taking their stats, so an int64 min/max beyond 2**53 is its nearest double)."""
    return {f"stats/{feature}/{name}": np.asarray(value, np.int64 if name == "count" else np.float64).tolist()
            for feature, values in stats.items() for name, value in values.items()}


def stats_by_episode(records: Sequence[Mapping[str, Any]]) -> dict[int, dict]:
    """v2.1-style records ``{"episode_index": i, "stats": {...}}`` -> ``{i: stats}``."""
    return {int(r["episode_index"]): r["stats"] for r in records}


def episode_row(
    episode_index: int,
    tasks: Sequence[str],
    length: int,
    data_index: FileIndex,
    dataset_from_index: int,
    videos: Mapping[str, tuple[FileIndex, float, float]] | None = None,
    stats: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """One episode's row (columns in lerobot's converter order; meta/episodes indices are set on writing).

    ``videos``: per camera ``(file index, from_timestamp, to_timestamp)``.
    """
    row: dict[str, Any] = {
        "episode_index": int(episode_index),
        "data/chunk_index": int(data_index[0]),
        "data/file_index": int(data_index[1]),
        "dataset_from_index": int(dataset_from_index),
        "dataset_to_index": int(dataset_from_index) + int(length),
    }
    for key in sorted(videos or {}):
        index, start, end = videos[key]
        row[f"videos/{key}/chunk_index"] = int(index[0])
        row[f"videos/{key}/file_index"] = int(index[1])
        row[f"videos/{key}/from_timestamp"] = float(start)
        row[f"videos/{key}/to_timestamp"] = float(end)
    row["tasks"] = [str(t) for t in tasks]
    row["length"] = int(length)
    row.update(flatten_stats(stats or {}))
    return row


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, (list, tuple)):
        depth += 1
        value = value[0] if value else None
    return depth


def _column_type(name: str, sample: Any) -> pa.DataType:
    if name in _INT_COLUMNS or name.endswith(("/chunk_index", "/file_index")):
        return pa.int64()
    if name == "tasks":
        return pa.list_(pa.string())
    if name.startswith("videos/"):
        return pa.float64()
    if name.startswith("stats/"):
        typ = pa.int64() if name.endswith("/count") else pa.float64()
        for _ in range(max(_depth(sample), 1)):
            typ = pa.list_(typ)
        return typ
    raise ValueError(f"unknown episodes column {name!r}")


def episodes_schema(row: Mapping[str, Any]) -> pa.Schema:
    """The Arrow schema for rows shaped like ``row`` (int64 indices, float64 timestamps and stats, int64 count)."""
    return pa.schema([pa.field(name, _column_type(name, value)) for name, value in row.items()])


def episodes_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema | None = None) -> pa.Table:
    if not rows:
        raise ValueError("no episode rows")
    schema = schema or episodes_schema(rows[0])
    names = schema.names
    for row in rows:
        if list(row) != names:
            raise ValueError(f"episode {row.get('episode_index')} has other columns than episode "
                             f"{rows[0].get('episode_index')}: {sorted(set(row) ^ set(names))}")
    return pa.table({name: pa.array([row[name] for row in rows], schema.field(name).type) for name in names},
                    schema=schema)


def _local(dest: str, store: Store | None) -> Store:
    """The store that ``dest`` is a path of (a local file when none is named)."""
    return store if store is not None else Store(os.path.dirname(os.path.abspath(dest)))


def write_episodes(
    root: Store | str,
    rows: Sequence[Mapping[str, Any]],
    *,
    limit_mb: float = EPISODES_FILES_SIZE_IN_MB,
    chunks_size: int = CHUNKS_SIZE,
    schema: pa.Schema | None = None,
) -> list[dict[str, Any]]:
    """Split ``rows`` into meta/episodes files (by in-memory size), fill in their ``meta/episodes/*`` columns,
    write them under ``root`` (a local directory or a Store) and return the completed rows.  ``schema``: the rows'
    own (without the ``meta/episodes/*`` columns; e.g. a published meta/episodes, re-chunked), else derived from the
    first row."""
    store = root if isinstance(root, Store) else Store(root)
    if not rows:
        raise ValueError("no episode rows")
    per_row = math.ceil(episodes_table(rows, schema).nbytes / len(rows))
    if schema is None:
        schema = episodes_schema({**rows[0], **dict.fromkeys(EPISODES_FILE_COLUMNS, 0)})
    else:
        schema = pa.schema([*schema, *(pa.field(name, pa.int64()) for name in EPISODES_FILE_COLUMNS)],
                           metadata=schema.metadata)
    completed: list[dict[str, Any]] = []
    for group in group_by_size([per_row] * len(rows), limit_mb, chunks_size=chunks_size):
        part = []
        for position in group.episodes:
            row = dict(rows[position])
            row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = group.index
            part.append(row)
        table = episodes_table(part, schema)
        with store.writing(store.path(episodes_path(group.index))) as tmp:
            pq.write_table(table, tmp, compression="snappy")
        completed.extend(part)
    return completed


def write_tasks(dest: str, tasks: Mapping[int, str] | Sequence[str], store: Store | None = None) -> None:
    """meta/tasks.parquet (``dest``, a path of ``store``, by default a local path): a pandas frame indexed by the
    task string ("task") with a ``task_index`` column."""
    items = sorted(tasks.items()) if isinstance(tasks, Mapping) else list(enumerate(tasks))
    frame = pd.DataFrame({"task_index": np.array([i for i, _ in items], dtype=np.int64)},
                         index=pd.Index([t for _, t in items], name="task"))
    with _local(dest, store).writing(dest) as tmp:
        frame.to_parquet(tmp, engine="pyarrow")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def info_v30(
    info: Mapping[str, Any],
    *,
    chunks_size: int = CHUNKS_SIZE,
    data_files_size_in_mb: float = DATA_FILES_SIZE_IN_MB,
    video_files_size_in_mb: float = VIDEO_FILES_SIZE_IN_MB,
    **overrides: Any,
) -> dict[str, Any]:
    """The v3.0 ``info.json`` dict from a v2.x one (key order kept; ``overrides`` e.g. total_frames=...)."""
    source = copy.deepcopy(dict(info))
    fps = _number(source["fps"])
    has_video = any(ft.get("dtype") == "video" for ft in source.get("features", {}).values())
    out: dict[str, Any] = {}
    for key, value in source.items():
        if key in ("total_chunks", "total_videos", "data_files_size_in_mb", "video_files_size_in_mb"):
            continue
        if key == "codebase_version":
            value = CODEBASE_VERSION
        elif key == "chunks_size":
            out["chunks_size"] = chunks_size
            out["data_files_size_in_mb"] = _number(data_files_size_in_mb)
            out["video_files_size_in_mb"] = _number(video_files_size_in_mb)
            continue
        elif key == "fps":
            value = fps
        elif key == "data_path":
            value = DATA_PATH
        elif key == "video_path":
            value = VIDEO_PATH if has_video else None
        elif key == "features":
            value = {name: ft if ft.get("dtype") == "video" else {**ft, "fps": fps} for name, ft in value.items()}
        out[key] = value
    out.setdefault("codebase_version", CODEBASE_VERSION)
    if "chunks_size" not in out:
        out["chunks_size"] = chunks_size
        out["data_files_size_in_mb"] = _number(data_files_size_in_mb)
        out["video_files_size_in_mb"] = _number(video_files_size_in_mb)
    out.setdefault("data_path", DATA_PATH)
    out.setdefault("video_path", VIDEO_PATH if has_video else None)
    out.update(overrides)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """JSON with indent 4 (info.json, stats.json)."""
    return json.dumps(_jsonable(value), indent=4, ensure_ascii=False) + "\n"


def write_json(dest: str, value: Any, store: Store | None = None) -> None:
    """:func:`json_text` into ``dest`` (a path of ``store``, by default a local path), UTF-8, atomically."""
    _local(dest, store).write_text(dest, json_text(value))


def write_info(dest: str, info: Mapping[str, Any], store: Store | None = None) -> None:
    write_json(dest, info, store)


def write_stats(dest: str, stats: Mapping[str, Mapping[str, Any]], store: Store | None = None) -> None:
    """meta/stats.json: ``{feature: {stat: list}}`` (numpy arrays become JSON lists)."""
    write_json(dest, {feature: {name: np.asarray(v).tolist() for name, v in values.items()}
                      for feature, values in stats.items()}, store)
