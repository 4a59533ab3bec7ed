"""How wrong published stats are: each published number beside the exact one, per feature, dimension and stat (of
the dataset, ``stats.json``, and of each episode, ``meta/episodes``), its difference relative to the feature's spread
(the exact max - min of that dimension), dangerous differences first.  Pure: the caller reads the files.

Dangerous (``Row.danger``): a published std of 0, or below half the true one, where the truth is not 0 (MEAN_STD
normalization divides by it); a lowest/highest quantile off by more than ``BOUND_FRACTION`` of the range (QUANTILES
normalization maps it to -1/+1); index, episode_index or task_index stats that are not those of the data (stale after
a merge or re-indexing)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

STD_RATIO = 0.5  # a published std below this fraction of the true one is dangerous
BOUND_FRACTION = 0.03  # a q01/q99 bound off by more than this fraction of the range is dangerous
NOISE = 1e-6  # differences below this fraction of the spread are not listed (rounding to float32 and below)
INDEX_FEATURES = ("index", "episode_index", "task_index")
CHANNELS = ("R", "G", "B")


@dataclass(frozen=True)
class Row:
    feature: str
    dimension: int
    name: str  # the dimension's name (info.json ``names``; R/G/B for cameras)
    stat: str
    published: float
    exact: float
    relative: float  # |published - exact| / spread of the dimension
    episode: int | None = None  # None: the dataset's stats.json
    danger: str | None = None

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


@dataclass
class StatsReport:
    rows: list[Row] = field(default_factory=list)  # dangerous first, then by relative difference
    compared: int = 0  # published numbers compared
    missing: list[str] = field(default_factory=list)  # what the published stats lack ("feature.stat", episodes)

    @property
    def dangerous(self) -> list[Row]:
        return [row for row in self.rows if row.danger]

    @property
    def exit_status(self) -> int:
        """For CI: 1 when a published stat is dangerous, else 0."""
        return 1 if self.dangerous else 0

    def summary(self) -> str:
        return (f"{len(self.rows)} of {self.compared} published stats differ from the exact ones "
                f"({len(self.dangerous)} dangerous)")

    def table(self, limit: int | None = 20) -> str:
        """The largest differences, dangerous first, as text."""
        lines = [self.summary(), f"{'where':12} {'feature':28} {'dimension':16} {'stat':5} {'published':>12} "
                 f"{'exact':>12} {'diff/range':>10}  danger"]
        for row in self.rows[:limit]:
            where = "stats.json" if row.episode is None else f"episode {row.episode}"
            lines.append(f"{where:12} {row.feature[:28]:28} {row.name[:16]:16} {row.stat:5} {row.published:12.6g} "
                         f"{row.exact:12.6g} {row.relative:10.3g}  {row.danger or ''}")
        if limit is not None and len(self.rows) > limit:
            lines.append(f"... {len(self.rows) - limit} more (--json lists them all)")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"summary": self.summary(), "compared": self.compared, "dangerous": len(self.dangerous),
                "exit_status": self.exit_status, "missing": self.missing, "rows": [r.as_dict() for r in self.rows]}


def stats_report(exact: Mapping[str, Mapping], published: Mapping[str, Mapping], features: Mapping[str, dict],
                 exact_episodes: Iterable[Mapping] = (),
                 published_episodes: Mapping[int, Mapping[str, Mapping]] | None = None) -> StatsReport:
    """Compare ``published`` stats.json with the ``exact`` one ({feature: {stat: array}}), and, per episode, the
    ``published_episodes`` ({episode: {feature: {stat: value}}}, as in meta/episodes) with ``exact_episodes``
    (records ``{"episode_index": i, "stats": {...}}``).  Features absent from ``exact`` are not judged."""
    report = StatsReport()
    spreads = {name: _spread(stats) for name, stats in exact.items()}
    _compare(report, exact, published, features, spreads, None)
    for record in exact_episodes:
        episode = int(record["episode_index"])
        theirs = (published_episodes or {}).get(episode)
        if theirs is None:
            if published_episodes is not None:
                report.missing.append(f"episode {episode}")
            continue
        _compare(report, record["stats"], theirs, features, spreads, episode)
    report.rows.sort(key=lambda r: (r.danger is None, -r.relative if math.isfinite(r.relative) else -math.inf))
    return report


def _spread(stats: Mapping) -> np.ndarray:
    """max - min of each dimension (1 where that is 0 or unknown: the difference is then absolute)."""
    try:
        spread = (np.asarray(stats["max"], np.float64) - np.asarray(stats["min"], np.float64)).reshape(-1)
    except (KeyError, TypeError, ValueError):
        return np.ones(1)
    return np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)


def _compare(report: StatsReport, exact: Mapping, published: Mapping, features: Mapping, spreads: Mapping,
             episode: int | None) -> None:
    for feature, ours in exact.items():
        theirs = published.get(feature)
        if not isinstance(theirs, Mapping):
            report.missing.append(feature if episode is None else f"{feature} (episode {episode})")
            continue
        bounds = _bounds([stat for stat in ours if _is_quantile(stat)])
        names = dimension_names(features.get(feature, {}))
        for stat, value in ours.items():
            if stat == "count":
                continue
            if stat not in theirs or theirs[stat] is None:
                report.missing.append(f"{feature}.{stat}" + ("" if episode is None else f" (episode {episode})"))
                continue
            try:
                mine = np.asarray(value, np.float64).reshape(-1)
                pub = np.asarray(theirs[stat], np.float64).reshape(-1)
            except (TypeError, ValueError):
                report.missing.append(f"{feature}.{stat} (not numbers)")
                continue
            if mine.size != pub.size:
                report.missing.append(f"{feature}.{stat} (shape {pub.size}, expected {mine.size})")
                continue
            spread = spreads.get(feature, np.ones(1))
            spread = spread if spread.size == mine.size else np.ones(mine.size)
            report.compared += mine.size
            with np.errstate(invalid="ignore"):
                relative = np.abs(pub - mine) / spread
            for d in np.flatnonzero(~(relative <= NOISE) & ~(np.isnan(pub) & np.isnan(mine))):
                danger = _danger(feature, stat, float(pub[d]), float(mine[d]), float(relative[d]), stat in bounds)
                report.rows.append(Row(feature, int(d), names[d] if d < len(names) else str(d), stat, float(pub[d]),
                                       float(mine[d]), float(relative[d]), episode, danger))


def _danger(feature: str, stat: str, published: float, exact: float, relative: float, bound: bool) -> str | None:
    if stat == "std" and exact > 0 and not published >= STD_RATIO * exact:
        if published == 0:
            return f"published std 0 (true {exact:.3g}): mean/std normalization divides by ~0"
        return f"published std {published / exact:.0%} of the true one"
    if bound and not relative <= BOUND_FRACTION:
        return f"{stat} bound off by {relative:.0%} of the range"
    if feature in INDEX_FEATURES and stat in ("min", "max", "mean"):
        return f"stale {feature} stats (the data was re-indexed, e.g. by a merge)"
    return None


def _is_quantile(stat: str) -> bool:
    return len(stat) == 3 and stat[0] == "q" and stat[1:].isdigit()


def _bounds(quantiles: list[str]) -> set[str]:
    """The lowest and highest quantile keys (q01 and q99 by default): the normalization bounds."""
    return {min(quantiles), max(quantiles)} if quantiles else set()


def dimension_names(feature: dict) -> list[str]:
    if feature.get("dtype") in ("video", "image"):
        return list(CHANNELS)
    names = feature.get("names")
    if isinstance(names, dict):  # lerobot's {"motors": [...]} form
        names = next(iter(names.values()), None)
    return [str(n) for n in names] if isinstance(names, list) else []
