"""The sample dataset generator: the same files as when every frame was held in memory, in bounded memory."""

from __future__ import annotations

import json
import tracemalloc
from fractions import Fraction

import numpy as np
import pyarrow.parquet as pq

from dask_stats.synthetic import (
    Camera,
    SampleSpec,
    _frame_iter,
    decode_all,
    decode_iter,
    encode_video,
    make_dataset,
)

CAM = "observation.images.top"


def _frames_at_once(rng_seed: int, length: int, height: int, width: int) -> np.ndarray:
    """The generator as it was: every frame of the episode computed at once."""
    rng = np.random.default_rng(rng_seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=3).astype(np.float32)
    t = np.arange(length, dtype=np.float32)[:, None, None]
    channels = [127.5 + 120 * np.sin(xx / (5 + 3 * c) + yy / (7 + 2 * c) + phase[c] + t * (0.11 + 0.05 * c))
                for c in range(3)]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


def _all_frame_stats(x: np.ndarray) -> dict:
    """The previous implementation's stats of every frame (float64, numpy's summation)."""
    return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "max": x.max(0).tolist(), "min": x.min(0).tolist()}


def test_frames_generated_one_at_a_time_are_the_same_frames():
    for args in [(5, 40, 48, 64), (104729, 1, 32, 64), (3, 7, 24, 32)]:
        assert np.array_equal(np.stack(list(_frame_iter(*args))), _frames_at_once(*args))


def test_streamed_encoding_writes_the_same_bytes(tmp_path):
    frames = _frames_at_once(11, 25, 48, 64)
    encode_video(tmp_path / "array.mp4", frames, 30)
    encode_video(tmp_path / "stream.mp4", _frame_iter(11, 25, 48, 64), 30)
    assert (tmp_path / "array.mp4").read_bytes() == (tmp_path / "stream.mp4").read_bytes()


def test_stats_json_equals_the_stats_of_every_decoded_frame(tmp_path):
    spec = SampleSpec(lengths=[30, 1, 17], image_column="observation.images.png", string_column=True)
    root = make_dataset(tmp_path / "ds", spec)
    stats = json.loads((root / "meta/stats.json").read_text())
    info = json.loads((root / "meta/info.json").read_text())
    for key in spec.cameras:
        videos = sorted((root / "videos").rglob(f"{key}/*.mp4"))
        pixels = np.concatenate([decode_all(v).reshape(-1, 3) for v in videos])
        old = _all_frame_stats(pixels.astype(np.float64) / 255.0)
        for name in ("mean", "std", "max", "min"):
            got = np.array(stats[key][name]).reshape(3)
            np.testing.assert_allclose(got, old[name], rtol=1e-13, atol=0)  # numpy's summation rounds a little
        assert stats[key]["max"] == [[[v]] for v in old["max"]] and stats[key]["min"] == [[[v]] for v in old["min"]]
        # ... and the new mean is the exact mean, correctly rounded
        exact = [Fraction(int(pixels[:, c].astype(np.int64).sum()), 255 * len(pixels)) for c in range(3)]
        assert [m[0][0] for m in stats[key]["mean"]] == [float(e) for e in exact]
    table = pq.read_table(sorted((root / "data").rglob("*.parquet"))[0])
    x = np.stack(table.column("observation.state").to_numpy(zero_copy_only=False))
    assert x.shape == (30, spec.state_dim) and info["total_frames"] == 48
    assert "language_instruction" not in stats and "observation.images.png" in stats


def test_memory_stays_bounded_for_a_long_episode(tmp_path):
    """One 400-frame episode of 96x128: its frames are 14.7 MB (118 MB as float64 stats input before)."""
    cam = Camera(96, 128)
    frames, frame_bytes = 400, 96 * 128 * 3
    spec = SampleSpec(lengths=[frames], cameras={CAM: cam}, write_stats_json=True)
    make_dataset(tmp_path / "warm-up", SampleSpec(lengths=[2], cameras={CAM: cam}))  # imports are not the point
    tracemalloc.start()
    try:
        make_dataset(tmp_path / "ds", spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < frames * frame_bytes / 8, f"peak {peak / 1e6:.1f} MB"  # before: 250 MB
    assert sum(1 for _ in decode_iter(tmp_path / f"ds/videos/chunk-000/{CAM}/episode_000000.mp4")) == frames
