"""Atomic local writes: a temp file in the destination directory, renamed over the target when complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(dest: str | os.PathLike, fsync: bool = True) -> Iterator[str]:
    """Yield a temp path beside ``dest``; on success it replaces ``dest`` (mode ``0o666 & ~umask``).

    On an exception the temp file is removed and ``dest`` is untouched: never a half-written file.
    """
    dest = os.fspath(dest)
    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if fsync:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    """Replace ``dest`` with ``data`` atomically."""
    with atomic_path(dest) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
