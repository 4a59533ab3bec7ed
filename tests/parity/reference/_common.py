"""Helpers shared by the reference scripts (run inside the reference environments, next to this file)."""

from __future__ import annotations

import logging


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
