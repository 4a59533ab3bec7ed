"""Compare two sets of v2.1 per-episode stats and explain the differences as a per-feature table.

A stats set is a list of ``{"episode_index": i, "stats": {feature: {stat: nested lists}}}`` records, as in
``meta/episodes_stats.jsonl``.  ``compare_stats`` returns a ``Comparison``: structural problems (episodes,
features, stat keys, shapes, counts, JSON value types) and one row per (feature, stat) with the largest
absolute difference over episodes and elements, the tolerance at the worst element, and a verdict.
``str(comparison)`` is the readable table printed when a parity test fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STAT_KEYS = ["min", "max", "mean", "std", "count"]
EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7

# A tolerance rule gets (feature dtype, stat, reference values, scale, count) and returns the allowed
# absolute difference, elementwise.  ``scale`` is max(|min|, |max|) of the feature in that episode (per
# element), the magnitude the reference's float32 arithmetic works at; ``count`` its number of rows.
ToleranceRule = Callable[[str, str, np.ndarray, np.ndarray, int], np.ndarray]


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def parity_tolerance(rtol: float = 1e-6, pixel_atol: float = 2e-3) -> ToleranceRule:
    """Tolerances of issue 3, proof 1 (ours vs lerobot 0.3.3's converter).

    - image/video: ``pixel_atol`` on every stat (decoders and sampling agree to ~1e-3 on [0, 1] pixels).
    - float32, int64, bool: ``rtol`` relative to max(|ref|, scale).  A plain rtol on |ref| alone would
      reject a correct near-zero mean: the reference accumulates float32 features in float32, whose
      error is relative to the magnitude of the data (``scale``), not to the size of the result.
    - float64: the reference turns every parquet float into a float32 torch tensor first (reference.md
      §2.1), so its float64 stats are float32 stats of rounded data; only float32 precision can be asked
      of it.  Rounding moves each value by <= eps32/2 * scale, hence min/max/std by as much; its float32
      accumulation of the mean and of the std's centring adds <= count * eps32/2 * scale (Higham's bound
      for recursive summation, which is what numpy does along axis 0 of an (L, D) array).
      We allow (count + 2) * eps32 * scale, at least ``rtol`` as above.
    """

    def rule(dtype: str, stat: str, ref: np.ndarray, scale: np.ndarray, count: int = 1) -> np.ndarray:
        if dtype in ("image", "video"):
            return np.full(ref.shape, pixel_atol)
        base = rtol * np.maximum(np.abs(ref), scale) + 1e-12  # floor: a feature that is all zeros
        if dtype == "float64":
            return np.maximum(base, (count + 2) * EPS32 * scale)
        return base

    return rule


def exact_tolerance(rtol: float = 1e-9, pixel_atol: float = 1e-9) -> ToleranceRule:
    """For two float64 computations of the same numbers (ours vs the straightforward oracle)."""

    def rule(dtype: str, stat: str, ref: np.ndarray, scale: np.ndarray, count: int = 1) -> np.ndarray:
        if dtype in ("image", "video"):
            return np.full(ref.shape, pixel_atol)
        return rtol * np.maximum(np.abs(ref), scale) + 1e-300

    return rule


@dataclass
class Row:
    feature: str
    dtype: str
    stat: str
    max_abs: float = 0.0
    tol: float = math.inf  # tolerance at the element where diff/tol is largest
    ratio: float = 0.0  # largest diff/tol; > 1 fails
    where: str = ""

    @property
    def ok(self) -> bool:
        return self.ratio <= 1.0


@dataclass
class Comparison:
    label: str
    problems: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.rows)

    def failing(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def row(self, feature: str, stat: str) -> Row:
        for r in self.rows:
            if r.feature == feature and r.stat == stat:
                return r
        raise KeyError((feature, stat))

    def table(self, only_failing_features: bool = False) -> str:
        bad = {r.feature for r in self.failing()}
        rows = [r for r in self.rows if not only_failing_features or r.feature in bad]
        head = ("feature", "dtype", "stat", "max|diff|", "tolerance", "diff/tol", "worst at", "")
        body = [
            (r.feature, r.dtype, r.stat, f"{r.max_abs:.3e}", "inf" if math.isinf(r.tol) else f"{r.tol:.3e}",
             f"{r.ratio:.3g}", r.where, "ok" if r.ok else "FAIL")
            for r in rows
        ]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)] if body else [len(h) for h in head]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*b) for b in body]
        return "\n".join(lines)

    def __str__(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.problems)} structural problem(s), {len(self.failing())} stat(s) out of tolerance"
        out = [f"== {self.label}: {verdict}"]
        out += [f"  * {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            out.append(f"  * ... {len(self.problems) - 50} more")
        out.append(self.table())
        return "\n".join(out)


def _kind(v) -> str:
    """JSON scalar kind as written: bool / int / float (bool first: bool is an int in Python)."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return type(v).__name__


def _leaf_kinds(x) -> set[str]:
    if isinstance(x, list):
        return set().union(*(_leaf_kinds(v) for v in x)) if x else set()
    return {_kind(x)}


def compare_stats(
    ours: list[dict],
    ref: list[dict],
    features: dict[str, dict],
    tolerance: ToleranceRule,
    *,
    label: str = "ours vs reference",
    episodes: list[int] | None = None,
    check_value_types: bool = True,
    check_order: bool = True,
    skip_features: tuple[str, ...] = (),
) -> Comparison:
    """Compare ``ours`` with ``ref`` (both episodes_stats records).  ``features`` is info.json's.

    ``episodes`` restricts the numeric comparison to those episode indices (the structure is always
    compared in full).  ``check_value_types`` demands the same JSON kinds (int/float/bool) for min/max.
    """
    cmp = Comparison(label)
    ours_idx = [r["episode_index"] for r in ours]
    ref_idx = [r["episode_index"] for r in ref]
    if ours_idx != ref_idx:
        cmp.problems.append(f"episode indices differ: ours {ours_idx} vs ref {ref_idx}")
    by_ep_ours = {r["episode_index"]: r["stats"] for r in ours}
    by_ep_ref = {r["episode_index"]: r["stats"] for r in ref}
    common = [e for e in ref_idx if e in by_ep_ours]
    selected = [e for e in common if episodes is None or e in episodes]

    rows: dict[tuple[str, str], Row] = {}
    for e in common:
        so, sr = by_ep_ours[e], by_ep_ref[e]
        if (list(so) != list(sr)) if check_order else (set(so) != set(sr)):
            missing = [k for k in sr if k not in so]
            extra = [k for k in so if k not in sr]
            msg = f"episode {e}: features differ"
            if missing:
                msg += f"; missing in ours {missing}"
            if extra:
                msg += f"; extra in ours {extra}"
            if not missing and not extra:
                msg += f"; order ours {list(so)} vs ref {list(sr)}"
            cmp.problems.append(msg)
        for feat in sr:
            if feat not in so or feat in skip_features:
                continue
            fo, fr = so[feat], sr[feat]
            if (list(fo) != list(fr)) if check_order else (set(fo) != set(fr)):
                cmp.problems.append(f"episode {e} {feat}: stat keys ours {list(fo)} vs ref {list(fr)}")
            dtype = features.get(feat, {}).get("dtype", "?")
            count = int(np.asarray(fr.get("count", [1])).reshape(-1)[0])
            ref_min = np.asarray(fr.get("min", 0), dtype=np.float64)
            ref_max = np.asarray(fr.get("max", 0), dtype=np.float64)
            scale = np.maximum(np.abs(ref_min), np.abs(ref_max))
            for stat in fr:
                if stat not in fo:
                    continue
                row = rows.setdefault((feat, stat), Row(feat, dtype, stat))
                try:
                    a = np.asarray(fo[stat], dtype=np.float64)
                    b = np.asarray(fr[stat], dtype=np.float64)
                except (TypeError, ValueError) as exc:  # ragged or non-numeric
                    cmp.problems.append(f"episode {e} {feat}.{stat}: not a numeric array ({exc}): ours {fo[stat]!r:.80}")
                    row.ratio = math.inf
                    continue
                if a.shape != b.shape:
                    cmp.problems.append(f"episode {e} {feat}.{stat}: shape ours {a.shape} vs ref {b.shape}")
                    continue
                if stat == "count":
                    if not np.array_equal(a, b):
                        cmp.problems.append(f"episode {e} {feat}.count: ours {fo[stat]} vs ref {fr[stat]}")
                    if check_value_types and _leaf_kinds(fo[stat]) != {"int"}:
                        cmp.problems.append(f"episode {e} {feat}.count: not an integer list: {fo[stat]}")
                    diff = np.abs(a - b)
                    row.max_abs = max(row.max_abs, float(diff.max(initial=0.0)))
                    row.tol = 0.0
                    row.ratio = max(row.ratio, math.inf if diff.max(initial=0.0) > 0 else 0.0)
                    continue
                if check_value_types and stat in ("min", "max") and _leaf_kinds(fo[stat]) != _leaf_kinds(fr[stat]):
                    cmp.problems.append(
                        f"episode {e} {feat}.{stat}: JSON value kinds ours {sorted(_leaf_kinds(fo[stat]))} "
                        f"vs ref {sorted(_leaf_kinds(fr[stat]))}"
                    )
                if e not in selected:
                    continue
                try:
                    sc = np.broadcast_to(scale, b.shape)
                except ValueError:  # min/max missing or of another shape: fall back on the value itself
                    sc = np.abs(b)
                tol = np.broadcast_to(np.asarray(tolerance(dtype, stat, b, sc, count), dtype=np.float64), b.shape)
                diff = np.abs(a - b)
                if not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
                    same_nonfinite = np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(
                        a[~np.isfinite(a)], b[~np.isfinite(b)])
                    if not same_nonfinite:
                        cmp.problems.append(f"episode {e} {feat}.{stat}: non-finite values differ: {a.tolist()} vs {b.tolist()}")
                    diff = np.where(np.isfinite(diff), diff, 0.0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(diff == 0, 0.0, diff / tol)
                if ratio.size == 0:
                    continue
                worst = int(np.argmax(ratio))
                if diff.max() > row.max_abs:
                    row.max_abs = float(diff.max())
                if float(ratio.flat[worst]) >= row.ratio:
                    row.ratio = float(ratio.flat[worst])
                    row.tol = float(tol.flat[worst])
                    elem = np.unravel_index(worst, b.shape)
                    row.where = f"ep {e} [{','.join(map(str, elem))}]" if row.ratio > 0 else ""
    # info.json's feature order (then the reference's), then stat order.
    order: dict[str, int] = {}
    for f in [*features, *(by_ep_ref[common[0]] if common else [])]:
        order.setdefault(f, len(order))
    cmp.rows = sorted(rows.values(), key=lambda r: (order.get(r.feature, 1e9),
                                                    STAT_KEYS.index(r.stat) if r.stat in STAT_KEYS else 99))
    return cmp


def max_abs_diff(ours: list[dict], ref: list[dict], feature: str, stat: str, episode: int) -> float:
    a = next(r["stats"] for r in ours if r["episode_index"] == episode)[feature][stat]
    b = next(r["stats"] for r in ref if r["episode_index"] == episode)[feature][stat]
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def aggregate(records: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """Pooled aggregate of per-episode stats (reference.md §3), float64, for comparing aggregates."""
    out: dict[str, dict[str, np.ndarray]] = {}
    features = list(records[0]["stats"]) if records else []
    for feat in features:
        parts = [r["stats"][feat] for r in records if feat in r["stats"]]
        counts = np.array([int(np.asarray(p["count"]).reshape(-1)[0]) for p in parts], dtype=np.int64)
        means = np.stack([np.asarray(p["mean"], dtype=np.float64) for p in parts])
        stds = np.stack([np.asarray(p["std"], dtype=np.float64) for p in parts])
        w = counts.reshape((-1,) + (1,) * (means.ndim - 1))
        total = counts.sum()
        mean = (w * means).sum(axis=0) / total
        var = (w * (stds**2 + (means - mean) ** 2)).sum(axis=0) / total
        out[feat] = {
            "min": np.min(np.stack([np.asarray(p["min"], dtype=np.float64) for p in parts]), axis=0),
            "max": np.max(np.stack([np.asarray(p["max"], dtype=np.float64) for p in parts]), axis=0),
            "mean": mean,
            "std": np.sqrt(var),
            "count": np.array([int(total)]),
        }
    return out


def compare_aggregates(ours: dict, ref: dict, features: dict[str, dict], rtol: float = 1e-9,
                       pixel_atol: float = 1e-9, label: str = "aggregate") -> Comparison:
    """Both are {feature: {stat: array-like}}; wraps them as one-episode records and compares."""
    def wrap(d):
        return [{"episode_index": 0, "stats": {f: {s: np.asarray(v).tolist() for s, v in st.items()} for f, st in d.items()}}]

    return compare_stats(wrap(ours), wrap(ref), features, exact_tolerance(rtol, pixel_atol), label=label,
                         check_value_types=False, check_order=False)
