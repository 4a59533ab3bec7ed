"""A new local tree built beside its target and moved into place at the commit (the v3.0 tree of a v2.x dataset,
the v2.1 tree of a v3.0 one).

``<root>.<version>-partial`` is marked as ours while unfinished, emptied when no checkpointed result vouches for
it, checked to hold exactly the plan's files (anything else, such as the temporary file of a killed write, is
removed), then swapped in: in place, the old tree is kept as ``<root>_old``.  The marker says "complete" before
the swap, so a run killed between the swap's two renames left a tree that the next run moves into place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import DatasetError, Problem
from ..storage import OUTPUT_MARKER

SUFFIXES = (".v3.0-partial", ".v2.1-partial")  # of the staging trees, by the version they build


class StagingTree:
    def __init__(self, root: str, version: str, in_place: bool):
        self.final = Path(root)
        self.staging = self.final.with_name(f"{self.final.name}.{version}-partial")
        self.old = self.final.with_name(self.final.name + "_old")
        self.in_place = in_place

    def problems(self) -> list[Problem]:
        if self.in_place and self.old.exists():
            return [Problem(f"{self.old} exists: the old tree would be kept there", path=str(self.old),
                            fix="move or remove it, or write a copy with --output")]
        return []

    def begin(self, source: str, resuming: bool) -> None:
        """Make the tree ready: one that no checkpointed result vouches for (another run's, other file sizes, a
        changed source) is emptied; a directory of that name not made here is refused."""
        marker = self.staging / OUTPUT_MARKER
        if self.staging.exists() and not marker.exists():
            raise DatasetError(Problem(f"{self.staging} exists and was not made by dask_stats", path=str(self.staging),
                                       fix="move or remove it (dask_stats builds the new tree there)"))
        if self.staging.exists() and not resuming:
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"source": source, "complete": False}))

    def settle(self, planned: set[str]) -> None:
        """Leave exactly the ``planned`` files (relative, POSIX) in the tree: a missing one is an error, any other
        file is removed; then mark the tree complete."""
        planned = planned | {OUTPUT_MARKER}
        present = {path.relative_to(self.staging).as_posix(): path for path in self.staging.rglob("*")
                   if path.is_file() or path.is_symlink()}
        missing = sorted(planned - set(present))
        if missing:
            raise DatasetError([Problem("a planned file is missing from the staging tree", path=str(self.staging / m),
                                        fix="run the same command again") for m in missing])
        for relative, path in present.items():
            if relative not in planned:
                path.unlink()
        marker = self.staging / OUTPUT_MARKER
        marker.write_text(json.dumps({**json.loads(marker.read_text()), "complete": True}))

    def swap(self) -> None:
        """Move the tree into place (in place: the old one to ``<root>_old`` first), then drop its marker."""
        if self.in_place:
            os.rename(self.final, self.old)
        elif self.final.exists():
            self.final.rmdir()  # an empty --output directory
        os.rename(self.staging, self.final)
        (self.final / OUTPUT_MARKER).unlink()

    def aftermath(self, old_version: str) -> list[str]:
        if self.in_place:
            return [f"move the {old_version} tree to {self.old} and the new tree from {self.staging} to {self.final}"]
        return []

    def outcome(self, old_version: str) -> list[str]:
        if self.in_place:
            return [f"old tree:     {self.old} (the {old_version} dataset, kept: remove it once you no longer need it)"]
        return []


def _cut_swap(root: str) -> tuple[Path, Path, Path] | None:
    """The pieces of an in-place swap interrupted between its two renames: no ``<root>``, the old tree in
    ``<root>_old``, a new tree in ``<root>.<version>-partial``."""
    final = Path(root)
    old = final.with_name(final.name + "_old")
    for suffix in SUFFIXES:
        staging = final.with_name(final.name + suffix)
        if not final.exists() and old.is_dir() and staging.is_dir():
            return final, staging, old
    return None


def _complete(tree: Path) -> bool:
    try:
        return json.loads((tree / OUTPUT_MARKER).read_text()).get("complete") is True
    except (OSError, ValueError, AttributeError):
        return False


def finish_swap(root: str) -> Problem | None:
    """Finish an in-place conversion interrupted between its two renames (or just after them); what was done."""
    if _complete(Path(root)):  # swapped; only the marker was left
        (Path(root) / OUTPUT_MARKER).unlink()
        return None
    found = _cut_swap(root)
    if found is None or not _complete(found[1]):
        return None
    final, staging, old = found
    os.rename(staging, final)
    (final / OUTPUT_MARKER).unlink()
    return Problem(f"finished the swap of an interrupted conversion: {final} is the new dataset, the old tree is in "
                   f"{old}", severity="warning", path=str(final))


def interrupted_swap(root: str) -> Problem | None:
    """What ``check`` says of a conversion interrupted around its swap (see :func:`finish_swap`)."""
    found = _cut_swap(root)
    if found is None:
        return None
    final, staging, old = found
    if not _complete(staging):
        return Problem(f"an in-place conversion was interrupted before its commit: the old tree is in {old}, the "
                       f"unfinished new tree in {staging}", path=str(final),
                       fix=f"move {old} back to {final} and run the conversion again")
    return Problem(f"an in-place conversion was interrupted between its two renames: the old tree is in {old}, "
                   f"the finished new tree in {staging}", path=str(final),
                   fix="run the same convert command again: it finishes the swap")
