"""The Hugging Face Hub side of a conversion: fetch a v2.0 dataset, push the converted ``meta/`` back.

Everything goes through ``huggingface_hub``: the token comes from ``HF_TOKEN`` or ``hf auth login``, the
endpoint from ``HF_ENDPOINT``, offline mode from ``HF_HUB_OFFLINE``. This module never speaks HTTP itself.

Pulling (:func:`download_dataset`) is ``snapshot_download(revision="v2.0", allow_patterns=meta/data/videos)``
into ``HF_LEROBOT_HOME/<repo_id>``, as lerobot does. When the Hub cannot be reached, a snapshot already in
the Hugging Face cache (``HF_HUB_CACHE``) is copied into that folder instead (``snapshot_download`` alone
would not do it when given a ``local_dir``).

Pushing is split into :func:`plan_push` (reads the Hub, writes nothing; its result prints as the
``--dry-run`` report) and :func:`push` (carries the plan out). Decisions, compared with the official
converter (reference.md §4.1):

* Only ``meta/`` is uploaded, and never ``meta/stats.json``: the Hub keeps its copy unless
  ``delete_old_stats`` is set, in which case the deletion goes into the *same* commit as the new files
  (one atomic commit instead of the official upload + delete_file pair). A repo that does not exist yet
  is created (``private`` applies only then) and receives ``data/`` and ``videos/`` as well, because a
  dataset made of ``meta/`` alone is unusable.
* Files whose content on the Hub is already identical are left out of the commit; when nothing differs,
  no commit is made at all. A re-run is therefore a no-op.
* With ``branch``, the branch is created (when missing) from ``source_revision`` (the revision that was
  downloaded, normally ``v2.0``), pinned to the commit that revision resolved to when planning. The commit
  carries ``parent_commit`` = the head seen when planning, so the Hub refuses it if the branch moved
  in between and the plan is never carried out against a state it did not look at.
* The tag ``v2.1`` is treated as content-addressed: if it already exists and the commit it points to holds
  exactly the ``meta/`` files this push would publish (and no ``stats.json`` when that is to be deleted),
  it is left alone, wherever it points. If it points to different content the plan records a problem and
  :func:`push` refuses before writing anything, unless ``move_tag`` is set (delete + create, not atomic).
* A failed commit leaves no tag: the tag is created only after the commit succeeded, and the error says
  what was and was not pushed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, snapshot_download
from huggingface_hub import errors as hf_errors
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import filter_repo_objects

from .errors import HubError

logger = logging.getLogger(__name__)

REPO_TYPE = "dataset"
SOURCE_REVISION = "v2.0"  # what download_dataset fetches by default
TARGET_TAG = "v2.1"  # what push tags
DOWNLOAD_PATTERNS = ["meta/*", "data/*", "videos/*"]  # fnmatch: "*" also matches "/", so sub-folders are included
STATS_JSON = "meta/stats.json"
_EPISODES_STATS = "meta/episodes_stats.jsonl"
_WRITTEN_BY_CONVERSION = {"meta/info.json", _EPISODES_STATS}

HfHubHTTPError = hf_errors.HfHubHTTPError
RepositoryNotFoundError = hf_errors.RepositoryNotFoundError
GatedRepoError = hf_errors.GatedRepoError
RevisionNotFoundError = hf_errors.RevisionNotFoundError
LocalEntryNotFoundError = hf_errors.LocalEntryNotFoundError
EntryNotFoundError = hf_errors.EntryNotFoundError
# Newer huggingface_hub only; older releases raise LocalEntryNotFoundError in the same situations.
IncompleteSnapshotError = getattr(hf_errors, "IncompleteSnapshotError", LocalEntryNotFoundError)
OfflineModeIsEnabled = hf_errors.OfflineModeIsEnabled

_COMMIT_OID = re.compile(r"^[0-9a-f]{40}$")
_SKIPPED_SUFFIXES = (".tmp", ".part", ".partial", ".lock", ".bak", ".incomplete")


# ------------------------------------------------------------------------------------------------ paths
def lerobot_home() -> Path:
    """``HF_LEROBOT_HOME``, else ``$HF_HOME/lerobot`` (``~/.cache/huggingface/lerobot``), as lerobot does."""
    value = os.environ.get("HF_LEROBOT_HOME")
    return Path(value).expanduser() if value else Path(constants.HF_HOME).expanduser() / "lerobot"


def default_root(repo_id: str) -> Path:
    """Where :func:`download_dataset` puts ``repo_id`` when no ``root`` is given."""
    return lerobot_home() / repo_id


# ------------------------------------------------------------------------------------------------ download
def download_dataset(
    repo_id: str,
    revision: str | None = None,
    root: str | Path | None = None,
    *,
    refresh: bool = False,
    api: HfApi | None = None,
) -> Path:
    """Fetch ``meta/``, ``data/`` and ``videos/`` of ``repo_id`` at ``revision`` (default ``v2.0``) into ``root``.

    ``root`` defaults to ``HF_LEROBOT_HOME/<repo_id>``. Files already there and up to date are not fetched
    again. A ``root`` that already holds a converted dataset (``info.json`` at v2.1) is returned untouched
    without contacting the Hub, because a download would put the v2.0 ``info.json`` back over it; pass
    ``refresh=True`` to download anyway. With ``HF_HUB_OFFLINE=1`` (or when the Hub cannot be reached and
    ``root`` is empty), the snapshot of that revision in the Hugging Face cache is copied into ``root``;
    without one, an existing dataset in ``root`` is used as it is. Returns ``root``. Raises
    :class:`HubError` for a missing repo or revision, or when offline without any copy.
    ``api`` only supplies the endpoint and token (default: huggingface_hub's configuration).
    """
    revision = revision or SOURCE_REVISION
    target = Path(root).expanduser() if root is not None else default_root(repo_id)
    if not refresh and _local_version(target) == TARGET_TAG:
        logger.info("%s already holds a converted (%s) dataset; not downloading %s again.", target, TARGET_TAG, repo_id)
        return target
    if constants.is_offline_mode():
        return _materialise_from_cache(repo_id, revision, target, None)
    try:
        path = snapshot_download(
            repo_id,
            repo_type=REPO_TYPE,
            revision=revision,
            allow_patterns=DOWNLOAD_PATTERNS,
            local_dir=target,
            endpoint=api.endpoint if api is not None else None,
            token=api.token if api is not None else None,
        )
        return Path(path)
    except RevisionNotFoundError as e:
        raise HubError(_no_revision_message(repo_id, revision, _hub_ref_names(repo_id, api))) from e
    except RepositoryNotFoundError as e:  # GatedRepoError included
        raise HubError(_repo_not_found_message(repo_id, e)) from e
    except LocalEntryNotFoundError as e:  # Hub unreachable and `target` empty or incomplete
        return _materialise_from_cache(repo_id, revision, target, e)
    except HfHubHTTPError as e:
        raise HubError(
            f"Downloading {repo_id} at {revision} failed: {_short(e)}. Check your token (HF_TOKEN or `hf auth login`) "
            "and the Hub's status, then re-run; files already downloaded are kept."
        ) from e


def _local_version(root: Path) -> str | None:
    try:
        return json.loads((root / "meta" / "info.json").read_text(encoding="utf-8")).get("codebase_version")
    except (OSError, ValueError, AttributeError):
        return None


def _materialise_from_cache(repo_id: str, revision: str, target: Path, hub_error: Exception | None) -> Path:
    """Copy the cached snapshot of ``repo_id@revision`` (meta/data/videos only) into ``target``.

    Used when the Hub is not contacted (``hub_error`` None: offline mode) or could not be reached. Files
    already in ``target`` are kept (they may be converted ones) and missing ones are filled in; each copy is
    written to a temporary name and renamed, so an interrupted copy never leaves a truncated file behind.
    Without a cached snapshot, an existing dataset in ``target`` is used as it is.
    """
    try:
        snapshot = Path(
            snapshot_download(
                repo_id,
                repo_type=REPO_TYPE,
                revision=revision,
                allow_patterns=DOWNLOAD_PATTERNS,
                local_files_only=True,
            )
        )
    except LocalEntryNotFoundError as e:
        if IncompleteSnapshotError is not LocalEntryNotFoundError and isinstance(e, IncompleteSnapshotError):
            raise HubError(
                f"The cached copy of {repo_id} at {revision} is incomplete and {_why_unreachable(hub_error)}. "
                "Re-run with network access to complete it."
            ) from e
        if (target / "meta" / "info.json").is_file():
            logger.warning(
                "%s@%s is not in the Hugging Face cache and %s: using %s as it is.",
                repo_id,
                revision,
                _why_unreachable(hub_error),
                target,
            )
            return target
        raise HubError(_cache_miss_message(repo_id, revision, hub_error)) from e

    files = [p for p in snapshot.rglob("*") if p.is_file()]
    wanted = set(
        filter_repo_objects([p.relative_to(snapshot).as_posix() for p in files], allow_patterns=DOWNLOAD_PATTERNS)
    )
    copied = 0
    for src in files:
        rel = src.relative_to(snapshot).as_posix()
        if rel not in wanted:
            continue
        dest = target / rel
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".incomplete")
        shutil.copyfile(src, tmp)  # follows the cache's symlink to the blob
        os.replace(tmp, dest)
        copied += 1
    logger.warning(
        "Hub not contacted (%s): copied %d file(s) of %s@%s from the Hugging Face cache (commit %s) into %s.",
        _why_unreachable(hub_error),
        copied,
        repo_id,
        revision,
        snapshot.name,
        target,
    )
    return target


def _cached_refs(repo_id: str) -> list[str] | None:
    """Revision names cached for ``repo_id`` in ``HF_HUB_CACHE`` (None: the repo is not cached at all)."""
    storage = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type=REPO_TYPE)
    if not storage.is_dir():
        return None
    refs = storage / "refs"
    return sorted(p.relative_to(refs).as_posix() for p in refs.rglob("*") if p.is_file()) if refs.is_dir() else []


def _why_unreachable(error: Exception | None) -> str:
    if error is None or constants.is_offline_mode() or isinstance(error.__cause__, OfflineModeIsEnabled):
        return "the Hub is not contacted because HF_HUB_OFFLINE is set"
    cause = error.__cause__ or error
    return f"the Hub could not be reached ({type(cause).__name__})"


def _cache_miss_message(repo_id: str, revision: str, hub_error: Exception) -> str:
    cached = _cached_refs(repo_id)
    why = _why_unreachable(hub_error)
    if cached:
        other = next((r for r in ("main", *cached) if r in cached and r != revision), None)
        hint = f"pass `--revision {other}` to convert the cached copy" if other else "connect to the Hub"
        return (
            f"Dataset {repo_id} has no `{revision}` tag in the local Hugging Face cache "
            f"(cached: {', '.join(cached)}), and {why}. Go online to fetch `{revision}`, or {hint}."
        )
    return (
        f"Dataset {repo_id} is not in the local Hugging Face cache and {why}. "
        "Go online (unset HF_HUB_OFFLINE), or convert a local copy with `--root DIR`."
    )


def _hub_ref_names(repo_id: str, api: HfApi | None = None) -> list[str] | None:
    try:
        refs = (api or HfApi()).list_repo_refs(repo_id, repo_type=REPO_TYPE)
    except Exception:  # only used to enrich an error message
        return None
    return [r.name for r in refs.branches] + [r.name for r in refs.tags]


def _no_revision_message(repo_id: str, revision: str, available: list[str] | None) -> str:
    has = f" (it has: {', '.join(available)})" if available else ""
    if revision == "main":
        return f"Dataset {repo_id} has no `main` branch on the Hub{has}. Pass `--revision` with one of its revisions."
    return (
        f"Dataset {repo_id} has no `{revision}` tag or branch on the Hub{has}. If its meta/info.json says "
        f'"codebase_version": "v2.0" on the main branch, pass `--revision main`.'
    )


def _repo_not_found_message(repo_id: str, error: Exception) -> str:
    if isinstance(error, GatedRepoError):
        return (
            f"Dataset {repo_id} is gated and your token has no access. Accept its conditions on the Hub, "
            "then log in with `hf auth login` (or set HF_TOKEN)."
        )
    return (
        f"Dataset repo {repo_id} was not found on the Hub, or it is private and your token cannot read it. "
        "Check the repo id, or log in with `hf auth login` (or set HF_TOKEN)."
    )


def _short(error: BaseException) -> str:
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
        raise HubError(_repo_not_found_message(repo_id, e)) from e
    except LocalEntryNotFoundError as e:
        raise HubError(
            f"Cannot read meta/info.json of {repo_id}: {_why_unreachable(e)} and it is not cached. "
            "Go online (unset HF_HUB_OFFLINE) and re-run."
        ) from e
    except EntryNotFoundError:  # the remote file is missing
        return None
    except HfHubHTTPError as e:
        raise HubError(f"Reading meta/info.json of {repo_id} failed: {_short(e)}. Re-run later.") from e
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("codebase_version")


# ------------------------------------------------------------------------------------------------ push plan
@dataclass(frozen=True)
class PlannedFile:
    """One local file and what pushing it means: ``new``, ``changed``, ``unchanged`` on the Hub, or ``pending``
    (in a plan made before the conversion: the file will be (re)written, its content is not known yet)."""

    path_in_repo: str
    local_path: Path
    size: int
    status: str


@dataclass
class PushPlan:
    """What :func:`push` will do; ``print(plan)`` is the ``--dry-run`` report. Built by :func:`plan_push`."""

    repo_id: str
    root: Path
    revision: str  # the branch the commit goes to
    files: list[PlannedFile]
    endpoint: str = constants.ENDPOINT
    create_repo: bool = False
    private: bool | None = None
    create_branch: bool = False
    source_revision: str | None = None  # where a missing branch starts from
    base_commit: str | None = None  # head of `revision` (or of the source) when planning
    delete_stats: bool = False  # meta/stats.json is on the Hub and is deleted in the commit
    stats_on_hub: bool = False  # meta/stats.json exists on the Hub at base_commit
    tag: str = TARGET_TAG
    tag_action: str = "create"  # create | keep | move | conflict | check (pending plans: decided after conversion)
    tag_commit: str | None = None  # where the tag points now, when it exists
    problems: list[str] = field(default_factory=list)
    pending: bool = False  # made before the conversion: printable, not pushable

    @property
    def uploads(self) -> list[PlannedFile]:
        return [f for f in self.files if f.status != "unchanged"]

    @property
    def needs_commit(self) -> bool:
        return bool(self.uploads) or self.delete_stats

    @property
    def is_noop(self) -> bool:
        """Nothing would change on the Hub (a re-run)."""
        return not (self.create_repo or self.create_branch or self.needs_commit or self.tag_action != "keep")

    def check(self) -> None:
        """Raise :class:`HubError` if the plan cannot be carried out."""
        if self.pending:
            raise HubError(
                "This push plan was made before the conversion, so it cannot be pushed. "
                "Convert first, then call plan_push again without pending=True."
            )
        if self.problems:
            raise HubError(" ".join(self.problems))

    def __str__(self) -> str:
        url = f"{self.endpoint.rstrip('/')}/datasets/{self.repo_id}"
        lines = [f"Push {self.root} to {url}"]
        if self.create_repo:
            vis = {True: "private", False: "public", None: "default visibility"}[self.private]
            lines.append(f"  repo: create it ({vis}); data/ and videos/ are uploaded too")
        if self.create_branch:
            start = self.source_revision or "the default branch"
            at = f" (commit {self.base_commit[:8]})" if self.base_commit else ""
            lines.append(f"  branch: create `{self.revision}` from `{start}`{at}")
        else:
            at = f" (head {self.base_commit[:8]})" if self.base_commit else ""
            lines.append(f"  branch: `{self.revision}`{at}")
        if self.needs_commit:
            n_same = len(self.files) - len(self.uploads)
            extra = f", {n_same} unchanged" if n_same else ""
            lines.append(f"  commit: {len(self.uploads)} file(s) to upload{extra}")
        else:
            lines.append("  commit: none, the Hub already has these files")
        marks = {"new": "+", "changed": "~", "unchanged": "=", "pending": "~"}
        for f in self.files:
            what = "written by the conversion" if f.status == "pending" else f"{f.status}, {f.size} bytes"
            lines.append(f"    {marks[f.status]} {f.path_in_repo} ({what})")
        if self.delete_stats:
            lines.append(f"    - {STATS_JSON} (deleted in the same commit)")
        elif self.stats_on_hub:
            lines.append(f"  {STATS_JSON}: kept on the Hub (--delete-old-stats removes it)")
        tag_lines = {
            "create": f"  tag: create `{self.tag}` at the new head of `{self.revision}`",
            "keep": f"  tag: `{self.tag}` already at {str(self.tag_commit)[:8]} with these meta/ files, left alone",
            "move": f"  tag: move `{self.tag}` from {str(self.tag_commit)[:8]} to the new head of `{self.revision}`",
            "conflict": f"  tag: `{self.tag}` is at {str(self.tag_commit)[:8]} with other meta/ files (see below)",
            "check": f"  tag: `{self.tag}` exists at {str(self.tag_commit)[:8]}: left alone if it holds the converted "
            "meta/ files, otherwise the push stops (--force moves it)",
        }
        lines.append(tag_lines[self.tag_action])
        lines.extend(f"  PROBLEM: {p}" for p in self.problems)
        if self.pending:
            lines.append("  (planned before the conversion: file contents are compared again when pushing)")
        elif self.is_noop and not self.problems:
            lines.append("  nothing to do: the Hub is already up to date")
        return "\n".join(lines)


@dataclass
class PushResult:
    """What :func:`push` did."""

    repo_id: str
    revision: str
    commit_oid: str | None
    commit_url: str | None = None  # None when no commit was needed
    repo_created: bool = False
    branch_created: bool = False
    uploaded: list[str] = field(default_factory=list)
    stats_deleted: bool = False
    tag: str = TARGET_TAG
    tag_action: str = "kept"  # created | moved | kept

    def __str__(self) -> str:
        parts = []
        if self.repo_created:
            parts.append(f"created {self.repo_id}")
        if self.branch_created:
            parts.append(f"created branch {self.revision}")
        if self.commit_url:
            deleted = f" and deleted {STATS_JSON}" if self.stats_deleted else ""
            parts.append(f"committed {len(self.uploaded)} file(s){deleted} to {self.revision} ({self.commit_url})")
        else:
            parts.append(f"no commit needed on {self.revision}")
        oid = (self.commit_oid or "")[:8]
        parts.append(
            {"created": f"tagged {self.tag} at {oid}", "moved": f"moved {self.tag} to {oid}"}.get(
                self.tag_action, f"{self.tag} already in place"
            )
        )
        return f"{self.repo_id}: " + "; ".join(parts) + "."


def _git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _same_content(local: Path, remote) -> bool:
    """Compare a local file with a ``RepoFile`` by hash: sha256 for LFS/Xet files, git blob sha1 otherwise."""
    if remote is None or getattr(remote, "size", None) != local.stat().st_size:
        return False
    lfs = getattr(remote, "lfs", None)
    sha256 = (lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)) if lfs else None
    if sha256:
        return _sha256(local) == sha256
    return _git_blob_sha1(local) == remote.blob_id


def _walk(root: Path, folder: str) -> list[tuple[str, Path]]:
    """Regular files under ``root/folder``, skipping hidden, temporary and lock files."""
    base = root / folder
    out = []
    for p in sorted(base.rglob("*")):
        if not p.is_file():
            continue
        parts = p.relative_to(base).parts
        if any(part.startswith((".", "~")) for part in parts) or p.name.endswith(_SKIPPED_SUFFIXES):
            continue
        out.append((p.relative_to(root).as_posix(), p))
    return out


def _local_files(root: Path, pending: bool = False) -> list[tuple[str, Path]]:
    """The ``meta/`` files to push (never ``meta/stats.json``); checks ``root`` holds a converted dataset."""
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise HubError(f"{root} has no meta/info.json, so it is not a LeRobot dataset. Pass the dataset folder itself.")
    files = [(rel, p) for rel, p in _walk(root, "meta") if rel != STATS_JSON]
    if pending:
        return sorted({*files, (_EPISODES_STATS, root / _EPISODES_STATS)})
    version = json.loads(info_path.read_text(encoding="utf-8")).get("codebase_version")
    if version != TARGET_TAG or not (root / "meta" / "episodes_stats.jsonl").is_file():
        raise HubError(
            f"{root} is not converted yet (meta/info.json says {version!r}"
            f"{'' if (root / 'meta' / 'episodes_stats.jsonl').is_file() else ', no meta/episodes_stats.jsonl'}). "
            "Run the conversion before pushing."
        )
    return files


def _remote_files(api: HfApi, repo_id: str, revision: str, paths: list[str]) -> dict:
    """``{path: RepoFile}`` for those of ``paths`` that exist at ``revision``."""
    infos = api.get_paths_info(repo_id, paths, revision=revision, repo_type=REPO_TYPE)
    return {i.path: i for i in infos if hasattr(i, "blob_id")}


def _hub_call_error(action: str, repo_id: str, e: Exception) -> HubError:
    if isinstance(e, RepositoryNotFoundError):
        return HubError(_repo_not_found_message(repo_id, e))
    if isinstance(e, OfflineModeIsEnabled) or constants.is_offline_mode():
        return HubError(f"Cannot {action} {repo_id}: HF_HUB_OFFLINE is set. Unset it to push, or drop --push-to-hub.")
    return HubError(f"Cannot {action} {repo_id}: {_short(e)}. Check your connection and token, then re-run.")


def plan_push(
    repo_id: str,
    root: str | Path,
    *,
    branch: str | None = None,
    source_revision: str | None = None,
    delete_old_stats: bool = False,
    private: bool | None = None,
    move_tag: bool = False,
    pending: bool = False,
    api: HfApi | None = None,
) -> PushPlan:
    """Look at the Hub and the converted dataset in ``root`` and describe what :func:`push` will do.

    Writes nothing. ``branch`` (default ``main``) is the branch to commit to; when it does not exist it is
    created from ``source_revision`` (the revision the dataset was downloaded from; default: the default
    branch). ``delete_old_stats`` removes ``meta/stats.json`` from the Hub in the same commit. ``private``
    is used only when the repo has to be created. ``move_tag`` allows moving an existing ``v2.1`` tag that
    points to other content. Problems that would make the push fail are listed in ``plan.problems``
    (:func:`push` refuses such a plan before writing anything). Raises :class:`HubError` when ``root`` is
    not a converted dataset or the Hub cannot be read.

    ``pending=True`` plans *before* the conversion (for ``--dry-run``): ``root`` may still be v2.0;
    ``info.json`` and ``episodes_stats.jsonl`` are listed as ``pending``, and the result can be printed
    but not pushed.
    """
    api = api or HfApi()
    root = Path(root).expanduser()
    target = branch or "main"
    files = _local_files(root, pending)  # validates root before any request
    try:
        refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    except GatedRepoError as e:
        raise HubError(_repo_not_found_message(repo_id, e)) from e
    except RepositoryNotFoundError:
        refs = None
    except Exception as e:
        raise _hub_call_error("read the refs of", repo_id, e) from e

    def size(p: Path) -> int:
        return p.stat().st_size if p.is_file() else 0

    if refs is None:  # a new repo: everything is new, nothing to compare with
        files += _walk(root, "data") + _walk(root, "videos")
        return PushPlan(
            repo_id=repo_id,
            root=root,
            revision=target,
            endpoint=api.endpoint,
            files=[
                PlannedFile(rel, p, size(p), "pending" if pending and rel in _WRITTEN_BY_CONVERSION else "new")
                for rel, p in files
            ],
            pending=pending,
            create_repo=True,
            private=private,
            create_branch=target != "main",
            source_revision=None,
        )

    branches = {r.name: r.target_commit for r in refs.branches}
    tags = {r.name: r.target_commit for r in refs.tags}
    create_branch = target not in branches
    try:
        if not create_branch:
            base_commit = branches[target]
        elif source_revision is None:
            base_commit = api.repo_info(repo_id, repo_type=REPO_TYPE).sha
        elif source_revision in branches or source_revision in tags:
            base_commit = branches.get(source_revision) or tags[source_revision]
        elif _COMMIT_OID.match(source_revision):
            base_commit = source_revision
        else:
            base_commit = api.repo_info(repo_id, repo_type=REPO_TYPE, revision=source_revision).sha
    except RevisionNotFoundError as e:
        raise HubError(
            f"Cannot create branch `{target}` from `{source_revision}`: {repo_id} has no such revision. "
            "Pass an existing tag, branch or commit as the source revision."
        ) from e
    except Exception as e:
        raise _hub_call_error("read", repo_id, e) from e

    paths = [rel for rel, _ in files] + [STATS_JSON]
    try:
        remote = _remote_files(api, repo_id, base_commit, paths)
        tag_commit = tags.get(TARGET_TAG)
        at_tag = None
        if tag_commit is not None:
            at_tag = remote if tag_commit == base_commit else _remote_files(api, repo_id, tag_commit, paths)
    except Exception as e:
        raise _hub_call_error("list the files of", repo_id, e) from e

    planned = []
    for rel, p in files:
        if pending and rel in _WRITTEN_BY_CONVERSION:
            status = "pending"
        elif rel not in remote:
            status = "new"
        else:
            status = "unchanged" if _same_content(p, remote[rel]) else "changed"
        planned.append(PlannedFile(rel, p, size(p), status))
    stats_on_hub = STATS_JSON in remote
    plan = PushPlan(
        repo_id=repo_id,
        root=root,
        revision=target,
        endpoint=api.endpoint,
        files=planned,
        private=private,
        create_branch=create_branch,
        source_revision=source_revision if create_branch else None,
        base_commit=base_commit,
        delete_stats=delete_old_stats and stats_on_hub,
        stats_on_hub=stats_on_hub,
        tag_commit=tag_commit,
        pending=pending,
    )
    if at_tag is not None and pending:
        plan.tag_action = "move" if move_tag else "check"
    elif at_tag is not None:
        same = all(_same_content(p, at_tag.get(rel)) for rel, p in files) and not (
            delete_old_stats and STATS_JSON in at_tag
        )
        if same:
            plan.tag_action = "keep"
        elif move_tag:
            plan.tag_action = "move"
        else:
            plan.tag_action = "conflict"
            plan.problems.append(
                f"Tag `{TARGET_TAG}` of {repo_id} already points to commit {tag_commit[:8]}, whose meta/ differs "
                f"from this conversion. Move it by re-running with --force, or delete it first with "
                f"`hf repos tag delete {repo_id} {TARGET_TAG} --repo-type dataset`."
            )
    return plan


# ------------------------------------------------------------------------------------------------ push
def push(plan: PushPlan, api: HfApi | None = None) -> PushResult:
    """Carry out ``plan``: create the repo/branch if needed, one commit, then the ``v2.1`` tag.

    Idempotent: unchanged files are not committed and an existing tag on identical content is left alone.
    Raises :class:`HubError` (saying what was and was not pushed) when a step fails; no tag is created
    unless the commit succeeded.
    """
    plan.check()
    api = api or HfApi(endpoint=plan.endpoint)
    repo_id = plan.repo_id
    result = PushResult(repo_id=repo_id, revision=plan.revision, commit_oid=plan.base_commit)
    done: list[str] = []

    def failed(step: str, e: Exception, retry: str) -> HubError:
        pushed = "; ".join(done) if done else "nothing"
        hint = " Check that your token (HF_TOKEN or `hf auth login`) can write to it." if _is_auth_error(e) else ""
        return HubError(
            f"{step} failed ({_short(e)}). Pushed so far: {pushed}; the `{plan.tag}` tag was not touched.{hint} {retry}"
        )

    if plan.create_repo:
        try:
            api.create_repo(repo_id, repo_type=REPO_TYPE, private=plan.private, exist_ok=True)
        except Exception as e:
            raise failed(f"Creating the dataset repo {repo_id}", e, "Fix the cause and re-run.") from e
        result.repo_created = True
        done.append(f"created repo {repo_id}")

    if plan.create_branch:
        start = plan.base_commit or plan.source_revision
        try:
            api.create_branch(repo_id, branch=plan.revision, revision=start, repo_type=REPO_TYPE, exist_ok=True)
        except Exception as e:
            raise failed(f"Creating branch `{plan.revision}` of {repo_id}", e, "Fix the cause and re-run.") from e
        result.branch_created = True
        done.append(f"created branch `{plan.revision}` from `{plan.source_revision or 'main'}`")

    if plan.needs_commit or plan.create_repo:
        operations: list = [
            CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local_path)) for f in plan.uploads
        ]
        if plan.delete_stats:
            operations.append(CommitOperationDelete(path_in_repo=STATS_JSON))
        names = ", ".join(f.path_in_repo for f in plan.uploads[:5]) + (" ..." if len(plan.uploads) > 5 else "")
        try:
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=f"Convert dataset to {plan.tag} (per-episode stats) with dask_stats",
                commit_description=f"Uploaded: {names}." + (f" Deleted {STATS_JSON}." if plan.delete_stats else ""),
                repo_type=REPO_TYPE,
                revision=plan.revision,
                parent_commit=plan.base_commit,
            )
        except Exception as e:
            moved = _is_http(e, 412)
            retry = (
                f"`{plan.revision}` changed since the plan was made; re-run to plan again."
                if moved
                else "No commit was made (commits are atomic), so meta/ on the Hub is unchanged. Re-run to retry."
            )
            raise failed(f"Committing {len(operations)} change(s) to `{plan.revision}` of {repo_id}", e, retry) from e
        result.commit_oid = info.oid
        if info.oid != plan.base_commit:
            result.commit_url = info.commit_url
            result.uploaded = [f.path_in_repo for f in plan.uploads]
            result.stats_deleted = plan.delete_stats
            done.append(f"commit {info.oid[:8]} on `{plan.revision}`")

    if plan.tag_action in ("create", "move"):
        try:
            if plan.tag_action == "move":
                api.delete_tag(repo_id, tag=plan.tag, repo_type=REPO_TYPE)
                done.append(f"deleted the old `{plan.tag}` tag (was at {str(plan.tag_commit)[:8]})")
            _create_tag(api, repo_id, plan.tag, result.commit_oid)
        except HubError:
            raise
        except Exception as e:
            what = "Moving" if plan.tag_action == "move" else "Creating"
            raise HubError(
                f"{what} tag `{plan.tag}` of {repo_id} failed ({_short(e)}); pushed: {'; '.join(done) or 'nothing'}. "
                f"Re-run the same command: unchanged files are skipped and only the tag is made."
            ) from e
        result.tag_action = "moved" if plan.tag_action == "move" else "created"
    return result


def _create_tag(api: HfApi, repo_id: str, tag: str, commit: str | None) -> None:
    """Create ``tag`` at ``commit``; a tag that appeared meanwhile is fine only if it is at ``commit``."""
    try:
        api.create_tag(
            repo_id,
            tag=tag,
            revision=commit,
            tag_message=f"LeRobot dataset {tag} (converted by dask_stats)",
            repo_type=REPO_TYPE,
        )
    except HfHubHTTPError as e:
        if not _is_http(e, 409):
            raise
        existing = {r.name: r.target_commit for r in api.list_repo_refs(repo_id, repo_type=REPO_TYPE).tags}
        if existing.get(tag) != commit:
            raise HubError(
                f"Tag `{tag}` of {repo_id} was created meanwhile at commit {str(existing.get(tag))[:8]}, not at "
                f"{str(commit)[:8]}. The meta/ commit is in place; re-run to check the tag (--force moves it)."
            ) from e


def _is_http(e: Exception, status: int) -> bool:
    response = getattr(e, "response", None)
    return response is not None and getattr(response, "status_code", None) == status


def _is_auth_error(e: Exception) -> bool:
    return _is_http(e, 401) or _is_http(e, 403)
