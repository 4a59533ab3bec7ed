"""v3.0 videos: stream-copy concatenation with exact integer offsets, and frame verification."""

import itertools
from fractions import Fraction

import av
import numpy as np
import pytest
from v30_helpers import AV1, decode, encode

from dask_stats.errors import DatasetError
from dask_stats.formats.v30.grouping import group_by_size
from dask_stats.video.frames import frame_at, verify_episode_frames
from dask_stats.video.remux import concat_videos, output_packets, packet_span, stream_signature

FPS = 30


@pytest.fixture(scope="module")
def h264_episodes(tmp_path_factory):
    """A 1-frame episode followed by B-frame episodes (lerobot's "non monotonically increasing dts")."""
    root = tmp_path_factory.mktemp("h264")
    specs = [(1, {"crf": "18"}), (12, {"crf": "18", "bf": "2"}), (7, {"crf": "18", "bf": "3"}),
             (1, {"crf": "18"}), (25, {"crf": "18"}), (9, {"crf": "18", "bf": "2", "g": "4"})]
    episodes = []
    for i, (n, options) in enumerate(specs):
        path = root / f"episode_{i:06d}.mp4"
        encode(path, n, seed=100 + i, options=options)
        episodes.append((str(path), n))
    return episodes


def check_concat(episodes, dest):
    sources = [p for p, _ in episodes]
    spans = concat_videos(sources, str(dest))
    assert len(spans) == len(episodes)
    packets = output_packets(str(dest))
    assert len(packets) == sum(n for _, n in episodes)
    dts = [d for _, d in packets]
    assert all(a < b for a, b in itertools.pairwise(dts)), "DTS must be strictly increasing"
    # PTS: unique, and every episode presents strictly after the previous one
    pts = [p for p, _ in packets]
    assert len(set(pts)) == len(pts)
    bounds, at = [], 0
    for _, n in episodes:
        bounds.append((min(pts[at:at + n]), max(pts[at:at + n])))
        at += n
    assert all(prev[1] < nxt[0] for prev, nxt in itertools.pairwise(bounds))
    with av.open(str(dest)) as container:
        time_base = Fraction(container.streams.video[0].time_base)
    assert time_base == Fraction(stream_signature(sources[0]).time_base)
    for (start, end), (path, n), (first_pts, _) in zip(spans, episodes, bounds):
        # from_timestamp is an exact multiple of the time base (not a float sum) and the episode's first pts
        offset = Fraction(start) / time_base
        assert abs(offset - round(offset)) < 1e-6
        assert round(offset) == first_pts - packet_span(path)[0].min_pts
        assert end == pytest.approx(start + n / FPS, abs=1e-9)  # to = from + the episode video's duration
    for (start, _), (path, n) in zip(spans, episodes):
        assert verify_episode_frames(path, [0.0, (n - 1) / FPS], str(dest), start) == []
    # every frame, not only first and last: the new file presents the same frames at from + t
    new = decode(dest)
    times = np.array([t for t, _ in new])
    for (start, _), (path, _) in zip(spans, episodes):
        for t, rgb in decode(path):
            k = int(np.argmin(np.abs(times - (start + t))))
            assert abs(times[k] - (start + t)) < 1e-4
            assert np.array_equal(new[k][1], rgb)
    return spans


def test_one_frame_then_b_frames(h264_episodes, tmp_path):
    assert packet_span(h264_episodes[1][0])[0].first_dts < 0  # the fixture really starts with B-frames
    spans = check_concat(h264_episodes, tmp_path / "file-000.mp4")
    assert spans[0][0] == 0.0
    assert all(a[0] < b[0] for a, b in itertools.pairwise(spans))


def test_b_frames_first_and_single_episode(h264_episodes, tmp_path):
    check_concat([h264_episodes[i] for i in (1, 0, 2, 5, 3)], tmp_path / "a.mp4")
    check_concat([h264_episodes[2]], tmp_path / "b.mp4")


def test_offsets_do_not_drift_over_many_episodes(h264_episodes, tmp_path):
    episodes = [h264_episodes[i % len(h264_episodes)] for i in range(40)]
    spans = check_concat(episodes, tmp_path / "many.mp4")
    time_base = Fraction(stream_signature(episodes[0][0]).time_base)
    for start, _ in spans:
        assert start == float(round(Fraction(start) / time_base) * time_base)


def test_wrong_from_timestamp_is_caught(h264_episodes, tmp_path):
    dest = tmp_path / "x.mp4"
    spans = concat_videos([p for p, _ in h264_episodes], str(dest))
    path, n = h264_episodes[4]
    start = spans[4][0]
    assert verify_episode_frames(path, [0.0, (n - 1) / FPS], str(dest), start) == []
    late = verify_episode_frames(path, [0.0, (n - 1) / FPS], str(dest), start + 1 / FPS, episode=4, feature="cam")
    assert len(late) == 2 and all("differs" in p.message or "no frame" in p.message for p in late)
    assert late[0].episode == 4 and late[0].path == str(dest)
    off_grid = verify_episode_frames(path, [0.0], str(dest), start + 0.001)
    assert len(off_grid) == 1 and "no frame" in off_grid[0].message
    assert frame_at(str(dest), start + 0.001) is None


def test_signature_change_starts_a_new_file(h264_episodes, tmp_path):
    other = tmp_path / "small.mp4"
    encode(other, 5, seed=9, size=(32, 32))
    sources = [h264_episodes[0][0], h264_episodes[1][0], str(other), h264_episodes[2][0]]
    signatures = [stream_signature(p) for p in sources]
    assert signatures[2].width == 32 and signatures[0] == signatures[1] == signatures[3]
    groups = group_by_size([1] * 4, 200, signatures=signatures)
    assert [g.episodes for g in groups] == [(0, 1), (2,), (3,)]
    with pytest.raises(DatasetError, match="stream differs"):
        concat_videos(sources, str(tmp_path / "mixed.mp4"))
    assert not (tmp_path / "mixed.mp4").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    fps_change = tmp_path / "fps.mp4"
    encode(fps_change, 3, seed=3, fps=25)
    assert stream_signature(str(fps_change)) != signatures[0]


def test_output_file_mode_follows_umask(h264_episodes, tmp_path):
    import os

    dest = tmp_path / "mode.mp4"
    concat_videos([h264_episodes[0][0]], str(dest))
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(dest).st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.skipif("libsvtav1" not in av.codecs_available, reason="PyAV wheel without libsvtav1")
def test_av1_as_lerobot_encodes(tmp_path):
    episodes = []
    for i, n in enumerate([1, 6, 4]):
        path = tmp_path / f"av1_{i}.mp4"
        encode(path, n, seed=50 + i, codec="libsvtav1", options=AV1, gop=2)
        episodes.append((str(path), n))
    assert stream_signature(episodes[0][0]).codec == "av1"
    check_concat(episodes, tmp_path / "av1.mp4")
