"""The stats doctor's writer: a conversion's stats run whose commit writes nothing.  It compares the stats that the
dataset publishes (``meta/stats.json``; per episode, v3.0's ``stats/*`` columns of ``meta/episodes`` or v2.1's
``meta/episodes_stats.jsonl``) with the exact ones (``stats.doctor``)."""

from __future__ import annotations

import pyarrow as pa

from ..errors import DatasetError
from ..options import Options
from ..plan import Plan, read_json, read_jsonl
from ..stats.doctor import StatsReport, stats_report
from ..storage import Store
from .base import Computed, Writer
from .v2 import layout as v2_layout
from .v30.reader import read_episode_stats
from .v30.writer import dataset_stats


class ReportWriter(Writer):
    """Recomputes every stat and keeps the comparison with the published ones (``report``, ``exact``,
    ``published``); the dataset is only read."""

    format = None  # nothing is converted
    writes = False
    dataset_quantiles = True
    verification = "report"
    description = "nothing (a report of the published stats against the exact ones)"

    def __init__(self, plan: Plan, target: Store, options: Options, in_place: bool):
        super().__init__(plan, target, options, in_place)
        self.report: StatsReport | None = None
        self.exact: dict = {}
        self.published: dict = {}

    def aftermath(self) -> list[str]:
        return []

    def commit(self, computed: Computed) -> None:
        """Compare; write nothing."""
        self.exact = dataset_stats(self.plan, computed.tables, computed.quantiles)
        self.published, episodes = published_stats(self.plan)
        records = computed.records
        if self.plan.version != "v3.0":  # v2.x publishes no quantiles: none are missing, none compared
            self.exact = {name: _moments_only(stats) for name, stats in self.exact.items()}
            records = ({**record, "stats": {name: _moments_only(stats) for name, stats in record["stats"].items()}}
                       for record in records)
        self.report = stats_report(self.exact, self.published, self.plan.features, records, episodes)


def _moments_only(stats: dict) -> dict:
    """``stats`` without its quantiles (q01...)."""
    return {key: value for key, value in stats.items() if not (key[:1] == "q" and key[1:].isdigit())}


def published_report(plan: Plan, exact: dict, records: list[dict]) -> StatsReport:
    """The doctor's report of the stats published in ``plan``'s dataset against ``exact`` (stats.json-like) and the
    exact per-episode ``records``."""
    published, episodes = published_stats(plan)
    return stats_report(exact, published, plan.features, records, episodes)


def published_stats(plan: Plan) -> tuple[dict, dict[int, dict] | None]:
    """What the dataset publishes: its stats.json ({} when absent or unreadable) and its per-episode stats
    ({episode: {feature: {stat: value}}}; None where the version has none: v2.0)."""
    try:
        published = read_json(plan.store, v2_layout.STATS) if plan.has_stats_json else {}
    except DatasetError:
        published = {}
    if not isinstance(published, dict):
        published = {}
    if plan.version == "v3.0":
        try:
            return published, read_episode_stats(plan.store)
        except (DatasetError, OSError, ValueError, pa.ArrowException):
            return published, {}
    if plan.version == "v2.1":
        try:
            lines = read_jsonl(plan.store, v2_layout.EPISODES_STATS)
        except DatasetError:
            return published, {}
        return published, {int(line["episode_index"]): line.get("stats", {}) for line in lines
                           if isinstance(line, dict) and "episode_index" in line}
    return published, None
