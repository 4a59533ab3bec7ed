"""``check --stats``: how wrong the published stats of a v3.0 dataset are, without changing it.

The stats are recomputed exactly (the conversion's own machinery) into a temporary copy of the metadata, compared
with the published ones (``stats.doctor``), optionally drawn into one HTML page (``stats.html``), and the copy is
removed: nothing is written to the dataset.  (Until the conversion has a report-only writer, the copy holds the
dataset's files hard-linked, or copied where links cannot be made.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import DatasetError, Problem
from .formats.v30.reader import read_episode_stats, read_info, read_stats
from .stats.doctor import StatsReport, stats_report
from .stats.html import html_report
from .storage import Store
from .storage.atomic import atomic_path


def doctor(root: str | os.PathLike, *, html: str | os.PathLike | None = None, **options) -> StatsReport:
    """The report of the published stats of the v3.0 dataset at ``root`` against the exact ones; with ``html``, also
    that page.  ``options``: those of :func:`dask_stats.convert` (``exclude_features``, ``quantiles``...)."""
    from .convert import convert

    store = Store(root)
    info = read_info(store)
    if not store.local or str(info.get("codebase_version")) != "v3.0":
        raise DatasetError(Problem(f"check --stats reads local v3.0 datasets; this one is "
                                   f"{info.get('codebase_version')!r}{'' if store.local else ' and remote'}",
                                   path=store.display(store.path("meta/info.json")),
                                   fix="convert it first (--to v3.0), or compare after a conversion"))
    options = {"quiet": True, **options, "force": True, "delete_old_stats": False}
    with tempfile.TemporaryDirectory(prefix="dask_stats-doctor-") as scratch:
        exact_root = Path(scratch) / "exact"
        convert(root, exact_root, **options)
        left_out = set(options.get("exclude_features") or ())  # their published stats were kept, not recomputed
        exact = {name: stats for name, stats in read_stats(str(exact_root)).items() if name not in left_out}
        records = [{"episode_index": i, "stats": {name: s for name, s in stats.items() if name not in left_out}}
                   for i, stats in sorted(read_episode_stats(str(exact_root)).items())]
    published = read_stats(store) if store.is_file(store.path("meta/stats.json")) else {}
    report = stats_report(exact, published, info["features"], records, read_episode_stats(store))
    if html is not None:
        with atomic_path(os.fspath(html)) as tmp:
            Path(tmp).write_text(html_report(report, exact, published, info["features"], title=str(root)),
                                 encoding="utf-8")
    return report
