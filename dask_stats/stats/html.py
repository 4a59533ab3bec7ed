"""The doctor's report as one self-contained HTML page (inline SVG, no script, nothing fetched at view time): per
feature and dimension (per channel for cameras), the published and the exact mean ± std and q01-q99 ranges of
stats.json drawn on the dimension's [min, max], flagged dimensions first, then the dangerous rows of every episode."""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape

import numpy as np

from .doctor import StatsReport, dimension_names

WIDTH, HEIGHT = 420, 34


def html_report(report: StatsReport, exact: Mapping[str, Mapping], published: Mapping[str, Mapping],
                features: Mapping[str, dict], title: str = "dataset") -> str:
    """The page (a string); ``exact``/``published``: the stats.json-like dicts the report compared."""
    flagged = {}
    for row in report.dangerous:
        if row.episode is None:
            flagged.setdefault((row.feature, row.dimension), []).append(row.danger)
    cards = []
    for feature, ours in exact.items():
        theirs = published.get(feature) if isinstance(published.get(feature), Mapping) else {}
        names = dimension_names(features.get(feature, {}))
        for d in range(np.asarray(ours.get("mean", [0])).size):
            name = names[d] if d < len(names) else str(d)
            cards.append(((feature, d) not in flagged, feature, d,
                          _card(feature, name, d, ours, theirs, flagged.get((feature, d), []))))
    cards.sort(key=lambda c: (c[0], c[1], c[2]))
    episodes = [row for row in report.dangerous if row.episode is not None]
    rows = "".join(f"<tr><td>{row.episode}</td><td>{escape(row.feature)}</td><td>{escape(row.name)}</td>"
                   f"<td>{row.stat}</td><td>{row.published:.6g}</td><td>{row.exact:.6g}</td>"
                   f"<td>{escape(row.danger or '')}</td></tr>" for row in episodes[:500])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>stats doctor: {escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:2em}.card{border:1px solid #ccc;padding:.5em;margin:.5em 0}"
            ".flagged{border-color:#c00;background:#fff4f4}.danger{color:#c00}table{border-collapse:collapse}"
            "td,th{border:1px solid #ddd;padding:2px 6px;font-size:90%}</style></head><body>"
            f"<h1>Stats doctor: {escape(title)}</h1><p>{escape(report.summary())}. Bars: "
            "<span style='color:#1f77b4'>exact</span> vs <span style='color:#d62728'>published</span>; thick: "
            "mean ± std, thin: q01-q99, on the dimension's exact [min, max].</p>"
            + "".join(card for *_, card in cards)
            + (f"<h2>Dangerous per-episode stats ({len(episodes)})</h2><table><tr><th>episode</th><th>feature</th>"
               f"<th>dimension</th><th>stat</th><th>published</th><th>exact</th><th>why</th></tr>{rows}</table>"
               if episodes else "")
            + "</body></html>")


def _card(feature: str, name: str, d: int, ours: Mapping, theirs: Mapping, dangers: list[str]) -> str:
    low, high = _value(ours, "min", d), _value(ours, "max", d)
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        low, high = (low - 1, low + 1) if math.isfinite(low) else (0.0, 1.0)
    svg = (f"<svg width='{WIDTH}' height='{HEIGHT}'>"
           + _bars(ours, d, low, high, 8, "#1f77b4") + _bars(theirs, d, low, high, 24, "#d62728") + "</svg>")
    numbers = " | ".join(f"{who}: mean {_value(s, 'mean', d):.5g} ± {_value(s, 'std', d):.4g}, q01-q99 "
                         f"{_value(s, 'q01', d):.5g} - {_value(s, 'q99', d):.5g}"
                         for who, s in (("exact", ours), ("published", theirs)))
    flag = "".join(f"<div class='danger'>{escape(text)}</div>" for text in dangers)
    return (f"<div class='card{' flagged' if dangers else ''}' data-feature='{escape(feature)}' data-dimension='{d}'>"
            f"<b>{escape(feature)}</b> [{d}] {escape(name)}{flag}<br>{svg}<br><small>{escape(numbers)}</small></div>")


def _bars(stats: Mapping, d: int, low: float, high: float, y: int, color: str) -> str:
    def x(value: float) -> float:
        return round(min(max((value - low) / (high - low), 0.0), 1.0) * WIDTH, 1)

    mean, std, q01, q99 = (_value(stats, k, d) for k in ("mean", "std", "q01", "q99"))
    parts = []
    if math.isfinite(q01) and math.isfinite(q99):
        parts.append(f"<line x1='{x(q01)}' x2='{x(q99)}' y1='{y}' y2='{y}' stroke='{color}' stroke-width='2'/>")
    if math.isfinite(mean) and math.isfinite(std):
        parts.append(f"<rect x='{x(mean - std)}' y='{y - 4}' width='{max(x(mean + std) - x(mean - std), 1)}' "
                     f"height='8' fill='{color}' opacity='0.6'/>")
        parts.append(f"<line x1='{x(mean)}' x2='{x(mean)}' y1='{y - 6}' y2='{y + 6}' stroke='{color}'/>")
    return "".join(parts)


def _value(stats: Mapping, key: str, d: int) -> float:
    try:
        return float(np.asarray(stats[key], np.float64).reshape(-1)[d])
    except (KeyError, IndexError, TypeError, ValueError):
        return math.nan
