"""A video backend that decodes nothing: every video has ``FRAMES`` frames at ``FPS`` and every frame is the same
constant 32x32 RGB image.  Passed as a class (``convert(..., video_backend=ConstantBackend)``), it makes a run's
cost the client's bookkeeping and the scheduling, not decoding (the client-memory benchmark).  The files are
neither opened nor probed: they only have to exist."""

from __future__ import annotations

import numpy as np

from dask_stats.video.base import VideoBackend, VideoHeader, VideoReader

FRAMES = 10_000  # more than any episode has: the sampled rows' timestamps all find their frame
FPS = 30.0
FRAME = np.full((32, 32, 3), 128, np.uint8)


class ConstantReader(VideoReader):
    def frame_times(self) -> np.ndarray:
        return np.arange(FRAMES, dtype=np.float64) / FPS

    def read(self, indices):
        for index in indices:
            yield int(index), FRAME


class ConstantBackend(VideoBackend):
    name = "constant"

    def open(self, path) -> VideoReader:
        return ConstantReader()

    def probe(self, source) -> VideoHeader:
        return VideoHeader("h264", 0.0, 0)
