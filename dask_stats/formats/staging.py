"""A new tree and its commit (the v3.0 tree of a v2.x dataset, the v2.1 tree of a v3.0 one), where the target
lives.  :func:`new_tree` picks one of two with the same members (``store``: where the files are written,
``partial``, ``problems``, ``begin``, ``commit``, ``aftermath``):

:class:`StagingTree` (a local directory, shared storage included): ``<root>.<version>-partial`` is marked as ours
while unfinished, emptied when no checkpointed result vouches for it, checked to hold exactly the plan's files
(anything else, such as the temporary file of a killed write, is removed), then swapped in: in place, the old tree
is kept as ``<root>_old``.  The marker says "complete" before the swap, so a run killed between the swap's two
renames left a tree that the next run moves into place.

:class:`StoreTree` (an object store, which has no rename): the files are written under their final names into the
``--output`` prefix, which holds a marker object while unfinished; the commit checks that the prefix holds exactly
the plan's files, writes ``meta/info.json`` last (the commit point: before it, no reader finds a dataset there),
then removes the marker.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import ClassVar

from ..errors import DatasetError, Problem
from ..options import Options
from ..plan import Plan
from ..storage import OUTPUT_MARKER, Store
from .base import Writer

SUFFIXES = (".v3.0-partial", ".v2.1-partial")  # of the staging trees, by the version they build


class TreeWriter(Writer):
    """A writer of a whole new tree (:func:`new_tree`), committed at once: the tree says where unfinished work lies,
    is prepared before the tasks run and describes its moves.  Subclasses set ``replaces`` and fill the tree."""

    replaces: ClassVar[str]  # what the new tree replaces ("v2.x", "v3.0"), for --dry-run and the summary
    local_only: ClassVar[bool] = False  # built on local disk only (the writer refuses other targets)

    def __init__(self, plan: Plan, target: Store, options: Options, in_place: bool):
        super().__init__(plan, target, options, in_place)
        self.tree = StagingTree(target.root, self.format, in_place) if self.local_only \
            else new_tree(target, self.format, in_place)

    @property
    def partial(self) -> str:
        return self.tree.partial

    def problems(self) -> list[Problem]:
        return self.tree.problems()

    def begin(self, resuming: bool) -> None:
        self.tree.begin(self.plan.store.display(self.plan.store.root), resuming)

    def aftermath(self) -> list[str]:
        return self.tree.aftermath(self.replaces)

    def outcome(self) -> list[str]:
        return self.tree.outcome(self.replaces)


def new_tree(target: Store, version: str, in_place: bool) -> StagingTree | StoreTree:
    """The tree that builds ``version`` for ``target``: staged and renamed locally, written in place on a store."""
    return StagingTree(target.root, version, in_place) if target.local else StoreTree(target, version, in_place)


class StagingTree:
    def __init__(self, root: str, version: str, in_place: bool):
        self.final = Path(root)
        self.staging = self.final.with_name(f"{self.final.name}.{version}-partial")
        self.old = self.final.with_name(self.final.name + "_old")
        self.in_place = in_place
        self.store = Store(str(self.staging))

    @property
    def partial(self) -> str:
        return str(self.staging)

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

    def commit(self, planned: set[str], last: str, text: str) -> None:
        """Write ``last`` (relative) with ``text``, keep exactly ``planned`` and ``last``, and swap the tree in."""
        self.store.write_text(self.store.path(last), text)
        self.settle(planned | {last})
        self.swap()

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


class StoreTree:
    """The new tree written straight into ``target`` (an ``--output`` prefix on an object store), committed by
    writing its last metadata file."""

    def __init__(self, target: Store, version: str, in_place: bool):
        self.store, self.version, self.in_place = target, version, in_place
        self.marker = target.path(OUTPUT_MARKER)

    @property
    def partial(self) -> str:
        return (f"{self.store.display(self.store.root)} (marked unfinished by its {OUTPUT_MARKER} object; the same "
                "command resumes it, or remove the prefix to abandon it)")

    def problems(self) -> list[Problem]:
        if self.in_place:
            where = self.store.display(self.store.root)
            return [Problem(f"a dataset on an object store cannot be converted to {self.version} in place (a store "
                            "has no rename: the source must stay whole until the new tree is complete)", path=where,
                            fix=f"write the new tree beside it: --output {where}-{self.version} (then point readers "
                                "there, or copy it over the source)")]
        return []

    def begin(self, source: str, resuming: bool) -> None:
        """Mark the prefix as an unfinished tree of ``source``; an earlier unfinished tree that no checkpointed
        result vouches for is emptied first (``check.output_problems`` refused a prefix holding anything else)."""
        self.store.refresh()
        if self.store.is_file(self.marker) and not resuming:
            self._empty()
        self.store.write_text(self.marker, json.dumps({"source": source, "complete": False}))

    def _empty(self) -> None:
        """Remove every file but the marker, ``meta/info.json`` first (no moment looks like a dataset)."""
        files = [relative for relative in self.store.files() if relative != OUTPUT_MARKER]
        for relative in sorted(files, key=lambda r: r != "meta/info.json"):
            self.store.remove(self.store.path(relative))
        self.store.refresh()

    def commit(self, planned: set[str], last: str, text: str) -> None:
        """Check that exactly ``planned`` is there (strays removed), write ``last`` (the commit point), drop the
        marker."""
        self.store.refresh()
        present = set(self.store.files()) - {OUTPUT_MARKER, last}
        missing = sorted(planned - present)
        if missing:
            raise DatasetError([Problem("a planned file is missing from the new tree", path=self.store.path(m),
                                        fix="run the same command again") for m in missing])
        for relative in sorted(present - planned):
            self.store.remove(self.store.path(relative))
        self.store.write_text(self.store.path(last), text)
        self.store.remove(self.marker)
        self.store.refresh()

    def aftermath(self, old_version: str) -> list[str]:
        return []

    def outcome(self, old_version: str) -> list[str]:
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
