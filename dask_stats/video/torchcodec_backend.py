"""torchcodec backend (optional: the ``[torchcodec]`` extra or ``pip install torchcodec torch``, plus FFmpeg's libs,
e.g. Debian's ``apt-get install ffmpeg``).

The core never imports torch: this module imports torchcodec only when a reader is opened (once per
process), and ``available()`` is False when torch or torchcodec is not installed.

Frame times come from a PyAV demux pass (the same pts list as the pyav backend, so frame ``i`` is the
same frame for every backend); torchcodec's exact seek mode numbers frames the same way (by pts).
Frames are fetched with ``get_frames_at`` in small batches (bounded memory: one batch of uint8 frames)
and handed out as zero-copy numpy views.  torchcodec converts YUV to RGB with its own FFmpeg settings,
so its pixels can differ from PyAV's by a level here and there (stats agree within 2e-3).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .base import VideoBackend, VideoReader

BATCH = 8  # frames per get_frames_at call: a few MB at 480x640, few Python round trips


class TorchCodecReader(VideoReader):
    def __init__(self, path: str | Path, threads: int = 1):
        VideoDecoder = _load()
        self._path = str(path)
        self._decoder = VideoDecoder(self._path, dimension_order="NHWC", num_ffmpeg_threads=max(int(threads), 1),
                                     device="cpu", seek_mode="exact")
        self._times: np.ndarray | None = None

    def frame_times(self) -> np.ndarray:
        if self._times is None:
            import av

            with av.open(self._path) as container:
                stream = container.streams.video[0]
                pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
                self._times = np.sort(np.asarray(pts, dtype=np.int64)).astype(np.float64) * float(stream.time_base)
            frames = self._decoder.metadata.num_frames
            if frames is not None and frames != len(self._times):
                raise ValueError(f"torchcodec sees {frames} frames where the container holds {len(self._times)} "
                                 "(frame numbering would differ): use --video-backend pyav")
        return self._times

    def read(self, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        indices = [int(i) for i in indices]
        for start in range(0, len(indices), BATCH):
            chunk = indices[start:start + BATCH]
            batch = self._decoder.get_frames_at(chunk).data.numpy()  # (n, H, W, 3) uint8, shares memory
            yield from zip(chunk, batch)

    def close(self) -> None:
        self._decoder = None


class TorchCodecBackend(VideoBackend):
    name = "torchcodec"
    requires = ("torch", "torchcodec")  # a torchcodec that is installed but cannot load fails at open()
    install_hint = ("from a clone: pip install -e '.[torchcodec]'; otherwise: pip install torchcodec torch (a CPU "
                    "build of torch avoids the CUDA wheels); and FFmpeg's libraries (apt-get install ffmpeg)")

    def open(self, path: str | Path) -> TorchCodecReader:
        return TorchCodecReader(path, self.threads)


@functools.lru_cache(maxsize=1)
def _load():
    """torchcodec's VideoDecoder (imported once per process), or a clear error."""
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception as exc:
        raise RuntimeError(f"torchcodec cannot be loaded ({type(exc).__name__}: {exc}); it needs torch and "
                           f"FFmpeg's shared libraries: {TorchCodecBackend.install_hint}, "
                           "or use --video-backend pyav") from exc
    return VideoDecoder
