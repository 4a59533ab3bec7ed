"""Plan a conversion: read the metadata, classify features, list the files and the frames to sample.

``build_plan`` is pure (it reads metadata and Parquet schemas, never decodes) and reports *every*
problem it finds at once as a :class:`DatasetError`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
import numpy as np
import pyarrow.parquet as pq

from .errors import DatasetError, Problem
from .storage import Store

NUMERIC_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64",
                  "uint8", "uint16", "uint32", "uint64", "bool"}
NO_STATS_DTYPES = {"string"}  # like lerobot at recording time: no stats, no crash


@dataclass
class Options:
    """Everything that changes what or how a conversion computes (see ``dask_stats.convert``)."""

    video_backend: str | type = "pyav"  # a registered name, or a VideoBackend subclass (Python API)
    num_workers: int | None = None
    tolerance_s: float = 1e-4
    frame_lookup: str = "timestamp"  # or "index"
    exclude_features: tuple[str, ...] = ()
    skip_verify: bool = False
    skip_check: bool = False
    strict_verify: bool = False
    delete_old_stats: bool = False
    force: bool = False
    quiet: bool = False
    task_timeout: float | None = None  # seconds per task; None: sized from the task (see task_timeout_s)
    retries: int = 1  # extra attempts for a failed task (e.g. a lost worker)
    resume: bool = True  # reuse results checkpointed by an interrupted run with the same inputs
    scheduler: str = "threads"  # local cluster kind: "threads" (fastest, measured) or "processes" (isolated)
    scheduler_address: str | None = None  # run on an existing Dask cluster
    dashboard_address: str | None = None  # local cluster dashboard; None: a free port on loopback, none if quiet

    def dashboard(self) -> str | None:
        """Where the local cluster serves its dashboard: none with ``quiet`` (the link would not be shown,
        and the dashboard costs 0.4 s to start) unless an address is given; "off" turns it off."""
        if self.dashboard_address == "off":
            return None
        return self.dashboard_address or (None if self.quiet else "127.0.0.1:0")

    def task_timeout_s(self, frames: int, base: float = 120.0) -> float:
        """The timeout of a task handling ``frames`` rows or video frames (generous: it is for hangs)."""
        return self.task_timeout if self.task_timeout is not None else base + 0.05 * frames

    def fingerprint_fields(self) -> dict:
        """The options that change the numbers (used to tell whether old results can be reused)."""
        backend = getattr(self.video_backend, "name", self.video_backend)  # decoders differ slightly (<2e-3)
        return {"frame_lookup": self.frame_lookup, "tolerance_s": self.tolerance_s,
                "exclude_features": sorted(self.exclude_features), "video_backend": backend}


@dataclass(frozen=True)
class Episode:
    index: int
    length: int
    data_path: str  # full paths on the plan's store
    video_paths: dict[str, str] = field(default_factory=dict)


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

    def fingerprint(self, options: Options) -> str:
        """Identifies the inputs and the number-changing options of this plan."""
        payload = json.dumps({"info": self.info, "episodes": [(e.index, e.length) for e in self.episodes],
                              "options": options.fingerprint_fields()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def sample_positions(length: int) -> np.ndarray:
    """Frame positions sampled for video stats, exactly as lerobot (reference.md §2.3)."""
    min_samples, max_samples, power = 100, 10_000, 0.75
    if length < min_samples:
        min_samples = length
    n = max(min_samples, min(int(length**power), max_samples))
    return np.round(np.linspace(0, length - 1, n)).astype(int)


def read_json(store: Store, relative: str) -> dict:
    path = store.path(relative)
    try:
        return json.loads(store.read_text(path))
    except FileNotFoundError:
        raise DatasetError(Problem(f"{relative} is missing", path=store.display(path),
                                   fix="point --root at a LeRobot v2.0 dataset directory")) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(Problem(f"{relative} is not valid JSON: {exc}", path=store.display(path))) from None


def read_jsonl(store: Store, relative: str) -> list[dict]:
    path = store.path(relative)
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
    return records


def _template_path(store: Store, template: str, **fields) -> str:
    relative = template.format(**fields)
    if not store.inside(relative):
        raise DatasetError(Problem(f"path template {template!r} leads outside the dataset root",
                                   path=relative, fix="fix data_path/video_path in meta/info.json"))
    return store.path(relative)


def build_plan(root: str | Store, options: Options) -> Plan:
    """Read the metadata at ``root`` (a path, an fsspec URL or a Store) and describe the work.

    Raises DatasetError listing every problem found.
    """
    store = root if isinstance(root, Store) else Store(root)
    info = read_json(store, "meta/info.json")
    info_path = store.display(store.path("meta/info.json"))
    problems: list[Problem] = []

    version = info.get("codebase_version")
    if version == "v2.1" and not options.force:
        raise DatasetError(Problem("the dataset is already at v2.1", severity="error", path=info_path,
                                   fix="nothing to do; pass --force to recompute its episodes_stats.jsonl"))
    if version not in ("v2.0", "v2.1"):
        raise DatasetError(Problem(f"codebase_version is {version!r}; only v2.0 datasets are converted",
                                   path=info_path))
    features = info.get("features")
    if not isinstance(features, dict) or not features:
        raise DatasetError(Problem("info.json has no 'features'", path=info_path))
    for name in options.exclude_features:
        if name not in features:
            problems.append(Problem(f"--exclude-features names an unknown feature; known: {', '.join(features)}",
                                    feature=name))

    numeric, images, videos, skipped = [], [], [], {}
    for name, ft in features.items():
        dtype = ft.get("dtype")
        if "/" in name:
            problems.append(Problem("feature names must not contain '/' (v2.1 flattens keys with it)", feature=name))
        elif name in options.exclude_features:
            skipped[name] = "excluded by --exclude-features"
        elif dtype == "video":
            videos.append(name)
        elif dtype == "image":
            images.append(name)
        elif dtype in NUMERIC_DTYPES:
            numeric.append(name)
        elif dtype in NO_STATS_DTYPES:
            skipped[name] = f"{dtype} features have no stats"
        else:
            problems.append(Problem(f"unknown dtype {dtype!r}", feature=name,
                                    fix=f"--exclude-features {name}"))

    records = read_jsonl(store, "meta/episodes.jsonl")
    episodes = _plan_episodes(store, info, records, videos, problems)
    if episodes:
        _check_columns(store, episodes[0], numeric + images, problems)
    problems += _check_videos(store, episodes, videos, options)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DatasetError(errors)
    return Plan(store, info, numeric, images, videos, skipped, episodes,
                has_stats_json=store.is_file(store.path("meta/stats.json")))


def _plan_episodes(store, info, records, videos, problems) -> list[Episode]:
    chunks_size = int(info.get("chunks_size") or 1000)
    data_tpl, video_tpl = info.get("data_path"), info.get("video_path")
    if not data_tpl:
        problems.append(Problem("info.json has no data_path", path=store.display(store.path("meta/info.json"))))
        return []
    episodes = []
    for position, rec in enumerate(sorted(records, key=lambda r: r.get("episode_index", -1))):
        index, length = rec.get("episode_index"), rec.get("length")
        if not isinstance(index, int) or not isinstance(length, int) or length < 1:
            problems.append(Problem(f"episodes.jsonl record {rec!r} needs an integer episode_index and length >= 1",
                                    path=store.display(store.path("meta/episodes.jsonl"))))
            continue
        if index != position:
            problems.append(Problem(f"episode indices are not contiguous from 0 (expected {position})",
                                    episode=index, path=store.display(store.path("meta/episodes.jsonl"))))
        chunk = index // chunks_size
        data_path = _template_path(store, data_tpl, episode_chunk=chunk, episode_index=index)
        if not store.is_file(data_path):
            problems.append(Problem("Parquet file is missing", episode=index, path=store.display(data_path)))
        video_paths = {
            key: _template_path(store, video_tpl, episode_chunk=chunk, video_key=key, episode_index=index)
            for key in videos
        } if video_tpl else {}
        episodes.append(Episode(index, length, data_path, video_paths))
    if videos and not video_tpl:
        problems.append(Problem("info.json has video features but no video_path",
                                path=store.display(store.path("meta/info.json"))))
    return episodes


def _check_columns(store: Store, episode: Episode, columns: list[str], problems: list[Problem]) -> None:
    where = {"episode": episode.index, "path": store.display(episode.data_path)}
    if not store.is_file(episode.data_path):
        return
    try:
        schema = pq.read_schema(store.source(episode.data_path))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        problems.append(Problem(f"cannot read the Parquet schema: {exc}", **where))
        return
    for name in columns:
        if name not in schema.names:
            problems.append(Problem("feature is declared in info.json but has no Parquet column", feature=name,
                                    fix=f"--exclude-features {name}", **where))


def _check_videos(store: Store, episodes: list[Episode], videos: list[str], options: Options) -> list[Problem]:
    from .video import get_backend  # local import: video backends import heavy libraries

    problems = []
    backend = get_backend(options.video_backend)
    for key in videos:
        present = {ep.index for ep in episodes if store.is_file(ep.video_paths[key])}
        missing = [ep for ep in episodes if ep.index not in present]
        if missing and not present:
            problems.append(Problem("video feature has no video files at all", feature=key,
                                    path=store.display(missing[0].video_paths[key]), fix=f"--exclude-features {key}"))
            continue
        problems += [Problem("video file is missing", episode=ep.index, feature=key,
                             path=store.display(ep.video_paths[key]),
                             fix=f"restore the file, or --exclude-features {key}") for ep in missing]
        first = next((ep for ep in episodes if ep.index in present), None)
        if first is not None:
            problem = backend.check_readable(store.source(first.video_paths[key]))
            if problem:
                problems.append(Problem(problem.message, episode=first.index, feature=key,
                                        path=store.display(first.video_paths[key]), fix=problem.fix))
    return problems
