"""Plan a v2.0 / v2.1 dataset: one Parquet file and one MP4 per camera for each episode, found by info.json's
path templates."""

from __future__ import annotations

from collections.abc import Callable

from ...errors import DatasetError, Problem
from ...plan import Episode, Kinds, Plan, read_jsonl
from ...storage import Store
from . import layout


def plan_v2(store: Store, info: dict, kinds: Kinds, problems: list[Problem]) -> tuple[Plan | None, list[Problem]]:
    """The plan of the v2.x dataset in ``store`` (``kinds``: its features, classified) and the problems found."""
    info_path = store.display(store.path(layout.INFO))
    problems += _number_problems(info, info_path)
    try:
        records = read_jsonl(store, layout.EPISODES)
    except DatasetError as exc:
        return None, problems + exc.problems
    is_file = _file_test(store)
    episodes = _plan_episodes(store, info, records, kinds.videos, problems, is_file)
    problems += _missing_videos(store, episodes, kinds.videos, is_file)
    plan = Plan(store, info, kinds.numeric, kinds.images, kinds.videos, kinds.skipped, episodes,
                has_stats_json=store.is_file(store.path(layout.STATS)))
    return plan, problems


def _number_problems(info: dict, info_path: str) -> list[Problem]:
    """fps and chunks_size must be positive numbers (chunks_size an integer) when present."""
    problems = []
    fps, chunks = info.get("fps"), info.get("chunks_size")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0):
        problems.append(Problem(f"fps is {fps!r}, not a positive number", path=info_path, fix="fix meta/info.json"))
    if chunks is not None and (isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1):
        problems.append(Problem(f"chunks_size is {chunks!r}, not a positive integer", path=info_path,
                                fix="fix meta/info.json"))
    return problems


PLACEHOLDERS = {"episode_chunk": 0, "episode_index": 0, "video_key": "x"}  # of v2.x path templates


def _template(info: dict, key: str, info_path: str, problems: list[Problem]) -> str | None:
    """The path template ``key`` of info.json, checked: a string, known placeholders, inside the root.
    ``{chunk_index}`` (v3.0's name, in some hand-made v2.x datasets) is read as ``{episode_chunk}``."""
    template = info.get(key)
    if template is None:
        return None
    if not isinstance(template, str):
        problems.append(Problem(f"{key} is {template!r}, not a path template string", path=info_path,
                                fix="fix meta/info.json"))
        return ""
    if "{chunk_index" in template:
        problems.append(Problem(f"{key} uses {{chunk_index}}; read as {{episode_chunk}}, its v2.x name",
                                severity="warning", path=info_path, fix="rename it in meta/info.json"))
        template = template.replace("{chunk_index", "{episode_chunk")
    try:
        template.format(**PLACEHOLDERS)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        problems.append(Problem(f"{key} {template!r} cannot be filled in ({type(exc).__name__}: {exc}); v2.x "
                                "templates use {episode_chunk}, {episode_index} and {video_key}", path=info_path,
                                fix="fix meta/info.json"))
        return ""
    return template


def _file_test(store: Store) -> Callable[[str], bool]:
    """Whether a path is a file of ``store``: a stat locally; remotely, a lookup in the store's one listing (a few
    list requests instead of one per file: 100,000 episodes' 400,000 files would take an hour one by one)."""
    if store.local:
        return store.is_file
    return store.listing().__contains__


def _plan_episodes(store, info, records, videos, problems, is_file) -> list[Episode]:
    info_path = store.display(store.path(layout.INFO))
    chunks = info.get("chunks_size")
    chunks_size = chunks if isinstance(chunks, int) and not isinstance(chunks, bool) and chunks > 0 \
        else layout.DEFAULT_CHUNKS_SIZE
    data_tpl = _template(info, "data_path", info_path, problems)
    video_tpl = _template(info, "video_path", info_path, problems)
    if data_tpl == "" or video_tpl == "":
        return []
    if not data_tpl:
        problems.append(Problem("info.json has no data_path", path=info_path))
        return []
    if videos and not video_tpl:
        problems.append(Problem("info.json has video features but no video_path", path=info_path))
        return []
    for template in (data_tpl, video_tpl or ""):
        if not store.inside(template.format(**PLACEHOLDERS)):
            problems.append(Problem(f"path template {template!r} leads outside the dataset root", path=info_path,
                                    fix="fix data_path/video_path in meta/info.json"))
            return []
    episodes = []
    episodes_path = store.display(store.path(layout.EPISODES))
    if not records:
        problems.append(Problem("meta/episodes.jsonl lists no episodes: there is nothing to convert",
                                path=episodes_path))
        return []
    seen: set[int] = set()
    position = 0
    for rec in sorted(records, key=lambda r: r.get("episode_index") if isinstance(r.get("episode_index"), int)
                      else -1):
        index, length = rec.get("episode_index"), rec.get("length")
        if not isinstance(index, int) or not isinstance(length, int) or length < 1:
            problems.append(Problem(f"episodes.jsonl record {rec!r} needs an integer episode_index and length >= 1",
                                    path=episodes_path))
            continue
        if index in seen:
            problems.append(Problem(f"episode {index} is listed twice in episodes.jsonl (duplicate episode_index)",
                                    episode=index, path=episodes_path, fix="remove the duplicate line"))
            continue
        seen.add(index)
        if index != position:
            problems.append(Problem(f"episode indices are not contiguous from 0 (expected {position})",
                                    episode=index, path=episodes_path))
        position += 1
        chunk = index // chunks_size
        data_path = store.path(data_tpl.format(episode_chunk=chunk, episode_index=index))
        if not is_file(data_path):
            problems.append(Problem("Parquet file is missing", episode=index, path=store.display(data_path)))
        video_paths = {key: store.path(video_tpl.format(episode_chunk=chunk, video_key=key, episode_index=index))
                       for key in videos}
        episodes.append(Episode(index, length, data_path, video_paths))
    return episodes


def _missing_videos(store: Store, episodes: list[Episode], videos: list[str], is_file) -> list[Problem]:
    problems = []
    for key in videos:
        missing = [ep for ep in episodes if not is_file(ep.video_paths[key])]
        if missing and len(missing) == len(episodes):
            problems.append(Problem("video feature has no video files at all", feature=key,
                                    path=store.display(missing[0].video_paths[key]), fix=f"--exclude-features {key}"))
            continue
        problems += [Problem("video file is missing", episode=ep.index, feature=key,
                             path=store.display(ep.video_paths[key]),
                             fix=f"restore the file, or --exclude-features {key}") for ep in missing]
    return problems
