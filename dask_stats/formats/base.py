"""The writer seam: what ``convert`` asks of the format it writes, without knowing which one it is.

``convert`` runs plan -> writer -> run -> merge -> verify -> ``writer.commit``.  A writer says why it cannot start
(``problems``), adds its own tasks to the stats graph (``tasks``: e.g. v3.0 data files), adds the tasks that need
their results (``later_tasks``: e.g. v3.0 stream copies), commits, and names what a Hub push publishes.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from ..engine.tasks import Task
from ..errors import NothingToDo, Problem
from ..hub.push import PushLayout
from ..options import Options
from ..plan import Plan
from ..stats.moments import MomentsTable
from ..storage import Store


@dataclass
class Computed:
    """What the stats run produced, handed to :meth:`Writer.commit`."""

    records: list[dict]  # per-episode stats in lerobot's shapes (episodes_stats.jsonl records)
    tables: dict[str, MomentsTable]  # per stats feature, the moments of every episode
    quantiles: dict | None  # dataset-wide quantiles per feature, when the writer asked for them
    files: dict[str, object]  # results of the writer's own tasks, by task key
    after_copy: Callable[[], None] | None = None  # to call once source files were hard-linked (their ctime changed)
    warnings: list[Problem] = field(default_factory=list)  # the commit's findings, for the summary


class Writer(ABC):
    """Writes one target format from a plan.  Subclasses set the class attributes and implement ``commit``."""

    format: ClassVar[str | None]  # the LeRobot version written ("v2.1", "v3.0"; None: none, the dataset is read)
    writes: ClassVar[bool] = True  # False: a reader (the stats doctor's report), run in place and writing nothing
    push_layout: ClassVar[PushLayout]  # what a Hub push of the result publishes
    dataset_quantiles: ClassVar[bool] = False  # whether meta/stats.json gets dataset-wide quantiles
    description: ClassVar[str] = ""  # what is written, for --dry-run and summaries
    mirrors: ClassVar[bool] = False  # with --output, the source's other files are hard-linked (or copied) there
    stats_file: ClassVar[str | None] = None  # the one file of per-episode stats written (relative), if there is one
    verification: ClassVar[str] = "gate"  # meta/stats.json checks our numbers ("gate"); "report": it is replaced

    def __init__(self, plan: Plan, target: Store, options: Options, in_place: bool):
        self.plan, self.target, self.options, self.in_place = plan, target, options, in_place

    def problems(self) -> list[Problem]:
        """Why this writer cannot start (before any work); [] when it can."""
        return []

    def stats_plan(self) -> Plan:
        """The plan whose stats the run computes: the whole plan, unless the writer carries published stats over
        (then a plan with no stats features)."""
        return self.plan

    @property
    def partial(self) -> str | None:
        """Where unfinished work lies until the commit (said when a run is interrupted), if anywhere."""
        return None

    def begin(self, resuming: bool) -> None:  # noqa: B027 - most writers prepare nothing
        """Prepare the target before any task runs (``resuming``: checkpointed results of an earlier run of the same
        plan are reused)."""

    def tasks(self) -> list[Task]:
        """Tasks of the writer's own that run beside the stats tasks."""
        return []

    def kept(self, task: Task, result: object) -> bool:
        """Whether ``task``'s checkpointed ``result`` (of an interrupted run) may be reused: the file it wrote, if
        any, is still there."""
        return task.output is None or os.path.exists(task.output)

    def later_tasks(self, files: dict[str, object]) -> list[Task]:
        """Tasks that need the results of :meth:`tasks` (``files``: by task key)."""
        return []

    def aftermath(self) -> list[str]:
        """What the commit will do besides writing the target's files (moves, removals), for --dry-run."""
        return []

    def outcome(self) -> list[str]:
        """What the commit did besides writing the target's files, for the summary: lines such as
        ``old tree: <root>_old ...`` (aligned with the summary's ``stats:`` line)."""
        return []

    @abstractmethod
    def commit(self, computed: Computed) -> None:
        """Write the result into the target; nothing is visible as complete before this returns.  An error or an
        interrupt from the point where something may be written carries ``partial_commit = True``."""


@dataclass(frozen=True)
class AlreadyThere:
    """Nothing to do: the dataset is already in the format asked for (and recomputing was not asked)."""

    version: str
    recomputed: str  # what --force would recompute

    def problem(self, path: str) -> Problem:
        return Problem(f"the dataset is already at {self.version}", severity="info", path=path,
                       fix=f"nothing to do; pass --force to recompute {self.recomputed}", code="already-converted")

    def error(self, path: str) -> NothingToDo:
        return NothingToDo(self.problem(path), self.version, self.recomputed)
