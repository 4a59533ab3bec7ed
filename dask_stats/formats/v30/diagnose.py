"""Judge a v3.0 dataset: its metadata reads back, the data files hold the rows the episodes point at, and
every episode's first and last frame of every camera decodes at ``from_timestamp + timestamp``.  Damaged files are
named once each, with the episodes they hold (and, for videos, ``--exclude-features``); absent video files are the
plan's to report (``videofiles``), a declared codec that is not the file's is a warning."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ...errors import DatasetError, Problem, episode_spans
from ...storage import Store
from ...video import frame_at, probe
from .reader import read_dataset
from .videofiles import codec_warning


def diagnose_v30(store: Store, tolerance_s: float = 1e-4, cameras: Collection[str] | None = None) -> list[Problem]:
    """Every problem found in the v3.0 dataset in ``store`` ([] when lerobot can read all of it), each absent or
    damaged file named once with its episodes; ``cameras``: the video features to judge (default: all)."""
    try:
        dataset = read_dataset(store)
    except DatasetError as exc:
        return exc.problems
    problems, times, files, videos = [], {}, {}, {}
    for ep in dataset.episodes:
        files.setdefault(ep.data_path, []).append(ep)
        for key, ref in ep.videos.items():
            if cameras is None or key in cameras:
                videos.setdefault((key, ref.path), []).append((ep, ref))
    for path, members in files.items():
        held = episode_spans(ep.index for ep in members)
        if not store.is_file(store.path(path)):
            problems.append(Problem("data file is missing", episode=members[0].index,
                                    path=store.display(store.path(path)), fix=f"restore it (it holds {held})"))
            continue
        try:
            with store.source(store.path(path)) as source:
                table = pq.read_table(source, columns=["index", "episode_index", "timestamp"])
        except (OSError, ValueError, pa.ArrowException) as exc:  # truncated, not Parquet, columns missing
            problems.append(Problem(f"cannot read Parquet: {type(exc).__name__}: {str(exc).strip()}",
                                    episode=members[0].index, path=store.display(store.path(path)),
                                    fix=f"restore the file (it holds {held})"))
            continue
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
    for (key, path), members in videos.items():
        problems += _video_problems(store, key, path, members, times, tolerance_s, dataset.info["features"][key])
    return problems


def _video_problems(store: Store, key: str, path: str, members: list, times: dict, tolerance_s: float,
                    feature: dict) -> list[Problem]:
    """The problems of one camera's video file shared by ``members`` ((episode, its reference) pairs): undecodable
    (once), else each episode whose first or last frame is not at its time; a codec other than the declared one."""
    video = store.path(path)
    fix = f"restore the file (it holds {episode_spans(ep.index for ep, _ in members)}), or --exclude-features {key}"
    where = {"feature": key, "path": store.display(video)}
    if not store.is_file(video):
        return []  # the plan reports it (videofiles), with a sibling directory that holds it if there is one
    with store.local_file(video) as local:  # a file on a store is fetched once, to a temporary file
        return _frame_problems(store, path, key, feature, local, members, times, tolerance_s, fix, where)


def _frame_problems(store: Store, path: str, key: str, feature: dict, local: str, members: list, times: dict,
                    tolerance_s: float, fix: str, where: dict) -> list[Problem]:
    try:
        declared = codec_warning(store, path, key, feature, members[0][0].index, probe(local).codec)
    except Exception:  # noqa: BLE001 - reported by the decoding that follows
        declared = None
    problems = [declared] if declared else []
    for ep, ref in members:
        for t in times.get(ep.index, ()):
            try:
                found = frame_at(local, ref.from_timestamp + t, tolerance_s)
            except Exception as exc:  # noqa: BLE001 - any decoder failure: the file is damaged
                return problems + [Problem(f"cannot decode the video: {type(exc).__name__}: {str(exc).strip()}",
                                           episode=ep.index, fix=fix, **where)]
            if found is None:
                problems.append(Problem(f"no frame at {ref.from_timestamp + t:.6f} s (from_timestamp "
                                        f"{ref.from_timestamp:.6f} + t {t:.6f}) within {tolerance_s:g} s",
                                        episode=ep.index, fix=fix, **where))
    return problems
