"""Pushing a converted dataset back to the Hugging Face Hub: :func:`plan_push` (reads the Hub, writes nothing; its
result prints as the ``--dry-run`` report) and :func:`push` (carries the plan out).

What a conversion publishes is described by a :class:`PushLayout`, one per target version, so that the plan takes
"the files a conversion wrote" generically:

* ``v2.1`` (:data:`V21`): only ``meta/`` is uploaded, and never ``meta/stats.json``: the Hub keeps its copy unless
  ``delete_old_stats`` is set, in which case the deletion goes into the *same* commit as the new files (one atomic
  commit instead of an upload followed by a separate delete).
* ``v3.0`` (:data:`V30`): the whole new tree (``meta/``, ``data/``, ``videos/``) is uploaded, and the files of the
  v2.x layout under those folders are removed in the same commit, so the branch switches layout atomically. When
  the upload is large, its LFS files are uploaded beforehand in batches (``preupload_lfs_files``): a failure then
  costs only the unfinished batch, and the commit that switches the layout stays a single one.

For both:

* A repo that does not exist yet is created (``private`` applies only then) and receives ``data/`` and ``videos/``
  as well, because a dataset made of ``meta/`` alone is unusable.
* Files whose content on the Hub is already identical are left out of the commit (compared by sha256 for LFS/Xet
  files, by git blob hash otherwise, with huggingface_hub's own hash helpers); when nothing differs, no commit is
  made at all. A re-run is therefore a no-op.
* With ``branch``, the branch is created (when missing) from ``source_revision`` (the revision that was downloaded,
  normally ``v2.0``), pinned to the commit that revision resolved to when planning. The commit carries
  ``parent_commit`` = the head seen when planning, so the Hub refuses it if the branch moved in between and the plan
  is never carried out against a state it did not look at.
* The tag (the target version) is treated as content-addressed: if it already exists and the commit it points to
  holds exactly the files this push would publish, it is left alone, wherever it points. If it points to different
  content the plan records a problem and :func:`push` refuses before writing anything, unless ``move_tag`` is set
  (delete + create, not atomic).
* A failed commit leaves no tag: the tag is created only after the commit succeeded, and the error says what was
  and was not pushed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants
from huggingface_hub.utils.sha import git_hash, sha_fileobj

from ..errors import HubError
from .download import (
    REPO_TYPE,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
    repo_not_found_message,
    short,
)

STATS_JSON = "meta/stats.json"
DATASET_FOLDERS = ("meta", "data", "videos")
LARGE_UPLOAD_BYTES = 2 * 1024**3  # above this, LFS files are uploaded in batches before the commit
PREUPLOAD_BATCH = 256  # files per preupload_lfs_files call

_COMMIT_OID = re.compile(r"^[0-9a-f]{40}$")
_SKIPPED_SUFFIXES = (".tmp", ".part", ".partial", ".lock", ".bak", ".incomplete")


@dataclass(frozen=True)
class PushLayout:
    """What a conversion to ``version`` publishes: the files pushed to an existing repo (those under ``folders``,
    less ``keep``), the files the conversion writes (``written``; listed as ``pending`` in a plan made before it
    ran; empty: the whole tree), whether files under ``folders`` on the Hub that are not in the local tree are
    deleted in the same commit (``replace``), and the files a converted dataset must have (``required``)."""

    version: str  # the converted dataset's codebase_version, and the tag
    folders: tuple[str, ...]
    written: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()  # never pushed; removed from the Hub only with delete_old_stats
    replace: bool = False
    required: tuple[str, ...] = ("meta/info.json",)
    description: str = ""  # for the commit message

    @property
    def tag(self) -> str:
        return self.version


V21 = PushLayout("v2.1", ("meta",), written=("meta/info.json", "meta/episodes_stats.jsonl"), keep=(STATS_JSON,),
                 required=("meta/info.json", "meta/episodes_stats.jsonl"), description=" (per-episode stats)")
V30 = PushLayout("v3.0", DATASET_FOLDERS, replace=True,
                 required=("meta/info.json", "meta/stats.json", "meta/tasks.parquet"),
                 description=" (file-based layout)")
# new stats for a dataset already at v3.0: meta/ is pushed (unchanged files are skipped), data and videos stay
V30_STATS = PushLayout("v3.0", ("meta",), required=("meta/info.json", "meta/stats.json", "meta/tasks.parquet"),
                       description=" (recomputed stats)")
LAYOUTS = {layout.version: layout for layout in (V21, V30)}
TARGET_TAG = V21.tag  # the default target


def layout_for(to: str | PushLayout) -> PushLayout:
    """The :class:`PushLayout` of target version ``to`` (``"v2.1"`` or ``"v3.0"``)."""
    if isinstance(to, PushLayout):
        return to
    try:
        return LAYOUTS[to]
    except KeyError:
        raise HubError(f"Cannot push a dataset converted to {to!r}: known targets are {', '.join(LAYOUTS)}.") from None


# ------------------------------------------------------------------------------------------------ plan
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
    layout: PushLayout = V21
    create_repo: bool = False
    private: bool | None = None
    create_branch: bool = False
    source_revision: str | None = None  # where a missing branch starts from
    base_commit: str | None = None  # head of `revision` (or of the source) when planning
    deletes: list[str] = field(default_factory=list)  # paths deleted in the same commit
    stats_on_hub: bool = False  # meta/stats.json exists on the Hub at base_commit
    tag_action: str = "create"  # create | keep | move | conflict | check (pending plans: decided after conversion)
    tag_commit: str | None = None  # where the tag points now, when it exists
    problems: list[str] = field(default_factory=list)
    pending: bool = False  # made before the conversion: printable, not pushable
    large: bool = False  # LFS files are uploaded in batches before the commit

    @property
    def tag(self) -> str:
        return self.layout.tag

    @property
    def delete_stats(self) -> bool:
        """``meta/stats.json`` is deleted from the Hub in the commit (v2.1 with ``delete_old_stats``)."""
        return STATS_JSON in self.deletes

    @property
    def uploads(self) -> list[PlannedFile]:
        return [f for f in self.files if f.status != "unchanged"]

    @property
    def upload_bytes(self) -> int:
        return sum(f.size for f in self.uploads)

    @property
    def needs_commit(self) -> bool:
        return bool(self.uploads) or bool(self.deletes) or (self.pending and not self.files)

    @property
    def is_noop(self) -> bool:
        """Nothing would change on the Hub (a re-run)."""
        return not (self.create_repo or self.create_branch or self.needs_commit or self.tag_action != "keep")

    def check(self) -> None:
        """Raise :class:`HubError` if the plan cannot be carried out."""
        if self.pending:
            raise HubError("This push plan was made before the conversion, so it cannot be pushed. "
                           "Convert first, then call plan_push again without pending=True.")
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
        if self.pending and not self.files:
            folders = ", ".join(f"{folder}/" for folder in self.layout.folders)
            lines.append(f"  commit: the {self.tag} tree written by the conversion ({folders}); "
                         "the v2.x files under them are removed in the same commit")
        elif self.needs_commit:
            n_same = len(self.files) - len(self.uploads)
            extra = f", {n_same} unchanged" if n_same else ""
            lines.append(f"  commit: {len(self.uploads)} file(s) to upload{extra}"
                         + (f", {len(self.deletes)} to delete" if self.deletes else "")
                         + (" (LFS files uploaded in batches first)" if self.large else ""))
        else:
            lines.append("  commit: none, the Hub already has these files")
        marks = {"new": "+", "changed": "~", "unchanged": "=", "pending": "~"}
        for f in self.files:
            what = "written by the conversion" if f.status == "pending" else f"{f.status}, {f.size} bytes"
            lines.append(f"    {marks[f.status]} {f.path_in_repo} ({what})")
        shown = self.deletes[:20]
        lines.extend(f"    - {path} (deleted in the same commit)" for path in shown)
        if len(self.deletes) > len(shown):
            lines.append(f"    - ... and {len(self.deletes) - len(shown)} more (deleted in the same commit)")
        if self.stats_on_hub and STATS_JSON in self.layout.keep and not self.delete_stats:
            lines.append(f"  {STATS_JSON}: kept on the Hub (--delete-old-stats removes it)")
        tag_lines = {
            "create": f"  tag: create `{self.tag}` at the new head of `{self.revision}`",
            "keep": f"  tag: `{self.tag}` already at {str(self.tag_commit)[:8]} with these files, left alone",
            "move": f"  tag: move `{self.tag}` from {str(self.tag_commit)[:8]} to the new head of `{self.revision}`",
            "conflict": f"  tag: `{self.tag}` is at {str(self.tag_commit)[:8]} with other files (see below)",
            "check": f"  tag: `{self.tag}` exists at {str(self.tag_commit)[:8]}: left alone if it holds the converted "
                     "files, otherwise the push stops (--force moves it)",
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
    deleted: list[str] = field(default_factory=list)
    tag: str = TARGET_TAG
    tag_action: str = "kept"  # created | moved | kept

    @property
    def stats_deleted(self) -> bool:
        return STATS_JSON in self.deleted

    def __str__(self) -> str:
        parts = []
        if self.repo_created:
            parts.append(f"created {self.repo_id}")
        if self.branch_created:
            parts.append(f"created branch {self.revision}")
        if self.commit_url:
            deleted = (f" and deleted {STATS_JSON}" if self.deleted == [STATS_JSON]
                       else f" and deleted {len(self.deleted)} file(s)" if self.deleted else "")
            parts.append(f"committed {len(self.uploaded)} file(s){deleted} to {self.revision} ({self.commit_url})")
        else:
            parts.append(f"no commit needed on {self.revision}")
        oid = (self.commit_oid or "")[:8]
        parts.append({"created": f"tagged {self.tag} at {oid}", "moved": f"moved {self.tag} to {oid}"}.get(
            self.tag_action, f"{self.tag} already in place"))
        return f"{self.repo_id}: " + "; ".join(parts) + "."


# ------------------------------------------------------------------------------------------------ comparing
def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return sha_fileobj(f).hex()


def same_content(local: Path, remote) -> bool:
    """Compare a local file with a ``RepoFile`` by hash: sha256 for LFS/Xet files, git blob hash otherwise."""
    if remote is None or getattr(remote, "size", None) != local.stat().st_size:
        return False
    lfs = getattr(remote, "lfs", None)
    sha256 = (lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)) if lfs else None
    if sha256:
        return _sha256(local) == sha256
    return git_hash(local.read_bytes()) == remote.blob_id  # regular (non-LFS) files are small


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


def _local_files(root: Path, layout: PushLayout, pending: bool) -> list[tuple[str, Path]]:
    """The files to push to an existing repo; checks ``root`` holds a dataset converted to ``layout.version``."""
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise HubError(f"{root} has no meta/info.json, so it is not a LeRobot dataset. Pass the dataset folder itself.")
    if pending:  # before the conversion: the files it writes are pending; a whole new tree is not known yet
        if not layout.written:
            return []
        files = [(rel, p) for folder in layout.folders for rel, p in _walk(root, folder) if rel not in layout.keep]
        return sorted({*files, *((rel, root / rel) for rel in layout.written)})
    version = json.loads(info_path.read_text(encoding="utf-8")).get("codebase_version")
    missing = [rel for rel in layout.required if not (root / rel).is_file()]
    if version != layout.version or missing:
        raise HubError(f"{root} is not converted yet (to {layout.version}; meta/info.json says {version!r}"
                       f"{''.join(f', no {rel}' for rel in missing)}). Run the conversion before pushing.")
    return [(rel, p) for folder in layout.folders for rel, p in _walk(root, folder) if rel not in layout.keep]


def _remote_files(api: HfApi, repo_id: str, revision: str, layout: PushLayout, paths: list[str]) -> dict:
    """``{path: RepoFile}`` at ``revision``: those of ``paths`` that exist, or with ``layout.replace`` every file
    under ``layout.folders`` (the files that are not pushed again are then deleted)."""
    if layout.replace:
        found = {}
        for folder in layout.folders:
            try:
                entries = api.list_repo_tree(repo_id, folder, recursive=True, revision=revision, repo_type=REPO_TYPE)
                found.update({e.path: e for e in entries if hasattr(e, "blob_id")})
            except HfHubHTTPError as e:  # a folder the repo does not have
                if getattr(getattr(e, "response", None), "status_code", None) != 404:
                    raise
        return found
    infos = api.get_paths_info(repo_id, paths, revision=revision, repo_type=REPO_TYPE)
    return {i.path: i for i in infos if hasattr(i, "blob_id")}


def _hub_call_error(action: str, repo_id: str, e: Exception) -> HubError:
    if isinstance(e, RepositoryNotFoundError):
        return HubError(repo_not_found_message(repo_id, e))
    if isinstance(e, OfflineModeIsEnabled) or constants.is_offline_mode():
        return HubError(f"Cannot {action} {repo_id}: HF_HUB_OFFLINE is set. Unset it to push, or drop --push-to-hub.")
    return HubError(f"Cannot {action} {repo_id}: {short(e)}. Check your connection and token, then re-run.")


def plan_push(repo_id: str, root: str | Path, *, to: str | PushLayout = "v2.1", branch: str | None = None,
              source_revision: str | None = None, delete_old_stats: bool = False, private: bool | None = None,
              move_tag: bool = False, pending: bool = False, api: HfApi | None = None,
              large_upload_bytes: int = LARGE_UPLOAD_BYTES) -> PushPlan:
    """Look at the Hub and the dataset converted to ``to`` in ``root`` and describe what :func:`push` will do.

    Writes nothing. ``branch`` (default ``main``) is the branch to commit to; when it does not exist it is created
    from ``source_revision`` (the revision the dataset was downloaded from; default: the default branch).
    ``delete_old_stats`` removes ``meta/stats.json`` from the Hub in the same commit (v2.1). ``private`` is used only
    when the repo has to be created. ``move_tag`` allows moving an existing tag that points to other content.
    Problems that would make the push fail are listed in ``plan.problems`` (:func:`push` refuses such a plan before
    writing anything). Raises :class:`HubError` when ``root`` is not a converted dataset or the Hub cannot be read.

    ``pending=True`` plans *before* the conversion (for ``--dry-run``): ``root`` may still be v2.0; the files the
    conversion writes are listed as ``pending``, and the result can be printed but not pushed.
    ``large_upload_bytes``: above this many bytes to upload, LFS files are uploaded in batches before the commit.
    """
    api = api or HfApi()
    layout = layout_for(to)
    root = Path(root).expanduser()
    target = branch or "main"
    files = _local_files(root, layout, pending)  # validates root before any request
    try:
        refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    except GatedRepoError as e:
        raise HubError(repo_not_found_message(repo_id, e)) from e
    except RepositoryNotFoundError:
        refs = None
    except Exception as e:
        raise _hub_call_error("read the refs of", repo_id, e) from e

    def size(p: Path) -> int:
        return p.stat().st_size if p.is_file() else 0

    def status(rel: str) -> str | None:
        return "pending" if pending and (rel in layout.written or not layout.written) else None

    if refs is None:  # a new repo: everything is new, nothing to compare with
        known = {rel for rel, _ in files}
        files += [(rel, p) for folder in DATASET_FOLDERS if folder not in layout.folders
                  for rel, p in _walk(root, folder) if rel not in known]
        planned = [PlannedFile(rel, p, size(p), status(rel) or "new") for rel, p in files]
        return PushPlan(repo_id=repo_id, root=root, revision=target, endpoint=api.endpoint, layout=layout,
                        files=planned, pending=pending, create_repo=True, private=private,
                        create_branch=target != "main", source_revision=None,
                        large=sum(f.size for f in planned) > large_upload_bytes)

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
        raise HubError(f"Cannot create branch `{target}` from `{source_revision}`: {repo_id} has no such revision. "
                       "Pass an existing tag, branch or commit as the source revision.") from e
    except Exception as e:
        raise _hub_call_error("read", repo_id, e) from e

    paths = [rel for rel, _ in files] + list(layout.keep)
    tag_commit = tags.get(layout.tag)
    try:
        remote = _remote_files(api, repo_id, base_commit, layout, paths)
        at_tag = None
        if tag_commit is not None:
            at_tag = remote if tag_commit == base_commit else _remote_files(api, repo_id, tag_commit, layout, paths)
    except Exception as e:
        raise _hub_call_error("list the files of", repo_id, e) from e

    planned = []
    for rel, p in files:
        if status(rel):
            planned.append(PlannedFile(rel, p, size(p), "pending"))
        elif rel not in remote:
            planned.append(PlannedFile(rel, p, size(p), "new"))
        else:
            planned.append(PlannedFile(rel, p, size(p), "unchanged" if same_content(p, remote[rel]) else "changed"))
    kept = set() if delete_old_stats else set(layout.keep)
    local = {rel for rel, _ in files}

    def extra(tree: dict) -> set[str]:
        """Files of ``tree`` that must not be there once pushed."""
        return set(tree) - local - kept

    plan = PushPlan(repo_id=repo_id, root=root, revision=target, endpoint=api.endpoint, layout=layout, files=planned,
                    private=private, create_branch=create_branch,
                    source_revision=source_revision if create_branch else None, base_commit=base_commit,
                    deletes=[] if pending and layout.replace else sorted(extra(remote)),
                    stats_on_hub=STATS_JSON in remote, tag_commit=tag_commit, pending=pending)
    plan.large = plan.upload_bytes > large_upload_bytes
    if at_tag is not None and pending:
        plan.tag_action = "move" if move_tag else "check"
    elif at_tag is not None:
        if all(same_content(p, at_tag.get(rel)) for rel, p in files) and not extra(at_tag):
            plan.tag_action = "keep"
        elif move_tag:
            plan.tag_action = "move"
        else:
            plan.tag_action = "conflict"
            plan.problems.append(
                f"Tag `{layout.tag}` of {repo_id} already points to commit {tag_commit[:8]}, whose files differ "
                f"from this conversion. Move it by re-running with --force, or delete it first with "
                f"`hf repos tag delete {repo_id} {layout.tag} --repo-type dataset`.")
    return plan


# ------------------------------------------------------------------------------------------------ push
def push(plan: PushPlan, api: HfApi | None = None) -> PushResult:
    """Carry out ``plan``: create the repo/branch if needed, one commit, then the tag.

    Idempotent: unchanged files are not committed and an existing tag on identical content is left alone.
    Raises :class:`HubError` (saying what was and was not pushed) when a step fails; no tag is created
    unless the commit succeeded.
    """
    plan.check()
    api = api or HfApi(endpoint=plan.endpoint)
    repo_id = plan.repo_id
    result = PushResult(repo_id=repo_id, revision=plan.revision, commit_oid=plan.base_commit, tag=plan.tag)
    done: list[str] = []

    def failed(step: str, e: Exception, retry: str) -> HubError:
        pushed = "; ".join(done) if done else "nothing"
        hint = " Check that your token (HF_TOKEN or `hf auth login`) can write to it." if _is_auth_error(e) else ""
        return HubError(f"{step} failed ({short(e)}). Pushed so far: {pushed}; the `{plan.tag}` tag was not "
                        f"touched.{hint} {retry}")

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
        additions = [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local_path))
                     for f in plan.uploads]
        operations: list = [*additions, *(CommitOperationDelete(path_in_repo=path) for path in plan.deletes)]
        if plan.large:
            _preupload(api, plan, additions, failed)
        names = ", ".join(f.path_in_repo for f in plan.uploads[:5]) + (" ..." if len(plan.uploads) > 5 else "")
        deleted = (f" Deleted {', '.join(plan.deletes[:5])}{' ...' if len(plan.deletes) > 5 else ''}."
                   if plan.deletes else "")
        try:
            info = api.create_commit(
                repo_id, operations, commit_message=f"Convert dataset to {plan.tag}{plan.layout.description} with "
                                                    "dask_stats",
                commit_description=f"Uploaded: {names}.{deleted}", repo_type=REPO_TYPE, revision=plan.revision,
                parent_commit=plan.base_commit)
        except Exception as e:
            retry = (f"`{plan.revision}` changed since the plan was made; re-run to plan again." if _is_http(e, 412)
                     else "No commit was made (commits are atomic), so the Hub is unchanged. Re-run to retry.")
            raise failed(f"Committing {len(operations)} change(s) to `{plan.revision}` of {repo_id}", e, retry) from e
        result.commit_oid = info.oid
        if info.oid != plan.base_commit:
            result.commit_url = info.commit_url
            result.uploaded = [f.path_in_repo for f in plan.uploads]
            result.deleted = list(plan.deletes)
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
            raise HubError(f"{what} tag `{plan.tag}` of {repo_id} failed ({short(e)}); pushed: "
                           f"{'; '.join(done) or 'nothing'}. Re-run the same command: unchanged files are skipped "
                           "and only the tag is made.") from e
        result.tag_action = "moved" if plan.tag_action == "move" else "created"
    return result


def _preupload(api: HfApi, plan: PushPlan, additions: list, failed) -> None:
    """Upload the LFS files of a large commit in batches before it (the commit then only references them)."""
    for start in range(0, len(additions), PREUPLOAD_BATCH):
        batch = additions[start:start + PREUPLOAD_BATCH]
        try:
            api.preupload_lfs_files(plan.repo_id, additions=batch, repo_type=REPO_TYPE, revision=plan.revision)
        except Exception as e:
            raise failed(f"Uploading files {start + 1}-{start + len(batch)} of {len(additions)} to {plan.repo_id}", e,
                         "No commit was made, so the Hub is unchanged; re-run: files already uploaded are not sent "
                         "again.") from e


def _create_tag(api: HfApi, repo_id: str, tag: str, commit: str | None) -> None:
    """Create ``tag`` at ``commit``; a tag that appeared meanwhile is fine only if it is at ``commit``."""
    try:
        api.create_tag(repo_id, tag=tag, revision=commit, repo_type=REPO_TYPE,
                       tag_message=f"LeRobot dataset {tag} (converted by dask_stats)")
    except HfHubHTTPError as e:
        if not _is_http(e, 409):
            raise
        existing = {r.name: r.target_commit for r in api.list_repo_refs(repo_id, repo_type=REPO_TYPE).tags}
        if existing.get(tag) != commit:
            raise HubError(f"Tag `{tag}` of {repo_id} was created meanwhile at commit {str(existing.get(tag))[:8]}, "
                           f"not at {str(commit)[:8]}. The commit is in place; re-run to check the tag (--force moves "
                           "it).") from e


def _is_http(e: Exception, status: int) -> bool:
    response = getattr(e, "response", None)
    return response is not None and getattr(response, "status_code", None) == status


def _is_auth_error(e: Exception) -> bool:
    return _is_http(e, 401) or _is_http(e, 403)
