"""Write a LeRobot v2.1 dataset from a v3.0 one, in the same Dask run as the stats.

Phase 1 (beside the stats tasks): one task per v3.0 data file writes its episodes' Parquet files (exactly their rows).
Phase 2: one task per camera and v3.0 video file cuts its episodes out by stream copy, each starting at 0 (an episode
that does not start on a keyframe is re-encoded alone with lerobot's settings, and the summary says so); the first and
last frame of every episode decoded from the new file must equal the source's.  Commit: ``meta/`` is written into a
staging tree beside the target and the tree is moved into place (in place, the old tree is kept as ``<root>_old``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dask

from ...engine.tasks import Task, task_key
from ...errors import DatasetError, Location, Problem, TaskError
from ...hub.push import DATASET_FOLDERS, PushLayout
from ...options import Options
from ...plan import Plan
from ...storage import Store
from ...video.encode import EncoderSettings
from ...video.frames import frame_at, verify_cut_frames
from ...video.remux import EpisodeCut, cut_episodes
from ..base import Computed
from ..staging import TreeWriter
from ..v30.reader import read_dataset
from ..v30.writer import dataset_stats
from . import layout
from .from_v30 import data_path, episode_lines, info_v21, task_lines, video_path, write_meta
from .split import EpisodeFile, EpisodeRows, split_data_file

V21_FILES = PushLayout("v2.1", DATASET_FOLDERS, replace=True,
                       required=(layout.INFO, layout.EPISODES, layout.TASKS, layout.EPISODES_STATS),
                       description=" (per-episode files)")


class V21FromV30Writer(TreeWriter):
    """The v2.1 tree of the v3.0 ``plan`` for ``target`` (local), built in ``staging`` and moved into place."""

    format = "v2.1"
    push_layout = V21_FILES
    description = "a v2.1 dataset (per-episode data and video files cut by stream copy, meta/*.jsonl, stats)"
    stats_file = layout.EPISODES_STATS
    replaces = "v3.0"
    local_only = True

    def __init__(self, plan: Plan, target: Store, options: Options, in_place: bool, *, reencode: bool = True):
        super().__init__(plan, target, options, in_place)
        self.reencode = reencode
        self.final, self.staging = self.tree.final, self.tree.staging
        self.dataset = read_dataset(plan.store) if plan.store.local and target.local else None

    def problems(self) -> list[Problem]:
        """Why this conversion cannot start (before any work)."""
        if self.dataset is None:
            return [Problem("v3.0 -> v2.1 reads and writes local directories only", path=str(self.final),
                            fix="download the dataset first (or mount the bucket)")]
        return super().problems()

    # -- phase 1 ------------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        """One task per v3.0 data file: its episodes' Parquet files."""
        store, tasks = self.plan.store, []
        by_file: dict[str, list] = {}
        for ep in self.plan.episodes:
            by_file.setdefault(ep.data_path, []).append(ep)
        for path, episodes in by_file.items():
            rows = [EpisodeRows(ep.index, *ep.rows, str(self.staging / data_path(ep.index))) for ep in episodes]
            indices = [ep.index for ep in episodes]
            key = task_key("v21-data", indices, self.plan.run)
            tasks.append(Task("v21-data", indices, Location(indices[0], path=store.display(path)),
                              dask.delayed(split_data_file)(store, path, rows, dask_key_name=key),
                              output=rows[-1].dest))
        return tasks

    # -- phase 2 ------------------------------------------------------------------------------------
    def later_tasks(self, files: dict[str, object]) -> list[Task]:
        """One task per camera and v3.0 video file: cut its episodes, then check their first and last frames."""
        times = {f.index: (f.first_time, f.last_time) for result in files.values()
                 if isinstance(result, list) for f in result if isinstance(f, EpisodeFile)}
        store, tasks = self.plan.store, []
        fps = float(self.plan.info["fps"])
        for feature in self.plan.videos:
            settings = EncoderSettings.of_feature(self.plan.features[feature]) if self.reencode else None
            by_file: dict[str, list] = {}
            for ep in self.dataset.episodes:
                by_file.setdefault(ep.videos[feature].path, []).append(ep)
            for path, episodes in by_file.items():
                indices = [ep.index for ep in episodes]
                spans = [(ep.videos[feature].from_timestamp, ep.videos[feature].to_timestamp) for ep in episodes]
                dests = [str(self.staging / video_path(i, feature)) for i in indices]
                key = task_key(f"v21-video-{feature}", indices, self.plan.run)
                delayed = dask.delayed(_cut_and_verify)(
                    store, store.path(path), spans, dests, [times[i] for i in indices], indices, feature,
                    self.options.stats.tolerance_s, fps, settings, dask_key_name=key)
                tasks.append(Task("v21-video", indices, Location(indices[0], feature, store.display(path)), delayed,
                                  feature=feature, output=dests[-1]))
        return tasks

    # -- commit -------------------------------------------------------------------------------------
    def commit(self, computed: Computed) -> None:
        """Write meta/ into the staging tree, check the tree, move it into place; the episodes that were re-encoded
        go to the summary."""
        plan, dataset = self.plan, self.dataset
        for result in computed.files.values():
            for cut in result if isinstance(result, list) else []:
                if isinstance(cut, _Cut) and not cut.cut.stream_copied:
                    computed.warnings.append(Problem(
                        f"re-encoded with lerobot's settings ({cut.settings}): {cut.cut.reason}",
                        severity="warning", episode=cut.episode, feature=cut.feature))
        info = {**dataset.info, "features": {name: ft for name, ft in dataset.info["features"].items()
                                             if ft.get("dtype") != "video" or name in plan.videos}}
        info = info_v21(info, total_episodes=len(dataset.episodes), total_frames=plan.total_frames,
                        total_tasks=len(dataset.tasks))
        episodes = episode_lines((ep.index, ep.tasks, ep.length) for ep in dataset.episodes)
        write_meta(str(self.staging), info, episodes, task_lines(dataset.tasks), computed.records,
                   dataset_stats(plan, computed.tables, computed.quantiles))
        self.tree.settle(self._planned())
        try:
            self.tree.swap()
        except BaseException as exc:
            exc.partial_commit = True
            raise

    def _planned(self) -> set[str]:
        """Every file of the new tree: each episode's data and video files and meta/."""
        planned = {data_path(ep.index) for ep in self.dataset.episodes}
        planned |= {video_path(ep.index, f) for ep in self.dataset.episodes for f in self.plan.videos}
        return planned | {layout.INFO, layout.EPISODES, layout.TASKS, layout.EPISODES_STATS, layout.STATS}


@dataclass(frozen=True)
class _Cut:
    """One episode's cut, as a video task returns it (kept in the checkpoint)."""

    episode: int
    feature: str
    cut: EpisodeCut
    settings: str  # the encoder settings used if it was re-encoded


def _cut_and_verify(store: Store, path: str, spans: list[tuple[float, float]], dests: list[str],
                    times: list[tuple[float, float]], episodes: list[int], feature: str, tolerance_s: float,
                    fps: float, settings: EncoderSettings | None) -> list[_Cut]:
    """Cut the episodes of one video file, then check them: a stream-copied episode's first and last frames must
    equal the source's at ``from_timestamp + t``; a re-encoded one must present a frame at each of those ``t``."""
    with store.local_file(path) as local:
        try:
            cuts = cut_episodes(local, spans, dests, tolerance_s=tolerance_s, fps=fps, reencode=settings)
        except DatasetError as exc:
            raise TaskError([Problem(p.message, episode=episodes[0], feature=feature, path=store.display(path))
                             for p in exc.problems]) from exc
        problems = []
        for episode, cut, (start, _), dest, rows in zip(episodes, cuts, spans, dests, times):
            if not cut.written:
                problems.append(Problem(f"cannot cut the episode by stream copy: {cut.reason}", episode=episode,
                                        feature=feature, path=store.display(path),
                                        fix="allow re-encoding it with lerobot's settings"))
            elif cut.stream_copied:
                problems += verify_cut_frames(local, start, dest, rows, tolerance_s, episode=episode,
                                              feature=feature)
            else:
                missing = [t for t in rows if frame_at(dest, t, tolerance_s) is None]
                problems += [Problem(f"the re-encoded episode has no frame at t={t:.6f} s", episode=episode,
                                     feature=feature, path=dest) for t in missing]
    if problems:
        for dest in dests:
            Path(dest).unlink(missing_ok=True)
        raise TaskError(problems)
    label = f"{settings.codec}, {settings.pix_fmt}, g={settings.gop}, crf={settings.crf}" if settings else ""
    return [_Cut(episode, feature, cut, label) for episode, cut in zip(episodes, cuts)]
