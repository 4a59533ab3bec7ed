"""The straightforward float64 computation of the stats, written independently of dask_stats, and the assertion
that an output's meta/episodes_stats.jsonl matches it.

Decode everything, pick the sampled frames by nearest timestamp, reduce in float64 with plain numpy.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
from PIL import Image


def sampled_positions(length: int) -> np.ndarray:
    n = length if length < 100 else max(100, min(int(length**0.75), 10_000))
    return np.round(np.linspace(0, length - 1, n)).astype(int)


def decode_with_times(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with av.open(str(path)) as container:
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return np.array([t for t, _ in frames]), np.stack([f for _, f in frames])


def pixel_stats(frames_u8: np.ndarray) -> dict:
    x = frames_u8.astype(np.float64) / 255.0  # (N, H, W, C)
    axes = (0, 1, 2)
    return {"min": x.min(axis=axes), "max": x.max(axis=axes), "mean": x.mean(axis=axes), "std": x.std(axis=axes),
            "count": len(frames_u8)}


def expected_episode_stats(root: Path, episode: int, by_index: bool = False, exclude=()) -> dict[str, dict]:
    info = json.loads((root / "meta/info.json").read_text())
    length = {r["episode_index"]: r["length"] for r in map(json.loads, (root / "meta/episodes.jsonl").open())}[episode]
    chunk = episode // info["chunks_size"]
    table = pq.read_table(root / info["data_path"].format(episode_chunk=chunk, episode_index=episode))
    out = {}
    for name, ft in info["features"].items():
        if ft["dtype"] == "string" or name in exclude:
            continue
        if ft["dtype"] == "video":
            path = root / info["video_path"].format(episode_chunk=chunk, video_key=name, episode_index=episode)
            times, frames = decode_with_times(path)
            positions = sampled_positions(length)
            if by_index:
                chosen = positions
            else:
                ts = table.column("timestamp").to_numpy().astype(np.float64)[positions]
                chosen = np.abs(times[None, :] - ts[:, None]).argmin(axis=1)
            out[name] = pixel_stats(frames[chosen])
        elif ft["dtype"] == "image":
            images = [np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB"))
                      for cell in table.column(name).to_pylist()]
            out[name] = pixel_stats(np.stack(images))
        else:
            x = np.array(table.column(name).to_pylist())
            xf = x.astype(np.float64)
            out[name] = {"min": x.min(axis=0), "max": x.max(axis=0), "mean": xf.mean(axis=0), "std": xf.std(axis=0),
                         "count": len(x)}
    return out


STAT_KEYS = ["min", "max", "mean", "std", "count"]


def assert_matches_reference(root, output, by_index=False, pixel_tol=1e-9, exclude=()):
    """Every stat of ``output``'s meta/episodes_stats.jsonl equals the float64 computation on ``root``'s files."""
    info = json.loads((output / "meta/info.json").read_text())
    records = [json.loads(line) for line in (output / "meta/episodes_stats.jsonl").read_text().splitlines()]
    assert [r["episode_index"] for r in records] == list(range(info["total_episodes"]))
    for record in records:
        expected = expected_episode_stats(root, record["episode_index"], by_index=by_index, exclude=exclude)
        stats = record["stats"]
        # features in info.json order, strings skipped
        assert list(stats) == [f for f, ft in info["features"].items() if ft["dtype"] != "string" and f not in exclude]
        for feature, exp in expected.items():
            got = stats[feature]
            assert list(got) == STAT_KEYS, feature
            assert got["count"] == [exp["count"]], (record["episode_index"], feature)
            dtype = info["features"][feature]["dtype"]
            pixel = dtype in ("video", "image")
            for key in ("min", "max", "mean", "std"):
                value = np.asarray(got[key])
                want = np.asarray(exp[key], dtype=np.float64)
                shape = (3, 1, 1) if pixel else tuple(info["features"][feature]["shape"])
                assert value.shape == shape, (feature, key, value.shape)
                np.testing.assert_allclose(value.reshape(-1).astype(np.float64), want.reshape(-1),
                                           rtol=pixel_tol if pixel else 1e-12, atol=1e-12,
                                           err_msg=f"episode {record['episode_index']} {feature} {key}")
            if dtype == "bool":
                assert isinstance(got["min"][0], bool) and isinstance(got["max"][0], bool)
            if dtype == "int64":
                assert isinstance(got["min"][0], int) and isinstance(got["max"][0], int)
