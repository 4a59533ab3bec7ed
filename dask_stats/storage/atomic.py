"""Atomic local writes: a temp file in the destination directory, renamed over the target when complete."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".tmp"  # temporary files are ".<name>.<random>.tmp" beside their destination


def _umask() -> int:
    """The process's umask (read without changing it where /proc says it; set-and-restore elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(dest: str | os.PathLike, fsync: bool = True) -> Iterator[str]:
    """Yield a temp path beside ``dest``; on success it replaces ``dest``, keeping the mode of the file it replaces
    (a new file gets ``0o666 & ~umask``, as ``open`` would give it).  A symlink at ``dest`` is replaced by a regular
    file: the file it pointed at is never written.

    On an exception the temp file is removed and ``dest`` is untouched: never a half-written file.
    """
    dest = os.fspath(dest)
    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(dest).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=TEMP_SUFFIX, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, mode)
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
