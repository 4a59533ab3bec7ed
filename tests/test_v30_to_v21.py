"""``convert --to v2.1`` on a v3.0 dataset: per-episode files cut by stream copy, v2.1 metadata, exact stats; a round
trip v2.0 -> v3.0 -> v2.1 gives back the source's rows and frames."""

from __future__ import annotations

import json

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import CAM, FAST, MESSY, run_cli, tree_digest
from v30_helpers import decode

import dask_stats
from dask_stats.formats.v2.from_v30 import data_path, video_path
from dask_stats.formats.v30.reader import read_dataset
from dask_stats.synthetic import Camera, SampleSpec

SIZES = {"data_file_size_in_mb": 0.1, "video_file_size_in_mb": 0.02}  # files of one and of two episodes
ONE_CAMERA = SampleSpec(lengths=[20, 35, 12], cameras={CAM: Camera(32, 32)})


@pytest.fixture(scope="module")
def v30(messy_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("v30") / "out"
    dask_stats.convert(messy_dataset, out, to="v3.0", **SIZES, **FAST)
    return out


@pytest.fixture(scope="module")
def v21(v30, tmp_path_factory):
    out = tmp_path_factory.mktemp("v21") / "out"
    before = tree_digest(v30)
    result = dask_stats.convert(v30, out, to="v2.1", **FAST)
    assert tree_digest(v30) == before, "the source is never modified"
    assert result.format == "v2.1" and not result.warnings
    return out


def test_round_trip_gives_back_rows_and_frames(messy_dataset, v30, v21):
    dataset = read_dataset(str(v30))
    assert len({ep.data_path for ep in dataset.episodes}) < 5 and len({ep.videos[CAM].path for ep in
                                                                       dataset.episodes}) > 1
    for ep in range(len(MESSY.lengths)):
        got = pq.read_table(v21 / data_path(ep))
        want = pq.read_table(messy_dataset / data_path(ep, MESSY.chunks_size))
        assert got.equals(want.select(got.column_names)) and set(got.column_names) == set(want.column_names)
        for camera in MESSY.cameras:
            new, old = decode(v21 / video_path(ep, camera)), decode(messy_dataset / video_path(ep, camera,
                                                                                                MESSY.chunks_size))
            assert [t for t, _ in new] == pytest.approx([t for t, _ in old], abs=1e-9) and new[0][0] == 0.0
            assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(new, old))
            with av.open(str(v21 / video_path(ep, camera))) as a, \
                    av.open(str(messy_dataset / video_path(ep, camera, MESSY.chunks_size))) as b:
                assert a.streams.video[0].codec_context.extradata == b.streams.video[0].codec_context.extradata


def test_metadata_is_the_sources(messy_dataset, v21):
    for name in ("episodes.jsonl", "tasks.jsonl"):
        assert (v21 / "meta" / name).read_text() == (messy_dataset / "meta" / name).read_text()
    info, source = (json.loads((root / "meta/info.json").read_text()) for root in (v21, messy_dataset))
    assert info == {**source, "codebase_version": "v2.1", "chunks_size": 1000, "total_chunks": 1}
    assert list(info) == list(source)


def test_stats_equal_a_direct_v21_conversion(messy_dataset, v21, local_stats):
    assert (v21 / "meta/episodes_stats.jsonl").read_bytes() == local_stats(messy_dataset)
    stats = json.loads((v21 / "meta/stats.json").read_text())
    assert stats["observation.state"]["count"] == [sum(MESSY.lengths)]


def test_output_converts_back_to_the_same_v30(v30, v21, tmp_path):
    again = tmp_path / "again"
    dask_stats.convert(v21, again, to="v3.0", **SIZES, **FAST)
    first, second = read_dataset(str(v30)), read_dataset(str(again))
    assert [(e.length, e.dataset_from_index) for e in first.episodes] == \
        [(e.length, e.dataset_from_index) for e in second.episodes]  # video files group by size: MP4 headers differ
    assert (again / "meta/stats.json").read_text() == (v30 / "meta/stats.json").read_text()


def test_in_place_keeps_the_v30_tree_beside(make_sample, tmp_path):
    root = tmp_path / "ds"
    dask_stats.convert(make_sample(ONE_CAMERA, "one_camera"), root, to="v3.0", **FAST)
    before = tree_digest(root)
    dask_stats.convert(root, to="v2.1", **FAST)
    assert json.loads((root / "meta/info.json").read_text())["codebase_version"] == "v2.1"
    assert tree_digest(tmp_path / "ds_old") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds_old"], "no staging tree left"


def test_cli_to_v21(make_sample, tmp_path):
    v30 = tmp_path / "v30"
    dask_stats.convert(make_sample(ONE_CAMERA, "one_camera"), v30, to="v3.0", **FAST)
    done = run_cli("convert", "--root", str(v30), "--output", str(tmp_path / "v21"), "--to", "v2.1",
                   "--scheduler", "threads", "--quiet")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "v21" / video_path(2, CAM)).is_file()


def continuous_encode(path, fps: int = 30) -> None:
    """Re-encode a concatenated video as one stream with a keyframe only at the start (same frame times): its
    episodes after the first do not start on a keyframe, as in a file written by another tool than lerobot."""
    frames = decode(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0][1].shape[1], frames[0][1].shape[0], "yuv420p"
        stream.options = {"crf": "10", "bf": "0", "g": "1000", "keyint_min": "1000", "sc_threshold": "0"}
        for t, rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = round(t * fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_episode_off_a_keyframe_is_reencoded_and_said(make_sample, tmp_path):
    v30 = tmp_path / "v30"
    dask_stats.convert(make_sample(ONE_CAMERA, "one_camera"), v30, to="v3.0", **FAST)
    files = sorted((v30 / "videos").rglob("*.mp4"))
    assert len(files) == 1
    continuous_encode(files[0])
    result = dask_stats.convert(v30, tmp_path / "v21", to="v2.1", skip_verify=True, **FAST)
    said = [w for w in result.warnings if "re-encoded" in w.message]
    assert sorted(w.episode for w in said) == [1, 2] and all("keyframe" in w.message for w in said)
    assert "libx264" in said[0].message and "g=2" in said[0].message
    for ep, length in enumerate(ONE_CAMERA.lengths):
        times = [t for t, _ in decode(tmp_path / "v21" / video_path(ep, CAM))]
        assert times == pytest.approx([k / 30 for k in range(length)], abs=1e-4)
