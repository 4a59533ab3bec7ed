"""Check the new stats against what the dataset already says: ``meta/stats.json`` (the dataset-wide stats), and an
old ``episodes_stats.jsonl`` (reported, never trusted).

The episode moments are merged (``MomentsTable.total``, the merge used everywhere: count-weighted mean,
pooled variance) and compared with the reference tolerances.  Old stats files were often float32 running
statistics, so numeric features also get the rounding error of such a mean over the dataset's frame
count (lerobot#910).  Sampled pixel features (video, image) can legitimately differ: their mismatches
are warnings unless ``strict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import Problem
from .moments import MomentsTable
from .records import PIXEL_DTYPES, finalize

NUMERIC_TOL = (5e-6, 6e-5)  # (rtol, atol) of lerobot's check_aggregate_stats
PIXEL_TOL = (1e-2, 1e-2)
FLOAT32_EPS = float(np.finfo(np.float32).eps)


@dataclass
class Comparison:
    feature: str
    stat: str
    max_diff: float
    allowed: float
    blocking: bool  # a failure here stops the conversion
    episode: int | None = None  # of a failed check: the episode that deviates most (see ``_deviating_episode``)

    @property
    def ok(self) -> bool:
        return self.max_diff <= self.allowed


@dataclass
class VerificationReport:
    checked: bool
    reason: str = ""
    checks: list[Comparison] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Comparison]:
        return [c for c in self.checks if not c.ok and c.blocking]

    @property
    def warnings(self) -> list[Comparison]:
        return [c for c in self.checks if not c.ok and not c.blocking]

    @property
    def outcome(self) -> str:
        if not self.checked:
            return f"not verified ({self.reason})"
        if self.failures:
            return f"FAILED on {len(self.failures)} stat(s)"
        suffix = f", {len(self.warnings)} warning(s) on sampled pixel stats" if self.warnings else ""
        return f"passed against meta/stats.json ({len(self.checks)} stats{suffix})"

    def table(self, only_problems: bool = False) -> str:
        """One line per feature: its largest deviation and the allowance."""
        lines = [f"{'feature':40} {'stat':5} {'max |diff|':>11} {'allowed':>11}  result"]
        for feature in dict.fromkeys(c.feature for c in self.checks):
            rows = [c for c in self.checks if c.feature == feature]
            worst = max(rows, key=lambda c: c.max_diff / c.allowed if c.allowed else np.inf)
            if only_problems and worst.ok:
                continue
            status = "ok" if worst.ok else ("MISMATCH" if worst.blocking else "warning")
            if not worst.ok and worst.episode is not None:
                status += f" (episode {worst.episode} deviates most)"
            lines.append(f"{feature:40} {worst.stat:5} {worst.max_diff:11.3g} {worst.allowed:11.3g}  {status}")
        return "\n".join(lines)


def verify(tables: dict[str, MomentsTable], features: dict[str, dict], reference: dict | None,
           strict: bool = False) -> VerificationReport:
    """Compare the dataset-wide moments of every feature (the merged episode ``tables``, as lerobot's
    aggregate_stats) with ``reference`` (the parsed stats.json, None if absent)."""
    if reference is None:
        return VerificationReport(False, "the dataset has no meta/stats.json")
    with np.errstate(all="ignore"):  # NaN/inf stats compare as values (a NaN matches a NaN), silently
        return _verify(tables, features, reference, strict)


def _verify(tables, features, reference, strict) -> VerificationReport:
    report = VerificationReport(True)
    for name, table in tables.items():
        moments = table.total()
        ref = reference.get(name)
        if not isinstance(ref, dict):
            report.not_compared.append(name)
            continue
        ours = finalize(moments, features[name])
        pixel = features[name]["dtype"] in PIXEL_DTYPES
        rtol, atol = PIXEL_TOL if pixel else NUMERIC_TOL
        n = int(moments.count.max())
        for stat in ("mean", "std", "min", "max"):
            if stat not in ref:
                continue
            expected = np.asarray(ref[stat], dtype=np.float64)
            actual = ours[stat].astype(np.float64)
            if expected.size != actual.size:
                report.not_compared.append(f"{name}.{stat} (shape {list(expected.shape)} vs {list(actual.shape)})")
                continue
            expected, actual = expected.reshape(-1), actual.reshape(-1)
            # float32 running statistics over n values: error grows like sqrt(n) ulps of the value.
            float32_slack = 0.0 if pixel else 4 * FLOAT32_EPS * np.sqrt(n) * np.abs(expected)
            allowed = atol + rtol * np.abs(expected) + float32_slack
            with np.errstate(invalid="ignore", over="ignore"):
                diff = np.abs(actual - expected)
            same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))  # NaN/inf agree with themselves
            diff = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
            allowed = np.where(np.isfinite(allowed), allowed, 0.0) if np.ndim(allowed) else allowed
            worst = int(np.argmax(diff - allowed)) if diff.size else 0
            check = Comparison(name, stat, float(diff[worst]), float(np.atleast_1d(allowed)[worst]),
                          blocking=strict or not pixel)
            if not check.ok:
                check.episode = _deviating_episode(table, stat, worst, ref, float(actual[worst]),
                                                   float(expected[worst]), float(moments.mean.reshape(-1)[worst]))
            report.checks.append(check)
    return report


def _deviating_episode(table: MomentsTable, stat: str, component: int, ref: dict, actual: float, expected: float,
                       our_mean: float) -> int | None:
    """The episode most to blame for a failed check of ``stat`` at ``component`` (cheap: one pass over the
    episodes' moments).  min/max: the episode holding the new extreme, when it lies beyond the old one; mean/std:
    the episode whose own mean is farthest from the old dataset mean (ours when stats.json has none)."""
    if not len(table.keys):
        return None
    if stat in ("min", "max"):
        if not (actual < expected if stat == "min" else actual > expected):
            return None  # the new extreme is inside the old one: no episode holds what the old stats miss
        values = getattr(table, stat)[:, component].astype(np.float64)
        pick = np.nanargmin if stat == "min" else np.nanargmax
    else:
        center = our_mean
        try:
            old_mean = np.asarray(ref.get("mean"), dtype=np.float64).reshape(-1)
            if old_mean.size == table.mean.shape[1] and np.isfinite(old_mean[component]):
                center = float(old_mean[component])
        except (TypeError, ValueError):
            pass
        values = np.abs(table.mean[:, component].astype(np.float64) - center)
        pick = np.nanargmax
    if np.isnan(values).all():
        return None
    return int(table.keys[pick(values)])


def compare_episode_stats(records: list[dict], old: list[dict], features: dict[str, dict],
                          path: str) -> list[Problem]:
    """Warnings where an old ``episodes_stats.jsonl`` (``old``, read from ``path``) disagrees with the new
    per-episode stats (``records``) beyond the verification tolerances: one per feature, naming the stat and the
    episode with the largest difference.  The new stats are written either way: the old file is compared, never
    carried over."""
    before = {r.get("episode_index"): r.get("stats", {}) for r in old}
    worst: dict[str, tuple[float, str, int]] = {}
    for record in records:
        theirs = before.get(record["episode_index"])
        if theirs is None:
            continue
        for feature, stats in record["stats"].items():
            rtol, atol = PIXEL_TOL if features[feature]["dtype"] in PIXEL_DTYPES else NUMERIC_TOL
            for stat, value in stats.items():
                try:
                    expected = np.asarray(theirs[feature][stat], dtype=np.float64).ravel()
                    ours = np.asarray(value, dtype=np.float64).ravel()
                    excess = np.abs(ours - expected) - (atol + rtol * np.abs(expected))
                except (KeyError, TypeError, ValueError):  # absent, or another shape: not comparable
                    continue
                bad = float(np.nanmax(excess, initial=-np.inf)) if excess.size else -np.inf
                if bad > 0 and bad > worst.get(feature, (0.0,))[0]:
                    worst[feature] = (bad, stat, record["episode_index"])
    missing = sorted(set(r["episode_index"] for r in records) - set(before))
    problems = [Problem(f"the old episodes_stats.jsonl differs from the new stats: {stat} beyond tolerance by {bad:.3g}"
                        " (largest difference)", severity="warning", episode=episode, feature=feature,
                        path=path)
                for feature, (bad, stat, episode) in worst.items()]
    if missing:
        problems.append(Problem(f"the old episodes_stats.jsonl has no line for {len(missing)} episode(s)",
                                severity="warning", episode=missing[0], path=path))
    return problems
