"""info.json of a v2.x dataset: its totals against what the episodes give."""

from __future__ import annotations

from ...errors import Problem


def counted_totals(info: dict, episodes: int, frames: int) -> dict[str, int]:
    """The totals the episodes give: episodes, frames, and videos (one per episode and camera)."""
    features = info.get("features") if isinstance(info.get("features"), dict) else {}
    cameras = sum(isinstance(ft, dict) and ft.get("dtype") == "video" for ft in features.values())
    return {"total_episodes": episodes, "total_frames": frames, "total_videos": episodes * cameras}


def corrected_info(info: dict, episodes: int, frames: int, path: str | None = None) -> tuple[dict, list[Problem]]:
    """``info`` with every declared total that disagrees with the episodes set to their count (key order kept),
    and a warning for each (``path``: where info.json is, for the message).  Totals it does not declare stay
    undeclared."""
    corrected, warnings = dict(info), []
    for key, count in counted_totals(info, episodes, frames).items():
        declared = info.get(key)
        if isinstance(declared, int) and not isinstance(declared, bool) and declared != count:
            corrected[key] = count
            warnings.append(Problem(f"info.json says {key} {declared}, but meta/episodes.jsonl gives {count}",
                                    severity="warning", path=path,
                                    fix=f"set {key} to {count} in meta/info.json (a conversion writes {count})"))
    return corrected, warnings
