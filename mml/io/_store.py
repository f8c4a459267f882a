"""Writing artifact directories: hashing while writing, staging, atomic replacement, leftovers.

An artifact is a plain directory. :func:`staging` makes a hidden sibling
``.<name>.mml-tmp-<random>/`` for a writer to fill, held under an exclusive ``flock`` while the
writer lives; :func:`publish` swaps it with the target in one step (Linux
``renameat2(RENAME_EXCHANGE)``, macOS ``renamex_np(RENAME_SWAP)``; elsewhere two renames) and
deletes what it displaced. A published directory's files are never changed, which is what
lets :mod:`mml.io._snapshot` read one save whole. The next save to a path removes the staging
directories that no live writer holds (a crashed writer's leftovers).

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
import re
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

from mml.errors import ArtifactError

__all__ = ["HASH", "HASHES", "digest_bytes", "HashingSink", "staging", "publish", "remove_leftovers"]

HASH = "blake3"  # what new manifests use
HASHES = ("blake3", "sha256")  # what the loader verifies ("sha256" is the pre-BLAKE3 default)
_PARALLEL_FROM = 1 << 20  # below this, hashing in another thread costs more than it saves
RETRIES = 50  # times a reader starts again after a newer save replaced the directory it read
_LEFTOVER_AGE_S = 3600.0  # without flock, leftovers older than this are removed

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None  # type: ignore[assignment]

_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def hasher(alg: str, size: int = 0) -> Any:
    """A fresh hash object for ``alg``; BLAKE3 spreads inputs of ``size`` >= 1 MiB over every core.

    The threads are the hasher's own (``max_threads=n``), not rayon's global pool
    (``blake3.AUTO``): a global pool does not survive ``fork``, and a forked child that hashed
    with it would hang.

    >>> h = hasher("sha256")
    >>> h.update(b"abc")
    >>> h.hexdigest()[:8]
    'ba7816bf'
    """
    if alg == "blake3":
        import blake3

        threads = _cores() if size >= _PARALLEL_FROM else 1
        return blake3.blake3(max_threads=threads)
    if alg == "sha256":
        return hashlib.sha256()
    raise ArtifactError(f"unknown hash algorithm {alg!r}; this mml verifies {', '.join(HASHES)}")


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def digest_bytes(data: Any, alg: str = HASH) -> str:
    """Hex digest of bytes-like ``data`` with ``alg`` (``"blake3"`` or ``"sha256"``).

    >>> digest_bytes(b"", "sha256")[:12]
    'e3b0c44298fc'
    """
    view = memoryview(data).cast("B")
    h = hasher(alg, len(view))
    h.update(view)
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

    def __init__(self, fd: int, alg: str = HASH, size_hint: int = _PARALLEL_FROM) -> None:
        self._fd = fd
        self._hash = hasher(alg, size_hint)
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


def staging_prefix(target: Path) -> str:
    """The name prefix of the staging directories of ``target`` (hidden siblings).

    >>> staging_prefix(Path("runs/epoch-3"))
    '.epoch-3.mml-tmp-'
    """
    return f".{target.name}.mml-tmp-"


_STAGING_NAME = re.compile(r"\..+\.mml-tmp-[A-Za-z0-9_]+")  # staging_prefix + mkdtemp's suffix


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
    """Remove the staging directories beside ``target`` that no live writer holds; return them.

    Not only ``target``'s own: a crashed save to ``runs/epoch-3`` is cleaned by the next save to
    any artifact in ``runs/`` (checkpoints rarely save to the same path twice).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / ".epoch-3.mml-tmp-x1y2z3").mkdir()  # what a killed writer leaves
    >>> [p.name for p in remove_leftovers(d / "epoch-4")], sorted(os.listdir(d))
    (['.epoch-3.mml-tmp-x1y2z3'], [])
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        if not _STAGING_NAME.fullmatch(entry.name):
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
        except OSError:  # gone already, or not a directory (not mml's: left alone)
            continue
        try:
            if _try_lock(fd) and os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                _rmtree(path)
                removed.append(path)
        except OSError:
            pass  # best effort: another save removed it first, or it is not ours to remove
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

    Leftovers of crashed writers beside the target are removed first.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with staging(d / "art") as stage:
    ...     (stage.path / "manifest.json").write_text("{}")
    ...     publish(stage, d / "art")
    2
    >>> sorted(os.listdir(d)), sorted(os.listdir(d / "art"))
    (['art'], ['manifest.json'])
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(f"cannot create the directory {target.parent} to save {target}: {exc}") from exc
    remove_leftovers(target)
    stage = None
    for _ in range(RETRIES):
        try:
            path = Path(tempfile.mkdtemp(prefix=staging_prefix(target), dir=target.parent))
            fd = os.open(path, _O_DIR)
        except FileNotFoundError:  # another writer's cleanup took it before we could lock it
            continue
        except OSError as exc:
            raise ArtifactError(f"cannot create a staging directory beside {target}: {exc}") from exc
        # ... or takes it between the open and the lock: then the lock fails or the path is gone.
        try:
            if _try_lock(fd) and os.stat(path).st_ino == os.fstat(fd).st_ino:
                stage = Staging(path, fd)
                break
        except OSError:
            pass  # another writer's cleanup took this fresh name: try the next one
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
        for _ in range(RETRIES):
            if os.path.lexists(target):
                if _exchange(stage.path, target):
                    displaced = stage.path  # the staging name now holds the old artifact
                    break
                # No atomic swap here: move the old one aside, then rename (a short gap).
                aside = Path(tempfile.mkdtemp(prefix=staging_prefix(target), dir=target.parent)) / "old"
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
