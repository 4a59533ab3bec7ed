"""Turn moments into v2.1 stats (reference shapes and types) and write metadata atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import jsonlines
import numpy as np

from .moments import Moments

PIXEL_DTYPES = ("video", "image")


def finalize(moments: Moments, feature: dict) -> dict[str, np.ndarray]:
    """min/max/mean/std/count in the reference's shapes: (C,1,1) pixels, (1,) scalars, (D,) vectors."""
    if feature["dtype"] in PIXEL_DTYPES:
        shape = (-1, 1, 1)
    else:
        shape = tuple(feature.get("shape") or [1])
    return {
        "min": moments.min.reshape(shape),
        "max": moments.max.reshape(shape),
        "mean": moments.mean.reshape(shape),
        "std": moments.std.reshape(shape),
        "count": np.array([moments.samples], dtype=np.int64),
    }


def episode_record(episode: int, stats: dict[str, dict[str, np.ndarray]]) -> dict:
    """One line of episodes_stats.jsonl (arrays -> lists; float32 values -> their exact float64 repr)."""
    return {"episode_index": episode,
            "stats": {feature: {key: value.tolist() for key, value in s.items()} for feature, s in stats.items()}}


def _atomic_write(path: Path, write) -> None:
    """Write via a temp file in the same directory, fsync, then rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_jsonl(path: Path, records: list[dict]) -> None:
    """jsonlines defaults, as lerobot writes them: ", "/": " separators, ensure_ascii=False, "\\n" per line."""
    _atomic_write(path, lambda handle: jsonlines.Writer(handle).write_all(records))


def write_info(path: Path, info: dict) -> None:
    """info.json as lerobot writes it: indent 4, ensure_ascii=False, no trailing newline."""
    _atomic_write(path, lambda handle: json.dump(info, handle, indent=4, ensure_ascii=False))


def link_or_copy_tree(source: Path, target: Path, skip: set[str]) -> None:
    """Mirror ``source`` into ``target``: hard links where possible (same filesystem), copies otherwise.

    Paths in ``skip`` (relative, POSIX) are left out; the source is never modified.
    """
    for directory, _dirs, files in os.walk(source):
        rel_dir = Path(directory).relative_to(source)
        (target / rel_dir).mkdir(parents=True, exist_ok=True)
        for name in files:
            rel = (rel_dir / name).as_posix()
            if rel in skip:
                continue
            src, dst = Path(directory) / name, target / rel_dir / name
            if rel.startswith("meta/"):
                shutil.copy2(src, dst)  # metadata is small and may be rewritten later: never share it
                continue
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
