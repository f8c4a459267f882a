"""The artifact store, second round (issue 17): what ``publish`` displaces and when it deletes it,
the two-rename path (names, a target that vanishes, retries), the unlocked-leftover age rule,
staging retries and every message in full.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

import mml
from mml.io import _store as st


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


def _put(target: Path, name: str) -> None:
    with st.staging(target) as stage:
        (stage.path / name).write_text(name)
        st.publish(stage, target)


def test_publish_deletes_the_displaced_artifact_itself(tmp_path: Path) -> None:
    target = tmp_path / "art"
    _put(target, "one")
    with st.staging(target) as stage:
        (stage.path / "two").write_text("2")
        st.publish(stage, target)
        # still inside the writer's context: the old artifact (swapped to the staging name) is gone
        assert not os.path.lexists(stage.path)
        assert os.listdir(tmp_path) == ["art"] and os.listdir(target) == ["two"]


def test_the_two_rename_path_moves_the_old_artifact_aside_under_a_staging_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "art"
    _put(target, "one")
    monkeypatch.setattr(st, "_exchange", lambda a, b: False)
    seen: list[Any] = []
    real = st._rmtree

    def record(path: Path) -> None:
        if path.exists():
            seen.append((path.parent, path.name, sorted(os.listdir(path)), sorted(os.listdir(path / "old"))))
        real(path)

    monkeypatch.setattr(st, "_rmtree", record)
    with st.staging(target) as stage:
        (stage.path / "two").write_text("2")
        st.publish(stage, target)
        assert os.listdir(target) == ["two"]
    assert len(seen) == 1
    parent, name, inside, old = seen[0]
    assert parent == tmp_path and name.startswith(".art.mml-tmp-") and st._STAGING_NAME.fullmatch(name)
    assert inside == ["old"] and old == ["one"]
    assert os.listdir(tmp_path) == ["art"]


def test_a_target_that_vanishes_before_the_move_aside_is_simply_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "art"
    _put(target, "one")
    calls: list[int] = []

    def no_swap_and_a_concurrent_delete(a: Path, b: Path) -> bool:
        calls.append(1)
        st._rmtree(b)  # another process removed the target between lexists and the rename
        return False

    monkeypatch.setattr(st, "_exchange", no_swap_and_a_concurrent_delete)
    with st.staging(target) as stage:
        (stage.path / "two").write_text("2")
        st.publish(stage, target)
    assert calls == [1]
    assert os.listdir(tmp_path) == ["art"] and os.listdir(target) == ["two"]  # the aside dir is removed too


def test_other_writers_that_keep_replacing_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "art"
    renames: list[int] = []
    real_rename = os.rename

    def always_taken(src: Any, dst: Any) -> None:
        renames.append(1)
        raise OSError(errno.ENOTEMPTY, "Directory not empty")

    with st.staging(target) as stage:
        monkeypatch.setattr(st.os, "rename", always_taken)
        msg = _raises(mml.ArtifactError, st.publish, stage, target)
        monkeypatch.setattr(st.os, "rename", real_rename)
    assert msg == f"could not replace {target}: other writers kept replacing it; save again"
    assert len(renames) == st.RETRIES == 50


def test_another_writer_publishes_in_between_then_ours_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "art"
    real_rename = os.rename
    first = [True]

    def racing(src: Any, dst: Any) -> None:
        if first[0] and Path(dst) == target:
            first[0] = False
            _put_raw(target)
            raise OSError(errno.ENOTEMPTY, "Directory not empty")
        real_rename(src, dst)

    def _put_raw(t: Path) -> None:
        t.mkdir()
        (t / "theirs").write_text("")

    with st.staging(target) as stage:
        (stage.path / "ours").write_text("")
        monkeypatch.setattr(st.os, "rename", racing)
        st.publish(stage, target)
        monkeypatch.setattr(st.os, "rename", real_rename)
    assert os.listdir(target) == ["ours"] and os.listdir(tmp_path) == ["art"]


def test_move_errors_name_the_target(tmp_path: Path) -> None:
    target = tmp_path / "art"
    with st.staging(target) as stage:
        os.rmdir(stage.path)  # nothing to move
        msg = _raises(mml.ArtifactError, st.publish, stage, target)
    assert msg == (
        f"could not move the new artifact into place at {target}: "
        f"[Errno 2] No such file or directory: '{stage.path}' -> '{target}'"
    )
    with st.staging(target) as stage:
        os.rmdir(stage.path)
        msg = _raises(mml.ArtifactError, st.publish, stage, target, overwrite=False)  # not "exists"
    assert msg == (
        f"could not move the new artifact into place at {target}: "
        f"[Errno 2] No such file or directory: '{stage.path}' -> '{target}'"
    )


def test_overwrite_false_over_a_directory_and_a_file(tmp_path: Path) -> None:
    full, file = tmp_path / "full", tmp_path / "file"
    full.mkdir()
    (full / "x").write_text("")
    file.write_text("")
    for target in (full, file):
        with st.staging(target) as stage:
            assert _raises(mml.ArtifactError, st.publish, stage, target, overwrite=False) == (
                f"{target} exists; pass overwrite=True or choose another path"
            )
    assert os.listdir(full) == ["x"] and file.read_text() == ""


def test_rmtree_of_a_file_that_another_process_removed_first(tmp_path: Path) -> None:
    class Racing(type(tmp_path)):  # type: ignore[misc]
        def is_file(self) -> bool:  # the file was there when checked, gone when unlinked
            return True

    st._rmtree(Racing(tmp_path / "gone"))  # no error: missing is fine


def test_unlocked_leftovers_are_removed_only_when_older_than_an_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``flock`` (``_fcntl is None``) the age rule decides, strictly older than 3600 s."""
    now = 2_000_000_000
    monkeypatch.setattr(st, "_fcntl", None)
    monkeypatch.setattr(st.time, "time", lambda: float(now))
    ages = {".a.mml-tmp-old": 3601, ".b.mml-tmp-edge": 3600, ".c.mml-tmp-new": 10, ".d.mml-tmp-old2": 7200}
    for name, age in ages.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("")
        os.utime(tmp_path / name, ns=((now - age) * 10**9, (now - age) * 10**9))
    (tmp_path / "other").mkdir()
    os.utime(tmp_path / "other", ns=(0, 0))
    removed = st.remove_leftovers(tmp_path / "x")
    assert sorted(p.name for p in removed) == [".a.mml-tmp-old", ".d.mml-tmp-old2"]
    assert sorted(os.listdir(tmp_path)) == [".b.mml-tmp-edge", ".c.mml-tmp-new", "other"]
    assert st._LEFTOVER_AGE_S == 3600.0


def test_leftovers_of_a_missing_parent_and_a_vanishing_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert st.remove_leftovers(tmp_path / "none" / "x") == []
    (tmp_path / ".a.mml-tmp-1").mkdir()
    (tmp_path / ".b.mml-tmp-2").mkdir()
    monkeypatch.setattr(st, "_fcntl", None)
    real_lstat = Path.lstat

    def lstat(self: Path) -> Any:
        if self.name == ".a.mml-tmp-1":
            raise FileNotFoundError(self)
        return real_lstat(self)

    monkeypatch.setattr(Path, "lstat", lstat)
    monkeypatch.setattr(st.time, "time", lambda: 1e12)
    assert [p.name for p in st.remove_leftovers(tmp_path / "x")] == [".b.mml-tmp-2"]
    assert os.listdir(tmp_path) == [".a.mml-tmp-1"]


def test_a_leftover_replaced_between_open_and_lock_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = tmp_path / ".a.mml-tmp-1"
    dead.mkdir()
    real = st._try_lock

    def swap_then_lock(fd: int) -> bool:
        os.rename(dead, tmp_path / "moved")  # another cleaner took it and a new writer made the name
        dead.mkdir()
        return real(fd)

    monkeypatch.setattr(st, "_try_lock", swap_then_lock)
    assert st.remove_leftovers(tmp_path / "x") == []
    assert sorted(os.listdir(tmp_path)) == [".a.mml-tmp-1", "moved"]


def test_staging_retries_when_a_cleaner_takes_the_fresh_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "art"
    real = st._try_lock
    n = [0]

    def cleaner_first(fd: int) -> bool:
        n[0] += 1
        if n[0] == 1:
            return False  # a cleaner holds it
        return real(fd)

    monkeypatch.setattr(st, "_try_lock", cleaner_first)
    with st.staging(target) as stage:
        assert stage.path.exists() and n == [2]
    monkeypatch.setattr(st, "_try_lock", lambda fd: False)
    assert _raises(mml.ArtifactError, st.staging(target).__enter__) == (
        f"could not create a staging directory beside {target}; is it being cleaned?"
    )


def test_staging_directory_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "art"

    def denied(**kw: Any) -> str:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(st.tempfile, "mkdtemp", denied)
    assert _raises(mml.ArtifactError, st.staging(target).__enter__) == (
        f"cannot create a staging directory beside {target}: [Errno 13] Permission denied"
    )
    calls = [0]

    def gone(**kw: Any) -> str:
        calls[0] += 1
        raise FileNotFoundError(errno.ENOENT, "gone")

    monkeypatch.setattr(st.tempfile, "mkdtemp", gone)
    assert _raises(mml.ArtifactError, st.staging(target).__enter__) == (
        f"could not create a staging directory beside {target}; is it being cleaned?"
    )
    assert calls == [50]


def test_staging_cleans_up_after_an_error_and_leaves_a_published_target(tmp_path: Path) -> None:
    target = tmp_path / "art"
    with pytest.raises(RuntimeError):
        with st.staging(target) as stage:
            (stage.path / "f").write_text("")
            raise RuntimeError("writer failed")
    assert os.listdir(tmp_path) == []
    with pytest.raises(OSError) as err:  # the descriptor (and with it the lock) is released
        os.fstat(stage.fd)
    assert err.value.errno == errno.EBADF


def test_hasher_names_the_algorithms_it_knows() -> None:
    assert _raises(mml.ArtifactError, st.hasher, "md5") == (
        "unknown hash algorithm 'md5'; this mml verifies blake3, sha256"
    )


def test_exchange_call_is_renameat2(tmp_path: Path) -> None:
    call = st._exchange_call()
    assert call is st._exchange_call()  # cached
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("A")
    b.write_text("B")
    assert call is not None and call(os.fsencode(a), os.fsencode(b)) == 0
    assert a.read_text() == "B" and b.read_text() == "A"
    assert call(os.fsencode(a), os.fsencode(tmp_path / "missing")) == -1


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV])
def test_exchange_falls_back_on_filesystems_that_cannot_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    monkeypatch.setattr(st, "_exchange_call", lambda: lambda a, b: -1)
    monkeypatch.setattr(st.ctypes, "get_errno", lambda: code)
    assert st._exchange(tmp_path / "a", tmp_path / "b") is False
    monkeypatch.setattr(st.ctypes, "get_errno", lambda: errno.EPERM)
    with pytest.raises(OSError) as err:
        st._exchange(tmp_path / "a", tmp_path / "b")
    assert (err.value.errno, err.value.filename) == (errno.EPERM, str(tmp_path / "b"))


def test_without_flock_staging_still_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(st, "_fcntl", None)
    assert st._try_lock(-1) is True  # nothing to lock with: every directory counts as ours
    _put(tmp_path / "art", "one")
    assert os.listdir(tmp_path / "art") == ["one"]


def test_unlocked_leftovers_go_on_after_one_vanishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (".a.mml-tmp-1", ".b.mml-tmp-2", ".c.mml-tmp-3"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(st, "_fcntl", None)
    monkeypatch.setattr(st.time, "time", lambda: 1e12)
    real_lstat = Path.lstat
    first: list[str] = []

    def lstat(self: Path) -> Any:
        if not first:  # whichever entry comes first in directory order
            first.append(self.name)
            raise FileNotFoundError(self)
        return real_lstat(self)

    monkeypatch.setattr(Path, "lstat", lstat)
    removed = st.remove_leftovers(tmp_path / "x")
    assert len(first) == 1 and sorted(p.name for p in removed) == sorted(
        {".a.mml-tmp-1", ".b.mml-tmp-2", ".c.mml-tmp-3"} - set(first)
    )
    assert os.listdir(tmp_path) == first


def test_a_leftover_replaced_by_a_link_to_itself_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = tmp_path / ".a.mml-tmp-1"
    dead.mkdir()
    real = st._try_lock

    def relink_then_lock(fd: int) -> bool:
        os.rename(dead, tmp_path / "moved")
        dead.symlink_to(tmp_path / "moved")  # same directory behind a link: not the entry we opened
        return real(fd)

    monkeypatch.setattr(st, "_try_lock", relink_then_lock)
    assert st.remove_leftovers(tmp_path / "x") == []
    assert dead.is_symlink() and sorted(os.listdir(tmp_path)) == [".a.mml-tmp-1", "moved"]


def test_blake3_threads_from_one_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    import blake3

    made: list[int] = []
    real = blake3.blake3

    def recording(*, max_threads: int) -> Any:
        made.append(max_threads)
        return real(max_threads=max_threads)

    monkeypatch.setattr(blake3, "blake3", recording)
    monkeypatch.setattr(st, "_cores", lambda: 7)
    for size in (0, (1 << 20) - 1, 1 << 20, 1 << 30):
        st.hasher("blake3", size)
    st.hasher("blake3")
    assert made == [1, 1, 7, 7, 1]
    made.clear()  # digest_bytes and HashingSink pass the size on
    assert st.digest_bytes(b"x" * (1 << 20)) == real(b"x" * (1 << 20)).hexdigest()
    assert st.digest_bytes(b"x") == real(b"x").hexdigest()
    assert made == [7, 1]
    made.clear()
    for hint in ((1 << 20) - 1, 1 << 20):
        with st.HashingSink(os.open(os.devnull, os.O_WRONLY), size_hint=hint):
            pass
    with st.HashingSink(os.open(os.devnull, os.O_WRONLY)):  # default hint: 1 MiB
        pass
    assert made == [1, 7, 7]


def test_hashing_sink_hands_chunks_from_one_mib_to_its_thread(tmp_path: Path) -> None:
    submitted: list[int] = []
    with st.HashingSink(os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT), alg="sha256") as sink:
        real = sink._pool.submit

        def recording(fn: Any, view: memoryview) -> Any:
            submitted.append(len(view))
            return real(fn, view)

        sink._pool.submit = recording  # type: ignore[method-assign]
        for n in (10, (1 << 20) - 1, 1 << 20, (1 << 20) + 1):
            sink.write(b"x" * n)
    assert submitted == [1 << 20, (1 << 20) + 1]
    import hashlib

    total = 10 + (1 << 20) - 1 + (1 << 20) + (1 << 20) + 1
    assert sink.hexdigest() == hashlib.sha256(b"x" * total).hexdigest()


def test_cores_fallback_without_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_affinity(pid: int) -> Any:
        raise AttributeError("sched_getaffinity")

    monkeypatch.setattr(st.os, "sched_getaffinity", no_affinity)
    monkeypatch.setattr(st.os, "cpu_count", lambda: None)
    assert st._cores() == 1
    monkeypatch.setattr(st.os, "cpu_count", lambda: 1)
    assert st._cores() == 1
    monkeypatch.setattr(st.os, "cpu_count", lambda: 6)
    assert st._cores() == 6
    monkeypatch.setattr(st.os, "sched_getaffinity", lambda pid: {3})  # pinned to one core
    assert st._cores() == 1


def test_exchange_without_a_platform_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(st, "_exchange_call", lambda: None)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert st._exchange(tmp_path / "a", tmp_path / "b") is False


def test_hashing_sink_uses_one_hashing_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Any] = []
    real = st.ThreadPoolExecutor

    def pool(**kw: Any) -> Any:
        made.append(kw)
        return real(**kw)

    monkeypatch.setattr(st, "ThreadPoolExecutor", pool)
    with st.HashingSink(os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)) as sink:
        sink.write(b"x" * (1 << 20))
    assert made == [{"max_workers": 1}]
