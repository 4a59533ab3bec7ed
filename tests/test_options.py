"""dask_stats.options: the run's options and what follows from them (here: whether a dashboard is served)."""

from __future__ import annotations

from dask_stats.options import RunOptions


def test_dashboard_only_where_its_link_is_shown():
    assert RunOptions().dashboard() == "127.0.0.1:0"
    assert RunOptions(quiet=True).dashboard() is None  # nobody would learn its port
    assert RunOptions(quiet=True, dashboard_address="127.0.0.1:8799").dashboard() == "127.0.0.1:8799"
    assert RunOptions(dashboard_address="off").dashboard() is None
