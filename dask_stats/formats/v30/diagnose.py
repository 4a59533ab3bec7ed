"""Judge a v3.0 dataset: its metadata reads back, the data files hold the rows the episodes point at, and
every episode's first and last frame of every camera decodes at ``from_timestamp + timestamp``."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from ...errors import DatasetError, Problem
from ...storage import Store
from ...video.frames import frame_at
from .reader import read_dataset


def diagnose_v30(store: Store, tolerance_s: float = 1e-4) -> list[Problem]:
    """Every problem found in the v3.0 dataset in ``store`` ([] when lerobot can read all of it)."""
    try:
        dataset = read_dataset(store)
    except DatasetError as exc:
        return exc.problems
    problems, times, files = [], {}, {}
    for ep in dataset.episodes:
        files.setdefault(ep.data_path, []).append(ep)
    for path, members in files.items():
        with store.source(store.path(path)) as source:
            table = pq.read_table(source, columns=["index", "episode_index", "timestamp"])
        index, episode, stamp = (table.column(c).to_numpy() for c in ("index", "episode_index", "timestamp"))
        offset = members[0].dataset_from_index
        if len(index) != sum(ep.length for ep in members) or (index != np.arange(offset, offset + len(index))).any():
            problems.append(Problem("the index column is not the global row position the episodes give",
                                    path=store.display(store.path(path))))
            continue
        for ep in members:
            rows = slice(ep.dataset_from_index - offset, ep.dataset_to_index - offset)
            if (episode[rows] != ep.index).any():
                problems.append(Problem("rows of another episode in this episode's range", episode=ep.index,
                                        path=store.display(store.path(path))))
            times[ep.index] = (float(stamp[rows][0]), float(stamp[rows][-1]))
    for ep in dataset.episodes:
        for key, ref in ep.videos.items():
            video = store.path(ref.path)
            for t in times.get(ep.index, ()):
                if _frame_at(store, video, ref.from_timestamp + t, tolerance_s) is None:
                    problems.append(Problem(f"no frame at {ref.from_timestamp + t:.6f} s (from_timestamp "
                                            f"{ref.from_timestamp:.6f} + t {t:.6f}) within {tolerance_s:g} s",
                                            episode=ep.index, feature=key, path=store.display(video)))
    return problems


def _frame_at(store: Store, video: str, timestamp: float, tolerance_s: float):
    """:func:`frame_at` of a video of ``store`` (a remote one read in ranges through a file object)."""
    with store.source(video) as source:
        return frame_at(source, timestamp, tolerance_s)
