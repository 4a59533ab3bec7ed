"""v3.0 -> v2.1 building blocks: episodes cut out of concatenated videos by stream copy (or re-encoded when they
do not start on a keyframe), per-episode Parquet files split from v3.0 data files, v2.1 metadata."""

from __future__ import annotations

import itertools
import json

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import FAST, MESSY
from v30_helpers import decode, encode

import dask_stats
from dask_stats.errors import DatasetError
from dask_stats.formats.v2.from_v30 import data_path, episode_lines, info_v21, task_lines, video_path
from dask_stats.formats.v2.split import EpisodeRows, split_data_file
from dask_stats.formats.v30.meta import info_v30
from dask_stats.formats.v30.reader import read_dataset
from dask_stats.storage import Store
from dask_stats.video.encode import EncoderSettings
from dask_stats.video.frames import verify_cut_frames
from dask_stats.video.remux import concat_videos, cut_episodes, output_packets

FPS = 30
TINY = {"data_file_size_in_mb": 0.1, "video_file_size_in_mb": 0.02}  # files of 1 and 2 episodes


@pytest.fixture(scope="module")
def v30(messy_dataset, tmp_path_factory):
    """MESSY as v3.0 with tiny file limits: several episodes per file, and rollovers."""
    out = tmp_path_factory.mktemp("v30") / "out"
    dask_stats.convert(messy_dataset, out, to="v3.0", **TINY, **FAST)
    return out


def by_video_file(dataset, camera):
    files: dict[str, list] = {}
    for ep in dataset.episodes:
        files.setdefault(ep.videos[camera].path, []).append(ep)
    return files


@pytest.mark.parametrize("camera", ["observation.images.top", "observation.images.wrist"])
def test_cut_gives_back_every_source_frame_starting_at_zero(messy_dataset, v30, tmp_path, camera):
    dataset = read_dataset(str(v30))
    files = by_video_file(dataset, camera)
    assert len(files) > 1 and any(len(eps) > 1 for eps in files.values()), "rollovers and shared files"
    for path, episodes in files.items():
        dests = [str(tmp_path / f"{ep.index}.mp4") for ep in episodes]
        spans = [(ep.videos[camera].from_timestamp, ep.videos[camera].to_timestamp) for ep in episodes]
        cuts = cut_episodes(str(v30 / path), spans, dests)
        assert all(cut.stream_copied for cut in cuts)
        for ep, dest, cut in zip(episodes, dests, cuts):
            source = messy_dataset / video_path(ep.index, camera, MESSY.chunks_size)
            got, want = decode(dest), decode(source)
            assert cut.frames == ep.length == len(got)
            assert [t for t, _ in got] == pytest.approx([t for t, _ in want], abs=1e-9)
            assert got[0][0] == 0.0
            assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want))
            assert verify_cut_frames(str(v30 / path), ep.videos[camera].from_timestamp, dest,
                                     [0.0, (ep.length - 1) / FPS], episode=ep.index, feature=camera) == []


@pytest.fixture(scope="module")
def b_frames(tmp_path_factory):
    """Episodes that start with B-frames (negative DTS), a 1-frame episode among them, concatenated."""
    root = tmp_path_factory.mktemp("bframes")
    specs = [(12, {"crf": "18", "bf": "2"}), (1, {"crf": "18"}), (7, {"crf": "18", "bf": "3"}),
             (9, {"crf": "18", "bf": "2", "g": "4"})]
    sources = []
    for i, (n, options) in enumerate(specs):
        sources.append(str(root / f"episode_{i}.mp4"))
        encode(sources[-1], n, seed=300 + i, options=options)
    concat = str(root / "file-000.mp4")
    spans = concat_videos(sources, concat)
    return sources, concat, spans


def test_b_frame_episodes_cut_back_exactly(b_frames, tmp_path):
    sources, concat, spans = b_frames
    assert output_packets(sources[0])[0][1] < 0, "the fixture starts with B-frames (negative DTS)"
    dests = [str(tmp_path / f"{i}.mp4") for i in range(len(sources))]
    cuts = cut_episodes(concat, spans, dests)
    assert [cut.stream_copied for cut in cuts] == [True] * 4
    for source, dest, cut in zip(sources, dests, cuts):
        packets = output_packets(dest)
        assert len(packets) == cut.frames == len(output_packets(source))
        dts = [d for _, d in packets]
        assert all(a < b for a, b in itertools.pairwise(dts)) and all(d <= p for p, d in packets)
        assert min(p for p, _ in packets) == 0
        got, want = decode(dest), decode(source)
        assert [t for t, _ in got] == pytest.approx([t for t, _ in want], abs=1e-9)
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want))


@pytest.fixture(scope="module")
def one_encode(tmp_path_factory):
    """One 40-frame encode (keyframes every 30 frames, no B-frames) split into episodes at frame 10: the second
    episode does not start on a keyframe (a file written by another tool than lerobot)."""
    path = tmp_path_factory.mktemp("gop") / "file-000.mp4"
    frames = encode(path, 40, seed=7, options={"crf": "18", "bf": "0", "g": "30", "keyint_min": "30",
                                               "sc_threshold": "0"})
    return str(path), frames, [(0.0, 10 / FPS), (10 / FPS, 40 / FPS)]


def test_episode_not_on_a_keyframe_is_refused_without_encoder(one_encode, tmp_path):
    path, _, spans = one_encode
    dests = [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    cuts = cut_episodes(path, spans, dests)
    assert cuts[0].stream_copied and cuts[0].frames == 10
    assert not cuts[1].written and "keyframe" in cuts[1].reason
    assert not (tmp_path / "b.mp4").exists(), "nothing half-written"
    assert [f for f in tmp_path.iterdir()] == [tmp_path / "a.mp4"], "no temporary left"


def test_episode_not_on_a_keyframe_is_reencoded_with_lerobot_settings(one_encode, tmp_path):
    path, frames, spans = one_encode
    dests = [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    settings = EncoderSettings(codec="libx264", gop=2, crf=18)
    cuts = cut_episodes(path, spans, dests, fps=FPS, reencode=settings)
    assert cuts[0].stream_copied and not cuts[1].stream_copied and cuts[1].frames == 30
    got = decode(dests[1])
    assert [t for t, _ in got] == pytest.approx([k / FPS for k in range(30)], abs=1e-4)
    original = decode(path)[10:]
    assert max(np.abs(a.astype(int) - b.astype(int)).mean() for (_, a), (_, b) in zip(got, original)) < 8
    with av.open(dests[1]) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.codec.name, ctx.format.name) == ("h264", "yuv420p")
    keyframes = [p.is_keyframe for p in av.open(dests[1]).demux(video=0) if p.size]
    assert keyframes[:4] == [True, False, True, False], "lerobot's GOP of 2"


def test_encoder_settings_from_info_json():
    av1 = {"dtype": "video", "info": {"video.codec": "av1", "video.pix_fmt": "yuv420p"}}
    assert EncoderSettings.of_feature(av1) == EncoderSettings("libsvtav1", "yuv420p", 2, 30)
    assert EncoderSettings.of_feature({"dtype": "video", "video_info": {"video.codec": "h264"}}).codec == "libx264"
    assert EncoderSettings.of_feature({"dtype": "video"}).options() == {"g": "2", "crf": "30"}


def test_split_gives_each_episode_exactly_its_rows(messy_dataset, v30, tmp_path):
    dataset = read_dataset(str(v30))
    store = Store(str(v30))
    files: dict[str, list] = {}
    for ep in dataset.episodes:
        files.setdefault(ep.data_path, []).append(ep)
    assert any(len(eps) > 1 for eps in files.values())
    for path, episodes in files.items():
        start = episodes[0].dataset_from_index
        rows = [EpisodeRows(ep.index, ep.dataset_from_index - start, ep.dataset_to_index - start,
                            str(tmp_path / f"episode_{ep.index:06d}.parquet")) for ep in episodes]
        written = split_data_file(store, store.path(path), rows)
        assert [w.index for w in written] == [ep.index for ep in episodes]
        for ep, w in zip(episodes, written):
            got = pq.read_table(tmp_path / f"episode_{ep.index:06d}.parquet")
            want = pq.read_table(messy_dataset / data_path(ep.index, MESSY.chunks_size))
            assert got.num_rows == w.rows == ep.length
            assert got.schema.metadata == pq.read_schema(v30 / path).metadata
            assert got.select(want.column_names).equals(want), "every column unchanged"
            assert (w.first_time, w.last_time) == pytest.approx((0.0, (ep.length - 1) / FPS), abs=1e-6)


def test_split_refuses_rows_past_the_file(v30, tmp_path):
    store = Store(str(v30))
    ep = read_dataset(str(v30)).episodes[0]
    with pytest.raises(DatasetError, match="episode 0") as err:
        split_data_file(store, store.path(ep.data_path), [EpisodeRows(0, 0, 10_000, str(tmp_path / "x.parquet"))])
    assert "rows" in str(err.value) and not (tmp_path / "x.parquet").exists()


def test_info_round_trip_gives_back_the_v2_info(messy_dataset):
    v20 = json.loads((messy_dataset / "meta/info.json").read_text())
    v30_info = info_v30(v20, total_episodes=5)
    back = info_v21(v30_info, total_episodes=5, total_frames=v20["total_frames"], total_tasks=2,
                    chunks_size=v20["chunks_size"])
    assert back == {**v20, "codebase_version": "v2.1"}
    assert list(back) == list(v20), "lerobot's key order"
    assert "data_files_size_in_mb" not in back and all("fps" not in ft for ft in back["features"].values()
                                                        if ft["dtype"] != "video")


def test_episode_and_task_lines():
    assert episode_lines([(0, ("pick",), 3)]) == [{"episode_index": 0, "tasks": ["pick"], "length": 3}]
    assert task_lines({1: "b", 0: "a"}) == [{"task_index": 0, "task": "a"}, {"task_index": 1, "task": "b"}]

