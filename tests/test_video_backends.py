"""dask_stats.video: every fast path of the video backends against the straightforward decode, and damaged videos.

- pyav: decoding only the packets a frame needs (keyframe runs, no seek) gives exactly the frames of a
  plain sequential ``to_ndarray(format="rgb24")`` decode, for short and long GOPs, B-frames, AV1 and
  h264, dense and sparse and edge samples;
- decord and torchcodec (when importable) agree with pyav; torchcodec's stats within 2e-3;
- a video damaged in the middle fails the conversion naming its episode, feature, file and frame (FFmpeg would
  conceal the damage), and leaves the dataset as it was.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import CAM, FAST, LONG_VIDEOS, damage, tree_digest, video
from hypothesis import given, settings
from hypothesis import strategies as st

import dask_stats
from dask_stats.errors import TaskError
from dask_stats.stats.pixels import PixelHistogram
from dask_stats.synthetic import _frames, decode_all, encode_video
from dask_stats.video import BACKENDS, get_backend, pyav_backend
from dask_stats.video.pyav_backend import plan_decode

LENGTH = 61
# (codec, gop, extra x264 options): short GOP (LeRobot's g=2), long GOP, and B-frames with long GOP
VIDEOS = {
    "h264-g2": ("libx264", 2),
    "h264-g25": ("libx264", 25),
    "av1-g2": ("libsvtav1", 2),
    "av1-g16": ("libsvtav1", 16),
}
SAMPLES = {
    "all": np.arange(LENGTH),
    "first": np.array([0]),
    "last": np.array([LENGTH - 1]),
    "sparse": np.array([1, 7, 13, 30, 31, 59]),
    "linspace": np.unique(np.round(np.linspace(0, LENGTH - 1, 17)).astype(int)),
    "tail": np.arange(40, LENGTH),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    out = {}
    for name, (codec, gop) in VIDEOS.items():
        path = root / f"{name}.mp4"
        encode_video(path, _frames(11, LENGTH, 48, 80), 30, codec, gop)
        out[name] = (path, decode_all(path))
    return out


@pytest.mark.parametrize("video", list(VIDEOS))
@pytest.mark.parametrize("sample", list(SAMPLES))
@pytest.mark.parametrize("keep", ["packets-kept", "demux-again"])
def test_pyav_reads_exactly_the_sequential_frames(videos, video, sample, keep, monkeypatch):
    if keep == "demux-again":
        monkeypatch.setattr(pyav_backend, "KEEP_PACKETS_BYTES", 0)
    path, expected = videos[video]
    indices = SAMPLES[sample]
    with get_backend("pyav").open(path) as reader:
        times = reader.frame_times()
        assert len(times) == LENGTH
        np.testing.assert_allclose(times, np.arange(LENGTH) / 30, atol=1e-6)
        got = list(reader.read(indices))
    assert [i for i, _ in got] == indices.tolist()
    for index, frame in got:
        assert frame.shape == (48, 80, 3) and frame.dtype == np.uint8
        np.testing.assert_array_equal(frame, expected[index], err_msg=f"{video} frame {index}")


def test_pyav_sparse_reads_skip_packets(videos):
    """With g=2 a sparse sample decodes at most two packets per frame (no sequential fallback)."""
    path, _ = videos["av1-g2"]
    with get_backend("pyav").open(path) as reader:
        reader.frame_times()
        plan = plan_decode(reader._pts, reader._key, SAMPLES["sparse"])
    assert plan.packets <= 2 * len(SAMPLES["sparse"])
    assert plan.runs[0] == (0, 1)


def test_plan_decode_handles_b_frames_and_open_gop():
    # decode order: I0 P3 B1 B2 | I6(open GOP) B4 B5 P9 B7 B8 ; pts in frame units
    pts = np.array([0, 3, 1, 2, 6, 4, 5, 9, 7, 8])
    key = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    plan = plan_decode(pts, key, np.array([2]))
    assert plan.runs == [(0, 3)]
    # frame 4 is a leading picture of keyframe I6 (decoded after it, shown before): start at I0
    plan = plan_decode(pts, key, np.array([4]))
    assert plan.runs == [(0, 5)]
    plan = plan_decode(pts, key, np.array([0, 7]))
    assert plan.runs == [(0, 0), (4, 8)]
    assert [w.tolist() for w in plan.wanted] == [[0], [7]]


@pytest.mark.parametrize("keep", ["packets-kept", "demux-again"])
def test_pyav_two_reads_from_one_reader(videos, keep, monkeypatch):
    if keep == "demux-again":
        monkeypatch.setattr(pyav_backend, "KEEP_PACKETS_BYTES", 0)
    path, expected = videos["h264-g25"]
    with get_backend("pyav").open(path) as reader:
        first = dict(reader.read(np.array([3, 50])))
        second = dict(reader.read(np.array([10])))
    np.testing.assert_array_equal(first[50], expected[50])
    np.testing.assert_array_equal(second[10], expected[10])


def _stats_with(backend: str, path, indices):
    hist = PixelHistogram(3)
    with get_backend(backend).open(path) as reader:
        reader.frame_times()
        for _, frame in reader.read(indices):
            hist.add(frame)
    return hist.moments()


@pytest.mark.skipif(not BACKENDS["decord"].available(), reason="decord is not installed")
def test_decord_equals_pyav_on_h264(videos):
    path, expected = videos["h264-g25"]
    indices = SAMPLES["linspace"]
    with get_backend("decord").open(path) as reader:
        assert len(reader.frame_times()) == LENGTH
        got = list(reader.read(indices))
    assert [i for i, _ in got] == indices.tolist()
    for index, frame in got:
        np.testing.assert_array_equal(frame, expected[index])


def _torchcodec_loads() -> bool:
    if not BACKENDS["torchcodec"].available():
        return False
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception:  # noqa: BLE001 - installed but unusable here (e.g. no FFmpeg libraries)
        return False
    return True


torchcodec_ok = _torchcodec_loads()


def test_torchcodec_backend_is_registered_and_core_is_torch_free():
    import subprocess
    import sys

    code = ("import sys, dask_stats, dask_stats.video as v; v.BACKENDS['torchcodec'].available(); "
            "import dask_stats.cli; assert 'torch' not in sys.modules, 'the core imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(not torchcodec_ok, reason="torchcodec (and torch) are not importable")
@pytest.mark.parametrize("video", list(VIDEOS))
def test_torchcodec_agrees_with_pyav(videos, video):
    path, _ = videos[video]
    with get_backend("torchcodec").open(path) as reader:
        times = reader.frame_times()
        assert len(times) == LENGTH
        np.testing.assert_allclose(times, np.arange(LENGTH) / 30, atol=1e-6)
        got = list(reader.read(SAMPLES["sparse"]))
    assert [i for i, _ in got] == SAMPLES["sparse"].tolist()
    assert all(f.shape == (48, 80, 3) and f.dtype == np.uint8 for _, f in got)
    for sample in ("sparse", "linspace", "all"):
        ours = _stats_with("torchcodec", path, SAMPLES[sample])
        theirs = _stats_with("pyav", path, SAMPLES[sample])
        for key in ("mean", "std", "min", "max"):
            np.testing.assert_allclose(getattr(ours, key), getattr(theirs, key), atol=2e-3, rtol=0,
                                       err_msg=f"{video} {sample} {key}")


def test_pyav_sequential_fallback_without_usable_pts(videos):
    """Streams without (unique) packet pts are decoded sequentially and numbered by position."""
    path, expected = videos["h264-g25"]
    with get_backend("pyav").open(path) as reader:
        reader.frame_times()
        reader._by_pts = {}  # what _index() leaves when a packet has no pts
        got = list(reader.read(SAMPLES["sparse"]))
    assert [i for i, _ in got] == SAMPLES["sparse"].tolist()
    for index, frame in got:
        np.testing.assert_array_equal(frame, expected[index])


# -- damaged videos -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 4])
def test_damaged_mp4_fails_naming_episode_feature_file_and_frame(make_sample, copy_of, tmp_path, seed):
    root = copy_of(make_sample(LONG_VIDEOS))
    damage(video(root, 0), seed)
    before = tree_digest(root)
    with pytest.raises(TaskError) as info:
        dask_stats.convert(root, tmp_path / "out", skip_verify=True, **FAST)
    [problem] = info.value.problems
    assert problem.episode == 0 and problem.feature == CAM and problem.path.endswith("episode_000000.mp4")
    assert "damaged at frame " in problem.message, problem
    assert tree_digest(root) == before and not (tmp_path / "out").exists()


def test_clean_videos_still_convert(make_sample, tmp_path):
    assert dask_stats.convert(make_sample(LONG_VIDEOS), tmp_path / "out", **FAST).verification.failures == []


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_plan_decode_covers_what_each_frame_needs_in_disjoint_runs(data):
    n = data.draw(st.integers(1, 40))
    pts = np.array(data.draw(st.permutations(range(n))))  # any decode order (B-frames, open GOPs)
    key = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    wanted = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1))))
    plan = plan_decode(pts, key, wanted)
    order = np.argsort(pts)
    for frame in wanted:  # from its last keyframe presented no later than itself (or the start) to its own packet
        end = order[frame]
        start = max((k for k in range(end + 1) if key[k] and pts[k] <= frame), default=0)
        run = next(r for r, (a, b) in enumerate(plan.runs) if a <= start and end <= b)
        assert frame in plan.wanted[run]
    assert sorted(np.concatenate(plan.wanted).tolist()) == wanted.tolist()
    assert all(b + 1 < a for (_, b), (a, _) in zip(plan.runs, plan.runs[1:])), "sorted, not touching"
