"""Reading an artifact directory once (``mml.io._snapshot``) pinned value by value (issue 17).

``read_snapshot`` is called directly with a plain JSON ``parse_manifest``, so every byte, digest
(against ``blake3``/``hashlib``), entry kind and message is checked without the artifact layer;
a directory replaced mid-read is made by the ``check_tree`` hook (which runs between the listing
and the reads) or by wrapping ``_open_in``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import blake3
import pytest

import mml
from mml.io import _snapshot as snap


def _raises(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(mml.ArtifactError) as err:
        fn(*args, **kwargs)
    return str(err.value)


def _parse(raw: bytes, root: Path) -> dict[str, Any]:
    return json.loads(raw)  # type: ignore[no-any-return]


def _art(root: Path, files: dict[str, bytes], **manifest: Any) -> Path:
    root.mkdir(parents=True)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    m = {"files": {rel: "" for rel in files}, **manifest}
    (root / "manifest.json").write_text(json.dumps(m))
    return root


def _name(fd: int) -> str:
    return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))


class _Os:
    """``os`` with some functions replaced (``monkeypatch`` of the module's ``os`` only)."""

    def __init__(self, **override: Any) -> None:
        self._override = override

    def __getattr__(self, name: str) -> Any:
        return self._override.get(name, getattr(os, name))


def test_constants() -> None:
    assert snap._CHUNK == 8 << 20
    assert snap._O_DIR == os.O_RDONLY | os.O_DIRECTORY and snap._O_NOFOLLOW == os.O_NOFOLLOW
    assert snap._DIR_FD is True
    assert snap.__all__ == ["Snapshot", "read_snapshot"]


def test_a_snapshot_holds_bytes_digests_and_every_entry(tmp_path: Path) -> None:
    files = {"config.json": b'{"a": 1}', "tables/t0.arrow": b"\x00" * 5, "x/y/z.bin": b"zz"}
    root = _art(tmp_path / "a", files, hash="blake3", sizes={k: len(v) for k, v in files.items()})
    (root / "link").symlink_to(root / "config.json")
    os.mkfifo(root / "fifo")
    seen: list[Any] = []

    def check(found: dict[str, str], manifest: dict[str, Any], r: Path) -> None:
        seen.append((dict(found), manifest, r))

    s = snap.read_snapshot(root, _parse, check)
    assert isinstance(s, snap.Snapshot) and s.root == root
    assert s.manifest == json.loads((root / "manifest.json").read_bytes())
    assert {k: v.to_pybytes() for k, v in s.files.items()} == files
    assert s.digests == {k: blake3.blake3(v).hexdigest() for k, v in files.items()}
    assert s.found == {
        "config.json": "file",
        "fifo": "other",
        "link": "symlink",
        "manifest.json": "file",
        "tables": "dir",
        "tables/t0.arrow": "file",
        "x": "dir",
        "x/y": "dir",
        "x/y/z.bin": "file",
    }
    assert seen == [(s.found, s.manifest, root)]


def test_without_a_hash_field_the_digests_are_sha256(tmp_path: Path) -> None:
    root = _art(tmp_path / "a", {"f": b"abc"})
    s = snap.read_snapshot(root, _parse)
    assert s.digests == {"f": hashlib.sha256(b"abc").hexdigest()}
    root2 = _art(tmp_path / "b", {"f": b"abc"}, hash="sha256", sizes=None)
    assert snap.read_snapshot(root2, _parse).digests == {"f": hashlib.sha256(b"abc").hexdigest()}


def test_parse_manifest_gets_the_bytes_and_the_root(tmp_path: Path) -> None:
    root = _art(tmp_path / "a", {})
    calls: list[Any] = []

    def parse(raw: bytes, r: Path) -> dict[str, Any]:
        calls.append((raw, r))
        return {"files": {}}

    s = snap.read_snapshot(root, parse)
    assert calls == [((root / "manifest.json").read_bytes(), root)]
    assert type(calls[0][0]) is bytes
    assert s.files == {} and s.digests == {} and s.found == {"manifest.json": "file"}


@pytest.mark.parametrize("alg", ["blake3", "sha256"])
def test_large_files_are_hashed_whole_across_chunks(tmp_path: Path, alg: str) -> None:
    data = bytes(range(251)) * ((2 * snap._CHUNK) // 251 + 7)  # > 2 chunks, not a multiple
    small = b"s" * 1000
    root = _art(tmp_path / "a", {"big": data, "small": small}, hash=alg)
    s = snap.read_snapshot(root, _parse)
    ref = blake3.blake3 if alg == "blake3" else hashlib.sha256
    assert s.digests == {"big": ref(data).hexdigest(), "small": ref(small).hexdigest()}
    assert s.files["big"].to_pybytes() == data and s.files["small"].size == 1000


def test_read_file_without_an_algorithm_has_no_digest(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    dfd = os.open(tmp_path, snap._O_DIR)
    try:
        buf, digest = snap._read_file(dfd, "f", tmp_path, None)
        assert buf.to_pybytes() == b"hello" and digest == ""
        buf, digest = snap._read_file(dfd, "f", tmp_path, "sha256", 5)
        assert digest == hashlib.sha256(b"hello").hexdigest()
        (tmp_path / "e").write_bytes(b"")
        buf, digest = snap._read_file(dfd, "e", tmp_path, "blake3", 0)
        assert buf.size == 0 and digest == blake3.blake3(b"").hexdigest()
    finally:
        os.close(dfd)


def test_a_file_of_another_size_than_the_manifest_says(tmp_path: Path) -> None:
    root = _art(tmp_path / "a", {"f": b"abc"}, hash="blake3", sizes={"f": 4})
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"{root / 'f'} has 3 bytes, the manifest says 4: the file is corrupted or was modified"
    )
    root2 = _art(tmp_path / "b", {"f": b"abc"}, hash="blake3", sizes={"f": 2})
    assert _raises(snap.read_snapshot, root2, _parse) == (
        f"{root2 / 'f'} has 3 bytes, the manifest says 2: the file is corrupted or was modified"
    )
    root3 = _art(tmp_path / "c", {"f": b"abc", "g": b""}, hash="blake3", sizes={"g": 0})
    assert snap.read_snapshot(root3, _parse).files["f"].to_pybytes() == b"abc"  # unlisted size: not checked


@pytest.mark.parametrize("reported", [2, 4])
def test_a_file_that_changes_size_while_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reported: int
) -> None:
    root = _art(tmp_path / "a", {"f": b"abc"}, hash="sha256")

    class Stat:
        st_size = reported

    real_fstat = os.fstat
    monkeypatch.setattr(snap, "os", _Os(fstat=lambda fd: Stat if _name(fd) == "f" else real_fstat(fd)))
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"{root / 'f'} changed size while being read; the artifact is being modified"
    )


def test_links_and_non_files_are_refused(tmp_path: Path) -> None:
    root = _art(tmp_path / "a", {"real": b"r", "d/x": b"x"})
    (root / "link").symlink_to(root / "real")
    (root / "dlink").symlink_to(root / "d")
    (root / "plain").write_bytes(b"p")
    m = {"files": {"link": ""}}
    (root / "manifest.json").write_text(json.dumps(m))
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"{root / 'link'} is a symlink; an artifact holds only regular files"
    )
    # a link on the way (O_DIRECTORY | O_NOFOLLOW on a link is ENOTDIR on Linux)
    (root / "manifest.json").write_text(json.dumps({"files": {"dlink/x": ""}}))
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"{root / 'dlink/x'} is not a regular file; the artifact is corrupted"
    )
    (root / "manifest.json").write_text(json.dumps({"files": {"plain/x": ""}}))
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"{root / 'plain/x'} is not a regular file; the artifact is corrupted"
    )
    (root / "manifest.json").write_text(json.dumps({"files": {"d": ""}}))
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"{root / 'd'} cannot be read: [Errno {errno.EISDIR}] {os.strerror(errno.EISDIR)}"
    )


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.ELOOP, "{p} is a symlink; an artifact holds only regular files"),
        (errno.ENOTDIR, "{p} is not a regular file; the artifact is corrupted"),
        (errno.EISDIR, "{p} is not a regular file; the artifact is corrupted"),
        (errno.EACCES, "{p} cannot be read: [Errno 13] denied"),
        (errno.ESTALE, "{p} is listed in the manifest but missing; the artifact is incomplete"),
    ],
)
def test_open_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, message: str) -> None:
    root = _art(tmp_path / "a", {"f": b"abc"})
    real = snap._open_in

    def failing(dfd: Any, rel: str, flags: int) -> int:
        if rel == "f":
            raise OSError(code, "denied")
        return real(dfd, rel, flags)

    monkeypatch.setattr(snap, "_open_in", failing)
    assert _raises(snap.read_snapshot, root, _parse) == message.format(p=root / "f")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.EIO, "{p} cannot be read: [Errno 5] broken"),
        (errno.ESTALE, "{p} is listed in the manifest but missing; the artifact is incomplete"),
    ],
)
def test_read_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, message: str) -> None:
    root = _art(tmp_path / "a", {"f": b"abc"})

    def readv(fd: int, bufs: Any) -> int:
        if _name(fd) == "f":
            raise OSError(code, "broken")
        return os.readv(fd, bufs)

    monkeypatch.setattr(snap, "os", _Os(readv=readv))
    assert _raises(snap.read_snapshot, root, _parse) == message.format(p=root / "f")


def test_missing_root_manifest_and_listed_files(tmp_path: Path) -> None:
    assert _raises(snap.read_snapshot, tmp_path / "none", _parse) == (
        f"{tmp_path / 'none'} is not an mml artifact directory (it does not exist)"
    )
    (tmp_path / "file").write_text("")
    assert _raises(snap.read_snapshot, tmp_path / "file", _parse) == (
        f"{tmp_path / 'file'} is not an mml artifact directory (it is a file)"
    )
    (tmp_path / "empty").mkdir()
    assert _raises(snap.read_snapshot, tmp_path / "empty", _parse) == (
        f"{tmp_path / 'empty' / 'manifest.json'} is missing: {tmp_path / 'empty'} is not a complete mml "
        "artifact (an interrupted save, or not saved by mml)"
    )
    root = _art(tmp_path / "a", {"f": b"abc", "g": b""})
    (root / "g").unlink()
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"{root / 'g'} is listed in the manifest but missing; the artifact is incomplete"
    )


def test_a_root_that_cannot_be_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bad_open(*a: Any, **k: Any) -> int:
        raise OSError(errno.EACCES, "no")

    monkeypatch.setattr(snap, "os", _Os(open=bad_open))
    assert _raises(snap.read_snapshot, tmp_path, _parse) == f"{tmp_path} cannot be opened: [Errno 13] no"


def test_directory_depth_limit(tmp_path: Path) -> None:
    root = _art(tmp_path / "a", {})
    (root / "/".join(["d"] * 32)).mkdir(parents=True)
    s = snap.read_snapshot(root, _parse)
    assert s.found["/".join(["d"] * 32)] == "dir" and len(s.found) == 33
    (root / "/".join(["d"] * 33)).mkdir()
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"the artifact nests directories deeper than 32 at {'d/' * 33!r}"
    )


def test_listing_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _art(tmp_path / "a", {"sub/f": b""})
    real_scandir, real_open = os.scandir, os.open

    def scandir(fd: Any) -> Any:
        raise OSError(errno.EIO, "io")

    monkeypatch.setattr(snap, "os", _Os(scandir=scandir))
    assert (
        _raises(snap.read_snapshot, root, _parse)
        == "the artifact directory '.' cannot be listed: [Errno 5] io"
    )

    def sub_scandir(fd: Any) -> Any:
        if _name(fd) == "sub":
            raise OSError(errno.EIO, "io")
        return real_scandir(fd)

    monkeypatch.setattr(snap, "os", _Os(scandir=sub_scandir))
    assert (
        _raises(snap.read_snapshot, root, _parse)
        == "the artifact directory 'sub/' cannot be listed: [Errno 5] io"
    )

    def sub_open(path: Any, flags: int, *a: Any, **k: Any) -> int:
        if path == "sub":
            raise OSError(errno.EACCES, "no")
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(snap, "os", _Os(open=sub_open))
    assert (
        _raises(snap.read_snapshot, root, _parse)
        == "the artifact directory 'sub' cannot be opened: [Errno 13] no"
    )


@pytest.mark.parametrize("code", [errno.ENOENT, errno.ESTALE])
def test_a_listing_that_vanishes_is_an_incomplete_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    root = _art(tmp_path / "a", {"sub/f": b""})
    real_open = os.open

    def sub_open(path: Any, flags: int, *a: Any, **k: Any) -> int:
        if path == "sub":
            raise OSError(code, "gone")
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(snap, "os", _Os(open=sub_open))
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"{root / 'sub'} is listed in the manifest but missing; the artifact is incomplete"
    )

    def scandir(fd: Any) -> Any:
        raise OSError(code, "gone")

    monkeypatch.setattr(snap, "os", _Os(scandir=scandir))
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"{root / ''} is listed in the manifest but missing; the artifact is incomplete"
    )


def _swap_in(root: Path, files: dict[str, bytes], n: list[int]) -> None:
    """Replace ``root`` by a new artifact the way a newer save does (the old one is kept open)."""
    n[0] += 1
    old = root.with_name(f"old{n[0]}")
    os.rename(root, old)
    _art(root, files)


def test_a_directory_replaced_during_the_reads_is_read_again(tmp_path: Path) -> None:
    root = _art(tmp_path / "a", {"f": b"old"})
    n = [0]
    parsed: list[bytes] = []

    def parse(raw: bytes, r: Path) -> dict[str, Any]:
        parsed.append(raw)
        return json.loads(raw)  # type: ignore[no-any-return]

    def check(found: dict[str, str], manifest: dict[str, Any], r: Path) -> None:
        if n[0] == 0:
            _swap_in(root, {"f": b"new!"}, n)
            (tmp_path / "old1" / "f").unlink()  # the old save's files are gone

    s = snap.read_snapshot(root, parse, check)
    assert s.files["f"].to_pybytes() == b"new!" and len(parsed) == 2


def test_a_directory_replaced_before_the_manifest_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _art(tmp_path / "a", {"f": b"old"})
    real = snap._open_in
    n = [0]

    def swapping(dfd: Any, rel: str, flags: int) -> int:
        if rel == "manifest.json" and n[0] == 0:
            _swap_in(root, {"f": b"new!"}, n)
            (tmp_path / "old1" / "manifest.json").unlink()
        return real(dfd, rel, flags)

    monkeypatch.setattr(snap, "_open_in", swapping)
    assert snap.read_snapshot(root, _parse).files["f"].to_pybytes() == b"new!"
    assert n == [1]


def test_a_directory_replaced_every_time_gives_up_after_retries(tmp_path: Path) -> None:
    root = _art(tmp_path / "a", {"f": b"x"})
    n = [0]

    def check(found: dict[str, str], manifest: dict[str, Any], r: Path) -> None:
        _swap_in(root, {"f": b"x"}, n)
        (tmp_path / f"old{n[0]}" / "f").unlink()

    assert _raises(snap.read_snapshot, root, _parse, check) == (
        f"{root} was replaced 50 times while being read; load it again"
    )
    assert n == [50] and snap.RETRIES == 50


def test_a_root_that_is_being_saved_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "a"
    stage = tmp_path / ".a.mml-tmp-abc123"
    stage.mkdir()
    assert snap._saving(root) is True
    assert snap._saving(tmp_path / "b") is False
    assert snap._saving(tmp_path / "none" / "a") is False  # no parent: not saving
    slept: list[float] = []
    monkeypatch.setattr(snap.time, "sleep", slept.append)
    assert (
        _raises(snap.read_snapshot, root, _parse)
        == f"{root} was replaced 50 times while being read; load it again"
    )
    assert slept == [0.001] * 50

    def publish(_: float) -> None:  # the save finishes while the reader waits
        slept.append(0.0)
        if not root.exists():
            shutil.rmtree(stage)
            _art(root, {"f": b"done"})

    slept.clear()
    monkeypatch.setattr(snap.time, "sleep", publish)
    assert snap.read_snapshot(root, _parse).files["f"].to_pybytes() == b"done" and slept == [0.0]


def test_same_dir(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fd = os.open(tmp_path / "a", snap._O_DIR)
    try:
        assert snap._same_dir(tmp_path / "a", fd) is True
        assert snap._same_dir(tmp_path / "b", fd) is False
        assert snap._same_dir(tmp_path / "none", fd) is False
    finally:
        os.close(fd)


def test_open_in_refuses_links_at_any_depth(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f").write_bytes(b"deep")
    (tmp_path / "dl").symlink_to(tmp_path / "d")
    (tmp_path / "d" / "el").symlink_to(tmp_path / "d" / "e")
    dfd = os.open(tmp_path, snap._O_DIR)
    try:
        fd = snap._open_in(dfd, "d/e/f", os.O_RDONLY)
        assert os.read(fd, 10) == b"deep"
        os.close(fd)
        (tmp_path / "d" / "e" / "fl").symlink_to(tmp_path / "d" / "e" / "f")
        for rel, code in (("dl/e/f", errno.ENOTDIR), ("d/el/f", errno.ENOTDIR), ("d/e/fl", errno.ELOOP)):
            with pytest.raises(OSError) as err:
                snap._open_in(dfd, rel, os.O_RDONLY)
            assert err.value.errno == code
        before = len(os.listdir("/proc/self/fd"))
        with pytest.raises(FileNotFoundError):
            snap._open_in(dfd, "d/e/missing", os.O_RDONLY)
        assert len(os.listdir("/proc/self/fd")) == before  # the intermediate directories are closed
    finally:
        os.close(dfd)


def test_saving_closes_its_listing_when_it_stops_early(tmp_path: Path) -> None:
    """Regression (issue 17): ``any()`` stopped at the first staging name and left the
    ``os.scandir`` iterator open (a ResourceWarning, an error under this suite's settings)."""
    import gc
    import warnings

    for i in range(3):
        (tmp_path / f".a.mml-tmp-{i}").mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert snap._saving(tmp_path / "a") is True
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_directory_swapped_for_a_link_after_listing_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _art(tmp_path / "a", {"sub/f": b""})
    (tmp_path / "elsewhere").mkdir()
    real_scandir = os.scandir

    def listed_then_swapped(fd: Any) -> Any:
        entries = list(real_scandir(fd))  # the entries keep the type they were listed with
        if _name(fd) == "a" and (root / "sub").is_dir() and not (root / "sub").is_symlink():
            shutil.rmtree(root / "sub")
            (root / "sub").symlink_to(tmp_path / "elsewhere")
        return iter(entries)

    monkeypatch.setattr(snap, "os", _Os(scandir=listed_then_swapped))
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"the artifact directory 'sub' cannot be opened: [Errno {errno.ENOTDIR}] "
        f"{os.strerror(errno.ENOTDIR)}: 'sub'"
    )


def test_a_manifest_that_is_a_link_names_its_path(tmp_path: Path) -> None:
    root = _art(tmp_path / "a", {})
    os.replace(root / "manifest.json", tmp_path / "m.json")
    (root / "manifest.json").symlink_to(tmp_path / "m.json")
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"{root / 'manifest.json'} is a symlink; an artifact holds only regular files"
    )


def test_the_read_pipeline_one_read_per_chunk_and_a_hashing_thread_only_past_one_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = {"small": 3, "exact": snap._CHUNK, "over": snap._CHUNK + 1, "two": 2 * snap._CHUNK + 5}
    for name, n in sizes.items():
        (tmp_path / name).write_bytes(b"\x07" * n)
    pools: list[Any] = []
    hashers: list[Any] = []
    reads: dict[str, int] = {}
    real_pool, real_hasher = snap.ThreadPoolExecutor, snap.hasher

    submits: list[str] = []

    def pool(**kw: Any) -> Any:
        pools.append(kw)
        made = real_pool(**kw)
        real_submit = made.submit

        def submit(fn: Any, view: Any) -> Any:
            submits.append(len(view))
            return real_submit(fn, view)

        made.submit = submit  # type: ignore[method-assign]
        return made

    def hasher(alg: str, size: int = 0) -> Any:
        hashers.append((alg, size))
        return real_hasher(alg, size)

    def readv(fd: int, bufs: Any) -> int:
        reads[_name(fd)] = reads.get(_name(fd), 0) + 1
        return os.readv(fd, bufs)

    monkeypatch.setattr(snap, "ThreadPoolExecutor", pool)
    monkeypatch.setattr(snap, "hasher", hasher)
    monkeypatch.setattr(snap, "os", _Os(readv=readv))
    dfd = os.open(tmp_path, snap._O_DIR)
    try:
        for name, n in sizes.items():
            pools.clear()
            buf, digest = snap._read_file(dfd, name, tmp_path, "sha256")
            assert buf.size == n and digest == hashlib.sha256(b"\x07" * n).hexdigest()
            assert pools == ([{"max_workers": 1}] if n > snap._CHUNK else []), name
        pools.clear()
        snap._read_file(dfd, "two", tmp_path, None)  # nothing to hash: no thread
        assert pools == []
    finally:
        os.close(dfd)
    assert hashers == [("sha256", n) for n in sizes.values()]
    assert reads == {"small": 1, "exact": 1, "over": 2, "two": 3 + 3}
    # the chunks of the files past one chunk are hashed on the thread (while the next is read)
    assert submits == [snap._CHUNK, 1, snap._CHUNK, snap._CHUNK, 5]


def test_the_by_path_reader_of_platforms_without_dir_fds_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where ``open``/``scandir`` take no directory descriptor (Windows) files are opened by path;
    run here by switching ``_DIR_FD`` off, it must find the same bytes, digests and entries."""
    files = {"config.json": b'{"a": 1}', "tables/t0.arrow": b"\x00" * 5, "x/y/z.bin": b"zz"}
    root = _art(tmp_path / "a", files, hash="blake3", sizes={k: len(v) for k, v in files.items()})
    (root / "link").symlink_to(root / "config.json")
    with_fds = snap.read_snapshot(root, _parse)
    monkeypatch.setattr(snap, "_DIR_FD", False)
    by_path = snap.read_snapshot(root, _parse)
    assert {k: v.to_pybytes() for k, v in by_path.files.items()} == files
    assert by_path.digests == with_fds.digests == {k: blake3.blake3(v).hexdigest() for k, v in files.items()}
    assert (
        by_path.found == with_fds.found
        and by_path.found["x/y"] == "dir"
        and by_path.found["link"] == "symlink"
    )
    assert by_path.root == root and by_path.manifest == with_fds.manifest
    buf, digest = snap._read_file(str(root), "x/y/z.bin", root, "sha256", 2)
    assert buf.to_pybytes() == b"zz" and digest == hashlib.sha256(b"zz").hexdigest()
    assert snap._same_dir(tmp_path / "none", -1) is True  # no descriptor to compare: the path is it
    (tmp_path / "empty").mkdir()
    assert _raises(snap.read_snapshot, tmp_path / "empty", _parse) == (
        f"{tmp_path / 'empty' / 'manifest.json'} is missing: {tmp_path / 'empty'} is not a complete mml "
        "artifact (an interrupted save, or not saved by mml)"
    )
    (root / "/".join(["d"] * 33)).mkdir(parents=True)
    assert _raises(snap.read_snapshot, root, _parse) == (
        f"the artifact nests directories deeper than 32 at {'d/' * 33!r}"
    )
