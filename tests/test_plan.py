"""dask_stats.plan: what a conversion reads from info.json. Here: the channel axis of a video or image feature
comes from its ``names`` (as lerobot reads it), so channel-first declarations convert like channel-last ones."""

from __future__ import annotations

import json

from helpers import CAM, FAST, SMALL32

import dask_stats
from dask_stats.plan import channels_of


def test_channel_first_video_declaration_converts_like_channel_last(make_sample, copy_of, tmp_path):
    """Hand-made datasets declare videos ``[3, H, W]`` with names ``["channel", "height", "width"]``: the channel
    axis comes from ``names`` (as lerobot reads it), and the stats are those of the channel-last declaration."""
    small = make_sample(SMALL32)
    ds = copy_of(small)
    info = json.loads((ds / "meta/info.json").read_text())
    height, width, channels = info["features"][CAM]["shape"]
    info["features"][CAM].update(shape=[channels, height, width], names=["channel", "height", "width"])
    (ds / "meta/info.json").write_text(json.dumps(info, indent=4))
    dask_stats.convert(ds, tmp_path / "first", **FAST)
    dask_stats.convert(small, tmp_path / "last", **FAST)
    first, last = ((tmp_path / name / "meta/episodes_stats.jsonl").read_text().splitlines()
                   for name in ("first", "last"))
    assert first == last
    assert len(json.loads(first[0])["stats"][CAM]["mean"]) == 3  # (C, 1, 1)


def test_channels_of_follows_names():
    assert channels_of({"shape": [3, 224, 224], "names": ["channel", "height", "width"]}) == 3
    assert channels_of({"shape": [224, 224, 3], "names": ["height", "width", "channels"]}) == 3
    assert channels_of({"shape": [224, 224, 3], "names": None}) == 3
    assert channels_of({"shape": [4, 224, 224], "names": ["Channels", "h", "w"]}) == 4


def test_channel_first_image_declaration_converts_like_channel_last(make_sample, copy_of, tmp_path):
    """An image column declared ``[3, H, W]`` with names ``["channel", "height", "width"]`` gets the stats of
    its channel-last declaration."""
    from dask_stats.synthetic import SampleSpec

    source = make_sample(SampleSpec(lengths=[6, 4], cameras={}, image_column="observation.images.cam_png"), "images")
    dask_stats.convert(source, tmp_path / "out_last", **FAST)
    first = copy_of(source, name="channel_first")
    info = json.loads((first / "meta/info.json").read_text())
    feature = info["features"]["observation.images.cam_png"]
    height, width, channels = feature["shape"]
    feature.update(shape=[channels, height, width], names=["channel", "height", "width"])
    (first / "meta/info.json").write_text(json.dumps(info, indent=4))
    dask_stats.convert(first, tmp_path / "out_first", **FAST)
    lines = [(tmp_path / name / "meta/episodes_stats.jsonl").read_text() for name in ("out_first", "out_last")]
    assert lines[0] == lines[1]
