"""Where a dataset lives: a local directory or any fsspec URL (``s3://``, ``hf://``, ``memory://``...).

A :class:`Store` is small and picklable, so Dask workers open the files where they live. Local paths
stay plain paths (the fast path for every reader); remote videos are copied to a temporary file for the
decoders, which want a real file; remote Parquet is read through a file object.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..errors import DatasetError, Problem
from .atomic import TEMP_SUFFIX, atomic_path

UPLOAD_PART_BYTES = 16 << 20  # part size of multipart uploads to S3: files from twice this size are sent in parts


def _protocols(fs) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


_CREDENTIAL_ERRORS = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}  # botocore's


def missing_credentials(exc: BaseException, url: str | None) -> str | None:
    """What to do when ``exc`` says an object store (S3) found no usable credentials for ``url``; None otherwise."""
    if not any(kind.__name__ in _CREDENTIAL_ERRORS for kind in type(exc).__mro__):
        return None
    return (f"no S3 credentials for {url or 'the dataset'} ({exc}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(AWS_SESSION_TOKEN for temporary ones, AWS_ENDPOINT_URL for a non-AWS endpoint), or AWS_PROFILE with a "
            "profile in ~/.aws/credentials; from Python, storage_options={'key': ..., 'secret': ...} (or "
            "{'anon': True} for a public bucket)")


class Store:
    """A dataset root on some filesystem; every path it hands out is a full path on that filesystem."""

    def __init__(self, url: str | os.PathLike, storage_options: dict | None = None):
        self.url = os.fspath(url)
        self.fs, root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        self.local = isinstance(self.fs, LocalFileSystem)
        self.root = str(Path(root)) if self.local else root.rstrip("/")
        self._listing: dict[str, dict] | None = None

    def __getstate__(self) -> dict:  # the store goes to the workers with every task; its listing does not
        return {**self.__dict__, "_listing": None}

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Store) and (self.fs, self.root) == (other.fs, other.root)

    def path(self, relative: str) -> str:
        """The full path of ``relative`` (POSIX, inside the root)."""
        return os.path.join(self.root, relative) if self.local else f"{self.root}/{relative}"

    def display(self, path: str) -> str:
        """``path`` as the user wrote it (a URL for remote stores), for messages."""
        return path if self.local else self.fs.unstrip_protocol(path)

    def inside(self, relative: str) -> bool:
        """Whether ``relative`` stays inside the root as written (no ``..`` out of it, not absolute).  Symlinks
        are followed wherever they point: shared storage and the Hugging Face cache are made of them."""
        normal = posixpath.normpath(relative.replace(os.sep, "/"))
        return not (normal == ".." or normal.startswith("../") or posixpath.isabs(normal))

    def is_file(self, path: str) -> bool:
        return self.fs.isfile(path)

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def size(self, path: str) -> int:
        return int(self.fs.size(path))

    def listing(self) -> dict[str, dict]:
        """Every file under the root with its details, from one listing taken once per Store: a remote dataset is
        listed in a few requests instead of one per file, and planning and the checkpoint share it."""
        if self._listing is None:
            self.fs.invalidate_cache(self.root)  # the filesystem's own cache may predate other processes' writes
            self._listing = self.fs.find(self.root, detail=True)
        return self._listing

    def refresh(self) -> None:
        """Forget what was listed (files were written or removed since)."""
        self._listing = None
        self.fs.invalidate_cache(self.root)

    def identities(self, paths: Iterable[str]) -> Iterator[tuple[str, str | None]]:
        """What identifies the current content of each of ``paths`` (None: no such file), one at a time.

        Locally, as git's index does: size, ``mtime_ns``, ``ctime_ns`` and inode of the file a path leads to
        (``cp -p``, ``rsync -a`` and ``touch -r`` can restore an mtime, never a ctime). Remotely: the size and
        the ETag / version id / content hash that the store's listing gives (``listing``).
        """
        if self.local:
            for path in paths:
                try:
                    st = os.stat(path)
                except OSError:
                    yield path, None
                    continue
                yield path, f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_dev}:{st.st_ino}"
            return
        listing = self.listing()
        for path in paths:
            info = listing.get(path)
            yield path, None if info is None else f"{info.get('size')}:{_stamp(info)}"

    def written(self, paths: Iterable[str]) -> Iterator[tuple[str, str | None]]:
        """What identifies the content this tool wrote at each of ``paths`` (None: no such file), from the listing:
        locally the stat identity (as :meth:`identities`), remotely the size and ETag / content hash only (a
        listing and a HEAD request give these alike; their modification times differ in precision)."""
        if self.local:
            yield from self.identities(paths)
            return
        listing = self.listing()
        for path in paths:
            info = listing.get(path)
            yield path, None if info is None else f"{info.get('size')}:{_content(info)}"

    def identity(self, path: str) -> str | None:
        """:meth:`written` of one file, asked of the store now (a worker, after writing it)."""
        if self.local:
            return next(self.identities([path]))[1]
        self.fs.invalidate_cache(path)
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        return f"{info.get('size')}:{_content(info)}"

    @contextmanager
    def writing(self, path: str) -> Iterator[str]:
        """A local path to write the file ``path`` of this store into; on success it becomes ``path`` whole (never
        half a file), on an exception nothing is written.

        Locally: a temporary file beside ``path``, renamed over it.  Remotely: a temporary file on this machine,
        uploaded when complete and then removed: read from disk in parts of :data:`UPLOAD_PART_BYTES` (a multipart
        upload on S3, visible only once complete), so neither the writer nor the upload holds the file in
        memory, and writers that seek (the MP4 muxer's ``faststart``) work as on a disk.  The machine writing
        needs free temporary space for one file.
        """
        if self.local:
            with atomic_path(path) as tmp:
                yield tmp
            return
        fd, tmp = tempfile.mkstemp(suffix=posixpath.splitext(path)[1], prefix="dask_stats-upload-")
        os.close(fd)
        try:
            yield tmp
            parts = {"chunksize": UPLOAD_PART_BYTES} if "s3" in _protocols(self.fs) else {}
            self.fs.put_file(tmp, path, **parts)
        finally:
            os.unlink(tmp)

    def copy_to(self, target: Store, relative: str) -> None:
        """Copy the file ``relative`` into ``target`` at the same relative path: a hard link between local
        directories (a copy for metadata, which is rewritten later), a server-side copy within one filesystem, else
        streamed through this process."""
        src, dst = self.path(relative), target.path(relative)
        if target.local:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
        if self.local and target.local:
            _link_or_copy(src, dst, meta=self.path("meta") + os.sep)
        elif self.fs == target.fs:
            self.fs.copy(src, dst)
        else:
            with self.fs.open(src, "rb") as reader, target.fs.open(dst, "wb") as writer:
                shutil.copyfileobj(reader, writer)

    def read_text(self, path: str) -> str:
        with self.fs.open(path, "r", encoding="utf-8") as handle:
            return handle.read()

    @contextmanager
    def source(self, path: str) -> Iterator:
        """Something pyarrow and PyAV can read, closed on exit: the path itself when local (their fast path),
        an open file object otherwise."""
        if self.local:
            yield path
            return
        with self.fs.open(path, "rb") as handle:
            yield handle

    @contextmanager
    def local_file(self, path: str) -> Iterator[str]:
        """A local path holding the file's bytes: the path itself when local, else a copy made by fsspec's
        ``simplecache`` in a temporary directory (same file name: decoders may look at the extension)."""
        if self.local:
            yield path
            return
        with tempfile.TemporaryDirectory(prefix="dask_stats-") as tmp:
            cached = fsspec.filesystem("simplecache", fs=self.fs, cache_storage=tmp, same_names=True,
                                       skip_instance_cache=True)
            with cached.open(path, "rb") as handle:
                yield handle.name

    def write_text(self, path: str, text: str | Iterable[str]) -> None:
        """Replace ``path`` atomically with ``text`` (a string, or pieces of one written in turn): readers see the
        old or the new file, never half of one.

        Locally: temp file in the same directory, fsync, rename. The new file keeps the mode of the file it
        replaces (a new file gets ``0o666 & ~umask``, as ``open`` would give it). A symlink at ``path`` is
        replaced by a regular file: the file it pointed at (maybe outside the dataset) is never written.
        Remotely: a single PUT (object stores replace objects atomically).
        """
        if not self.local:
            self.fs.pipe_file(path, (text if isinstance(text, str) else "".join(text)).encode("utf-8"))
            return
        try:
            self._write_local(path, text)
        except OSError as exc:  # a full disk, a read-only directory...: name the file being written
            raise DatasetError(Problem(f"cannot write the file: {exc.strerror or exc}", path=path,
                                       fix="free some space or fix the permissions, then run the same command "
                                           "again")) from exc

    @staticmethod
    def _write_local(path: str, text: str | Iterable[str]) -> None:
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines([text] if isinstance(text, str) else text)

    def remove_temporaries(self, relative: str) -> list[str]:
        """Remove ``write_text``'s temporary files left in directory ``relative`` by a killed run (local only:
        remote writes leave none); returns them."""
        if not self.local:
            return []
        directory = self.path(relative)
        try:
            names = os.listdir(directory)
        except OSError:
            return []
        removed = []
        for name in names:
            path = os.path.join(directory, name)
            if name.startswith(".") and name.endswith(TEMP_SUFFIX) and os.path.isfile(path) \
                    and not os.path.islink(path):
                os.unlink(path)
                removed.append(path)
        return removed

    def remove(self, path: str) -> None:
        if self.fs.exists(path):
            self.fs.rm_file(path)

    def is_empty_or_missing(self) -> bool:
        return not self.fs.exists(self.root) or not self.fs.ls(self.root)

    def files(self) -> list[str]:
        """Every file under the root, relative, POSIX."""
        if self.local:  # fsspec's find would hold a dict of details per file at once
            found = (os.path.join(directory, name)
                     for directory, _, names in os.walk(self.root, followlinks=True) for name in names)
        else:
            found = self.fs.find(self.root)
        cut = len(self.root) + 1
        return sorted(p[cut:].replace(os.sep, "/") for p in found)

    def mirror_to(self, target: Store, skip: set[str]) -> None:
        """Copy the dataset to ``target``, leaving out ``skip`` (relative paths): between local directories with
        ``shutil.copytree``, data and videos hard-linked where possible (meta/ is copied: it is rewritten later);
        within one filesystem with its ``copy``; across filesystems file by file."""
        if self.local and target.local:
            def skipped(directory: str, names: list[str]) -> set[str]:
                base = Path(directory).relative_to(self.root).as_posix()
                return {name for name in names if posixpath.normpath(f"{base}/{name}") in skip}

            shutil.copytree(self.root, target.root, ignore=skipped, dirs_exist_ok=True,
                            copy_function=partial(_link_or_copy, meta=self.path("meta") + os.sep))
            return
        relatives = [relative for relative in self.files() if relative not in skip]
        if self.fs == target.fs:
            if relatives:
                self.fs.copy([self.path(r) for r in relatives], [target.path(r) for r in relatives])
            return
        for relative in relatives:
            self.copy_to(target, relative)


def _link_or_copy(src: str, dst: str, meta: str) -> str:
    """``copytree``'s copy: a hard link to the file ``src`` leads to, a copy for metadata (under ``meta``) or
    across devices; a file left at ``dst`` by an unfinished copy is replaced."""
    if os.path.lexists(dst):
        os.unlink(dst)
    if not src.startswith(meta):
        try:
            os.link(os.path.realpath(src), dst)  # the file itself: a link to a (relative) symlink would dangle
            return dst
        except OSError:
            pass
    return shutil.copy2(src, dst)


def _stamp(info: dict) -> str:
    """The listing's content identity of a remote file: every version/content field it has (S3 ETag and
    VersionId, GCS generation and md5, Hugging Face blob id and LFS sha256...), then its modification time."""
    keys = ("ETag", "etag", "VersionId", "version_id", "generation", "md5Hash", "blob_id", "sha256", "lfs",
            "last_commit", "mtime", "LastModified", "last_modified", "updated", "created")
    return "|".join(f"{key}={info[key]}" for key in keys if info.get(key) not in (None, ""))


def _content(info: dict) -> str:
    """The content identity of a remote file in a listing or an info answer: ETag, content hash or generation."""
    keys = ("ETag", "etag", "md5Hash", "generation", "blob_id", "sha256")
    return "|".join(f"{key}={info[key]}" for key in keys if info.get(key) not in (None, ""))


OUTPUT_MARKER = ".dask_stats-output"  # in an --output directory this tool is writing (removed once complete)


def mark_output(source: Store, target: Store) -> None:
    """Mark ``target`` as the copy of ``source`` this tool is writing (the same command may then resume it)."""
    target.write_text(target.path(OUTPUT_MARKER), json.dumps({"source": source.display(source.root)}))
