"""A tiny in-memory stand-in for the few Hugging Face Hub endpoints dask_stats uses (tests only).

It serves dataset repos on 127.0.0.1 with git-like state (commits as ``{path: bytes}``, branches, tags)
and answers the requests ``huggingface_hub.HfApi`` makes for: repo info, refs, paths-info, tree (recursive or
not), file resolve (HEAD/GET), preupload (upload mode and the hash of the file on the Hub, which
``create_commit`` compares to skip unchanged files), the LFS batch API and its uploads, commit (ndjson, with
``parentCommit``; regular and LFS files), branch and tag creation/deletion, repo creation. Files whose path ends
with one of ``stub.lfs_suffixes`` are LFS files (the stub speaks LFS, not Xet: the ``hf_env`` fixture turns
Xet off). Every request is logged in ``stub.log`` as ``(method, action)``;
``stub.fail_next[action] = (status, message)`` makes the next such request fail.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

_counter = itertools.count()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class StubRepo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    private: bool = False

    def resolve(self, rev: str) -> str | None:
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        return rev if rev in self.commits else None

    def new_commit(self, tree: dict[str, bytes]) -> str:
        oid = hashlib.sha1(f"commit {next(_counter)}".encode() + json.dumps(sorted(tree)).encode()).hexdigest()
        self.commits[oid] = dict(tree)
        return oid

    def commit_to(self, branch: str, tree: dict[str, bytes]) -> str:
        self.branches[branch] = oid = self.new_commit(tree)
        return oid


class HubStub:
    """``with HubStub() as hub: HfApi(endpoint=hub.url, token="x")``."""

    def __init__(self) -> None:
        self.repos: dict[str, StubRepo] = {}
        self.log: list[tuple[str, str]] = []
        self.fail_next: dict[str, tuple[int, str]] = {}
        self.commit_payloads: list[list[dict]] = []
        self.lfs_suffixes: tuple[str, ...] = ()  # these files are stored in LFS (compared by sha256), as on the Hub
        self.lfs_objects: dict[str, bytes] = {}  # uploaded LFS content by sha256
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                stub._handle(self, "GET")

            def do_HEAD(self):
                stub._handle(self, "HEAD")

            def do_POST(self):
                stub._handle(self, "POST")

            def do_DELETE(self):
                stub._handle(self, "DELETE")

            def do_PUT(self):
                stub._handle(self, "PUT")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> HubStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -------------------------------------------------------------------------------- helpers for tests
    def add_repo(self, repo_id: str, files: dict[str, bytes], *, tag: str | None = None) -> str:
        """A repo whose ``main`` holds ``files``; optionally tag that commit. Returns the commit oid."""
        repo = self.repos[repo_id] = StubRepo()
        oid = repo.commit_to("main", files)
        if tag:
            repo.tags[tag] = oid
        return oid

    def tree(self, repo_id: str, rev: str) -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(rev)]

    def writes(self) -> list[tuple[str, str]]:
        """Logged requests that change state."""
        return [
            entry
            for entry in self.log
            if entry[0] in ("POST", "DELETE") and entry[1] not in ("paths-info", "preupload", "lfs-batch")
        ]

    # -------------------------------------------------------------------------------- dispatch
    _ROUTES = [
        ("POST", re.compile(r"^/api/repos/create$"), "create-repo"),
        ("GET", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)$"), "info"),
        ("GET", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$"), "info"),
        ("GET", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/refs$"), "refs"),
        ("GET", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$"), "tree"),
        ("POST", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)$"), "paths-info"),
        ("POST", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)$"), "preupload"),
        ("POST", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)$"), "commit"),
        ("POST", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/branch/(?P<rev>[^/]+)$"), "create-branch"),
        ("POST", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/tag/(?P<rev>[^/]+)$"), "create-tag"),
        ("DELETE", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/tag/(?P<rev>[^/]+)$"), "delete-tag"),
        ("GET", re.compile(r"^/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
        ("HEAD", re.compile(r"^/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
        ("POST", re.compile(r"^/datasets/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$"), "lfs-batch"),
        ("PUT", re.compile(r"^/lfs-upload/(?P<repo>[^/]+/[^/]+)/(?P<oid>[0-9a-f]{64})$"), "lfs-upload"),
    ]

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        body = self._body(h)
        routes = ((action, pattern.match(url.path)) for m, pattern, action in self._ROUTES if m == method)
        action, match = next(((a, m) for a, m in routes if m), (None, None))
        if match is None:
            return self._send(h, method, 404, {"error": f"stub: no route for {method} {url.path}"})
        args = {k: unquote(v) if v is not None else None for k, v in match.groupdict().items()}
        with self._lock:
            self.log.append((method, action))
            if action in self.fail_next:
                status, message = self.fail_next.pop(action)
                return self._send(h, method, status, {"error": message})
            repo = self.repos.get(args.get("repo") or "")
            if action != "create-repo" and repo is None:
                return self._send(h, method, 404, {"error": "Repository not found"}, error_code="RepoNotFound")
            handler = getattr(self, "_" + action.replace("-", "_"))
            status, payload, headers = handler(repo, args, body, parse_qs(url.query))
        self._send(h, method, status, payload, **headers)

    @staticmethod
    def _body(h: BaseHTTPRequestHandler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() != "chunked":
            length = int(h.headers.get("Content-Length") or 0)
            return h.rfile.read(length) if length else b""
        chunks = []
        while size := int(h.rfile.readline().split(b";")[0], 16):
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
        h.rfile.readline()
        return b"".join(chunks)

    def _is_lfs(self, path: str) -> bool:
        return bool(self.lfs_suffixes) and path.endswith(self.lfs_suffixes)

    def _send(self, h, method, status, payload, error_code=None, raw=None, extra=None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        h.send_header("Content-Length", str(len(data)))
        if error_code:
            h.send_header("X-Error-Code", error_code)
        if status >= 400 and isinstance(payload, dict) and "error" in payload:
            h.send_header("X-Error-Message", payload["error"])
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(data)

    @staticmethod
    def _no_revision(rev):
        return 404, {"error": f"Invalid rev id: {rev}"}, {"error_code": "RevisionNotFound"}

    # -------------------------------------------------------------------------------- endpoints
    def _create_repo(self, repo, args, body, query):
        payload = json.loads(body)
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.repos:
            return 409, {"error": "You already created this dataset repo"}, {}
        private = payload.get("visibility") == "private" or payload.get("private") is True  # newer / older clients
        new = self.repos[repo_id] = StubRepo(private=private)
        new.commit_to("main", {".gitattributes": b"*.mp4 filter=lfs diff=lfs merge=lfs -text\n"})
        return 200, {"url": f"{self.url}/datasets/{repo_id}"}, {}

    def _info(self, repo, args, body, query):
        rev = args.get("rev") or "main"
        oid = repo.resolve(rev)
        if oid is None:
            return self._no_revision(rev)
        repo_id = args["repo"]
        siblings = [{"rfilename": p} for p in sorted(repo.commits[oid])]
        return 200, {"id": repo_id, "sha": oid, "private": repo.private, "siblings": siblings}, {}

    def _refs(self, repo, args, body, query):
        def refs(kind, items):
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in items.items()]

        return 200, {"branches": refs("heads", repo.branches), "converts": [], "tags": refs("tags", repo.tags)}, {}

    def _file_entry(self, path, data):
        entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
        if self._is_lfs(path):
            entry["oid"] = hashlib.sha1(b"pointer " + path.encode()).hexdigest()  # the pointer's blob id
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _tree(self, repo, args, body, query):
        oid = repo.resolve(args["rev"])
        if oid is None:
            return self._no_revision(args["rev"])
        prefix = (args.get("path") or "").strip("/")
        under = {p: d for p, d in repo.commits[oid].items() if not prefix or p.startswith(prefix + "/")}
        if prefix and not under:
            return 404, {"error": f"{prefix} does not exist"}, {"error_code": "EntryNotFound"}
        if query.get("recursive", ["False"])[0].lower() == "true":
            return 200, [self._file_entry(p, d) for p, d in sorted(under.items())], {}
        items = {}  # the direct children: files, and folders once each
        for p, d in sorted(under.items()):
            child, _, rest = p[len(prefix) + 1 if prefix else 0:].partition("/")
            path = f"{prefix}/{child}" if prefix else child
            items[path] = {"type": "directory", "path": path, "oid": "0" * 40} if rest else self._file_entry(p, d)
        return 200, list(items.values()), {}

    def _paths_info(self, repo, args, body, query):
        oid = repo.resolve(args["rev"])
        if oid is None:
            return self._no_revision(args["rev"])
        form = parse_qs(body.decode())
        tree = repo.commits[oid]
        entries = []
        entries = [self._file_entry(p, tree[p]) for p in form.get("paths", []) if p in tree]
        return 200, entries, {}

    def _preupload(self, repo, args, body, query):
        """Upload mode of each file and the hash of the one on the Hub: sha256 for LFS files, git blob otherwise."""
        oid = repo.resolve(args["rev"])
        tree = repo.commits[oid] if oid else {}

        def remote_oid(path):
            if path not in tree:
                return None
            return hashlib.sha256(tree[path]).hexdigest() if self._is_lfs(path) else git_blob_sha1(tree[path])

        files = [
            {
                "path": f["path"],
                "uploadMode": "lfs" if self._is_lfs(f["path"]) else "regular",
                "shouldIgnore": False,
                "oid": remote_oid(f["path"]),
            }
            for f in json.loads(body)["files"]
        ]
        return 200, {"files": files, "commitOid": oid}, {}

    def _lfs_content(self, oid: str) -> bytes | None:
        """LFS content by sha256: uploaded, or in some commit (for repos seeded by the tests)."""
        if oid in self.lfs_objects:
            return self.lfs_objects[oid]
        trees = (tree for repo in self.repos.values() for tree in repo.commits.values())
        return next((data for tree in trees for data in tree.values() if hashlib.sha256(data).hexdigest() == oid), None)

    def _lfs_batch(self, repo, args, body, query):
        """The LFS batch API: objects the Hub already has need no upload; the others get an upload link."""
        objects = []
        for obj in json.loads(body)["objects"]:
            if self._lfs_content(obj["oid"]) is None:
                href = f"{self.url}/lfs-upload/{args['repo']}/{obj['oid']}"
                obj = {**obj, "actions": {"upload": {"href": href}}}
            objects.append(obj)
        return 200, {"transfer": "basic", "objects": objects}, {}

    def _lfs_upload(self, repo, args, body, query):
        if hashlib.sha256(body).hexdigest() != args["oid"]:
            return 400, {"error": "stub: content does not match its sha256"}, {}
        self.lfs_objects[args["oid"]] = body
        return 200, {}, {}

    def _commit(self, repo, args, body, query):
        branch = args["rev"]
        if branch not in repo.branches:
            return self._no_revision(branch)
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        self.commit_payloads.append(lines)
        header = lines[0]["value"]
        head = repo.branches[branch]
        if header.get("parentCommit") not in (None, head):
            return 412, {"error": "A commit has happened since. Please refresh and try again."}, {}
        tree = dict(repo.commits[head])
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                tree[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                data = self._lfs_content(value["oid"])
                if data is None:
                    return 422, {"error": f"stub: LFS object {value['oid']} was not uploaded"}, {}
                tree[value["path"]] = data
            elif key == "deletedFile":
                if value["path"] not in tree:
                    return 404, {"error": "A file with this name doesn't exist"}, {"error_code": "EntryNotFound"}
                del tree[value["path"]]
            else:
                return 400, {"error": f"stub: unsupported commit operation {key}"}, {}
        oid = repo.commit_to(branch, tree)
        return 200, {"commitUrl": f"{self.url}/datasets/{args['repo']}/commit/{oid}", "commitOid": oid}, {}

    def _create_branch(self, repo, args, body, query):
        branch = args["rev"]
        if branch in repo.branches:
            return 409, {"error": "Reference already exists"}, {}
        start = (json.loads(body) if body else {}).get("startingPoint", "main")
        oid = repo.resolve(start)
        if oid is None:
            return self._no_revision(start)
        repo.branches[branch] = oid
        return 200, {}, {}

    def _create_tag(self, repo, args, body, query):
        oid = repo.resolve(args["rev"])
        if oid is None:
            return self._no_revision(args["rev"])
        tag = json.loads(body)["tag"]
        if tag in repo.tags:
            return 409, {"error": "Tag already exists"}, {}
        repo.tags[tag] = oid
        return 200, {}, {}

    def _delete_tag(self, repo, args, body, query):
        if repo.tags.pop(args["rev"], None) is None:
            return self._no_revision(args["rev"])
        return 200, {}, {}

    def _resolve(self, repo, args, body, query):
        oid = repo.resolve(args["rev"])
        if oid is None:
            return self._no_revision(args["rev"])
        data = repo.commits[oid].get(args["path"])
        if data is None:
            return 404, {"error": "Entry not found"}, {"error_code": "EntryNotFound"}
        headers = {"X-Repo-Commit": oid, "ETag": f'"{git_blob_sha1(data)}"'}
        return 200, None, {"raw": data, "extra": headers}


def dataset_files(root: Path, folders=("meta", "data", "videos")) -> dict[str, bytes]:
    """``{path_in_repo: bytes}`` of a local dataset folder, for seeding a stub repo."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for folder in folders
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }
