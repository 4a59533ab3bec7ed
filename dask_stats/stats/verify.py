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
HISTOGRAM_BINS = 5000  # lerobot's per-episode quantile histogram (RunningQuantileStats)
MODES = ("gate", "report")

IMPRECISE = "imprecise float32 reference"  # the cause of a difference lerobot's own arithmetic explains
FOREIGN = "stats that do not belong to this data"  # the cause of a difference no rounding explains


@dataclass
class Comparison:
    feature: str
    stat: str
    max_diff: float
    allowed: float
    blocking: bool  # a failure here stops the conversion
    episode: int | None = None  # of a failed check: the episode that deviates most (see ``_deviating_episode``)
    beyond_plain: bool = False  # some component differs by more than lerobot's own tolerance (before the model)

    @property
    def ok(self) -> bool:
        return self.max_diff <= self.allowed

    @property
    def cause(self) -> str | None:
        """Why the reference differs: None (it agrees), IMPRECISE (only as lerobot's float32 computation of it
        explains) or FOREIGN (beyond that)."""
        if not self.ok:
            return FOREIGN
        return IMPRECISE if self.beyond_plain else None


@dataclass
class VerificationReport:
    checked: bool
    reason: str = ""
    checks: list[Comparison] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    mode: str = "gate"

    @property
    def failures(self) -> list[Comparison]:
        return [c for c in self.checks if not c.ok and c.blocking]

    @property
    def warnings(self) -> list[Comparison]:
        return [c for c in self.checks if not c.ok and not c.blocking]

    @property
    def imprecise(self) -> list[Comparison]:
        """Differences within the float32 model only: the reference's rounding, not a fault of either side."""
        return [c for c in self.checks if c.cause == IMPRECISE]

    @property
    def outcome(self) -> str:
        if not self.checked:
            return f"not verified ({self.reason})"
        if self.mode == "report":
            differ = [c for c in self.checks if c.cause is not None]
            return (f"compared with the published meta/stats.json ({len(self.checks)} stats, {len(differ)} differ; a "
                    "report, not a gate: --strict-verify stops on differences)")
        if self.failures:
            return f"FAILED on {len(self.failures)} stat(s): {FOREIGN}"
        suffix = f", {len(self.warnings)} warning(s) on sampled pixel stats" if self.warnings else ""
        if self.imprecise:
            suffix += f", {len(self.imprecise)} within the rounding of its float32 computation"
        return f"passed against meta/stats.json ({len(self.checks)} stats{suffix})"

    def table(self, only_problems: bool = False) -> str:
        """One line per feature: its largest deviation, the allowance and the cause."""
        lines = [f"{'feature':40} {'stat':5} {'max |diff|':>11} {'allowed':>11}  result"]
        for feature in dict.fromkeys(c.feature for c in self.checks):
            rows = [c for c in self.checks if c.feature == feature]
            worst = max(rows, key=lambda c: c.max_diff / c.allowed if c.allowed else np.inf)
            if only_problems and worst.ok:
                continue
            status = "ok" if worst.ok else ("MISMATCH" if worst.blocking else "differs")
            if worst.cause == IMPRECISE:
                status += f" ({IMPRECISE})"
            if not worst.ok and worst.episode is not None:
                status += f" (episode {worst.episode} deviates most)"
            lines.append(f"{feature:40} {worst.stat:5} {worst.max_diff:11.3g} {worst.allowed:11.3g}  {status}")
        return "\n".join(lines)

    def problem(self, path: str) -> Problem:
        """The error of a failed gate, naming the cause."""
        return Problem(f"the new stats disagree with meta/stats.json beyond the rounding of lerobot's float32 "
                       f"computation ({FOREIGN}); nothing was written:\n" + self.table(only_problems=True), path=path,
                       fix="check that meta/stats.json belongs to this dataset (a stats.json of other or older data "
                           "fails here); if it is stale, --skip-verify")


def verify(tables: dict[str, MomentsTable], features: dict[str, dict], reference: dict | None,
           strict: bool = False, mode: str = "gate", levels: tuple[float, ...] = ()) -> VerificationReport:
    """Compare the dataset-wide moments of every feature (the merged episode ``tables``, as lerobot's
    aggregate_stats) with ``reference`` (the parsed stats.json, None if absent), allowing for how lerobot computed
    it (``allowances``).  ``mode="gate"``: numeric differences beyond that block (pixel ones too with ``strict``);
    ``mode="report"`` (a recompute: the reference is what is being replaced): nothing blocks unless ``strict``.
    ``levels``: the quantile levels of the tables' per-episode quantiles (the reference's are compared when given)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}, expected one of {MODES}")
    if reference is None:
        return VerificationReport(False, "the dataset has no meta/stats.json", mode=mode)
    with np.errstate(all="ignore"):  # NaN/inf stats compare as values (a NaN matches a NaN), silently
        return _verify(tables, features, reference, strict, mode, tuple(levels or ()))


def _verify(tables, features, reference, strict, mode, levels) -> VerificationReport:
    from .quantiles import quantile_key

    report = VerificationReport(True, mode=mode)
    for name, table in tables.items():
        moments = table.total()
        ref = reference.get(name)
        if not isinstance(ref, dict):
            report.not_compared.append(name)
            continue
        ours = finalize(moments, features[name])
        pixel = features[name]["dtype"] in PIXEL_DTYPES
        rtol, atol = PIXEL_TOL if pixel else NUMERIC_TOL
        model = {} if pixel else allowances(table, moments)
        blocking = strict or (mode == "gate" and not pixel)
        stats = [(stat, ours[stat]) for stat in ("mean", "std", "min", "max")]
        if not pixel and table.quantiles.shape[1] == len(levels):
            stats += [(quantile_key(q), i) for i, q in enumerate(levels)]
        for stat, actual in stats:
            if stat not in ref:
                continue
            expected = np.asarray(ref[stat], dtype=np.float64)
            if isinstance(actual, int):  # a quantile level: the envelope lerobot's average must lie in
                low, high = quantile_envelope(table, actual)
                actual = np.clip(expected.reshape(-1), low, high) if expected.size == low.size else low
            else:
                actual = np.asarray(actual, dtype=np.float64)
            if expected.size != actual.size:
                report.not_compared.append(f"{name}.{stat} (shape {list(expected.shape)} vs {list(actual.shape)})")
                continue
            expected, actual = expected.reshape(-1), actual.reshape(-1)
            plain = atol + rtol * np.abs(expected)
            allowed = plain + model.get(stat, 0.0)
            with np.errstate(invalid="ignore", over="ignore"):
                diff = np.abs(actual - expected)
            same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))  # NaN/inf agree with themselves
            diff = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
            allowed = np.where(np.isfinite(allowed), allowed, 0.0)
            worst = int(np.argmax(diff - allowed)) if diff.size else 0
            check = Comparison(name, stat, float(diff[worst]), float(allowed[worst]), blocking=blocking,
                               beyond_plain=bool((diff > plain).any()))
            if not check.ok and stat in ("mean", "std", "min", "max"):
                check.episode = _deviating_episode(table, stat, worst, ref, float(actual[worst]),
                                                   float(expected[worst]), float(moments.mean.reshape(-1)[worst]))
            report.checks.append(check)
    return report


def allowances(table: MomentsTable, total) -> dict[str, np.ndarray]:
    """How far, per component, lerobot's float32 computation of each dataset stat can lie from the exact value
    (derivation: docs/statistics.md, "Verification").  ``total``: the table's merged moments.

    - mean: a float32 running mean over N values errs by up to ~4 eps32 sqrt(N) times the values' magnitude
      (rms = sqrt(mean^2 + std^2));
    - std: var = E[x^2] - E[x]^2 in float32 errs by dv = 4 eps32 sqrt(N) rms^2 (both terms are ~rms^2, their
      difference is small), so std errs by min(sqrt(dv), dv / std): a large mean and a small std give a std
      anywhere from 0 to sqrt(std^2 + dv);
    - min/max: rounding to float32, eps32 |value|;
    - quantiles: one histogram bin of the widest episode ((max - min) / 5000), on top of the envelope of the
      per-episode quantiles (``quantile_envelope``) that lerobot's frame-weighted average lies in."""
    n = np.maximum(total.count.astype(np.float64), 1.0)
    std = np.sqrt(np.maximum(total.m2, 0.0) / n)
    square = total.mean ** 2 + std ** 2
    growth = 4 * FLOAT32_EPS * np.sqrt(n)
    dv = growth * square
    with np.errstate(divide="ignore", invalid="ignore"):
        std_slack = np.minimum(np.sqrt(dv), np.where(std > 0, dv / std, np.inf))
    extreme = FLOAT32_EPS * np.maximum(np.abs(total.min.astype(np.float64)), np.abs(total.max.astype(np.float64)))
    width = (table.max.astype(np.float64) - table.min.astype(np.float64)).max(axis=0) / HISTOGRAM_BINS
    out = {"mean": growth * np.sqrt(square), "std": std_slack, "min": extreme, "max": extreme}
    out.update({f"q{p:02d}": width for p in range(1, 100)})
    return out


def quantile_envelope(table: MomentsTable, level: int) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest per-episode quantile at ``level`` (an index into the table's levels): an average of
    per-episode quantiles (lerobot's stats.json) lies between them, whatever the weights."""
    values = table.quantiles[:, level, :].astype(np.float64)
    return np.nanmin(values, axis=0), np.nanmax(values, axis=0)


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
