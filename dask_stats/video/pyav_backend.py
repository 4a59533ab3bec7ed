"""PyAV (FFmpeg) backend: demux once for frame times, decode sequentially, convert only chosen frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .base import VideoBackend, VideoReader


class PyAVReader(VideoReader):
    def __init__(self, path: str | Path, threads: int = 1):
        import av

        self._container = av.open(str(path))
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = threads
        self._stream.thread_type = "AUTO" if threads > 1 else "SLICE"
        self._times: np.ndarray | None = None

    def frame_times(self) -> np.ndarray:
        if self._times is None:
            pts = [p.pts for p in self._container.demux(self._stream) if p.pts is not None]
            self._times = np.sort(np.asarray(pts, dtype=np.float64)) * float(self._stream.time_base)
            self._container.seek(0)
        return self._times

    def read(self, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        wanted = iter(int(i) for i in indices)
        target = next(wanted, None)
        for position, frame in enumerate(self._container.decode(self._stream)):
            if target is None:
                break
            if position == target:
                yield position, frame.to_ndarray(format="rgb24")
                target = next(wanted, None)

    def close(self) -> None:
        self._container.close()


class PyAVBackend(VideoBackend):
    name = "pyav"
    install_hint = "pip install av"

    @classmethod
    def available(cls) -> bool:
        try:
            import av  # noqa: F401
        except ImportError:
            return False
        return True

    def open(self, path: str | Path) -> PyAVReader:
        return PyAVReader(path, self.threads)
