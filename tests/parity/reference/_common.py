"""Helpers shared by the reference scripts (run inside the reference environments, next to this file)."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path


def jsonable(x):
    """numpy arrays, numpy scalars and torch tensors (nested in dicts and lists) as plain JSON values."""
    import numpy as np

    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


class LogCollector(logging.Handler):
    """Keeps every log record (level, logger, message), to report what the reference said."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[dict] = []

    def emit(self, record):
        self.records.append({"level": record.levelname, "logger": record.name, "message": record.getMessage()})


def write_report(out: dict, path: Path, summary_keys: tuple[str, ...]) -> None:
    """The whole report as JSON at ``path``; the keys that matter most on stdout, for the test's log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in summary_keys}))


def run(main) -> None:
    """Exit with ``main()``'s status; on an exception, lerobot's own traceback for the test, and status 1."""
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001 - show lerobot's own traceback to the test
        traceback.print_exc()
        sys.exit(1)
