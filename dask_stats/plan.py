"""Plan a conversion: read the metadata, classify features, list each episode's files.

``plan_dataset`` is pure: it reads ``meta/`` and lists files, never opens data or videos, never raises
part-way. It returns the plan and every problem it found; ``check`` judges them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import DatasetError, Problem
from .formats.v2 import layout
from .options import StatsOptions
from .storage import Store

NUMERIC_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64",
                  "uint8", "uint16", "uint32", "uint64", "bool"}
NO_STATS_DTYPES = {"string"}  # like lerobot at recording time: no stats, no crash
VERSIONS = ("v2.0", "v2.1", "v3.0")  # layouts this planner reads (v3.0 through ``v30.plan``)


@dataclass(frozen=True)
class Episode:
    index: int
    length: int
    data_path: str  # full paths on the plan's store
    video_paths: dict[str, str] = field(default_factory=dict)
    rows: tuple[int, int] | None = None  # v3.0: the episode's rows in its (shared) data file, half-open
    video_offsets: dict[str, float] = field(default_factory=dict)  # v3.0: where each video's episode starts (s)


@dataclass
class Plan:
    store: Store
    info: dict
    numeric: list[str]  # Parquet columns reduced as numbers (float, int, bool; scalars and vectors)
    images: list[str]  # Parquet columns of encoded images
    videos: list[str]  # video features, one MP4 per episode
    skipped: dict[str, str]  # feature -> why it gets no stats
    episodes: list[Episode]
    has_stats_json: bool

    @property
    def version(self) -> str:
        return self.info.get("codebase_version")

    @property
    def features(self) -> dict[str, dict]:
        return self.info["features"]

    @property
    def stats_features(self) -> list[str]:
        """Features that get stats, in info.json order (the order of episodes_stats.jsonl)."""
        chosen = set(self.numeric) | set(self.images) | set(self.videos)
        return [name for name in self.features if name in chosen]

    @property
    def total_frames(self) -> int:
        return sum(ep.length for ep in self.episodes)

    def fingerprint(self, options: StatsOptions) -> str:
        """Identifies the metadata and the number-changing options of this plan."""
        payload = json.dumps({"info": self.info, "episodes": [(e.index, e.length) for e in self.episodes],
                              "options": options.fingerprint()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


CHANNEL_NAMES = ("channel", "channels")


def channels_of(feature: dict) -> int:
    """The number of colour channels of an image or video feature: the axis of its ``shape`` that ``names`` calls
    "channel" or "channels" (channel-first ``[3, H, W]`` declarations exist), else the last axis, as lerobot reads
    them."""
    shape, names = feature["shape"], feature.get("names")
    if isinstance(names, list) and len(names) == len(shape):
        for axis, name in enumerate(names):
            if isinstance(name, str) and name.lower() in CHANNEL_NAMES:
                return shape[axis]
    return shape[-1]


def _not_regular(store: Store, path: str) -> Problem | None:
    """A FIFO, socket or device where a metadata file should be (reading it would block or never end)."""
    if store.local and os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        return Problem("is not a regular file (a FIFO, socket or device?)", path=path, fix="replace it by the file")
    return None


def read_json(store: Store, relative: str) -> dict:
    path = store.path(relative)
    odd = _not_regular(store, path)
    if odd:
        raise DatasetError(odd)
    try:
        return json.loads(store.read_text(path))
    except FileNotFoundError:
        raise DatasetError(Problem(f"{relative} is missing", path=store.display(path),
                                   fix="point --root at a LeRobot v2.0 dataset directory")) from None
    except NotADirectoryError:
        raise DatasetError(Problem("the dataset root is a file, not a directory", path=store.display(store.root),
                                   fix="point --root at a LeRobot dataset directory (the one holding "
                                       "meta/info.json)")) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(Problem(f"{relative} is not valid JSON: {exc}", path=store.display(path))) from None


def read_jsonl(store: Store, relative: str) -> list[dict]:
    path = store.path(relative)
    odd = _not_regular(store, path)
    if odd:
        raise DatasetError(odd)
    try:
        lines = store.read_text(path).splitlines()
    except FileNotFoundError:
        raise DatasetError(Problem(f"{relative} is missing", path=store.display(path))) from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetError(Problem(f"{relative} line {number} is not valid JSON: {exc}",
                                       path=store.display(path))) from None
        if not isinstance(records[-1], dict):
            raise DatasetError(Problem(f"{relative} line {number} is not a JSON object", path=store.display(path)))
    return records


def plan_dataset(store: Store, options: StatsOptions) -> tuple[Plan | None, list[Problem]]:
    """The plan of the dataset in ``store`` and every problem found on the way (the plan is None when the
    metadata is too broken to describe any work)."""
    try:
        info = read_json(store, layout.INFO)
    except DatasetError as exc:
        return None, exc.problems
    info_path = store.display(store.path(layout.INFO))
    if not isinstance(info, dict):
        return None, [Problem("info.json is not a JSON object", path=info_path)]
    version = info.get("codebase_version")
    if version not in VERSIONS:
        return None, [Problem(f"codebase_version is {version!r}; dask_stats reads v2.0, v2.1 and v3.0 datasets",
                              path=info_path)]
    features = info.get("features")
    if not isinstance(features, dict) or not features:
        return None, [Problem("info.json has no 'features'", path=info_path)]
    kinds, problems = classify(features, options, info_path)
    if version == "v3.0":
        from .formats.v30.plan import plan_v30

        return plan_v30(store, info, kinds, problems)
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


@dataclass
class Kinds:
    """The features by how their stats are computed."""

    numeric: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # feature -> why it gets no stats


def classify(features: dict, options: StatsOptions, info_path: str | None = None) -> tuple[Kinds, list[Problem]]:
    """Sort ``features`` (declared in ``info_path``) by kind, with the problems of their declarations."""
    problems = [Problem(f"--exclude-features names an unknown feature; known: {', '.join(features)}", feature=name)
                for name in options.exclude_features if name not in features]
    kinds = Kinds()
    for name, ft in features.items():
        if not isinstance(ft, dict):
            problems.append(Problem(f"the feature's declaration is {type(ft).__name__} {ft!r}, not a JSON object",
                                    feature=name, path=info_path, fix="fix meta/info.json"))
            continue
        dtype, shape = ft.get("dtype"), ft.get("shape")
        if name in options.exclude_features:
            pass
        elif shape is not None and not (isinstance(shape, list) and all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            problems.append(Problem(f"shape {shape!r} is not a list of non-negative integers", feature=name,
                                    path=info_path, fix=f"fix meta/info.json, or --exclude-features {name}"))
            continue
        elif shape and 0 in shape:
            problems.append(Problem(f"declares shape {shape}: a zero-sized feature has no values to take stats of",
                                    feature=name, path=info_path, fix=f"--exclude-features {name}"))
            continue
        if "/" in name:
            problems.append(Problem("feature names must not contain '/' (v2.1 flattens keys with it)", feature=name,
                                    path=info_path))
        elif name in options.exclude_features:
            kinds.skipped[name] = "excluded by --exclude-features"
        elif dtype == "video":
            kinds.videos.append(name)
        elif dtype == "image":
            kinds.images.append(name)
        elif dtype in NUMERIC_DTYPES:
            kinds.numeric.append(name)
        elif dtype in NO_STATS_DTYPES:
            kinds.skipped[name] = f"{dtype} features have no stats"
        else:
            problems.append(Problem(f"unknown dtype {dtype!r}", feature=name, path=info_path,
                                    fix=f"--exclude-features {name}"))
    return kinds, problems


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
