"""``check --stats``: how wrong the published stats of a dataset are, without changing it.

The stats are recomputed exactly, by the conversion's own machinery, and handed to a writer that writes nothing
(``formats.report.ReportWriter``): it compares them with the published ones (``stats.doctor``); the report can also
be drawn into one HTML page (``stats.html``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .convert import read_through
from .formats.report import ReportWriter
from .stats.doctor import StatsReport
from .stats.html import html_report
from .storage.atomic import atomic_path


def doctor(root: str | os.PathLike, *, html: str | os.PathLike | None = None, **options) -> StatsReport:
    """The report of the published stats of the dataset at ``root`` (v3.0, v2.1 or v2.0) against the exact ones;
    with ``html``, also that page.  ``options``: those of :func:`dask_stats.convert` (``exclude_features``,
    ``quantiles``...)."""
    reader = read_through(root, ReportWriter, **{"quiet": True, **options})
    if html is not None:
        with atomic_path(os.fspath(html)) as tmp:
            Path(tmp).write_text(html_report(reader.report, reader.exact, reader.published, reader.plan.features,
                                             title=str(root)), encoding="utf-8")
    return reader.report
