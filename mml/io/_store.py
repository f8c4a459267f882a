"""Artifact directories on disk: atomic replacement, crash leftovers, reading every file once.

An artifact is a plain directory. :func:`staging` makes a hidden sibling
``.<name>.mml-tmp-<random>/`` for a writer to fill, held under an exclusive ``flock`` while the
writer lives; :func:`publish` swaps it with the target in one step (Linux
``renameat2(RENAME_EXCHANGE)``, macOS ``renamex_np(RENAME_SWAP)``; elsewhere two renames) and
deletes what it displaced. A directory's files are never changed once it is published, so a
reader that opens the directory once (:func:`read_snapshot`, by directory file descriptor) and
reads every file through it sees one save, whole. If the old directory is deleted under it (a
newer save replaced it), the reader starts again from the path. The next save to a path removes
the staging directories that no live writer holds (a crashed writer's leftovers).

Files are hashed with BLAKE3 (multi-threaded) over the bytes in memory, while they are written
and while they are read; manifests written before BLAKE3 name no algorithm and mean SHA-256.

>>> h = digest_bytes(b"mml", "blake3")
>>> len(h), h == digest_bytes(b"mml", "blake3")
(64, True)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mml.errors import ArtifactError

__all__ = ["HASH", "HASHES", "digest_bytes", "HashingSink", "staging", "publish", "read_snapshot", "Snapshot"]

HASH = "blake3"  # what new manifests use
HASHES = ("blake3", "sha256")  # what the loader verifies ("sha256" is the pre-BLAKE3 default)
_CHUNK = 8 << 20  # read/hash pipeline granularity
_PARALLEL_FROM = 1 << 20  # below this, hashing in another thread costs more than it saves
_RETRIES = 50  # times a reader starts again after a newer save replaced the directory it read
_LEFTOVER_AGE_S = 3600.0  # without flock, leftovers older than this are removed

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None  # type: ignore[assignment]

_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FD = os.open in os.supports_dir_fd and os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")


def _hasher(alg: str) -> Any:
    if alg == "blake3":
        import blake3

        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    if alg == "sha256":
        return hashlib.sha256()
    raise ArtifactError(f"unknown hash algorithm {alg!r}; this mml verifies {', '.join(HASHES)}")


def digest_bytes(data: Any, alg: str = HASH) -> str:
    """Hex digest of bytes-like ``data`` with ``alg`` (``"blake3"`` or ``"sha256"``).

    >>> digest_bytes(b"", "sha256")[:12]
    'e3b0c44298fc'
    """
    h = _hasher(alg)
    h.update(memoryview(data).cast("B"))
    return str(h.hexdigest())


class HashingSink:
    """A binary file-like sink that writes to ``fd`` and hashes the same bytes on another core.

    pyarrow hands large body buffers over without copying (``pa.PythonFile`` wraps this), so a
    table is written and hashed straight from its own memory.

    >>> import os, tempfile
    >>> fd, p = tempfile.mkstemp()
    >>> with HashingSink(fd) as sink:
    ...     _ = sink.write(b"abc")
    >>> from pathlib import Path
    >>> sink.hexdigest() == digest_bytes(b"abc"), Path(p).read_bytes()
    (True, b'abc')
    >>> os.remove(p)
    """

    closed = False

    def __init__(self, fd: int, alg: str = HASH) -> None:
        self._fd = fd
        self._hash = _hasher(alg)
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._digest: str | None = None

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if len(view) >= _PARALLEL_FROM:
            pending = self._pool.submit(self._hash.update, view)
            _write_all(self._fd, view)
            pending.result()
        else:
            self._hash.update(view)
            _write_all(self._fd, view)
        return len(view)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._pool.shutdown()
            os.close(self._fd)
            self._digest = str(self._hash.hexdigest())

    def hexdigest(self) -> str:
        if self._digest is None:
            raise ArtifactError("HashingSink.hexdigest() is known only after close()")
        return self._digest

    def __enter__(self) -> HashingSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


# -- writers: staging, leftovers, publishing ---------------------------------------------


def _prefix(target: Path) -> str:
    return f".{target.name}.mml-tmp-"


def _try_lock(fd: int) -> bool:
    if _fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def remove_leftovers(target: Path) -> list[Path]:
    """Remove the staging directories of ``target`` that no live writer holds; return them."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(_prefix(target)):
            continue
        path = Path(entry.path)
        if _fcntl is None:  # pragma: no cover - no locks: only what is clearly abandoned
            try:
                stale = time.time() - path.lstat().st_mtime > _LEFTOVER_AGE_S
            except OSError:
                continue
            if stale:
                _rmtree(path)
                removed.append(path)
            continue
        try:
            fd = os.open(path, _O_DIR | _O_NOFOLLOW)
        except OSError:  # gone already, or not a directory: a file left by something else
            if path.is_file() or path.is_symlink():
                _rmtree(path)
                removed.append(path)
            continue
        try:
            if _try_lock(fd) and os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                _rmtree(path)
                removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


@attrs.frozen
class Staging:
    """A writer's private directory beside the target, locked while the writer lives."""

    path: Path
    fd: int


@contextmanager
def staging(target: Path) -> Iterator[Staging]:
    """A fresh locked staging directory beside ``target``; removed on exit unless published.

    Leftovers of crashed writers to the same target are removed first.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(f"cannot create the directory {target.parent} to save {target}: {exc}") from exc
    remove_leftovers(target)
    stage = None
    for _ in range(_RETRIES):
        try:
            path = Path(tempfile.mkdtemp(prefix=_prefix(target), dir=target.parent))
            fd = os.open(path, _O_DIR)
        except OSError as exc:
            raise ArtifactError(f"cannot create a staging directory beside {target}: {exc}") from exc
        # Another writer's cleanup may have taken the fresh directory before we locked it.
        try:
            if _try_lock(fd) and os.stat(path).st_ino == os.fstat(fd).st_ino:
                stage = Staging(path, fd)
                break
        except OSError:
            pass
        os.close(fd)
    if stage is None:
        raise ArtifactError(f"could not create a staging directory beside {target}; is it being cleaned?")
    try:
        yield stage
    finally:
        os.close(stage.fd)  # releases the lock
        if stage.path.exists():
            _rmtree(stage.path)


@functools.lru_cache(maxsize=1)
def _exchange_call() -> Callable[[bytes, bytes], int] | None:
    """The libc call that swaps two paths atomically, if this platform has one."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:  # pragma: no cover
        return None
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        fn = libc.renameat2
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        at_fdcwd, rename_exchange = -100, 2
        return lambda a, b: int(fn(at_fdcwd, a, at_fdcwd, b, rename_exchange))
    if sys.platform == "darwin" and hasattr(libc, "renamex_np"):  # pragma: no cover
        fn = libc.renamex_np
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
        rename_swap = 2
        return lambda a, b: int(fn(a, b, rename_swap))
    return None  # pragma: no cover


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the platform or filesystem can't."""
    call = _exchange_call()
    if call is None:  # pragma: no cover
        return False
    if call(os.fsencode(a), os.fsencode(b)) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def publish(stage: Staging, target: Path, *, overwrite: bool = True) -> None:
    """Make the staging directory the target, atomically where the platform allows.

    Concurrent publishers to one target all succeed and the last one wins; the directory a
    publish displaces is deleted. With ``overwrite=False`` an existing target is an error.
    """
    displaced: Path | None = None
    try:
        if not overwrite:
            try:
                os.rename(stage.path, target)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                    raise ArtifactError(
                        f"{target} exists; pass overwrite=True or choose another path"
                    ) from None
                raise
            return
        for _ in range(_RETRIES):
            if os.path.lexists(target):
                if _exchange(stage.path, target):
                    displaced = stage.path  # the staging name now holds the old artifact
                    break
                # No atomic swap here: move the old one aside, then rename (a short gap).
                aside = Path(tempfile.mkdtemp(prefix=_prefix(target), dir=target.parent)) / "old"
                try:
                    os.rename(target, aside)
                except FileNotFoundError:
                    _rmtree(aside.parent)
                    continue
                displaced = aside.parent
            try:
                os.rename(stage.path, target)
                break
            except OSError as exc:  # another writer published in between: swap with theirs
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                    raise
        else:
            raise ArtifactError(f"could not replace {target}: other writers kept replacing it; save again")
    except OSError as exc:
        raise ArtifactError(f"could not move the new artifact into place at {target}: {exc}") from exc
    finally:
        if displaced is not None:
            _rmtree(displaced)


# -- readers: one directory, every file read once ------------------------------------------


@attrs.frozen
class Snapshot:
    """What one read of an artifact directory found.

    ``files`` holds the bytes of every file the manifest lists (read-only ``uint8`` arrays) and
    ``digests`` their hashes as computed on those bytes; ``found`` lists every entry below the
    root (``"file"``, ``"dir"``, ``"symlink"`` or ``"other"``) for the unlisted-file check.
    """

    root: Path
    manifest: dict[str, Any]
    files: dict[str, np.ndarray]
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


def _read_file(dfd: Any, rel: str, root: Path, alg: str | None) -> tuple[np.ndarray, str]:
    """The bytes of one file (read once, into memory) and their digest, hashed while reading."""
    try:
        fd = _open_in(dfd, rel, os.O_RDONLY)
    except FileNotFoundError:
        raise _Vanished(rel) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ArtifactError(f"{root / rel} is a symlink; an artifact holds only regular files") from None
        if exc.errno in (errno.ENOTDIR, errno.EISDIR):
            raise ArtifactError(f"{root / rel} is not a regular file; the artifact is corrupted") from None
        raise ArtifactError(f"{root / rel} cannot be read: {exc}") from exc
    h = _hasher(alg) if alg is not None else None
    pool = None
    try:
        size = os.fstat(fd).st_size
        if h is not None and size > _CHUNK:
            pool = ThreadPoolExecutor(max_workers=1)
        buf = np.empty(size, dtype=np.uint8)
        view = memoryview(buf)
        pending = None
        pos = 0
        while pos < size:
            n = os.readv(fd, [view[pos : pos + _CHUNK]])
            if n == 0:
                break
            if pending is not None:
                pending.result()
            if pool is not None:  # hash this chunk on another core while the next one is read
                pending = pool.submit(h.update, view[pos : pos + n])
            elif h is not None:
                h.update(view[pos : pos + n])
            pos += n
        if pending is not None:
            pending.result()
        if pos != size or os.read(fd, 1):
            raise ArtifactError(f"{root / rel} changed size while being read; the artifact is being modified")
    except OSError as exc:
        raise ArtifactError(f"{root / rel} cannot be read: {exc}") from exc
    finally:
        if pool is not None:
            pool.shutdown()
        os.close(fd)
    buf.flags.writeable = False
    return buf, str(h.hexdigest()) if h is not None else ""


def _walk(dfd: Any, prefix: str, out: dict[str, str], depth: int = 0) -> None:
    if depth > 32:
        raise ArtifactError(f"the artifact nests directories deeper than 32 at {prefix!r}")
    try:
        entries = list(os.scandir(dfd))
    except FileNotFoundError:
        raise _Vanished(prefix) from None
    for e in entries:
        rel = f"{prefix}{e.name}"
        if e.is_symlink():
            out[rel] = "symlink"
        elif e.is_dir(follow_symlinks=False):
            out[rel] = "dir"
            if _DIR_FD:
                try:
                    sub = os.open(e.name, _O_DIR | _O_NOFOLLOW, dir_fd=dfd)
                except FileNotFoundError:
                    raise _Vanished(rel) from None
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


def read_snapshot(root: Path, parse_manifest: Callable[[bytes, Path], dict[str, Any]]) -> Snapshot:
    """Read an artifact directory once: the manifest, then every file it lists, through one
    directory handle; a directory replaced mid-read by a newer save is read again from ``root``.

    ``parse_manifest(bytes, root)`` checks the manifest and returns it (with ``files`` a mapping of
    relative path to digest and ``hash`` the algorithm).
    """
    for _ in range(_RETRIES):
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
            manifest = parse_manifest(raw.tobytes(), root)
            alg = manifest.get("hash", "sha256")
            files: dict[str, np.ndarray] = {}
            digests: dict[str, str] = {}
            found: dict[str, str] = {}
            try:
                for rel in manifest["files"]:
                    files[rel], digests[rel] = _read_file(dfd, rel, root, alg)
                _walk(dfd, "", found)
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
    raise ArtifactError(f"{root} was replaced {_RETRIES} times while being read; load it again")


def _saving(root: Path) -> bool:
    """Whether a save to ``root`` is under way (its staging directory exists)."""
    try:
        return any(e.name.startswith(_prefix(root)) for e in os.scandir(root.parent))
    except OSError:
        return False
