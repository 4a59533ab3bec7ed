"""Re-encode one episode's frames with lerobot's encoder settings (the fallback when a stream copy cannot cut it).

lerobot 0.3.x ``encode_video_frames`` defaults: ``libsvtav1``, ``yuv420p``, GOP ``g=2``, ``crf=30``; frame k is
presented at k / fps.  The codec and pixel format of a feature come from its ``info`` block in ``info.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from ..storage.atomic import atomic_path

LEROBOT_GOP = 2
LEROBOT_CRF = 30
ENCODERS = {"av1": "libsvtav1", "h264": "libx264", "hevc": "libx265", "libsvtav1": "libsvtav1",
            "libx264": "libx264", "libx265": "libx265"}  # info.json's video.codec -> the encoder that writes it


@dataclass(frozen=True)
class EncoderSettings:
    codec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    gop: int = LEROBOT_GOP
    crf: int = LEROBOT_CRF

    @classmethod
    def of_feature(cls, feature: Mapping) -> EncoderSettings:
        """The settings of a video feature of ``info.json`` (``info`` or ``video_info`` block; lerobot's defaults
        for what it does not say)."""
        block = feature.get("info") or feature.get("video_info") or {}
        codec = str(block.get("video.codec") or "av1")
        return cls(codec=ENCODERS.get(codec, codec), pix_fmt=str(block.get("video.pix_fmt") or "yuv420p"))

    def options(self) -> dict[str, str]:
        return {"g": str(self.gop), "crf": str(self.crf)}


def encode_frames(frames: Iterable[tuple[float, np.ndarray]], dest: str, fps: float,
                  settings: EncoderSettings) -> int:
    """Encode ``(time_s, rgb)`` frames (times from the episode's start) into ``dest`` (atomically); frame times
    are rounded to multiples of 1 / fps, as lerobot writes them.  Returns the number of frames."""
    rate = Fraction(fps).limit_denominator(1001)
    count = 0
    with atomic_path(dest) as tmp:
        with av.open(tmp, "w", format="mp4") as container:
            stream = None
            for time_s, rgb in frames:
                if stream is None:
                    stream = container.add_stream(settings.codec, rate=rate, options=settings.options())
                    stream.width, stream.height = rgb.shape[1], rgb.shape[0]
                    stream.pix_fmt = settings.pix_fmt
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = round(Fraction(time_s) * rate)
                container.mux(stream.encode(frame))
                count += 1
            if stream is not None:
                container.mux(stream.encode())
    return count
