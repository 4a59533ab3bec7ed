"""decord backend (h264/hevc only: decord cannot read AV1, dmlc/decord#319)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .base import VideoBackend, VideoReader

BATCH = 16  # frames per get_batch call: bounded memory, few Python round trips


class DecordReader(VideoReader):
    def __init__(self, path: str | Path, threads: int = 1):
        import decord

        self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads)

    def frame_times(self) -> np.ndarray:
        n = len(self._reader)
        return np.asarray(self._reader.get_frame_timestamp(range(n)), dtype=np.float64)[:, 0]

    def read(self, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, len(indices), BATCH):
            batch = [int(i) for i in indices[start:start + BATCH]]
            try:
                frames = self._reader.get_batch(batch).asnumpy()
            except Exception as exc:
                raise ValueError(f"decord failed to decode frames {batch[0]}..{batch[-1]} ({exc}); "
                                 "decord mis-handles some frame sizes and codecs: use --video-backend pyav") from exc
            yield from zip(batch, frames)

    def close(self) -> None:
        self._reader = None


class DecordBackend(VideoBackend):
    name = "decord"
    requires = ("decord",)
    install_hint = "from a clone: pip install -e '.[decord]'; otherwise: pip install decord (x86_64 Linux wheels only)"
    unsupported_codecs = frozenset({"av1"})

    def open(self, path: str | Path) -> DecordReader:
        problem = self.unsupported(self.probe(path))  # decord crashes on what it cannot decode: ask PyAV first
        if problem:
            raise ValueError(f"{problem.message}; use {problem.fix}")
        return DecordReader(path, self.threads)
