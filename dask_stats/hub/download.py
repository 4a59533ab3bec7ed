"""Fetching a LeRobot dataset from the Hugging Face Hub: where it goes, whether the Hub can be reached, what is
(or would be) downloaded, and which version the Hub holds.

Everything goes through ``huggingface_hub``: the token comes from ``HF_TOKEN`` or ``hf auth login``, the endpoint
from ``HF_ENDPOINT``, offline mode from ``HF_HUB_OFFLINE``. This module never speaks HTTP itself.

Pulling (:func:`fetch_dataset`, :func:`download_dataset`) is ``snapshot_download(revision="v2.0",
allow_patterns=meta/data/videos)`` into ``HF_LEROBOT_HOME/<repo_id>``, as lerobot does. The Hub is first asked
once, with a short timeout and no retries (:func:`hub_unreachable`), so that an unreachable Hub costs a second, not
huggingface_hub's minute of retries. When it cannot be reached (or ``HF_HUB_OFFLINE`` is set), a snapshot already in
the Hugging Face cache (``HF_HUB_CACHE``) is copied into that folder instead (``snapshot_download`` alone would not
do it when given a ``local_dir``), and without one an existing dataset in that folder is used as it is.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi, constants, scan_cache_dir, snapshot_download
from huggingface_hub import errors as hf_errors
from huggingface_hub.utils import filter_repo_objects

from ..errors import HubError

logger = logging.getLogger(__name__)

REPO_TYPE = "dataset"
SOURCE_REVISION = "v2.0"  # what download_dataset fetches by default
DOWNLOAD_PATTERNS = ["meta/*", "data/*", "videos/*"]  # fnmatch: "*" also matches "/", so sub-folders are included
PROBE_TIMEOUT_S = 5.0  # one request, no retries: how long an unreachable Hub may cost
CONVERTED = ("v2.1", "v3.0")  # a root at one of these versions is never downloaded over

HfHubHTTPError = hf_errors.HfHubHTTPError
RepositoryNotFoundError = hf_errors.RepositoryNotFoundError
GatedRepoError = hf_errors.GatedRepoError
RevisionNotFoundError = hf_errors.RevisionNotFoundError
LocalEntryNotFoundError = hf_errors.LocalEntryNotFoundError
EntryNotFoundError = hf_errors.EntryNotFoundError
# Newer huggingface_hub only; older releases raise LocalEntryNotFoundError in the same situations.
IncompleteSnapshotError = getattr(hf_errors, "IncompleteSnapshotError", LocalEntryNotFoundError)
OfflineModeIsEnabled = hf_errors.OfflineModeIsEnabled


# ------------------------------------------------------------------------------------------------ paths
def lerobot_home() -> Path:
    """``HF_LEROBOT_HOME``, else ``$HF_HOME/lerobot`` (``~/.cache/huggingface/lerobot``), as lerobot does."""
    value = os.environ.get("HF_LEROBOT_HOME")
    return Path(value).expanduser() if value else Path(constants.HF_HOME).expanduser() / "lerobot"


def default_root(repo_id: str) -> Path:
    """Where :func:`download_dataset` puts ``repo_id`` when no ``root`` is given."""
    return lerobot_home() / repo_id


def local_version(root: str | Path) -> str | None:
    """``codebase_version`` of ``root/meta/info.json``; None when there is no readable one."""
    try:
        return json.loads((Path(root) / "meta" / "info.json").read_text(encoding="utf-8")).get("codebase_version")
    except (OSError, ValueError, AttributeError):
        return None


# ------------------------------------------------------------------------------------------------ reachability
def hub_unreachable(repo_id: str, api: HfApi | None = None, *, timeout: float = PROBE_TIMEOUT_S) -> Exception | None:
    """Ask the Hub once about ``repo_id`` (no retries, ``timeout`` seconds); return why it cannot be reached, or None.

    ``HF_HUB_OFFLINE`` answers without any request. Any answer from the Hub, even "not found" or "forbidden",
    means it is reachable (the calls that follow report those properly); a connection error, a timeout or a
    server error (5xx) means it is not.
    """
    if constants.is_offline_mode():
        return OfflineModeIsEnabled("HF_HUB_OFFLINE is set")
    try:
        (api or HfApi()).repo_info(repo_id, repo_type=REPO_TYPE, timeout=timeout)
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        return e if status is not None and status >= 500 else None
    except Exception as e:  # noqa: BLE001 - a transport error of whichever HTTP library huggingface_hub uses
        return e
    return None


def why_unreachable(error: Exception | None) -> str:
    """``error`` (from :func:`hub_unreachable`, or None: not contacted) as the end of a sentence."""
    if error is None or constants.is_offline_mode() or isinstance(error, OfflineModeIsEnabled) \
            or isinstance(error.__cause__, OfflineModeIsEnabled):
        return "the Hub is not contacted because HF_HUB_OFFLINE is set"
    cause = error.__cause__ if isinstance(error, LocalEntryNotFoundError) and error.__cause__ else error
    return f"the Hub could not be reached ({short(cause)})"


# ------------------------------------------------------------------------------------------------ download
@dataclass
class Download:
    """Where a Hub dataset was (or would be) put, and how: ``source`` is ``hub`` (downloaded), ``cache`` (copied
    from the Hugging Face cache), ``local`` (a dataset already in ``root``, used as it is, the Hub not asked or
    not reachable) or ``converted`` (``root`` already holds a converted dataset, left alone)."""

    repo_id: str
    revision: str
    root: Path
    source: str
    dry_run: bool = False
    files: list = field(default_factory=list)  # dry run: huggingface_hub's DryRunFileInfo, one per file
    copied: int = 0  # files copied from the cache
    commit: str | None = None  # the commit the files come from, when known
    reason: str = ""  # why the Hub was not used

    def __str__(self) -> str:
        what = f"{self.repo_id}@{self.revision} (meta/, data/, videos/)"
        if self.source == "hub" and self.dry_run:
            fetch = [f for f in self.files if f.will_download]
            size = sum(f.file_size or 0 for f in fetch)
            there = len(self.files) - len(fetch)
            return (f"would download {what}: {len(fetch)} file(s), {_megabytes(size)} into {self.root}"
                    + (f" ({there} already there)" if there else ""))
        if self.source == "hub":
            return f"downloaded {what} into {self.root}"
        if self.source == "cache":
            verb = "would copy" if self.dry_run else "copied"
            return (f"{verb} {self.copied} file(s) of {what} from the Hugging Face cache "
                    f"(commit {str(self.commit)[:8]}) into {self.root}: {self.reason}")
        if self.source == "converted":
            return f"{self.root} already holds a converted dataset; {self.repo_id} is not downloaded again"
        return f"{'would use' if self.dry_run else 'using'} {self.root} as it is: {self.reason}"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def download_dataset(repo_id: str, revision: str | None = None, root: str | Path | None = None, *,
                     refresh: bool = False, api: HfApi | None = None) -> Path:
    """Fetch ``meta/``, ``data/`` and ``videos/`` of ``repo_id`` at ``revision`` (default ``v2.0``) into ``root``.

    ``root`` defaults to ``HF_LEROBOT_HOME/<repo_id>``. Files already there and up to date are not fetched
    again. A ``root`` that already holds a converted dataset (``info.json`` at v2.1) is returned untouched
    without contacting the Hub, because a download would put the v2.0 ``info.json`` back over it; pass
    ``refresh=True`` to download anyway. With ``HF_HUB_OFFLINE=1`` (or when the Hub cannot be reached), the
    snapshot of that revision in the Hugging Face cache is copied into ``root``; without one, an existing dataset
    in ``root`` is used as it is. Returns ``root``. Raises :class:`HubError` for a missing repo or revision, or when
    offline without any copy. ``api`` only supplies the endpoint and token (default: huggingface_hub's configuration).
    See :func:`fetch_dataset` for a report of what happened.
    """
    return fetch_dataset(repo_id, revision, root, refresh=refresh, api=api).root


def fetch_dataset(repo_id: str, revision: str | None = None, root: str | Path | None = None, *,
                  refresh: bool = False, dry_run: bool = False, api: HfApi | None = None,
                  unreachable: Exception | None | bool = False) -> Download:
    """:func:`download_dataset`, returning a :class:`Download` that says where the files came from.

    ``dry_run=True`` fetches nothing: with the Hub reachable, the file list comes from
    ``snapshot_download(dry_run=True)`` (each file with its size and whether it would be downloaded); without it,
    from the Hugging Face cache, or ``root`` as it is. ``unreachable``: the answer of :func:`hub_unreachable` when
    the caller already asked (``False``: ask now).
    """
    revision = revision or SOURCE_REVISION
    target = Path(root).expanduser() if root is not None else default_root(repo_id)
    if not refresh and local_version(target) in CONVERTED:
        logger.info("%s already holds a converted dataset; not downloading %s again.", target, repo_id)
        return Download(repo_id, revision, target, "converted", dry_run)
    if unreachable is False:
        unreachable = hub_unreachable(repo_id, api)
    if unreachable is not None:
        return _from_cache(repo_id, revision, target, unreachable, dry_run)
    kwargs = {"repo_type": REPO_TYPE, "revision": revision, "allow_patterns": DOWNLOAD_PATTERNS, "local_dir": target,
              "endpoint": api.endpoint if api is not None else None, "token": api.token if api is not None else None}
    try:
        if dry_run:
            files = snapshot_download(repo_id, dry_run=True, **kwargs)
            return Download(repo_id, revision, target, "hub", True, files=list(files),
                            commit=files[0].commit_hash if files else None)
        return Download(repo_id, revision, Path(snapshot_download(repo_id, **kwargs)), "hub")
    except RevisionNotFoundError as e:
        raise HubError(_no_revision_message(repo_id, revision, _hub_ref_names(repo_id, api))) from e
    except RepositoryNotFoundError as e:  # GatedRepoError included
        raise HubError(repo_not_found_message(repo_id, e)) from e
    except LocalEntryNotFoundError as e:  # the Hub went away since it was asked
        return _from_cache(repo_id, revision, target, e, dry_run)
    except HfHubHTTPError as e:
        raise HubError(f"Downloading {repo_id} at {revision} failed: {short(e)}. Check your token (HF_TOKEN or "
                       "`hf auth login`) and the Hub's status, then re-run; files already downloaded are kept.") from e


def _from_cache(repo_id: str, revision: str, target: Path, hub_error: Exception, dry_run: bool) -> Download:
    """Copy the cached snapshot of ``repo_id@revision`` (meta/data/videos only) into ``target``.

    Used when the Hub is not contacted (offline mode) or could not be reached. Files already in ``target`` are kept
    (they may be converted ones) and missing ones are filled in; each copy is written to a temporary name and
    renamed, so an interrupted copy never leaves a truncated file behind. Without a cached snapshot, an existing
    dataset in ``target`` is used as it is.
    """
    why = why_unreachable(hub_error)
    try:
        snapshot = Path(snapshot_download(repo_id, repo_type=REPO_TYPE, revision=revision,
                                          allow_patterns=DOWNLOAD_PATTERNS, local_files_only=True))
    except LocalEntryNotFoundError as e:
        if IncompleteSnapshotError is not LocalEntryNotFoundError and isinstance(e, IncompleteSnapshotError):
            raise HubError(f"The cached copy of {repo_id} at {revision} is incomplete and {why}. "
                           "Re-run with network access to complete it.") from e
        if (target / "meta" / "info.json").is_file():
            logger.warning("%s@%s is not in the Hugging Face cache and %s: using %s as it is.",
                           repo_id, revision, why, target)
            return Download(repo_id, revision, target, "local", dry_run, reason=f"{why}, and the cache has no copy")
        raise HubError(_cache_miss_message(repo_id, revision, why)) from e

    files = [p for p in snapshot.rglob("*") if p.is_file()]
    wanted = set(filter_repo_objects([p.relative_to(snapshot).as_posix() for p in files],
                                     allow_patterns=DOWNLOAD_PATTERNS))
    copied = 0
    for src in files:
        rel = src.relative_to(snapshot).as_posix()
        dest = target / rel
        if rel not in wanted or dest.exists():
            continue
        copied += 1
        if dry_run:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".incomplete")
        shutil.copyfile(src, tmp)  # follows the cache's symlink to the blob
        os.replace(tmp, dest)
    if not dry_run:
        logger.warning("Hub not contacted (%s): copied %d file(s) of %s@%s from the Hugging Face cache (commit %s) "
                       "into %s.", why, copied, repo_id, revision, snapshot.name, target)
    return Download(repo_id, revision, target, "cache", dry_run, copied=copied, commit=snapshot.name, reason=why)


def cached_refs(repo_id: str) -> list[str] | None:
    """Revision names cached for dataset ``repo_id`` in ``HF_HUB_CACHE`` (None: the repo is not cached at all)."""
    try:
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except Exception:  # noqa: BLE001 - no cache folder (CacheNotFound) or an unreadable one: nothing cached
        return None
    for repo in cache.repos:
        if repo.repo_id == repo_id and repo.repo_type == REPO_TYPE:
            return sorted(ref for revision in repo.revisions for ref in revision.refs)
    return None


def _cache_miss_message(repo_id: str, revision: str, why: str) -> str:
    cached = cached_refs(repo_id)
    if cached:
        other = next((r for r in ("main", *cached) if r in cached and r != revision), None)
        hint = f"pass `--revision {other}` to convert the cached copy" if other else "connect to the Hub"
        return (f"Dataset {repo_id} has no `{revision}` tag in the local Hugging Face cache "
                f"(cached: {', '.join(cached)}), and {why}. Go online to fetch `{revision}`, or {hint}.")
    online = "unset HF_HUB_OFFLINE" if "HF_HUB_OFFLINE" in why else "check your connection and HF_ENDPOINT"
    return (f"Dataset {repo_id} is not in the local Hugging Face cache and {why}. "
            f"Go online ({online}), or convert a local copy with `--root DIR`.")


def _hub_ref_names(repo_id: str, api: HfApi | None = None) -> list[str] | None:
    try:
        refs = (api or HfApi()).list_repo_refs(repo_id, repo_type=REPO_TYPE)
    except Exception:  # noqa: BLE001 - only used to enrich an error message
        return None
    return [r.name for r in refs.branches] + [r.name for r in refs.tags]


def _no_revision_message(repo_id: str, revision: str, available: list[str] | None) -> str:
    has = f" (it has: {', '.join(available)})" if available else ""
    if revision == "main":
        return f"Dataset {repo_id} has no `main` branch on the Hub{has}. Pass `--revision` with one of its revisions."
    return (f"Dataset {repo_id} has no `{revision}` tag or branch on the Hub{has}. If its meta/info.json says "
            f'"codebase_version": "v2.0" on the main branch, pass `--revision main`.')


def repo_not_found_message(repo_id: str, error: Exception) -> str:
    if isinstance(error, GatedRepoError):
        return (f"Dataset {repo_id} is gated and your token has no access. Accept its conditions on the Hub, "
                "then log in with `hf auth login` (or set HF_TOKEN).")
    return (f"Dataset repo {repo_id} was not found on the Hub, or it is private and your token cannot read it. "
            "Check the repo id, or log in with `hf auth login` (or set HF_TOKEN).")


def short(error: BaseException) -> str:
    """``error`` as ``Type: first line``."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


# ------------------------------------------------------------------------------------------------ version
def hub_dataset_version(repo_id: str, revision: str | None = None, *, api: HfApi | None = None) -> str | None:
    """``codebase_version`` of ``meta/info.json`` at ``revision`` on the Hub (default branch when None).

    Returns None when the revision or the file does not exist. ``hub_dataset_version(repo, "v2.1") == "v2.1"``
    is how to tell that a dataset was already converted (it is what v2.1 readers download). Raises
    :class:`HubError` for a missing repo, or when the Hub is unreachable and the file is not cached.
    """
    api = api or HfApi()
    try:
        path = api.hf_hub_download(repo_id, "meta/info.json", repo_type=REPO_TYPE, revision=revision)
    except RevisionNotFoundError:
        return None
    except RepositoryNotFoundError as e:
        raise HubError(repo_not_found_message(repo_id, e)) from e
    except LocalEntryNotFoundError as e:
        raise HubError(f"Cannot read meta/info.json of {repo_id}: {why_unreachable(e)} and it is not cached. "
                       "Go online (unset HF_HUB_OFFLINE) and re-run.") from e
    except EntryNotFoundError:  # the remote file is missing
        return None
    except HfHubHTTPError as e:
        raise HubError(f"Reading meta/info.json of {repo_id} failed: {short(e)}. Re-run later.") from e
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("codebase_version")
