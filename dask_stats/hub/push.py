"""Pushing a converted dataset back to the Hugging Face Hub: :func:`plan_push` (reads the Hub, writes nothing; its
result prints as the ``--dry-run`` report) and :func:`push` (carries the plan out).

What a conversion publishes is described by a :class:`PushLayout`, one per target version, turned into one
:class:`Selection` of glob patterns (huggingface_hub's ``allow_patterns``/``ignore_patterns``/``delete_patterns``)
that both the plan and the push use, so that ``--dry-run`` lists exactly the files the push sends:

* ``v2.1`` (:data:`V21`): only ``meta/`` is uploaded, and never ``meta/stats.json``: the Hub keeps its copy unless
  ``delete_old_stats`` is set, in which case the deletion goes into the *same* commit as the new files.
* ``v3.0`` (:data:`V30`): the whole new tree (``meta/``, ``data/``, ``videos/``) is uploaded, and the files of the
  v2.x layout under those folders are removed in the same commit, so the branch switches layout atomically.

For both:

* Hidden files and folders (our temporaries ``.<name>.<random>.tmp``, the ``--output`` marker
  ``.dask_stats-output``, huggingface_hub's ``.cache/``) and other temporary or lock files are never pushed
  (:data:`NEVER_PUSHED`).
* A repo that does not exist yet is created (``private`` applies only then) and receives ``data/`` and ``videos/``
  as well, because a dataset made of ``meta/`` alone is unusable.
* The push is one ``create_commit`` of the files whose content differs from the Hub's (compared by sha256 for
  LFS/Xet files, by git blob hash otherwise, with huggingface_hub's hash helpers) and of the deletions; when nothing
  differs, huggingface_hub makes no commit at all, so a re-run is a no-op. LFS/Xet content already uploaded by an
  interrupted run is not sent again. (``upload_folder`` is not used: since huggingface_hub 1.20, with ``hf_xet``
  installed, it splits a large folder into several commits, the deletions riding the first one.)
* With ``branch``, the branch is created (when missing) from ``source_revision`` (the revision that was downloaded,
  normally ``v2.0``), pinned to the commit that revision resolved to when planning. The commit carries
  ``parent_commit`` = the head seen when planning, so the Hub refuses it if the branch moved in between and the plan
  is never carried out against a state it did not look at.
* The tag (the target version) is treated as content-addressed: if it already exists and the commit it points to
  holds exactly the files this push would publish, it is left alone, wherever it points. If it points to different
  content the plan records a problem and :func:`push` refuses before writing anything, unless ``move_tag`` is set
  (delete + create, not atomic). A tag made meanwhile by someone else is fine only where it points to our commit.
* A failed commit leaves no tag: the tag is created only after the commit succeeded, and the error says what was
  and was not pushed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants
from huggingface_hub.utils import filter_repo_objects
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
# never pushed: hidden files and folders anywhere (our temporaries ".<name>.<random>.tmp", the --output marker
# ".dask_stats-output", huggingface_hub's ".cache/"), then other editors' and tools' temporary and lock files
NEVER_PUSHED = (".*", "*/.*", "~*", "*/~*", "*.tmp", "*.part", "*.partial", "*.lock", "*.bak", "*.incomplete")
LARGE_UPLOAD_BYTES = 50 * 1024**3  # above this, the plan points to the README's resumable route for large pushes
UNDELETABLE = ".gitattributes"  # huggingface_hub never deletes it by pattern either

_COMMIT_OID = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Selection:
    """The files of a push, as huggingface_hub patterns: local files matching ``allow`` and not ``ignore`` are
    uploaded; files on the Hub matching ``delete`` that are not uploaded are deleted in the same commit."""

    allow: tuple[str, ...]
    ignore: tuple[str, ...]
    delete: tuple[str, ...] = ()

    def local(self, root: Path) -> list[tuple[str, Path]]:
        """``(path_in_repo, local path)`` of the files under ``root`` that are pushed, sorted."""
        found = {p.relative_to(root).as_posix(): p for p in root.glob("**/*") if p.is_file()}
        picked = filter_repo_objects(found, allow_patterns=list(self.allow), ignore_patterns=list(self.ignore))
        return [(rel, found[rel]) for rel in sorted(picked)]

    def deletions(self, remote: Iterable[str], uploaded: set[str]) -> list[str]:
        """The files of ``remote`` that the push deletes."""
        if not self.delete:
            return []
        matched = filter_repo_objects(list(remote), allow_patterns=list(self.delete))
        return sorted(path for path in matched if path not in uploaded and path != UNDELETABLE)


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

    def selection(self, *, new_repo: bool = False, delete_old_stats: bool = False) -> Selection:
        """The patterns of a push to an existing repo, or of the first push to a ``new_repo`` (every folder)."""
        folders = DATASET_FOLDERS if new_repo else self.folders
        if new_repo:
            delete: tuple[str, ...] = ()
        elif self.replace:
            delete = tuple(f"{folder}/*" for folder in self.folders)
        else:
            delete = self.keep if delete_old_stats else ()
        return Selection(allow=tuple(f"{folder}/*" for folder in folders), ignore=(*NEVER_PUSHED, *self.keep),
                         delete=delete)


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
    def large(self) -> bool:
        """Big enough that the README's resumable route for large pushes is worth a mention."""
        return self.upload_bytes > LARGE_UPLOAD_BYTES

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
                         + (f", {len(self.deletes)} to delete" if self.deletes else ""))
            if self.large:
                lines.append(f"  large: {self.upload_bytes / 1024**3:.0f} GiB to upload; an interrupted push re-sends "
                             "only what was not uploaded yet (README: \"Large pushes\")")
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


def _check_converted(root: Path, layout: PushLayout, pending: bool) -> None:
    """Raise :class:`HubError` unless ``root`` holds a dataset converted to ``layout.version`` (or, ``pending``,
    a dataset at all)."""
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise HubError(f"{root} has no meta/info.json, so it is not a LeRobot dataset. Pass the dataset folder itself.")
    if pending:
        return
    version = json.loads(info_path.read_text(encoding="utf-8")).get("codebase_version")
    missing = [rel for rel in layout.required if not (root / rel).is_file()]
    if version != layout.version or missing:
        raise HubError(f"{root} is not converted yet (to {layout.version}; meta/info.json says {version!r}"
                       f"{''.join(f', no {rel}' for rel in missing)}). Run the conversion before pushing.")


def _local_files(root: Path, layout: PushLayout, selection: Selection, pending: bool) -> list[tuple[str, Path]]:
    """The files pushed; before the conversion (``pending``), also those it writes, and none when it writes a whole
    new tree (not known yet)."""
    if not pending:
        return selection.local(root)
    if not layout.written:
        return []
    return sorted({*selection.local(root), *((rel, root / rel) for rel in layout.written)})


def _remote_files(api: HfApi, repo_id: str, revision: str, folders: tuple[str, ...]) -> dict:
    """``{path: RepoFile}`` of the files under ``folders`` at ``revision``."""
    found = {}
    for folder in folders:
        try:
            entries = api.list_repo_tree(repo_id, folder, recursive=True, revision=revision, repo_type=REPO_TYPE)
            found.update({e.path: e for e in entries if hasattr(e, "blob_id")})
        except HfHubHTTPError as e:  # a folder the repo does not have
            if not _is_http(e, 404):
                raise
    return found


def _hub_call_error(action: str, repo_id: str, e: Exception) -> HubError:
    if isinstance(e, RepositoryNotFoundError):
        return HubError(repo_not_found_message(repo_id, e))
    if isinstance(e, OfflineModeIsEnabled) or constants.is_offline_mode():
        return HubError(f"Cannot {action} {repo_id}: HF_HUB_OFFLINE is set. Unset it to push, or drop --push-to-hub.")
    return HubError(f"Cannot {action} {repo_id}: {short(e)}. Check your connection and token, then re-run.")


def plan_push(repo_id: str, root: str | Path, *, to: str | PushLayout = "v2.1", branch: str | None = None,
              source_revision: str | None = None, delete_old_stats: bool = False, private: bool | None = None,
              move_tag: bool = False, pending: bool = False, api: HfApi | None = None) -> PushPlan:
    """Look at the Hub and the dataset converted to ``to`` in ``root`` and describe what :func:`push` will do.

    Writes nothing. ``branch`` (default ``main``) is the branch to commit to; when it does not exist it is created
    from ``source_revision`` (the revision the dataset was downloaded from; default: the default branch).
    ``delete_old_stats`` removes ``meta/stats.json`` from the Hub in the same commit (v2.1). ``private`` is used only
    when the repo has to be created. ``move_tag`` allows moving an existing tag that points to other content.
    Problems that would make the push fail are listed in ``plan.problems`` (:func:`push` refuses such a plan before
    writing anything). Raises :class:`HubError` when ``root`` is not a converted dataset or the Hub cannot be read.

    ``pending=True`` plans *before* the conversion (for ``--dry-run``): ``root`` may still be v2.0; the files the
    conversion writes are listed as ``pending``, and the result can be printed but not pushed.
    """
    api = api or HfApi()
    layout = layout_for(to)
    root = Path(root).expanduser()
    target = branch or "main"
    _check_converted(root, layout, pending)  # before any request
    try:
        refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    except GatedRepoError as e:
        raise HubError(repo_not_found_message(repo_id, e)) from e
    except RepositoryNotFoundError:
        refs = None
    except Exception as e:
        raise _hub_call_error("read the refs of", repo_id, e) from e

    selection = layout.selection(new_repo=refs is None, delete_old_stats=delete_old_stats)
    files = _local_files(root, layout, selection, pending)

    def size(p: Path) -> int:
        return p.stat().st_size if p.is_file() else 0

    def status(rel: str) -> str | None:
        return "pending" if pending and (rel in layout.written or not layout.written) else None

    if refs is None:  # a new repo: everything is new, nothing to compare with
        planned = [PlannedFile(rel, p, size(p), status(rel) or "new") for rel, p in files]
        return PushPlan(repo_id=repo_id, root=root, revision=target, endpoint=api.endpoint, layout=layout,
                        files=planned, pending=pending, create_repo=True, private=private,
                        create_branch=target != "main", source_revision=None)

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

    tag_commit = tags.get(layout.tag)
    try:
        remote = _remote_files(api, repo_id, base_commit, layout.folders)
        at_tag = None
        if tag_commit is not None:
            at_tag = remote if tag_commit == base_commit else _remote_files(api, repo_id, tag_commit, layout.folders)
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
    local = {rel for rel, _ in files}
    plan = PushPlan(repo_id=repo_id, root=root, revision=target, endpoint=api.endpoint, layout=layout, files=planned,
                    private=private, create_branch=create_branch,
                    source_revision=source_revision if create_branch else None, base_commit=base_commit,
                    deletes=[] if pending and layout.replace else selection.deletions(remote, local),
                    stats_on_hub=STATS_JSON in remote, tag_commit=tag_commit, pending=pending)
    if at_tag is not None and pending:
        plan.tag_action = "move" if move_tag else "check"
    elif at_tag is not None:
        if all(same_content(p, at_tag.get(rel)) for rel, p in files) and not selection.deletions(at_tag, local):
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

    # the files the plan found changed (huggingface_hub before 1.17 would send unchanged ones too when others
    # changed); with none, create_commit makes no empty commit and answers the branch's head
    additions = [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local_path))
                 for f in plan.uploads]
    operations = [*additions, *(CommitOperationDelete(path_in_repo=path) for path in plan.deletes)]
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
                 else "No commit was made (commits are atomic), so the Hub is unchanged. Re-run to retry: files "
                      "already uploaded are not sent again.")
        changes = len(plan.uploads) + len(plan.deletes)
        raise failed(f"Committing {changes} change(s) to `{plan.revision}` of {repo_id}", e, retry) from e
    result.commit_oid = info.oid
    if info.oid != plan.base_commit:
        result.commit_url = info.commit_url
        result.uploaded = [f.path_in_repo for f in plan.uploads]
        result.deleted = list(plan.deletes)
        done.append(f"commit {info.oid[:8]} on `{plan.revision}`")

    if plan.tag_action in ("create", "move"):
        _place_tag(api, plan, result.commit_oid, done)
        result.tag_action = "moved" if plan.tag_action == "move" else "created"
    return result


def _place_tag(api: HfApi, plan: PushPlan, commit: str | None, done: list[str]) -> None:
    """Create (``move``: delete, then create) the plan's tag at ``commit``; a tag that appeared meanwhile is fine
    only if it is at ``commit``."""
    repo_id, tag = plan.repo_id, plan.tag
    try:
        if plan.tag_action == "move":
            api.delete_tag(repo_id, tag=tag, repo_type=REPO_TYPE)
            done.append(f"deleted the old `{tag}` tag (was at {str(plan.tag_commit)[:8]})")
        api.create_tag(repo_id, tag=tag, revision=commit, repo_type=REPO_TYPE, exist_ok=True,
                       tag_message=f"LeRobot dataset {tag} (converted by dask_stats)")
        at = {r.name: r.target_commit for r in api.list_repo_refs(repo_id, repo_type=REPO_TYPE).tags}.get(tag)
    except Exception as e:
        what = "Moving" if plan.tag_action == "move" else "Creating"
        raise HubError(f"{what} tag `{tag}` of {repo_id} failed ({short(e)}); pushed: {'; '.join(done) or 'nothing'}. "
                       "Re-run the same command: unchanged files are skipped and only the tag is made.") from e
    if at != commit:
        raise HubError(f"Tag `{tag}` of {repo_id} was created meanwhile at commit {str(at)[:8]}, not at "
                       f"{str(commit)[:8]}. The commit is in place; re-run to check the tag (--force moves it).")


def _is_http(e: Exception, status: int) -> bool:
    response = getattr(e, "response", None)
    return response is not None and getattr(response, "status_code", None) == status


def _is_auth_error(e: Exception) -> bool:
    return _is_http(e, 401) or _is_http(e, 403)
