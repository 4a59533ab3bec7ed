"""Errors a user can act on: what is wrong, where (episode, feature, file), and the fix."""

from __future__ import annotations

from dataclasses import dataclass

MAX_SHOWN = 10  # problems listed in an error message; all stay in ``DatasetError.problems``


@dataclass(frozen=True)
class Problem:
    """One finding about a dataset. ``severity`` is "error" (blocks conversion), "warning" or "info" (nothing
    wrong, e.g. nothing to do).  ``transient``: the run failed, not the data (a timeout, a lost worker), so
    re-running can help; every other error is permanent (the dataset or the options must change)."""

    message: str
    severity: str = "error"
    episode: int | None = None
    feature: str | None = None
    path: str | None = None
    fix: str | None = None
    transient: bool = False
    code: str | None = None  # what kind of finding, for code that acts on it ("already-converted")

    def __str__(self) -> str:
        where = ", ".join(
            part for part in (
                f"episode {self.episode}" if self.episode is not None else "",
                f"feature '{self.feature}'" if self.feature else "",
                f"file {self.path}" if self.path else "",
            ) if part
        )
        text = f"[{self.severity}] {self.message}"
        if where:
            text += f" ({where})"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text


def episode_spans(indices) -> str:
    """``[0, 1, 2, 5]`` -> "episodes 0-2, 5" (runs of consecutive episodes shortened)."""
    runs: list[list[int]] = []
    for index in sorted(set(int(i) for i in indices)):
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    return ("episode " if len(runs) == 1 and runs[0][0] == runs[0][1] else "episodes ") + text


@dataclass(frozen=True)
class Location:
    """Where a piece of work happens (a task, a video), to blame when it fails as a whole (timeout, lost worker)."""

    episode: int | None = None
    feature: str | None = None
    path: str | None = None

    def problem(self, message: str, fix: str | None = None, transient: bool = False) -> Problem:
        return Problem(message, episode=self.episode, feature=self.feature, path=self.path, fix=fix,
                       transient=transient)


class DatasetError(Exception):
    """The dataset (or the options) cannot be converted as asked; carries every problem found."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        shown = [str(p) for p in problems[:MAX_SHOWN]]
        if len(problems) > MAX_SHOWN:
            shown.append(f"... and {len(problems) - MAX_SHOWN} more problems of the same kinds")
        super().__init__("\n".join(shown))

    def __reduce__(self):  # keep the structured problems when a Dask worker sends the error back
        return (type(self), (self.problems,))


class NothingToDo(DatasetError):
    """The dataset is already in the format asked for: not a failure (the command line exits 0)."""

    def __init__(self, problems, version: str = "", recomputes: str = "", output: str | None = None):
        super().__init__(problems)
        self.version, self.recomputes = version, recomputes  # e.g. "v2.1", "its meta/episodes_stats.jsonl"
        self.output = output  # set when an --output already holds the finished conversion

    def __reduce__(self):
        return (type(self), (self.problems, self.version, self.recomputes, self.output))


class TaskError(DatasetError):
    """A stats task failed on one episode/feature/file."""

    @property
    def transient(self) -> bool:
        """Whether re-running can help: every problem is of the run (timeouts, lost workers), none of the data."""
        return bool(self.problems) and all(p.transient for p in self.problems)


class VerificationError(DatasetError):
    """The new per-episode stats disagree with meta/stats.json beyond tolerance."""


class HubError(Exception):
    """A Hub operation failed; the message says what happened and how to fix it."""
