"""Video backends, chosen by name (like xarray's engines): ``get_backend("pyav")``."""

from __future__ import annotations

from ..errors import DatasetError, Problem
from .base import Unreadable, VideoBackend, VideoHeader, VideoReader
from .decord_backend import DecordBackend
from .pyav_backend import PyAVBackend
from .torchcodec_backend import TorchCodecBackend

BACKENDS: dict[str, type[VideoBackend]] = {b.name: b for b in (PyAVBackend, DecordBackend, TorchCodecBackend)}


def get_backend(name: str | type[VideoBackend], threads: int = 1) -> VideoBackend:
    """The backend called ``name`` (or a VideoBackend subclass); a clear error when unknown or not installed."""
    if isinstance(name, type) and issubclass(name, VideoBackend):
        return name(threads=threads)
    if name not in BACKENDS:
        raise DatasetError(Problem(f"unknown video backend {name!r}", fix=f"choose one of {', '.join(BACKENDS)}"))
    backend = BACKENDS[name]
    if not backend.available():
        raise DatasetError(Problem(f"video backend {name!r} is not installed", fix=backend.install_hint))
    return backend(threads=threads)


__all__ = ["BACKENDS", "VideoBackend", "VideoHeader", "VideoReader", "Unreadable", "get_backend"]
