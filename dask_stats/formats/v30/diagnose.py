"""Judge a v3.0 dataset: its metadata reads back, the data files hold the rows the episodes point at, and
every episode's first and last frame of every camera decodes at ``from_timestamp + timestamp``.  Absent video files
are the plan's to report (``videofiles``); a file that cannot be decoded is a problem here, never a crash."""

from __future__ import annotations

import av
import numpy as np
import pyarrow.parquet as pq

from ...errors import DatasetError, Problem
from ...storage import Store
from ...video.frames import frame_at
from .reader import read_dataset
from .videofiles import codec_warning


def diagnose_v30(store: Store, tolerance_s: float = 1e-4, cameras: list[str] | None = None) -> list[Problem]:
    """Every problem found in the v3.0 dataset in ``store`` ([] when lerobot can read all of it); the frames of
    ``cameras`` only (default: every declared camera) are checked."""
    try:
        dataset = read_dataset(store)
    except DatasetError as exc:
        return exc.problems
    problems, times, files = [], {}, {}
    for ep in dataset.episodes:
        files.setdefault(ep.data_path, []).append(ep)
    for path, members in files.items():
        where = store.display(store.path(path))
        try:
            with store.source(store.path(path)) as source:
                table = pq.read_table(source, columns=["index", "episode_index", "timestamp"])
        except Exception as exc:  # noqa: BLE001 - absent or unreadable: the same to the user
            problems.append(Problem(f"the data file cannot be read: {exc}", episode=members[0].index, path=where,
                                    fix="restore the file"))
            continue
        index, episode, stamp = (table.column(c).to_numpy() for c in ("index", "episode_index", "timestamp"))
        offset = members[0].dataset_from_index
        if len(index) != sum(ep.length for ep in members) or (index != np.arange(offset, offset + len(index))).any():
            problems.append(Problem("the index column is not the global row position the episodes give", path=where))
            continue
        for ep in members:
            rows = slice(ep.dataset_from_index - offset, ep.dataset_to_index - offset)
            if (episode[rows] != ep.index).any():
                problems.append(Problem("rows of another episode in this episode's range", episode=ep.index,
                                        path=where))
            times[ep.index] = (float(stamp[rows][0]), float(stamp[rows][-1]))
    cameras = dataset.video_keys if cameras is None else cameras
    broken: set[str] = set()
    probed: set[str] = set()
    for ep in dataset.episodes:
        for key, ref in ep.videos.items():
            video = store.path(ref.path)
            if key not in cameras or ref.path in broken or not store.is_file(video):
                continue
            if ref.path not in probed:
                probed.add(ref.path)
                warning = _codec_problem(store, ref.path, key, dataset.info["features"][key], ep.index)
                if warning is not None:
                    problems.append(warning)
            try:
                missing = [t for t in times.get(ep.index, ())
                           if _frame_at(store, video, ref.from_timestamp + t, tolerance_s) is None]
            except Exception as exc:  # noqa: BLE001 - a damaged file: reported once, with the flag
                broken.add(ref.path)
                problems.append(Problem(f"the video cannot be decoded: {exc}", episode=ep.index, feature=key,
                                        path=store.display(video),
                                        fix=f"restore or re-encode the file, or --exclude-features {key}"))
                continue
            problems += [Problem(f"no frame at {ref.from_timestamp + t:.6f} s (from_timestamp "
                                 f"{ref.from_timestamp:.6f} + t {t:.6f}) within {tolerance_s:g} s",
                                 episode=ep.index, feature=key, path=store.display(video)) for t in missing]
    return problems


def _codec_problem(store: Store, relative: str, key: str, feature: dict, episode: int) -> Problem | None:
    """The declared-vs-file codec warning of one video (None if it agrees, or cannot be opened: decoding says so)."""
    try:
        with store.source(store.path(relative)) as source, av.open(source) as container:
            codec = container.streams.video[0].codec_context.name
    except Exception:  # noqa: BLE001 - reported by the decoding that follows
        return None
    return codec_warning(store, relative, key, feature, episode, codec)


def _frame_at(store: Store, video: str, timestamp: float, tolerance_s: float):
    """:func:`frame_at` of a video of ``store`` (a remote one read in ranges through a file object)."""
    with store.source(video) as source:
        return frame_at(source, timestamp, tolerance_s)
