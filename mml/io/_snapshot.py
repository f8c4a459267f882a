"""Reading an artifact directory once: one directory handle, every file read into memory once.

A published artifact directory is never changed (:mod:`mml.io._store` replaces it whole), so
reading the manifest and every file through one directory file descriptor gives the bytes of
one save. If that directory is deleted under the reader (a newer save replaced it), the reader
starts again from the path. Each file is hashed while it is read, on another core, and the
caller checks and parses those same bytes — nothing is reopened by path. Files are opened
without following symlinks at any depth.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa

from mml.errors import ArtifactError
from mml.io._store import RETRIES, hasher, staging_prefix

__all__ = ["Snapshot", "read_snapshot"]

_CHUNK = 8 << 20  # read/hash pipeline granularity
_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FD = os.open in os.supports_dir_fd and os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")


@attrs.frozen
class Snapshot:
    """What one read of an artifact directory found.

    ``files`` holds the bytes of every file the manifest lists (Arrow buffers, never written to) and
    ``digests`` their hashes as computed on those bytes; ``found`` lists every entry below the
    root (``"file"``, ``"dir"``, ``"symlink"`` or ``"other"``) for the unlisted-file check.
    """

    root: Path
    manifest: dict[str, Any]
    files: dict[str, pa.Buffer]
    digests: dict[str, str]
    found: dict[str, str]


class _Vanished(Exception):
    """A file or directory disappeared while being read (a newer save replaced it)."""


def _open_in(dfd: Any, rel: str, flags: int) -> int:
    """Open ``rel`` below the directory ``dfd`` without following any symlink on the way."""
    parts = rel.split("/")
    if not _DIR_FD:  # pragma: no cover - Windows: by path
        return os.open(os.path.join(dfd, *parts), flags | getattr(os, "O_BINARY", 0))
    cur, owned = dfd, []
    try:
        for part in parts[:-1]:
            cur = os.open(part, _O_DIR | _O_NOFOLLOW, dir_fd=cur)
            owned.append(cur)
        return os.open(parts[-1], flags | _O_NOFOLLOW, dir_fd=cur)
    finally:
        for fd in owned:
            os.close(fd)


def _read_file(
    dfd: Any, rel: str, root: Path, alg: str | None, expected_size: int | None = None
) -> tuple[pa.Buffer, str]:
    """The bytes of one file (read once, into memory) and their digest, hashed while reading.

    A file whose size is not ``expected_size`` (when the manifest records it) is refused
    before a byte of it is read."""
    try:
        fd = _open_in(dfd, rel, os.O_RDONLY)
    except FileNotFoundError:
        raise _Vanished(rel) from None
    except OSError as exc:
        if exc.errno == errno.ESTALE:  # NFS: deleted on the server by a newer save
            raise _Vanished(rel) from None
        if exc.errno == errno.ELOOP:
            raise ArtifactError(f"{root / rel} is a symlink; an artifact holds only regular files") from None
        if exc.errno in (errno.ENOTDIR, errno.EISDIR):
            raise ArtifactError(f"{root / rel} is not a regular file; the artifact is corrupted") from None
        raise ArtifactError(f"{root / rel} cannot be read: {exc}") from exc
    h = pool = None
    try:
        size = os.fstat(fd).st_size
        if expected_size is not None and size != expected_size:
            raise ArtifactError(
                f"{root / rel} has {size} bytes, the manifest says {expected_size}: "
                "the file is corrupted or was modified"
            )
        h = hasher(alg, size) if alg is not None else None
        if h is not None and size > _CHUNK:
            pool = ThreadPoolExecutor(max_workers=1)
        # Arrow's pool reuses pages it already has; a fresh numpy array would fault in new ones.
        buf = pa.allocate_buffer(size)
        view = memoryview(buf)
        pending = None
        pos = 0
        while pos < size:
            n = os.readv(fd, [view[pos : pos + _CHUNK]])
            if n == 0:
                break
            if pending is not None:
                pending.result()
            if (
                pool is not None and h is not None
            ):  # hash this chunk on another core while the next one is read
                pending = pool.submit(h.update, view[pos : pos + n])
            elif h is not None:
                h.update(view[pos : pos + n])
            pos += n
        if pending is not None:
            pending.result()
        if pos != size or os.read(fd, 1):
            raise ArtifactError(f"{root / rel} changed size while being read; the artifact is being modified")
    except OSError as exc:
        if exc.errno == errno.ESTALE:
            raise _Vanished(rel) from None
        raise ArtifactError(f"{root / rel} cannot be read: {exc}") from exc
    finally:
        if pool is not None:
            pool.shutdown()
        os.close(fd)
    return buf, str(h.hexdigest()) if h is not None else ""


def _walk(dfd: Any, prefix: str, out: dict[str, str], depth: int = 0) -> None:
    if depth > 32:
        raise ArtifactError(f"the artifact nests directories deeper than 32 at {prefix!r}")
    try:
        entries = list(os.scandir(dfd))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ESTALE):
            raise _Vanished(prefix) from None
        raise ArtifactError(f"the artifact directory {prefix or '.'!r} cannot be listed: {exc}") from exc
    for e in entries:
        rel = f"{prefix}{e.name}"
        if e.is_symlink():
            out[rel] = "symlink"
        elif e.is_dir(follow_symlinks=False):
            out[rel] = "dir"
            if _DIR_FD:
                try:
                    sub = os.open(e.name, _O_DIR | _O_NOFOLLOW, dir_fd=dfd)
                except OSError as exc:
                    if exc.errno in (errno.ENOENT, errno.ESTALE):
                        raise _Vanished(rel) from None
                    raise ArtifactError(f"the artifact directory {rel!r} cannot be opened: {exc}") from exc
                try:
                    _walk(sub, f"{rel}/", out, depth + 1)
                finally:
                    os.close(sub)
            else:  # pragma: no cover
                _walk(os.path.join(dfd, e.name), f"{rel}/", out, depth + 1)
        elif e.is_file(follow_symlinks=False):
            out[rel] = "file"
        else:
            out[rel] = "other"


def _same_dir(root: Path, dfd: Any) -> bool:
    try:
        if not _DIR_FD:  # pragma: no cover
            return True
        return os.stat(root).st_ino == os.fstat(dfd).st_ino
    except OSError:
        return False


def read_snapshot(
    root: Path,
    parse_manifest: Callable[[bytes, Path], dict[str, Any]],
    check_tree: Callable[[dict[str, str], dict[str, Any], Path], None] | None = None,
) -> Snapshot:
    """Read an artifact directory once: the manifest, then every file it lists, through one
    directory handle; a directory replaced mid-read by a newer save is read again from ``root``.

    ``parse_manifest(bytes, root)`` checks the manifest and returns it (with ``files`` a mapping of
    relative path to digest and ``hash`` the algorithm, optionally ``sizes``).
    ``check_tree(found, manifest, root)`` checks what the directory holds before any listed file
    is read (unlisted files, links).
    """
    for _ in range(RETRIES):
        try:
            dfd: Any = os.open(root, _O_DIR) if _DIR_FD else str(root)
        except FileNotFoundError:
            if _saving(root):
                time.sleep(0.001)
                continue
            raise ArtifactError(f"{root} is not an mml artifact directory (it does not exist)") from None
        except NotADirectoryError:
            raise ArtifactError(f"{root} is not an mml artifact directory (it is a file)") from None
        except OSError as exc:
            raise ArtifactError(f"{root} cannot be opened: {exc}") from exc
        try:
            try:
                raw, _ = _read_file(dfd, "manifest.json", root, None)
            except _Vanished:
                if _same_dir(root, dfd):
                    raise ArtifactError(
                        f"{root / 'manifest.json'} is missing: {root} is not a complete mml artifact "
                        "(an interrupted save, or not saved by mml)"
                    ) from None
                continue
            manifest = parse_manifest(raw.to_pybytes(), root)
            alg = manifest.get("hash", "sha256")
            files: dict[str, pa.Buffer] = {}
            digests: dict[str, str] = {}
            found: dict[str, str] = {}
            sizes = manifest.get("sizes") or {}
            try:
                _walk(dfd, "", found)
                if check_tree is not None:
                    check_tree(found, manifest, root)
                for rel in manifest["files"]:
                    files[rel], digests[rel] = _read_file(dfd, rel, root, alg, sizes.get(rel))
            except _Vanished as gone:
                if _same_dir(root, dfd):
                    raise ArtifactError(
                        f"{root / str(gone)} is listed in the manifest but missing; the artifact is incomplete"
                    ) from None
                continue
            return Snapshot(root, manifest, files, digests, found)
        finally:
            if _DIR_FD:
                os.close(dfd)
    raise ArtifactError(f"{root} was replaced {RETRIES} times while being read; load it again")


def _saving(root: Path) -> bool:
    """Whether a save to ``root`` is under way (its staging directory exists)."""
    try:
        with os.scandir(root.parent) as entries:  # closed also when any() stops early
            return any(e.name.startswith(staging_prefix(root)) for e in entries)
    except OSError:
        return False
