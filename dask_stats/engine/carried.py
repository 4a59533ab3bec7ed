"""Video stats carried over from a source's published per-episode stats (``--video-stats reuse``): read once,
checked (every episode present, counts, shapes, values in [0, 1]), turned into the moments a video task would
have returned.  Runs on a worker like any stats task."""

from __future__ import annotations

import json

import numpy as np

from ..errors import DatasetError, Problem
from ..stats.moments import MomentsTable
from ..stats.records import published_moments
from ..storage import Store
from .video_stats import VideoOutcome


def carried_stats(store: Store, path: str, episodes: list[tuple[int, int]], cameras: dict[str, tuple[int, int]]
                  ) -> VideoOutcome:
    """Moments of every camera (``{feature: (channels, pixels per frame)}``) of ``episodes`` (``(index,
    length)``) from the per-episode stats file ``path``; DatasetError names every episode/feature that cannot be
    carried over."""
    display = store.display(path)
    wanted = {index: length for index, length in episodes}
    found: dict[int, dict] = {}
    problems = []
    for number, line in enumerate(store.read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            index = int(record["episode_index"])
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(Problem(f"line {number} is not an episode's stats record ({type(exc).__name__}: {exc})",
                                    path=display))
            continue
        if index in wanted:
            found[index] = record.get("stats") if isinstance(record.get("stats"), dict) else {}
    tables = {}
    for feature, (channels, pixels) in cameras.items():
        keys, moments = [], []
        for index, length in episodes:
            stats = found.get(index)
            if stats is None or not isinstance(stats.get(feature), dict):
                problems.append(Problem("no published video stats to carry over", episode=index, feature=feature,
                                        path=display, fix="--video-stats recompute"))
                continue
            try:
                carried = published_moments(stats[feature], channels, pixels)
                if carried.samples > length:
                    raise ValueError(f"count {carried.samples} exceeds the episode's {length} frames")
            except ValueError as exc:
                problems.append(Problem(f"published video stats cannot be carried over: {exc}", episode=index,
                                        feature=feature, path=display, fix="--video-stats recompute"))
                continue
            keys.append(index)
            moments.append(carried)
        if moments:
            tables[feature] = MomentsTable.of(np.array(keys, dtype=np.int64), moments)
    if problems:
        raise DatasetError(problems)
    return VideoOutcome(tables, {})
