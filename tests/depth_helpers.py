"""A depth-map camera as lerobot 0.6.1 records one (``is_depth_map``; 12-bit codes of the depth in millimetres,
log-quantized, in a lossless HEVC gray12le video), added to a generated dataset."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dask_stats.stats.pixels import DepthCoding

DEPTH = "observation.images.depth"
CODING = DepthCoding(depth_min=0.1, depth_max=4.0)  # lerobot's log scale and shift, a narrower range
HEIGHT, WIDTH = 24, 32


def depth_frames(episode: int, length: int) -> np.ndarray:
    """(length, H, W) uint16 depth in millimetres: a tilted plane moving away, with noise."""
    rng = np.random.default_rng(episode)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = [300 + 60 * t + 20 * rows + 5 * cols + rng.integers(0, 40, (HEIGHT, WIDTH)) for t in range(length)]
    return np.array(frames, dtype=np.uint16)


def encode_depth(path: Path, codes: np.ndarray, fps: float) -> None:
    """Encode (n, H, W) 12-bit codes as lerobot does: HEVC, gray12le, lossless, frame k at k / fps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx265", rate=rate, options={"x265-params": "lossless=1:log-level=none"})
        stream.width, stream.height, stream.pix_fmt = codes.shape[2], codes.shape[1], "gray12le"
        for k, frame_codes in enumerate(codes):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_codes), format="gray12le")
            frame.pts = k
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def add_depth_camera(root: Path) -> dict[int, np.ndarray]:
    """Add the depth camera to the v2.0 dataset at ``root`` (its videos and its info.json entry, as lerobot 0.6.1
    writes them); the codes of every episode."""
    info = json.loads((root / "meta/info.json").read_text())
    episodes = [json.loads(line) for line in (root / "meta/episodes.jsonl").read_text().splitlines() if line]
    codes = {}
    for episode in episodes:
        index, length = episode["episode_index"], episode["length"]
        codes[index] = CODING.quantize(depth_frames(index, length))
        relative = info["video_path"].format(episode_chunk=index // info["chunks_size"], video_key=DEPTH,
                                             episode_index=index)
        encode_depth(root / relative, codes[index], info["fps"])
    info["features"][DEPTH] = {
        "dtype": "video", "shape": [HEIGHT, WIDTH, 1], "names": ["height", "width", "channels"],
        "info": {"video.fps": info["fps"], "video.height": HEIGHT, "video.width": WIDTH, "video.channels": 1,
                 "video.codec": "hevc", "video.pix_fmt": "gray12le",
                 "has_audio": False, "is_depth_map": True, "depth_unit": CODING.unit,
                 "video.depth_min": CODING.depth_min, "video.depth_max": CODING.depth_max,
                 "video.shift": CODING.shift, "video.use_log": CODING.use_log}}
    if "total_videos" in info:
        info["total_videos"] += len(episodes)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    return codes
