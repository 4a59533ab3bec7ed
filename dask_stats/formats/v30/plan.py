"""Plan the stats of an existing v3.0 dataset: each episode is a row range of a shared data file and, per
camera, a time range of a concatenated video file."""

from __future__ import annotations

from ...errors import DatasetError, Problem
from ...plan import EXCLUDED, Episode, Kinds, Plan
from ...storage import Store
from .layout import STATS_PATH
from .reader import read_dataset
from .videofiles import missing_video_problems

KEPT = "; its published stats (meta/episodes, meta/stats.json) are kept as they were"


def plan_v30(store: Store, info: dict, kinds: Kinds, problems: list[Problem]) -> tuple[Plan | None, list[Problem]]:
    """The plan of the v3.0 dataset in ``store`` (``kinds``: its features, classified) and the problems found."""
    try:
        dataset = read_dataset(store)
    except DatasetError as exc:
        return None, problems + exc.problems
    problems = problems + missing_video_problems(store, kinds.videos, dataset.episodes)
    file_start: dict[str, int] = {}
    episodes = []
    for ep in dataset.episodes:
        start = file_start.setdefault(ep.data_path, ep.dataset_from_index)
        missing = [key for key in kinds.videos if key not in ep.videos]
        problems += [Problem("the episode has no video of this camera in meta/episodes", episode=ep.index,
                             feature=key, fix=f"--exclude-features {key}") for key in missing]
        videos = {key: ep.videos[key] for key in kinds.videos if key in ep.videos}
        episodes.append(Episode(ep.index, ep.length, store.path(ep.data_path),
                                {key: store.path(ref.path) for key, ref in videos.items()},
                                rows=(ep.dataset_from_index - start, ep.dataset_to_index - start),
                                video_offsets={key: ref.from_timestamp for key, ref in videos.items()}))
    skipped = {name: why + KEPT if why == EXCLUDED else why for name, why in kinds.skipped.items()}
    plan = Plan(store, info, kinds.numeric, kinds.images, kinds.videos, skipped, episodes,
                has_stats_json=store.is_file(store.path(STATS_PATH)))
    return plan, problems
