"""New stats for an existing v3.0 dataset: only the ``stats/*`` columns of ``meta/episodes`` and ``meta/stats.json``
change (data and videos are untouched); each file is replaced atomically, locally or on a store (``--root s3://...``:
one PUT per object).  Features that were not recomputed (left out with ``--exclude-features``) keep their published
stats: their columns and their stats.json entries."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from ...errors import Problem
from ...hub.push import V30_STATS
from ...plan import Plan
from ...stats.doctor import StatsReport
from ..base import Computed, Writer
from ..report import published_report
from .layout import STATS_PATH
from .meta import episodes_table, flatten_stats, stats_by_episode, write_stats
from .reader import episodes_files
from .writer import dataset_stats

STATS_PREFIX = "stats/"


def written_files(plan: Plan) -> list[str]:
    """The files a recomputation replaces (relative): every meta/episodes file and meta/stats.json."""
    return [*episodes_files(plan.store), STATS_PATH]


class RestatWriter(Writer):
    """New stats for a v3.0 dataset, in place or into a copy made here with its data and videos hard-linked.  The
    published stats are what is being replaced: comparing with them is a report, not a gate (``verification``)."""

    format = "v3.0"
    push_layout = V30_STATS
    dataset_quantiles = True
    verification = "report"
    description = "its stats (meta/episodes and meta/stats.json)"
    mirrors = True

    def commit(self, computed: Computed) -> None:
        """Write the new per-episode stats into the meta/episodes files and the dataset stats into stats.json;
        features left out keep theirs.  How wrong the published stats were goes to ``computed.warnings``."""
        plan, target = self.plan, self.target
        fresh_stats = dataset_stats(plan, computed.tables, computed.quantiles)
        report = published_report(plan, fresh_stats, computed.records)
        if target != plan.store:
            plan.store.mirror_to(target, skip=set(written_files(plan)))
        stats = stats_by_episode(computed.records)
        for relative in episodes_files(plan.store):
            with plan.store.source(plan.store.path(relative)) as source:
                table = with_stats(pq.read_table(source), stats, plan.stats_features)
            with target.writing(target.path(relative)) as tmp:  # one object, replaced whole (a PUT on a store)
                pq.write_table(table, tmp, compression="snappy")
        write_stats(target.path(STATS_PATH), {**fresh_stats, **published_kept(plan)}, target)
        computed.warnings += report_warnings(report)


def with_stats(table: pa.Table, stats: dict[int, dict], features: list[str]) -> pa.Table:
    """A meta/episodes ``table`` whose ``stats/<feature>/*`` columns of ``features`` are replaced by ``stats``
    (per episode index, as :func:`stats_by_episode` gives them); the other columns are kept."""
    replaced = tuple(f"{STATS_PREFIX}{feature}/" for feature in features)
    kept = [name for name in table.column_names if not name.startswith(replaced)]
    table = table.select(kept)
    fresh = episodes_table([flatten_stats(stats[i]) for i in table.column("episode_index").to_pylist()])
    position = next((i for i, name in enumerate(kept) if name.startswith("meta/episodes/")), len(kept))
    for offset, name in enumerate(fresh.column_names):  # where lerobot puts them: before meta/episodes/*
        table = table.add_column(position + offset, pa.field(name, fresh.schema.field(name).type),
                                 fresh.column(name))
    return table


REPORT_ROWS = 8  # rows of the doctor's report in the summary of a recompute


def report_warnings(report: StatsReport) -> list[Problem]:
    """The top rows of the doctor's report, as a problem to show in the summary of a recompute ([]: all right)."""
    if not report.rows:
        return []
    return [Problem("the published stats were wrong (replaced now): " + report.table(limit=REPORT_ROWS)
                    + "\n  (dask_stats check --stats --json lists every difference)",
                    severity="warning" if report.dangerous else "info")]


def published_kept(plan: Plan) -> dict:
    """The stats.json entries of declared features that were not recomputed ({} without a readable stats.json)."""
    if not plan.has_stats_json:
        return {}
    try:
        published = json.loads(plan.store.read_text(plan.store.path(STATS_PATH)))
    except (OSError, ValueError):
        return {}
    if not isinstance(published, dict):
        return {}
    return {name: stats for name, stats in published.items()
            if name in plan.features and name not in plan.stats_features}
