"""Assign consecutive episodes to output files by size (and, for videos, by stream signature).

Pure functions. Rules (lerobot's, with its rollover bugs fixed): episodes stay in order and are never
split; a file is closed before the episode that would bring it to ``limit_mb`` or beyond; an episode at or
over the limit gets a file of its own (the first one included: file-000 is always written); the indices of
consecutive files follow :meth:`FileIndex.next`; a new file also starts when the signature changes.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .layout import CHUNKS_SIZE, MB, FileIndex

FIRST = FileIndex(0, 0)


@dataclass(frozen=True)
class Group:
    """One output file: its index and the positions (in the input order) of its episodes."""

    index: FileIndex
    episodes: tuple[int, ...]
    nbytes: int  # sum of the episodes' input sizes

    @property
    def first(self) -> int:
        return self.episodes[0]


def group_by_size(
    sizes: Sequence[int],
    limit_mb: float,
    *,
    chunks_size: int = CHUNKS_SIZE,
    start: FileIndex = FIRST,
    signatures: Sequence[Hashable] | None = None,
) -> list[Group]:
    """Split episodes ``0..len(sizes)-1`` (sizes in bytes) into consecutive groups, one per output file."""
    if limit_mb <= 0:
        raise ValueError(f"the file size limit must be positive, got {limit_mb} MB")
    if signatures is not None and len(signatures) != len(sizes):
        raise ValueError(f"{len(signatures)} signatures for {len(sizes)} episodes")
    limit = limit_mb * MB
    groups: list[Group] = []
    index, members, total = start, [], 0
    for position, size in enumerate(sizes):
        if size < 0:
            raise ValueError(f"episode at position {position} has a negative size {size}")
        changed = signatures is not None and members and signatures[position] != signatures[members[0]]
        if members and (total + size >= limit or changed):
            groups.append(Group(index, tuple(members), total))
            index, members, total = index.next(chunks_size), [], 0
        members.append(position)
        total += size
    if members:
        groups.append(Group(index, tuple(members), total))
    return groups


def locate(groups: Sequence[Group]) -> dict[int, tuple[FileIndex, int]]:
    """Episode position -> (its file's index, its rank inside that file)."""
    return {pos: (g.index, rank) for g in groups for rank, pos in enumerate(g.episodes)}
