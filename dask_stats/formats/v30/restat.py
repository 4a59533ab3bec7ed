"""New stats for an existing v3.0 dataset: only the ``stats/*`` columns of ``meta/episodes`` and ``meta/stats.json``
change (data and videos are untouched); each file is replaced atomically, locally or on a store (``--root s3://...``:
one PUT per object)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from ...hub.push import V30_STATS
from ...plan import Plan
from ..base import Computed, Writer
from .layout import STATS_PATH
from .meta import episodes_table, flatten_stats, stats_by_episode, write_stats
from .reader import episodes_files
from .writer import dataset_stats

STATS_PREFIX = "stats/"


def written_files(plan: Plan) -> list[str]:
    """The files a recomputation replaces (relative): every meta/episodes file and meta/stats.json."""
    return [*episodes_files(plan.store), STATS_PATH]


class RestatWriter(Writer):
    """New stats for a v3.0 dataset, in place or into a copy made here with its data and videos hard-linked."""

    format = "v3.0"
    push_layout = V30_STATS
    dataset_quantiles = True
    description = "its stats (meta/episodes and meta/stats.json)"

    def commit(self, computed: Computed) -> None:
        """Write the new per-episode stats into the meta/episodes files and the dataset stats into stats.json."""
        plan, target = self.plan, self.target
        if target != plan.store:
            plan.store.mirror_to(target, skip=set(written_files(plan)))
        stats = stats_by_episode(computed.records)
        for relative in episodes_files(plan.store):
            with plan.store.source(plan.store.path(relative)) as source:
                table = pq.read_table(source)
            kept = [name for name in table.column_names if not name.startswith(STATS_PREFIX)]
            table = table.select(kept)
            fresh = episodes_table([flatten_stats(stats[i]) for i in table.column("episode_index").to_pylist()])
            position = next((i for i, name in enumerate(kept) if name.startswith("meta/episodes/")), len(kept))
            for offset, name in enumerate(fresh.column_names):  # where lerobot puts them: before meta/episodes/*
                table = table.add_column(position + offset, pa.field(name, fresh.schema.field(name).type),
                                         fresh.column(name))
            with target.writing(target.path(relative)) as tmp:  # one object, replaced whole (a PUT on a store)
                pq.write_table(table, tmp, compression="snappy")
        write_stats(target.path(STATS_PATH), dataset_stats(plan, computed.tables, computed.quantiles), target)
