"""The plan of a run, whatever the dataset's format: its features by kind and its episodes (files, rows, video
offsets); the metadata readers and the feature classification that every format's planner shares.  Planning itself
(``formats.plan_dataset``) is pure: it reads ``meta/`` and lists files, never opens data or videos, never raises
part-way."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field

import jsonlines
from dask.base import tokenize

from .errors import DatasetError, Problem
from .options import StatsOptions
from .storage import Store

NUMERIC_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64",
                  "uint8", "uint16", "uint32", "uint64", "bool"}
EXCLUDED = "excluded by --exclude-features"  # why a feature gets no stats, when the user said so
NO_STATS_DTYPES = {"string", "language"}  # like lerobot at recording time: no stats, no crash


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
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # in every task key: unique to the run

    def bind(self, options: StatsOptions, target: str) -> None:
        """Make the run's task keys those of any run of this plan, these options and ``target`` (an interrupted
        run's checkpointed results are found again by key), and of no other run on a shared scheduler."""
        self.run = tokenize(self.fingerprint(options), self.store.url, target)[:12]

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
    """The JSON objects of the JSON Lines file ``relative`` (blank lines skipped); a bad line is named."""
    path = store.path(relative)
    odd = _not_regular(store, path)
    if odd:
        raise DatasetError(odd)
    try:
        lines = store.read_text(path).splitlines()
    except FileNotFoundError:
        raise DatasetError(Problem(f"{relative} is missing", path=store.display(path))) from None
    try:
        with jsonlines.Reader(lines) as reader:
            return list(reader.iter(type=dict, skip_empty=True))
    except jsonlines.InvalidLineError as exc:
        what = f"is not valid JSON: {exc.__cause__}" if exc.__cause__ is not None else "is not a JSON object"
        raise DatasetError(Problem(f"{relative} line {exc.lineno} {what}", path=store.display(path))) from None


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
            kinds.skipped[name] = EXCLUDED
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
