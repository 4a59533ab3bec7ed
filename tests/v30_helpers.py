"""Tiny PyAV-encoded episode videos for the v3.0 tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from dask_stats.synthetic import _frames


def encode(path: Path | str, n: int, seed: int, *, codec: str = "libx264", options: dict | None = None,
           size: tuple[int, int] = (48, 64), fps: int = 30, gop: int | None = None) -> np.ndarray:
    """Encode ``n`` frames (pts = i) and return the RGB frames given to the encoder."""
    height, width = size
    frames = _frames(seed, n, height, width)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        stream.options = options if options is not None else {"crf": "18"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return frames


def decode(path: Path | str) -> list[tuple[float, np.ndarray]]:
    """(time, RGB) of every frame, in presentation order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        out = [(float(f.pts * stream.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    return sorted(out, key=lambda item: item[0])


AV1 = {"crf": "30", "preset": "12"}
