"""The artifact store pinned value by value (issue 17): hashing, staging, locks, swaps, leftovers.

Digests are compared with ``blake3``/``hashlib`` directly; directory states are listed with
``os.listdir``; locks are probed with ``fcntl.flock`` on a second descriptor.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from pathlib import Path

import blake3
import pytest

import mml
from mml.io import _store as st


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


def _locked(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def test_constants() -> None:
    assert st.HASH == "blake3" and st.HASHES == ("blake3", "sha256")
    assert st._PARALLEL_FROM == 1 << 20 and st.RETRIES == 50


def test_hashing_sink_small_and_large_writes(tmp_path: Path) -> None:
    small, large = b"abc" * 10, bytes(range(256)) * 4096 * 2  # 2 MiB: hashed on the pool
    p = tmp_path / "f"
    with st.HashingSink(os.open(p, os.O_WRONLY | os.O_CREAT), size_hint=len(large)) as sink:
        assert sink.write(small) == 30
        assert sink.write(memoryview(large)) == len(large)
        assert sink.flush() is None
        assert (
            _raises(mml.ArtifactError, sink.hexdigest)
            == "HashingSink.hexdigest() is known only after close()"
        )
    assert sink.closed
    sink.close()  # twice is fine
    assert p.read_bytes() == small + large
    assert sink.hexdigest() == blake3.blake3(small + large).hexdigest()
    q = tmp_path / "g"
    with st.HashingSink(os.open(q, os.O_WRONLY | os.O_CREAT), alg="sha256") as sink2:
        sink2.write(b"xyz")
    assert sink2.hexdigest() == hashlib.sha256(b"xyz").hexdigest() and q.read_bytes() == b"xyz"


def test_staging_names_and_the_lock(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "run"
    with st.staging(target) as stage:
        assert stage.path.parent == tmp_path / "sub"
        assert stage.path.name.startswith(".run.mml-tmp-")
        assert st._STAGING_NAME.fullmatch(stage.path.name)
        assert _locked(stage.path)
        assert st.remove_leftovers(target) == []  # a live writer's directory is kept
        assert stage.path.exists()
        kept = stage.path
    assert not kept.exists() and os.listdir(tmp_path / "sub") == []


def test_staging_cannot_create_the_parent(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "run"
    msg = _raises(mml.ArtifactError, st.staging(target).__enter__)
    assert msg.startswith(f"cannot create the directory {tmp_path / 'file'} to save {target}: ")


def test_remove_leftovers_removes_only_unlocked_staging_dirs(tmp_path: Path) -> None:
    dead = tmp_path / ".a.mml-tmp-x1"
    dead.mkdir()
    (dead / "inner").mkdir()
    (dead / "inner" / "f").write_text("x")
    (tmp_path / ".b.mml-tmp-y2").mkdir()
    (tmp_path / ".c.mml-tmp-z3").symlink_to(tmp_path / "elsewhere")  # a link: not opened, left alone
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".d.mml-tmp-").mkdir()
    (tmp_path / ".e.mml-tmp-bad!").mkdir()
    removed = st.remove_leftovers(tmp_path / "anything")
    assert sorted(p.name for p in removed) == [".a.mml-tmp-x1", ".b.mml-tmp-y2"]
    assert all(p.parent == tmp_path for p in removed)
    assert sorted(os.listdir(tmp_path)) == [".c.mml-tmp-z3", ".d.mml-tmp-", ".e.mml-tmp-bad!", "elsewhere"]


def test_rmtree_removes_links_and_files_not_their_targets(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "keep").write_text("k")
    link = tmp_path / "link"
    link.symlink_to(d)
    st._rmtree(link)
    assert not os.path.lexists(link) and (d / "keep").read_text() == "k"
    f = tmp_path / "f"
    f.write_text("")
    st._rmtree(f)
    assert not f.exists()
    st._rmtree(d)
    assert not d.exists()
    st._rmtree(tmp_path / "missing")  # nothing there: no error


def test_exchange_swaps_and_reports_other_errors(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "fa").write_text("")
    (b / "fb").write_text("")
    assert st._exchange(a, b) is True
    assert os.listdir(a) == ["fb"] and os.listdir(b) == ["fa"]
    assert st._cores() == len(os.sched_getaffinity(0))
    (a / "sub").mkdir()
    assert st._exchange(a, a / "sub") is False  # EINVAL (a directory into itself): no swap here
    with pytest.raises(OSError) as err:
        st._exchange(a, tmp_path / "missing")
    assert err.value.errno == errno.ENOENT
    assert err.value.strerror == os.strerror(errno.ENOENT)
    assert err.value.filename == str(tmp_path / "missing")


def test_publish_replaces_and_removes_what_it_displaced(tmp_path: Path) -> None:
    target = tmp_path / "art"
    with st.staging(target) as stage:
        (stage.path / "one").write_text("1")
        st.publish(stage, target)
    assert os.listdir(tmp_path) == ["art"] and os.listdir(target) == ["one"]
    with st.staging(target) as stage:
        (stage.path / "two").write_text("2")
        st.publish(stage, target)
    assert os.listdir(tmp_path) == ["art"] and os.listdir(target) == ["two"]
    with st.staging(target) as stage:
        (stage.path / "three").write_text("3")
        assert _raises(mml.ArtifactError, st.publish, stage, target, overwrite=False) == (
            f"{target} exists; pass overwrite=True or choose another path"
        )
    assert os.listdir(tmp_path) == ["art"] and os.listdir(target) == ["two"]
    new = tmp_path / "new"
    with st.staging(new) as stage:
        (stage.path / "n").write_text("")
        st.publish(stage, new, overwrite=False)
    assert sorted(os.listdir(tmp_path)) == ["art", "new"] and os.listdir(new) == ["n"]


def test_publish_without_an_atomic_swap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "art"
    mml.save(mml.random.key(1), target)
    monkeypatch.setattr(st, "_exchange", lambda a, b: False)
    mml.save(mml.random.key(2), target)
    assert os.listdir(tmp_path) == ["art"] and mml.load(target) == mml.random.key(2)


def test_publish_over_a_file_with_overwrite_false(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("")
    with st.staging(target) as stage:
        assert _raises(mml.ArtifactError, st.publish, stage, target, overwrite=False) == (
            f"{target} exists; pass overwrite=True or choose another path"
        )
