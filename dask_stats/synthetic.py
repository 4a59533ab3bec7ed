"""Generate small, deterministic LeRobot v2.0 datasets (demo, tests, benchmarks).

The layout is LeRobot v2.0's (``docs/formats.md``): ``meta/{info,episodes,tasks,stats}.json[l]``, one Parquet file per
episode (with the Hugging Face ``datasets`` schema metadata, so lerobot can load it) and one MP4 per
episode and camera.  ``stats.json`` is computed over *all* frames, as v2.0 did (pixels: over every decoded
frame, through exact per-channel histograms, so that memory does not grow with the episodes' length).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .formats.v2.layout import DATA_PATH, VIDEO_PATH


@dataclass
class Camera:
    """One video feature: frame size and encoder (``libx264`` for h264, ``libsvtav1`` for AV1)."""

    height: int = 48
    width: int = 64
    codec: str = "libx264"
    gop: int = 2


@dataclass
class SampleSpec:
    """What to put in a generated dataset."""

    lengths: list[int] = field(default_factory=lambda: [30, 120, 1, 45])
    fps: int = 30
    chunks_size: int = 1000
    cameras: dict[str, Camera] = field(
        default_factory=lambda: {"observation.images.top": Camera(), "observation.images.wrist": Camera(32, 64)}
    )
    state_dim: int = 6
    action_dim: int = 4
    float64_vector: bool = True  # an extra float64 "observation.effort" vector
    fixed_size_lists: bool = True  # False writes variable-size list<float> columns, as some real datasets do
    bool_column: bool = True  # "next.done"
    int_column: bool = True  # "observation.gripper_state" (int64 scalar)
    string_column: bool = False  # "language_instruction" (string, no stats)
    image_column: str | None = None  # name of a PNG image feature stored in the Parquet
    image_shape: tuple[int, int] = (24, 32)
    seed: int = 0
    write_stats_json: bool = True


def _frames(rng_seed: int, length: int, height: int, width: int) -> np.ndarray:
    """Every frame of :func:`_frame_iter` at once, uint8 (L, H, W, 3) (small image columns)."""
    return np.stack(list(_frame_iter(rng_seed, length, height, width))) if length else \
        np.zeros((0, height, width, 3), np.uint8)


def _frame_iter(rng_seed: int, length: int, height: int, width: int) -> Iterator[np.ndarray]:
    """Smooth, moving colour patterns (compress well, vary between frames), one uint8 (H, W, 3) frame at a time:
    the memory of one frame, whatever the episode's length."""
    rng = np.random.default_rng(rng_seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=3).astype(np.float32)
    still = [xx / (5 + 3 * c) + yy / (7 + 2 * c) + phase[c] for c in range(3)]
    for i in range(length):
        t = np.full((1, 1), i, dtype=np.float32)  # an array, so that numpy 1.x also multiplies in float32
        channels = [127.5 + 120 * np.sin(still[c] + t * (0.11 + 0.05 * c)) for c in range(3)]
        yield np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


def encode_video(path: Path, frames: Iterable[np.ndarray], fps: int, codec: str = "libx264", gop: int = 2) -> None:
    """Encode uint8 RGB frames (an array or any iterable of (H, W, 3) frames, encoded as they come) to an MP4
    with pts = frame_index / fps (LeRobot's layout)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = None
        for i, rgb in enumerate(frames):
            if stream is None:  # sized by the first frame
                stream = container.add_stream(codec, rate=fps)
                stream.width, stream.height = rgb.shape[1], rgb.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.gop_size = gop
                stream.options = {"crf": "18"} if codec == "libx264" else {"crf": "30", "preset": "12"}
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        if stream is not None:
            container.mux(stream.encode())


def decode_all(path: Path) -> np.ndarray:
    """Every frame of a video as uint8 RGB (L, H, W, 3): the straightforward way."""
    return np.stack(list(decode_iter(path)))


def decode_iter(path: Path) -> Iterator[np.ndarray]:
    """The frames of a video as uint8 RGB (H, W, 3), one at a time."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


class FrameTally:
    """Per-channel counts of the 256 values of uint8 RGB frames: their exact stats in bounded memory."""

    def __init__(self):
        self.counts = np.zeros((3, 256), np.int64)

    def add(self, rgb: np.ndarray) -> None:
        flat = rgb.reshape(-1, 3)
        for c in range(3):
            self.counts[c] += np.bincount(flat[:, c], minlength=256)

    def stats(self) -> dict:
        """v2.0-style stats of the pixels / 255 ((3, 1, 1) lists, float64): exact, up to the last rounding."""
        values = np.arange(256)
        n = self.counts.sum(axis=1)
        total = self.counts @ values  # exact integers
        mean = total / (255.0 * n)
        squares = self.counts @ (values * values)
        # sum((v - mean)^2) = sum(v^2) - total^2 / n, in exact rational arithmetic before the one rounding
        var = [float(Fraction(int(s) * int(k) - int(t) ** 2, int(k) ** 2 * 255 ** 2))
               for s, t, k in zip(squares, total, n)]
        present = self.counts > 0
        stats = {
            "mean": mean.tolist(),
            "std": np.sqrt(var).tolist(),
            "max": [values[p].max() / 255.0 for p in present],
            "min": [values[p].min() / 255.0 for p in present],
        }
        return {k: [[[float(v)]] for v in vals] for k, vals in stats.items()}


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _vector_type(dtype: str, dim: int, fixed: bool) -> pa.DataType:
    value = pa.float32() if dtype == "float32" else pa.float64()
    return pa.list_(value, dim) if fixed else pa.list_(value)


def _hf_features(columns: dict[str, dict]) -> dict:
    """Hugging Face ``datasets`` feature metadata for the Parquet schema (what lerobot 0.3 reads)."""
    out = {}
    for name, ft in columns.items():
        if ft["dtype"] == "image":
            out[name] = {"_type": "Image"}
        elif ft["shape"] == [1]:
            out[name] = {"dtype": ft["dtype"], "_type": "Value"}
        else:
            out[name] = {
                "feature": {"dtype": ft["dtype"], "_type": "Value"},
                "length": ft["shape"][0],
                "_type": "Sequence",
            }
    return out


def _all_frame_stats(x: np.ndarray, axis) -> dict:
    """v2.0-style global stats (no count), float64 -> lists."""
    keep = x.ndim == 1
    return {
        "mean": np.atleast_1d(np.mean(x, axis=axis, keepdims=keep)).tolist(),
        "std": np.atleast_1d(np.std(x, axis=axis, keepdims=keep)).tolist(),
        "max": np.atleast_1d(np.max(x, axis=axis, keepdims=keep)).astype(np.float64).tolist(),
        "min": np.atleast_1d(np.min(x, axis=axis, keepdims=keep)).astype(np.float64).tolist(),
    }


def make_dataset(root: str | Path, spec: SampleSpec | None = None) -> Path:
    """Write a v2.0 dataset described by ``spec`` under ``root`` and return ``root``."""
    spec = spec or SampleSpec()
    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    n_episodes = len(spec.lengths)

    features: dict[str, dict] = {}
    for key, cam in spec.cameras.items():
        codec = "av1" if "av1" in cam.codec else "h264"
        features[key] = {
            "dtype": "video",
            "shape": [cam.height, cam.width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.fps": float(spec.fps), "video.height": cam.height, "video.width": cam.width,
                "video.channels": 3, "video.codec": codec, "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False, "has_audio": False,
            },
        }
    if spec.image_column:
        h, w = spec.image_shape
        features[spec.image_column] = {"dtype": "image", "shape": [h, w, 3], "names": ["height", "width", "channel"]}
    features["observation.state"] = {
        "dtype": "float32", "shape": [spec.state_dim], "names": [f"joint_{i}" for i in range(spec.state_dim)]
    }
    if spec.float64_vector:
        features["observation.effort"] = {"dtype": "float64", "shape": [3], "names": ["e0", "e1", "e2"]}
    features["action"] = {"dtype": "float32", "shape": [spec.action_dim], "names": None}
    if spec.int_column:
        features["observation.gripper_state"] = {"dtype": "int64", "shape": [1], "names": None}
    if spec.bool_column:
        features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    if spec.string_column:
        features["language_instruction"] = {"dtype": "string", "shape": [1], "names": None}
    for name, dtype in [("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                        ("index", "int64"), ("task_index", "int64")]:
        features[name] = {"dtype": dtype, "shape": [1], "names": None}
    columns = {k: v for k, v in features.items() if v["dtype"] != "video"}

    arrays_by_feature: dict[str, list[np.ndarray]] = {k: [] for k in features}  # numeric columns (small)
    pixels = {k: FrameTally() for k, ft in features.items() if ft["dtype"] in ("video", "image")}
    tasks = ["pick the cube", "place the cube"]
    episodes, offset = [], 0
    for ep, length in enumerate(spec.lengths):
        chunk = ep // spec.chunks_size
        task_index = ep % len(tasks)
        data = {
            "observation.state": rng.normal(0, 1, (length, spec.state_dim)).cumsum(0).astype(np.float32),
            "observation.effort": rng.normal(1e3, 1e-3, (length, 3)),  # needs float64 to be exact
            "action": rng.uniform(-1, 1, (length, spec.action_dim)).astype(np.float32),
            "observation.gripper_state": rng.integers(0, 3, length),
            "next.done": np.arange(length) == length - 1,
            "timestamp": (np.arange(length) / spec.fps).astype(np.float32),
            "frame_index": np.arange(length),
            "episode_index": np.full(length, ep),
            "index": np.arange(offset, offset + length),
            "task_index": np.full(length, task_index),
        }
        table_cols = {}
        for name, ft in columns.items():
            if ft["dtype"] == "image":
                h, w = spec.image_shape
                imgs = _frames(spec.seed * 7919 + ep, length, h, w)
                for im in imgs:
                    pixels[name].add(im)
                table_cols[name] = pa.array(
                    [{"bytes": _png(im), "path": None} for im in imgs],
                    pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
                )
            elif ft["dtype"] == "string":
                table_cols[name] = pa.array([tasks[task_index]] * length, pa.string())
            elif ft["shape"] == [1]:  # shape (1,) is a scalar column, as HF datasets writes it
                table_cols[name] = pa.array(data[name].reshape(length))
                arrays_by_feature[name].append(data[name])
            else:
                flat = pa.array(data[name].reshape(-1))
                typ = _vector_type(ft["dtype"], ft["shape"][0], spec.fixed_size_lists)
                offsets = pa.array(np.arange(length + 1, dtype=np.int32) * ft["shape"][0])
                table_cols[name] = (
                    pa.FixedSizeListArray.from_arrays(flat, ft["shape"][0])
                    if spec.fixed_size_lists else pa.ListArray.from_arrays(offsets, flat)
                ).cast(typ)
                arrays_by_feature[name].append(data[name])
        table = pa.table(table_cols)
        hf_meta = json.dumps({"info": {"features": _hf_features(columns)}})
        table = table.replace_schema_metadata({"huggingface": hf_meta})
        path = root / DATA_PATH.format(episode_chunk=chunk, episode_index=ep)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)

        for key, cam in spec.cameras.items():
            vpath = root / VIDEO_PATH.format(episode_chunk=chunk, video_key=key, episode_index=ep)
            # frame by frame: an episode's frames are never all in memory (80 x 650 frames of 480x640 were 24 GB)
            encode_video(vpath, _frame_iter(spec.seed * 104729 + ep * 31 + len(key), length, cam.height, cam.width),
                         spec.fps, cam.codec, cam.gop)
            for rgb in decode_iter(vpath):  # stats.json holds the stats of the decoded frames
                pixels[key].add(rgb)
        episodes.append({"episode_index": ep, "tasks": [tasks[task_index]], "length": length})
        offset += length

    info = {
        "codebase_version": "v2.0",
        "robot_type": "sample_arm",
        "total_episodes": n_episodes,
        "total_frames": offset,
        "total_tasks": len(tasks),
        "total_videos": n_episodes * len(spec.cameras),
        "total_chunks": -(-n_episodes // spec.chunks_size),
        "chunks_size": spec.chunks_size,
        "fps": spec.fps,
        "splits": {"train": f"0:{n_episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if spec.cameras else None,
        "features": features,
    }
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "info.json").write_text(json.dumps(info, indent=4, ensure_ascii=False))
    (meta / "episodes.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in episodes))
    (meta / "tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks))
    )
    if spec.write_stats_json:
        stats = {}
        for name, ft in features.items():
            if ft["dtype"] == "string":
                continue
            if ft["dtype"] in ("video", "image"):
                stats[name] = pixels[name].stats()
            else:
                stats[name] = _all_frame_stats(np.concatenate(arrays_by_feature[name]).astype(np.float64), 0)
        (meta / "stats.json").write_text(json.dumps(stats, indent=4))
    return root
