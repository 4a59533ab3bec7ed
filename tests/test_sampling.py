"""stats.sampling: which frames of an episode are sampled for its video stats, and how a sampled row finds its
frame in the video (nearest timestamp within the tolerance, or by index)."""

from __future__ import annotations

import numpy as np
import pytest

from dask_stats.stats.sampling import FrameLookupError, locate_frames, sample_positions


@pytest.mark.parametrize("length,count", [(1, 1), (99, 99), (100, 100), (470, 100), (471, 101), (1000, 177),
                                          (2000, 299), (5000, 594), (10000, 1000), (20000, 1681), (215444, 10000)])
def test_sample_counts_follow_reference(length, count):
    assert len(sample_positions(length)) == count


def test_sample_positions_round_half_to_even():
    assert sample_positions(471)[15] == 70  # 70.5 -> 70 (half-up would give 71)
    assert sample_positions(1).tolist() == [0]


def test_locate_frames_nearest_within_tolerance():
    times = np.arange(10) / 30
    positions = np.array([0, 4, 9])
    assert locate_frames(times, positions, times[positions] + 5e-5, 1e-4).tolist() == [0, 4, 9]
    with pytest.raises(FrameLookupError, match="row 9 at t=0.350000 s, nearest frame at 0.300000") as info:
        locate_frames(times, positions, np.array([0, 4, 10.5]) / 30, 1e-4)
    assert "--frame-lookup index" in info.value.fix
    assert locate_frames(times, positions, None, 1e-4).tolist() == [0, 4, 9]
    with pytest.raises(FrameLookupError, match="has 10 frames but row 12"):
        locate_frames(times, np.array([0, 12]), None, 1e-4)
