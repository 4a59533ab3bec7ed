"""Read an existing v3.0 dataset's metadata (local path, URL or Store): info, tasks, episodes.

Malformed metadata raises :class:`DatasetError` whose problems name the file.
"""

from __future__ import annotations

import json
import math
import posixpath
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ...errors import DatasetError, Problem
from ...storage import Store
from .layout import EPISODES_DIR, INFO_PATH, STATS_PATH, TASKS_PATH, FileIndex


@dataclass(frozen=True)
class VideoRef:
    """Where an episode's frames of one camera live: frame at episode time t is at from_timestamp + t."""

    path: str  # relative to the dataset root
    index: FileIndex
    from_timestamp: float
    to_timestamp: float


@dataclass(frozen=True)
class EpisodeEntry:
    """One row of meta/episodes: where the episode's rows and frames are."""

    index: int
    length: int
    tasks: tuple[str, ...]
    data_path: str  # relative to the dataset root
    data_index: FileIndex
    dataset_from_index: int
    dataset_to_index: int
    videos: dict[str, VideoRef] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetV30:
    info: dict
    tasks: dict[int, str]  # task_index -> task
    episodes: list[EpisodeEntry]

    @property
    def video_keys(self) -> list[str]:
        return [k for k, ft in self.info["features"].items() if ft.get("dtype") == "video"]


def _store(store: Store | str) -> Store:
    return store if isinstance(store, Store) else Store(store)


def read_info(store: Store | str) -> dict:
    """meta/info.json, checked for the fields a v3.0 reader needs."""
    store = _store(store)
    path = store.path(INFO_PATH)
    where = store.display(path)
    try:
        info = json.loads(store.read_text(path))
    except FileNotFoundError as err:
        raise DatasetError(Problem("missing meta/info.json", path=where)) from err
    except json.JSONDecodeError as err:
        raise DatasetError(Problem(f"not valid JSON: {err}", path=where)) from err
    problems = []
    if not isinstance(info, dict):
        raise DatasetError(Problem("info.json is not a JSON object", path=where))
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        problems.append(Problem(f"codebase_version is {version!r}, expected v3.x", path=where))
    for key in ("fps", "features", "data_path"):
        if key not in info:
            problems.append(Problem(f"missing field {key!r}", path=where))
    features = info.get("features")
    if features is not None and not isinstance(features, dict):
        problems.append(Problem("'features' is not an object", path=where))
    elif features and any(ft.get("dtype") == "video" for ft in features.values()) and not info.get("video_path"):
        problems.append(Problem("video features but no 'video_path' template", path=where))
    if problems:
        raise DatasetError(problems)
    return info


def read_tasks(store: Store | str) -> dict[int, str]:
    """meta/tasks.parquet -> {task_index: task} (the task strings are the pandas index)."""
    import pandas as pd

    store = _store(store)
    path = store.path(TASKS_PATH)
    where = store.display(path)
    try:
        with store.source(path) as source:
            frame = pd.read_parquet(source)
    except FileNotFoundError as err:
        raise DatasetError(Problem("missing meta/tasks.parquet", path=where)) from err
    except (OSError, pa.ArrowException) as err:
        raise DatasetError(Problem(f"cannot read: {err}", path=where)) from err
    if "task_index" not in frame.columns:
        raise DatasetError(Problem("no 'task_index' column", path=where))
    if "task" in frame.columns:  # some writers keep the task as a column
        strings = frame["task"].tolist()
    else:
        strings = frame.index.tolist()
    if not all(isinstance(s, str) for s in strings):
        raise DatasetError(Problem("the task strings were lost (index is not strings): write it with pandas",
                                   path=where))
    return {int(i): s for i, s in zip(frame["task_index"], strings)}


def episodes_files(store: Store | str) -> list[str]:
    """meta/episodes/chunk-*/file-*.parquet, relative, in order."""
    store = _store(store)
    directory = store.path(EPISODES_DIR)
    found = store.fs.glob(f"{directory}/*/*.parquet") if store.exists(directory) else []
    cut = len(store.root) + 1
    return sorted(p[cut:].replace("\\", "/") for p in found)


_REQUIRED = ("episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
             "dataset_from_index", "dataset_to_index")


def read_episodes(store: Store | str, info: dict | None = None) -> list[EpisodeEntry]:
    """Every episode's locations (stats columns are not read), validated for consistency."""
    store = _store(store)
    info = info if info is not None else read_info(store)
    video_keys = [k for k, ft in info["features"].items() if ft.get("dtype") == "video"]
    files = episodes_files(store)
    if not files:
        raise DatasetError(Problem("no meta/episodes/chunk-*/file-*.parquet",
                                   path=store.display(store.path(EPISODES_DIR))))
    wanted = list(_REQUIRED) + [f"videos/{k}/{c}" for k in video_keys
                                for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    episodes: list[EpisodeEntry] = []
    problems: list[Problem] = []
    for relative in files:
        full = store.path(relative)
        where = store.display(full)
        try:
            with store.source(full) as source:
                schema = pq.read_schema(source)
                missing = [c for c in wanted if c not in schema.names]
                if missing:
                    problems.append(Problem(f"missing columns {missing}", path=where))
                    continue
                rows = pq.read_table(source, columns=wanted).to_pylist()
        except (OSError, pa.ArrowException) as err:
            problems.append(Problem(f"cannot read: {err}", path=where))
            continue
        for row in rows:
            episode, found = _episode(row, info, video_keys, len(episodes), where)
            problems.extend(found)
            if episode is None:
                continue
            if episodes and episode.dataset_from_index != episodes[-1].dataset_to_index:
                problems.append(Problem(
                    f"dataset_from_index {episode.dataset_from_index} does not follow the previous episode's "
                    f"dataset_to_index {episodes[-1].dataset_to_index}", episode=episode.index, path=where))
            episodes.append(episode)
    total = info.get("total_episodes")
    if total is not None and not problems and total != len(episodes):
        problems.append(Problem(f"info.json says {total} episodes, meta/episodes has {len(episodes)}",
                                path=store.display(store.path(INFO_PATH))))
    if problems:
        raise DatasetError(problems)
    return episodes


def _episode(row: dict, info: dict, video_keys: list[str], position: int, where: str):
    problems = []
    if any(row[c] is None for c in _REQUIRED):
        return None, [Problem(f"null values in row {position}", path=where)]
    index = int(row["episode_index"])
    if index != position:
        problems.append(Problem(f"row {position} holds episode_index {index}: episodes must be in order 0..N-1",
                                episode=index, path=where))
    length = int(row["length"])
    start, stop = int(row["dataset_from_index"]), int(row["dataset_to_index"])
    if stop - start != length or length < 0:
        problems.append(Problem(f"dataset_to_index - dataset_from_index = {stop - start} but length = {length}",
                                episode=index, path=where))
    data_index = FileIndex(int(row["data/chunk_index"]), int(row["data/file_index"]))
    videos = {}
    for key in video_keys:
        values = [row[f"videos/{key}/{c}"] for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
        if any(v is None for v in values) or any(isinstance(v, float) and not math.isfinite(v) for v in values):
            problems.append(Problem("missing or non-finite video location", episode=index, feature=key, path=where))
            continue
        vindex = FileIndex(int(values[0]), int(values[1]))
        start_s, end_s = float(values[2]), float(values[3])
        if end_s < start_s:  # from_timestamp may be negative: an episode whose timestamps start late
            problems.append(Problem(f"bad timestamps from {start_s} to {end_s}", episode=index, feature=key,
                                    path=where))
        path = info["video_path"].format(video_key=key, chunk_index=vindex.chunk, file_index=vindex.file)
        videos[key] = VideoRef(posixpath.normpath(path), vindex, start_s, end_s)
    if problems:
        return None, problems
    data_path = info["data_path"].format(chunk_index=data_index.chunk, file_index=data_index.file)
    return EpisodeEntry(index, length, tuple(row["tasks"] or ()), data_path, data_index, start, stop, videos), []


def read_episode_stats(store: Store | str) -> dict[int, dict[str, dict[str, Any]]]:
    """Per-episode stats from the ``stats/<feature>/<stat>`` columns: {episode_index: {feature: {stat: value}}}."""
    store = _store(store)
    out: dict[int, dict] = {}
    for relative in episodes_files(store):
        full = store.path(relative)
        with store.source(full) as source:
            schema = pq.read_schema(source)
            columns = ["episode_index"] + [c for c in schema.names if c.startswith("stats/")]
            rows = pq.read_table(source, columns=columns).to_pylist()
        for row in rows:
            stats: dict[str, dict] = {}
            for name, value in row.items():
                if name.startswith("stats/"):
                    feature, stat = name[len("stats/"):].rsplit("/", 1)
                    stats.setdefault(feature, {})[stat] = value
            out[int(row["episode_index"])] = stats
    return out


def read_stats(store: Store | str) -> dict:
    store = _store(store)
    path = store.path(STATS_PATH)
    try:
        return json.loads(store.read_text(path))
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise DatasetError(Problem(f"cannot read meta/stats.json: {err}", path=store.display(path))) from err


def read_dataset(store: Store | str) -> DatasetV30:
    """info, tasks and episodes of a v3.0 dataset."""
    store = _store(store)
    info = read_info(store)
    return DatasetV30(info, read_tasks(store), read_episodes(store, info))
