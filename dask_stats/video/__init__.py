"""The video room: decoding backends chosen by name (like xarray's engines: ``get_backend("pyav")``), the header
probe, and stream-copy remuxing with its frame checks (what the v3.0 writer needs; PyAV does both)."""

from __future__ import annotations

from ..errors import DatasetError, Problem
from .base import NotInOrder, Unreadable, VideoBackend, VideoReader
from .decord_backend import DecordBackend
from .frames import FrameFinder, first_last_frame_times, frame_at, verify_episode_frames
from .header import VideoHeader, probe
from .pyav_backend import PyAVBackend
from .remux import Signature, concat_videos, stream_signature
from .torchcodec_backend import TorchCodecBackend

BACKENDS: dict[str, type[VideoBackend]] = {b.name: b for b in (PyAVBackend, DecordBackend, TorchCodecBackend)}


def get_backend(name: str | type[VideoBackend]) -> VideoBackend:
    """The backend called ``name`` (or a VideoBackend subclass); a clear error when unknown or not installed."""
    if isinstance(name, type) and issubclass(name, VideoBackend):
        return name()
    if name not in BACKENDS:
        raise DatasetError(Problem(f"unknown video backend {name!r}", fix=f"choose one of {', '.join(BACKENDS)}"))
    backend = BACKENDS[name]
    if not backend.available():
        raise DatasetError(Problem(f"video backend {name!r} is not installed", fix=backend.install_hint))
    return backend()


__all__ = ["BACKENDS", "FrameFinder", "NotInOrder", "Signature", "Unreadable", "VideoBackend", "VideoHeader",
           "VideoReader", "concat_videos", "first_last_frame_times", "frame_at", "get_backend", "probe",
           "stream_signature", "verify_episode_frames"]
