"""The video files of a v3.0 dataset as they are on disk: absent (and whether the same relative path exists under a
sibling directory, e.g. ``video/`` for ``videos/``), or present with a codec other than the declared one."""

from __future__ import annotations

import posixpath

from ...errors import Problem
from ...storage import Store


def missing_video_problems(store: Store, cameras: list[str], episodes) -> list[Problem]:
    """One error per absent video file of ``cameras`` (``episodes``: the reader's, whose ``videos`` name the files),
    naming its first episode and how many it holds, or one per camera when none of its files exists; each with the
    flag that works around it and, when the file lies under a sibling directory, where."""
    problems = []
    for key in cameras:
        users: dict[str, list[int]] = {}
        for ep in episodes:
            if key in ep.videos:
                users.setdefault(ep.videos[key].path, []).append(ep.index)
        absent = {path: indices for path, indices in users.items() if not store.is_file(store.path(path))}
        if not absent:
            continue
        fix = f"restore the file, or --exclude-features {key} (its published stats are kept)"
        if len(absent) == len(users):
            path = next(iter(absent))
            problems.append(Problem("the camera has no video files at all (" + f"{len(users)} declared)"
                                    + _elsewhere(store, path), episode=absent[path][0], feature=key,
                                    path=store.display(store.path(path)), fix=f"--exclude-features {key} (its "
                                    "published stats are kept)"))
            continue
        for path, indices in absent.items():
            held = f"episodes {indices[0]}-{indices[-1]}" if len(indices) > 1 else f"episode {indices[0]}"
            problems.append(Problem(f"video file is missing (it holds {held})" + _elsewhere(store, path),
                                    episode=indices[0], feature=key, path=store.display(store.path(path)), fix=fix))
    return problems


def _elsewhere(store: Store, relative: str) -> str:
    """``; the same path exists under video/ ...`` when ``relative`` minus its first directory exists under a
    sibling directory of the dataset root (another writer's layout), else ''."""
    top, _, rest = relative.partition("/")
    if not rest or not store.local:
        return ""
    try:
        siblings = sorted(name for name in store.fs.ls(store.root, detail=False))
    except OSError:
        return ""
    for sibling in (posixpath.basename(str(s).rstrip("/")) for s in siblings):
        if sibling != top and store.is_file(store.path(f"{sibling}/{rest}")):
            return (f"; the same relative path exists under {sibling}/ (info.json's video_path says {top}/): rename "
                    f"{sibling}/ to {top}/, or set video_path in meta/info.json")
    return ""


def codec_warning(store: Store, relative: str, key: str, feature: dict, episode: int, codec: str) -> Problem | None:
    """A warning when the file's ``codec`` differs from the one ``feature`` declares (decoding follows the file)."""
    declared = (feature.get("info") or {}).get("video.codec") if isinstance(feature.get("info"), dict) else None
    if not declared or _same_codec(declared, codec):
        return None
    return Problem(f"info.json declares codec {declared!r} but the file holds {codec!r}; decoding follows the file",
                   severity="warning", episode=episode, feature=key, path=store.display(store.path(relative)),
                   fix=f"set video.codec to {codec!r} in meta/info.json")


_ALIASES = {"libsvtav1": "av1", "libdav1d": "av1", "libaom-av1": "av1", "libx264": "h264", "libx265": "hevc",
            "h265": "hevc", "avc": "h264"}


def _same_codec(declared: str, actual: str) -> bool:
    return _ALIASES.get(declared.lower(), declared.lower()) == _ALIASES.get(actual.lower(), actual.lower())
