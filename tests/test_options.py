"""dask_stats.options: every option declared once, checked the same way by the command line and the Python API,
and what follows from them (here: whether a dashboard is served)."""

from __future__ import annotations

import pytest

from dask_stats import cli
from dask_stats.errors import DatasetError
from dask_stats.options import Options, RunOptions


def test_dashboard_only_where_its_link_is_shown():
    assert RunOptions().dashboard() == "127.0.0.1:0"
    assert RunOptions(quiet=True).dashboard() is None  # nobody would learn its port
    assert RunOptions(quiet=True, dashboard_address="127.0.0.1:8799").dashboard() == "127.0.0.1:8799"
    assert RunOptions(dashboard_address="off").dashboard() is None


@pytest.mark.parametrize("flag, value", [("--num-workers", "-1"), ("--num-workers", "0"), ("--task-timeout", "-5"),
                                         ("--tolerance-s", "-1"), ("--tolerance-s", "nan"), ("--retries", "-1"),
                                         ("--data-file-size-in-mb", "0"), ("--quantiles", "0.015")])
def test_bad_values_are_refused_by_the_parser_and_the_api(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["convert", "--root", "unused", flag, value])
    assert exit_.value.code == 2
    assert flag in capsys.readouterr().err
    name = flag[2:].replace("-", "_")
    with pytest.raises(DatasetError, match=f"option {name}"):
        Options.of(**{name: value})


def test_options_are_grouped_by_what_they_change():
    options = Options.of(video_backend="decord", num_workers=3, skip_verify=True, to="v3.0")
    assert options.stats.video_backend == "decord" and options.stats.to == "v3.0"
    assert options.run.num_workers == 3 and options.safety.skip_verify
    assert options.stats.quantiles is None and options.stats.quantile_levels == ()  # the writer decides the default
    with pytest.raises(DatasetError, match="did you mean 'num_workers'"):
        Options.of(num_worker=3)
    with pytest.raises(DatasetError, match="expected one of auto, threads, processes"):
        Options.of(scheduler="thread")


def test_the_writer_decides_the_default_quantiles():
    """lerobot's q01..q99 where the target has dataset-wide quantiles (v3.0), none for v2.1; asked ones always."""
    from dask_stats.convert import _for_writer
    from dask_stats.formats import WRITERS

    default = Options.of()
    assert _for_writer(default, WRITERS["v2.0", "v3.0"]).stats.quantile_levels == (0.01, 0.1, 0.5, 0.9, 0.99)
    assert _for_writer(default, WRITERS["v3.0", "v3.0"]).stats.to == "v3.0"
    assert _for_writer(default, WRITERS["v2.0", "v2.1"]).stats.quantile_levels == ()
    assert _for_writer(Options.of(quantiles="0.5"), WRITERS["v2.0", "v2.1"]).stats.quantile_levels == (0.5,)
