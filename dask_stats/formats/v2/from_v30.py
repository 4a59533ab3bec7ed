"""v2.1 metadata from a v3.0 dataset's: info.json (v2.x templates, chunks_size, totals), episodes.jsonl, tasks.jsonl,
and the stats files written from the records of the stats run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ...stats.records import info_text, jsonl_text
from ...storage.atomic import atomic_path
from . import layout

V21 = "v2.1"
V30_ONLY = ("data_files_size_in_mb", "video_files_size_in_mb")
ORDER = ("codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "total_videos",
         "total_chunks", "chunks_size", "fps", "splits", "data_path", "video_path", "features")  # lerobot 0.3.x


def info_v21(info: Mapping[str, Any], *, total_episodes: int, total_frames: int, total_tasks: int,
             chunks_size: int = layout.DEFAULT_CHUNKS_SIZE) -> dict[str, Any]:
    """The v2.1 ``info.json`` of a v3.0 one: lerobot 0.3.x's key order, its templates and totals; the ``fps`` that
    v3.0 adds to non-video features is dropped; keys unknown to both versions are kept, after those."""
    features = {name: ft if ft.get("dtype") == "video" else {k: v for k, v in ft.items() if k != "fps"}
                for name, ft in info["features"].items()}
    videos = sum(1 for ft in features.values() if ft.get("dtype") == "video")
    fps = info["fps"]
    known = {
        "codebase_version": V21,
        "robot_type": info.get("robot_type"),
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "total_videos": total_episodes * videos,
        "total_chunks": -(-total_episodes // chunks_size),
        "chunks_size": chunks_size,
        "fps": int(fps) if float(fps).is_integer() else fps,
        "splits": info.get("splits") or {"train": f"0:{total_episodes}"},
        "data_path": layout.DATA_PATH,
        "video_path": layout.VIDEO_PATH if videos else None,
        "features": features,
    }
    extra = {k: v for k, v in info.items() if k not in known and k not in V30_ONLY}
    return {**{k: known[k] for k in ORDER}, **extra}


def episode_lines(episodes: Iterable[tuple[int, Sequence[str], int]]) -> list[dict]:
    """meta/episodes.jsonl records from ``(episode_index, tasks, length)``."""
    return [{"episode_index": int(i), "tasks": list(tasks), "length": int(length)} for i, tasks, length in episodes]


def task_lines(tasks: Mapping[int, str]) -> list[dict]:
    """meta/tasks.jsonl records, by task_index."""
    return [{"task_index": int(i), "task": task} for i, task in sorted(tasks.items())]


def data_path(index: int, chunks_size: int = layout.DEFAULT_CHUNKS_SIZE) -> str:
    return layout.DATA_PATH.format(episode_chunk=index // chunks_size, episode_index=index)


def video_path(index: int, key: str, chunks_size: int = layout.DEFAULT_CHUNKS_SIZE) -> str:
    return layout.VIDEO_PATH.format(episode_chunk=index // chunks_size, video_key=key, episode_index=index)


def write_meta(root: str, info: Mapping[str, Any], episodes: list[dict], tasks: list[dict], records: list[dict],
               dataset_stats: Mapping[str, Mapping[str, Any]]) -> None:
    """Write the v2.1 ``meta/`` under the local ``root``, each file atomically, ``info.json`` last."""
    _write(root, layout.EPISODES, jsonl_text(episodes))
    _write(root, layout.TASKS, jsonl_text(tasks))
    _write(root, layout.EPISODES_STATS, jsonl_text(records))
    stats = {f: {k: np.asarray(v).tolist() for k, v in values.items()} for f, values in dataset_stats.items()}
    _write(root, layout.STATS, [json.dumps(stats, indent=4, ensure_ascii=False)])
    _write(root, layout.INFO, [info_text(dict(info))])


def _write(root: str, relative: str, chunks: Iterable[str]) -> None:
    with atomic_path(os.path.join(root, relative)) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for chunk in chunks:
            handle.write(chunk)
