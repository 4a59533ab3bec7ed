"""Resume: every finished task's result is saved as it completes; a re-run with the same inputs and
options loads them instead of recomputing. Anything else (other inputs, options or version) starts afresh.

Layout: one SQLite file per conversion target, ``<cache>/checkpoints/<hash of the target>.sqlite``, where
``<cache>`` is ``$DASK_STATS_CACHE`` or the platform's cache directory (``$XDG_CACHE_HOME/dask_stats``,
default ``~/.cache/dask_stats`` on Linux). Each result is committed on its own (WAL journal), so a run
killed at any point (even ``kill -9``) keeps every result saved before, and a million tasks make one file,
not a million. Written by the client process only (cluster workers need no shared disk; the dataset itself
is never touched). Removed once the new metadata is committed, when verification fails, and after
:data:`EXPIRY_DAYS` days without use.

A cache that cannot be written (read-only, full, not a directory) never stops a conversion: it is said once,
as a warning, and the run goes on without resume. :func:`list_checkpoints` and :func:`clear_checkpoints` are
the API to see and remove them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Collection, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .. import __version__
from ..errors import DatasetError, Problem
from ..options import StatsOptions
from ..plan import Plan
from ..storage import Store

log = logging.getLogger(__name__)

FORMAT = 7  # of saved task results (6: exact integer sums; 7: v3.0 file tasks return their identity); older: not reused
EXPIRY_DAYS = 14.0  # checkpoints unused for longer are removed when a conversion starts
SUFFIX = ".sqlite"


def cache_dir() -> Path:
    """``$DASK_STATS_CACHE``, else the platform's user cache directory for dask_stats (platformdirs: honours
    ``XDG_CACHE_HOME`` on Linux)."""
    explicit = os.environ.get("DASK_STATS_CACHE")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_cache_dir("dask_stats", appauthor=False))


def checkpoints_dir() -> Path:
    return cache_dir() / "checkpoints"


def fingerprint(plan: Plan, options: StatsOptions) -> str:
    """Identifies the inputs (metadata, every data/video file's identity) and number-changing options."""
    digest = hashlib.sha256(f"{__version__}:{FORMAT}:{plan.fingerprint(options)}".encode())
    paths = (path for ep in plan.episodes for path in (ep.data_path, *ep.video_paths.values()))
    for path, identity in plan.store.identities(paths):
        digest.update(f"{path}:{identity}\n".encode())
    return digest.hexdigest()[:20]


def _target_name(target: Store | str | os.PathLike) -> str:
    store = target if isinstance(target, Store) else Store(target)
    return store.display(store.root)


def checkpoint_path(target: Store | str | os.PathLike) -> Path:
    """The checkpoint file of conversions into ``target`` (a Store, path or URL)."""
    return checkpoints_dir() / (hashlib.sha256(_target_name(target).encode()).hexdigest()[:16] + SUFFIX)


@dataclass(frozen=True)
class CheckpointInfo:
    """One saved checkpoint: the target it converts into, how many task results it holds, and its size."""

    path: Path
    target: str | None
    fingerprint: str | None
    tasks: int
    bytes: int
    modified: float  # Unix time of the last saved result


@contextmanager
def scratch_dir() -> Iterator[str]:
    """A fresh directory for a local cluster's scratch space (Dask's ``dask-scratch-space/`` and its lock files)
    under the cache (in the temporary directory if the cache cannot be written), removed on exit."""
    try:
        (cache_dir() / "scratch").mkdir(parents=True, exist_ok=True)
        path = tempfile.mkdtemp(dir=cache_dir() / "scratch")
    except OSError:
        path = tempfile.mkdtemp(prefix="dask_stats-scratch-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def target_lock(target: Store) -> Iterator[None]:
    """Hold the lock of conversions into ``target`` (a lock file in the cache, else in the temporary
    directory); a second conversion into the same target is refused while it is held."""
    import filelock

    name = hashlib.sha256(_target_name(target).encode()).hexdigest()[:16] + ".lock"
    for directory in (cache_dir() / "locks", Path(tempfile.gettempdir()) / "dask_stats-locks"):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            lock = filelock.FileLock(str(directory / name), timeout=0)
            lock.acquire()
            break
        except filelock.Timeout:
            raise DatasetError(Problem(
                "another dask_stats run is converting into this target right now", path=_target_name(target),
                fix="wait for it to finish (then run again to see whether anything is left to do)")) from None
        except OSError:
            continue
    else:
        log.warning("no lock file can be created (cache and temporary directory unwritable); concurrent runs into "
                    "%s are not prevented", _target_name(target))
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _modified(path: Path) -> float:
    return max((p.stat().st_mtime for p in _files(path) if p.exists()), default=0.0)


def _remove(path: Path) -> None:
    for part in _files(path):
        part.unlink(missing_ok=True)


def list_checkpoints() -> list[CheckpointInfo]:
    """Every checkpoint in the cache, most recently used first."""
    found = []
    directory = checkpoints_dir()
    for path in sorted(directory.glob("*" + SUFFIX)) if directory.is_dir() else ():
        target = print_ = None
        tasks = 0
        try:
            with closing(_connect(path, create=False)) as db:
                meta = dict(db.execute("SELECT name, value FROM meta"))
                tasks = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            target, print_ = meta.get("target"), meta.get("fingerprint")
        except (sqlite3.Error, OSError):
            pass  # damaged: listed (and removable), not readable
        size = sum(p.stat().st_size for p in _files(path) if p.exists())
        found.append(CheckpointInfo(path, target, print_, tasks, size, _modified(path)))
    return sorted(found, key=lambda c: -c.modified)


def clear_checkpoints(target: Store | str | os.PathLike | None = None, older_than_days: float | None = None) -> int:
    """Remove the checkpoints of ``target`` (every target when None), or only those unused for more than
    ``older_than_days`` days; returns how many were removed."""
    directory = checkpoints_dir()
    if not directory.is_dir():
        return 0
    removed = 0
    if target is not None:
        candidates = [checkpoint_path(target)]
    else:
        candidates = list(directory.glob("*" + SUFFIX))
        # checkpoints of older versions (a directory of pickles per target) are never reused
        for legacy in directory.iterdir():
            if legacy.is_dir() and (older_than_days is None or _age_days(legacy.stat().st_mtime) > older_than_days):
                shutil.rmtree(legacy, ignore_errors=True)
                removed += 1
    for path in candidates:
        if path.exists() and (older_than_days is None or _age_days(_modified(path)) > older_than_days):
            _remove(path)
            removed += 1
    return removed


def _age_days(mtime: float) -> float:
    return (time.time() - mtime) / 86400


def _connect(path: Path, create: bool = True) -> sqlite3.Connection:
    if not create and not path.exists():
        raise FileNotFoundError(path)
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")  # each commit is one append: atomic, and survives kill -9
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value BLOB)")
    return db


class Checkpoint:
    """Saved task results of the conversion into ``target`` with this ``fingerprint``.  Never raises for the
    cache's sake: an unusable cache turns resume off with one warning."""

    def __init__(self, target: Store, fingerprint: str):
        self.target = _target_name(target)
        self.fingerprint = fingerprint
        self.path = checkpoint_path(target)
        self._db: sqlite3.Connection | None = None
        self.disabled: str | None = None  # why checkpoints are off

    def _open(self) -> sqlite3.Connection | None:
        if self._db is not None or self.disabled:
            return self._db
        try:
            clear_checkpoints(older_than_days=EXPIRY_DAYS)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = _connect(self.path)
            meta = dict(db.execute("SELECT name, value FROM meta"))
            if meta.get("fingerprint") != self.fingerprint or meta.get("format") != str(FORMAT):
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM results")
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                               [("target", self.target), ("fingerprint", self.fingerprint), ("format", str(FORMAT))])
                db.execute("COMMIT")
            self._db = db
        except (sqlite3.Error, OSError) as exc:
            self._disable(f"{type(exc).__name__}: {exc}")
        return self._db

    def _disable(self, why: str) -> None:
        self.disabled = why
        log.warning("checkpoints cannot be saved in %s (%s); the run goes on without resume "
                    "(set DASK_STATS_CACHE to a writable directory to resume interrupted runs)", self.path.parent, why)
        self.close()

    def results(self, keys: Collection[str]) -> Iterator[tuple[str, object]]:
        """(key, result) of every result saved by an earlier run with the same fingerprint for one of ``keys``,
        read one at a time."""
        db = self._open()
        if db is None:
            return
        try:
            for key, blob in db.execute("SELECT key, value FROM results"):
                if key in keys:
                    try:
                        result = pickle.loads(blob)
                    except Exception:  # noqa: BLE001 - a damaged entry is simply recomputed
                        continue
                    yield key, result
        except sqlite3.Error as exc:
            self._disable(f"{type(exc).__name__}: {exc}")

    def save(self, key: str, result: object) -> None:
        """Commit one result (atomically: after a kill it is there whole or not at all)."""
        db = self._open()
        if db is None:
            return
        try:
            db.execute("INSERT OR REPLACE INTO results VALUES (?, ?)",
                       (key, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)))
        except (sqlite3.Error, OSError) as exc:  # e.g. the disk holding the cache is full
            self._disable(f"{type(exc).__name__}: {exc}")

    def rekey(self, fingerprint: str) -> None:
        """Keep the saved results under ``fingerprint`` (the inputs' identities changed through this run's own
        doing, e.g. hard links made to them)."""
        db = self._open()
        self.fingerprint = fingerprint
        if db is None:
            return
        try:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
        except sqlite3.Error as exc:
            self._disable(f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def clear(self) -> None:
        self.close()
        try:
            _remove(self.path)
        except OSError:
            pass
