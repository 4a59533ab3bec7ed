"""Dataset formats, one subpackage per LeRobot version (``v2``, ``v30``), each planning the datasets it reads and
writing its target.  Which writer runs is decided here, once, from the dataset's version and the options (like
xarray's engines or our video backends: resolved by name); nothing else in the package compares version strings.
"""

from __future__ import annotations

from ..errors import DatasetError, Problem
from ..hub.push import PushLayout
from ..options import StatsOptions
from ..plan import Plan, classify, read_json, read_jsonl
from ..stats.verify import compare_episode_stats
from ..storage import OUTPUT_MARKER, Store
from .base import AlreadyThere, Computed, Writer
from .staging import finish_swap, interrupted_swap
from .v2 import layout as v2_layout
from .v2.plan import plan_v2
from .v2.writer import V21Writer
from .v2.writer_from_v30 import V21FromV30Writer
from .v30.diagnose import diagnose_v30
from .v30.plan import plan_v30
from .v30.rechunk import RechunkWriter
from .v30.restat import RestatWriter
from .v30.writer import V30Writer

PLANNERS = {"v2.0": plan_v2, "v2.1": plan_v2, "v3.0": plan_v30}  # the versions read, and how
NATURAL_TARGET = {"v2.0": "v2.1", "v2.1": "v2.1", "v3.0": "v3.0"}  # what --to defaults to
WRITERS: dict[tuple[str, str], type[Writer]] = {  # (dataset version, target) -> writer
    ("v2.0", "v2.1"): V21Writer, ("v2.1", "v2.1"): V21Writer,
    ("v2.0", "v3.0"): V30Writer, ("v2.1", "v3.0"): V30Writer,
    ("v3.0", "v3.0"): RestatWriter, ("v3.0", "v2.1"): V21FromV30Writer,
}
RESIZERS: dict[tuple[str, str], type[Writer]] = {("v3.0", "v3.0"): RechunkWriter}  # the same, when a size is given
INFO = v2_layout.INFO  # the same path in every version


def plan_dataset(store: Store, options: StatsOptions) -> tuple[Plan | None, list[Problem]]:
    """The plan of the dataset in ``store`` and every problem found on the way (the plan is None when the
    metadata is too broken to describe any work)."""
    try:
        info = read_json(store, INFO)
    except DatasetError as exc:
        return None, exc.problems
    info_path = store.display(store.path(INFO))
    if not isinstance(info, dict):
        return None, [Problem("info.json is not a JSON object", path=info_path)]
    version = info.get("codebase_version")
    if version not in PLANNERS:
        return None, [Problem(f"codebase_version is {version!r}; dask_stats reads {', '.join(PLANNERS)} datasets",
                              path=info_path)]
    features = info.get("features")
    if not isinstance(features, dict) or not features:
        return None, [Problem("info.json has no 'features'", path=info_path)]
    kinds, problems = classify(features, options, info_path)
    return PLANNERS[version](store, info, kinds, problems)


def recover(store: Store) -> list[Problem]:
    """Finish what an interrupted commit left half done at ``store`` (an in-place v3.0 swap between its two
    renames); what was done, as warnings."""
    done = finish_swap(store.root) if store.local else None
    return [done] if done else []


def interrupted(store: Store) -> list[Problem]:
    """What an interrupted commit left at ``store`` (for ``check``; :func:`recover` finishes it)."""
    found = interrupted_swap(store.root) if store.local else None
    return [found] if found else []


def finished_output(source: Store, target: Store, options: StatsOptions) -> str | None:
    """The version of the complete dataset already in ``target`` (an ``--output`` of an earlier run: no marker of
    an unfinished copy) if it is the one this conversion of ``source`` would write; else None."""
    if target.is_empty_or_missing() or target.is_file(target.path(OUTPUT_MARKER)):
        return None
    try:
        done = read_json(target, INFO).get("codebase_version")
        version = read_json(source, INFO).get("codebase_version")
    except (DatasetError, AttributeError):
        return None
    return done if version in NATURAL_TARGET and done == target_of(version, options) and done != version else None


def older(version: str, than: str) -> bool:
    """Whether LeRobot ``version`` comes before ``than`` (both read here)."""
    order = list(PLANNERS)
    return order.index(version) < order.index(than) if version in order and than in order else False


def target_of(version: str, options: StatsOptions) -> str:
    """The version to write: ``--to``, else the dataset's natural target (v2.x -> v2.1, v3.0 stays v3.0)."""
    return options.to or NATURAL_TARGET[version]


def choose(version: str, options: StatsOptions, force: bool) -> type[Writer] | AlreadyThere:
    """The writer for a dataset at ``version`` and these options, or :class:`AlreadyThere` (nothing to do)."""
    to = target_of(version, options)
    writer = _writer(version, options)
    if writer is None:
        raise DatasetError(Problem(f"converting a {version} dataset to {to} is not supported",
                                   fix=f"choose --to {' or --to '.join(t for v, t in WRITERS if v == version)}"))
    if version == to and not force and writer is WRITERS[version, to]:
        return AlreadyThere(version, writer.description)
    return writer


def _writer(version: str, options: StatsOptions) -> type[Writer] | None:
    """The writer of a dataset at ``version`` for these options (None: no writer does that)."""
    key = (version, target_of(version, options))
    if options.file_sizes_given and key in RESIZERS:
        return RESIZERS[key]
    return WRITERS.get(key)


def own_diagnosis(plan: Plan, options: StatsOptions) -> list[Problem] | None:
    """The problems of a dataset whose format judges its own files (v3.0: row ranges, frames at the episodes'
    offsets; the cameras of the plan only); None when the episode checks of :mod:`dask_stats.check` apply (v2.x)."""
    if plan.version == "v3.0":
        return diagnose_v30(plan.store, options.tolerance_s, plan.videos)
    return None


def published_findings(plan: Plan, records: list[dict]) -> list[Problem]:
    """How the per-episode stats that the dataset already publishes compare with the new ``records`` (a v2.1
    dataset's episodes_stats.jsonl; warnings)."""
    path = plan.store.path(v2_layout.EPISODES_STATS)
    if plan.version == "v2.1" and plan.store.is_file(path):
        return compare_episode_stats(records, read_jsonl(plan.store, v2_layout.EPISODES_STATS), plan.features,
                                     plan.store.display(path))
    return []


def push_layout(version: str, options: StatsOptions, default: PushLayout) -> PushLayout:
    """What a Hub push publishes after converting a dataset at ``version`` with these options: the writer's
    layout, or ``default`` for a combination that no writer handles (the conversion will say why)."""
    writer = _writer(version, options) if version in NATURAL_TARGET else None
    return writer.push_layout if writer is not None else default


__all__ = ["WRITERS", "AlreadyThere", "Computed", "Writer", "choose", "own_diagnosis", "plan_dataset",
           "finished_output", "interrupted", "older", "published_findings", "push_layout", "recover",
           "target_of"]
