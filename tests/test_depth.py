"""Depth-map video features as lerobot 0.6.1 writes them (``is_depth_map``: 12-bit log-quantized codes in HEVC
gray12le): decoded through PyAV into depth values, stats in the depth's unit (not divided by 255), exact against
numpy over the same sampled frames, in v2.1, v3.0 and a v3.0 recompute."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from depth_helpers import CODING, DEPTH, add_depth_camera, depth_frames
from helpers import FAST, SMALL32

import dask_stats
from dask_stats.stats.pixels import DEPTH_QMAX, DepthCoding
from dask_stats.stats.quantiles import DEFAULT_QUANTILES, quantile_key
from dask_stats.stats.sampling import sample_positions


@pytest.fixture(scope="module")
def depth_dataset(make_sample, tmp_path_factory):
    root = tmp_path_factory.mktemp("depth") / "v20"
    shutil.copytree(make_sample(SMALL32), root)
    return root, add_depth_camera(root)


def _numpy(values: np.ndarray) -> dict:
    return {"min": values.min(), "max": values.max(), "mean": values.mean(), "std": values.std(),
            **{quantile_key(q): np.quantile(values, q) for q in DEFAULT_QUANTILES}}


def _sampled(codes: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The depth (mm) of each episode's sampled frames, as lerobot's dequantize_depth returns it."""
    return {i: CODING.levels()[c[sample_positions(len(c))]] for i, c in codes.items()}


def test_the_coding_is_lerobots():
    levels = CODING.levels()
    assert levels[0] == 100.0 and levels[-1] == 4000.0 and np.all(np.diff(levels) >= 0)
    assert np.all(levels == np.rint(levels)), "millimetres are rounded, as dequantize_depth(output_unit='mm')"
    depth = depth_frames(0, 3)
    codes = CODING.quantize(depth)
    assert codes.dtype == np.uint16 and codes.max() <= DEPTH_QMAX
    assert np.abs(levels[codes] - depth).max() <= 0.01 * depth.max(), "a code stands for a depth near its own"
    feature = {"info": {"video.is_depth_map": True, "video.depth_max": 4.0, "depth_unit": "m"}}
    assert DepthCoding.of(feature) == DepthCoding(depth_max=4.0, unit="m")
    assert DepthCoding.of({"info": {"video.codec": "av1"}}) is None
    meters = DepthCoding(unit="m").levels()
    assert meters[0] == pytest.approx(0.01) and meters[-1] == pytest.approx(10.0) and not np.all(meters == 1.0)


def test_depth_stats_per_episode_are_numpys_in_millimetres(depth_dataset, tmp_path):
    root, codes = depth_dataset
    assert [p for p in dask_stats.check(root) if p.severity == "error"] == []
    out = tmp_path / "v21"
    dask_stats.convert(root, out, quantiles=True, **FAST)
    lines = [json.loads(line) for line in (out / "meta/episodes_stats.jsonl").read_text().splitlines()]
    for line, (episode, values) in zip(lines, _sampled(codes).items()):
        stats = line["stats"][DEPTH]
        assert line["episode_index"] == episode and stats["count"] == [len(values)]
        for name, expected in _numpy(values).items():
            assert np.shape(stats[name]) == (1, 1, 1), name
            assert stats[name][0][0][0] == pytest.approx(expected, rel=1e-12, abs=1e-9), (episode, name)
    assert lines[0]["stats"][DEPTH]["mean"][0][0][0] > 255, "depth units, not divided by 255"


def test_depth_in_v30_dataset_stats_and_a_recompute(depth_dataset, tmp_path):
    root, codes = depth_dataset
    out = tmp_path / "v30"
    dask_stats.convert(root, out, to="v3.0", **FAST)
    everything = np.concatenate(list(_sampled(codes).values()))
    stats = json.loads((out / "meta/stats.json").read_text())[DEPTH]
    for name, expected in _numpy(everything).items():
        assert stats[name][0][0][0] == pytest.approx(expected, rel=1e-12, abs=1e-9), name
    assert json.loads((out / "meta/info.json").read_text())["features"][DEPTH]["info"]["is_depth_map"] is True
    report = dask_stats.doctor(out, **FAST)
    assert [r for r in report.rows if r.feature == DEPTH] == [], "a recompute of the stream-copied videos agrees"
    result = dask_stats.convert(out, force=True, **FAST)
    assert result.verification.checked and not result.verification.failures
    assert json.loads((out / "meta/stats.json").read_text())[DEPTH] == stats


def test_a_backend_without_depth_says_which_to_use():
    from dask_stats.video.base import VideoReader

    class RGBOnly(VideoReader):
        def frame_times(self):
            return np.zeros(1)

        def read(self, indices):
            yield from ()

    with pytest.raises(ValueError, match="cannot read depth maps.*--video-backend pyav"):
        next(RGBOnly().read_depth(np.array([0])))
