"""engine.progress: the phases around the episode bar (planning, verifying, writing) show while they are long,
and stay silent when short or quiet."""

from __future__ import annotations

import time

import pytest
from helpers import FAST, TINY

import dask_stats
from dask_stats.engine import progress


def test_phases_show_while_long_and_stay_silent_when_short_or_quiet(capsys):
    with progress.Phases(delay=0.1, interval=0.05)("verifying"):
        time.sleep(0.4)
    err = capsys.readouterr().err
    assert "verifying:   0%" in err and "verifying: 100%" in err and "[00:00]" in err
    with progress.Phases(delay=0.5)("writing"):
        pass
    with progress.Phases(quiet=True, delay=0)("planning"):
        time.sleep(0.1)
    assert capsys.readouterr().err == ""
    with pytest.raises(ZeroDivisionError), progress.Phases(delay=0)("failing"):
        _ = 1 / 0
    assert "100%" not in capsys.readouterr().err


def test_convert_shows_its_phases_unless_quiet(make_sample, tmp_path, capsys, monkeypatch):
    tiny = make_sample(TINY)
    monkeypatch.setattr(progress.Phases.__init__, "__defaults__", (False, 0.0, 0.5))  # show even short phases
    dask_stats.convert(tiny, tmp_path / "loud", num_workers=2, dashboard_address="off")
    err = capsys.readouterr().err
    for phase in ("planning and checking: 100%", "episodes: 100%", "verifying: 100%", "writing: 100%"):
        assert phase in err, err
    assert err.index("planning") < err.index("episodes") < err.index("verifying") < err.index("writing")
    dask_stats.convert(tiny, tmp_path / "quiet", **FAST)
    assert capsys.readouterr().err == ""
