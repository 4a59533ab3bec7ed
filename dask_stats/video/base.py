"""The video backend interface: open a file, report its frame times, yield chosen frames as uint8 RGB."""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from .header import VideoHeader, probe


@dataclass(frozen=True)
class Unreadable:
    """Why a backend cannot read a file, and what to do instead."""

    message: str
    fix: str | None = None


class VideoReader(ABC):
    """An open video. Frames are numbered 0..n-1 in presentation order."""

    @abstractmethod
    def frame_times(self) -> np.ndarray:
        """Presentation time in seconds of every frame, ascending (float64)."""

    @abstractmethod
    def read(self, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for the sorted, unique ``indices``; frames are (H, W, 3) uint8 RGB."""

    def read_depth(self, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """Like :meth:`read` for a depth-map video (lerobot 0.6.1: HEVC gray12le): frames are (H, W) uint16 12-bit
        codes.  Only the PyAV backend decodes them."""
        raise ValueError(f"the {type(self).__name__} decoder cannot read depth maps (12-bit gray); "
                         "use --video-backend pyav")

    def close(self) -> None:  # noqa: B027 - a reader that holds nothing has nothing to release
        """Release the decoder; closing twice is harmless."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoBackend(ABC):
    """One decoding library. Subclasses set ``name`` and ``requires`` and implement ``open``."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()  # importable modules the backend needs
    install_hint: ClassVar[str] = ""
    unsupported_codecs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, threads: int = 1):
        self.threads = threads  # decoder threads per open file (Dask already uses every core)

    @classmethod
    def available(cls) -> bool:
        """Whether the libraries in ``requires`` are installed (found, not imported: importing torch takes
        seconds, and this is asked in the client process, which never decodes)."""
        return all(importlib.util.find_spec(name) is not None for name in cls.requires)

    @abstractmethod
    def open(self, path: str | Path) -> VideoReader:
        """Open ``path`` for reading."""

    def probe(self, source) -> VideoHeader:
        """The header of ``source``'s first video stream (a path or a binary file object), without decoding.
        PyAV reads it for every backend: it is a core dependency and opens a container in milliseconds."""
        return probe(source)

    def unsupported(self, header: VideoHeader) -> Unreadable | None:
        """Why this backend cannot decode a video with this ``header``; None when it can."""
        if header.codec in self.unsupported_codecs:
            return Unreadable(f"the {self.name} backend cannot decode {header.codec} video", fix="--video-backend pyav")
        return None
