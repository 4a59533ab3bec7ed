"""What a container says about its first video stream, read by PyAV for every backend (a core dependency that
opens a container in milliseconds), without decoding."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VideoHeader:
    """What a container says about its first video stream, without decoding."""

    codec: str  # "h264", "av1", ...
    start_s: float  # presentation time of the first frame
    frames: int  # 0 when the container does not say


_DECODER_TO_CODEC = {"libdav1d": "av1", "libaom-av1": "av1"}


def probe(source) -> VideoHeader:
    """The header of the first video stream of ``source`` (a path or a binary file object)."""
    import av

    with av.open(source if hasattr(source, "read") else str(source)) as container:
        if not container.streams.video:
            raise ValueError("the file has no video stream")
        stream = container.streams.video[0]
        name = stream.codec_context.name
        return VideoHeader(_DECODER_TO_CODEC.get(name, name), float((stream.start_time or 0) * stream.time_base),
                           stream.frames)
