"""Resume: every finished task's result is saved as it completes; a re-run with the same inputs and
options loads them instead of recomputing. Anything else (other inputs, options or version) starts afresh.

Layout: ``$DASK_STATS_CACHE`` (default ``~/.cache/dask_stats``) ``/checkpoints/<hash of the target path>/
checkpoint-<fingerprint>/<task key>.pkl``, each written atomically by the client process (so cluster workers
need no shared disk, and the dataset itself is never touched). Removed once the new metadata is committed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
from pathlib import Path

from . import __version__
from .options import StatsOptions
from .plan import Plan
from .storage import Store

FORMAT = 2  # of the saved task results (2: Parquet partitions as MomentsTable); older checkpoints are not reused


def cache_dir() -> Path:
    return Path(os.environ.get("DASK_STATS_CACHE", Path.home() / ".cache" / "dask_stats"))


def fingerprint(plan: Plan, options: StatsOptions) -> str:
    """Identifies the inputs (metadata, every data/video file's size and mtime) and number-changing options."""
    digest = hashlib.sha256(f"{__version__}:{FORMAT}:{plan.fingerprint(options)}".encode())
    identities = plan.store.identities()
    for ep in plan.episodes:
        for path in (ep.data_path, *ep.video_paths.values()):
            digest.update(f"{path}:{identities.get(path)}\n".encode())
    return digest.hexdigest()[:20]


class Checkpoint:
    """Saved task results of the conversion into ``target`` with this ``fingerprint``."""

    def __init__(self, target: Store, fingerprint: str):
        where = hashlib.sha256(target.display(target.root).encode()).hexdigest()[:16]
        self.base = cache_dir() / "checkpoints" / where
        self.directory = self.base / f"checkpoint-{fingerprint}"

    def load(self, keys: list[str]) -> dict[str, object]:
        """Results saved by an earlier run for any of ``keys``; stale checkpoints are removed."""
        if self.base.is_dir():
            for other in self.base.glob("checkpoint-*"):
                if other != self.directory:
                    shutil.rmtree(other, ignore_errors=True)
        found = {}
        for key in keys:
            path = self.directory / f"{key}.pkl"
            if path.is_file():
                try:
                    found[key] = pickle.loads(path.read_bytes())
                except Exception:  # noqa: BLE001 - a damaged entry is simply recomputed
                    path.unlink(missing_ok=True)
        return found

    def save(self, key: str, result: object) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(result, handle)
        os.replace(tmp, self.directory / f"{key}.pkl")

    def clear(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
