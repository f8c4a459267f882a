"""Atomic overwrites, concurrent use and crash leftovers, attacked with real processes."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mml
from mml.io import _store
from mml.io._artifact import to_document
from tests.io._writer import values

ROOT = Path(__file__).resolve().parents[2]
WRITER = [sys.executable, str(Path(__file__).with_name("_writer.py"))]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*WRITER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV, cwd=ROOT
    )


def test_sigkill_during_overwrite_leaves_old_or_new_and_next_save_cleans(tmp_path):
    a, b = values()
    (tmp_path / "race").mkdir()
    path = tmp_path / "race" / "fs"
    mml.save(a, path)
    trials, with_leftovers, replaced = 24, 0, 0
    current = "a"
    proc = _start("kill", str(path), str(trials), "8", str(tmp_path / "warm"))
    try:
        for _ in range(trials):
            other = "b" if current == "a" else "a"
            proc.stdin.write(f"go {other}\n")  # the child saves the other value first
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "killed"
            got = mml.load(path)  # never an error, never a mix
            assert got == a or got == b
            now = "a" if got == a else "b"
            replaced += now != current
            current = now
            with_leftovers += bool(_leftovers(path))
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        proc.stdout.close()
    # Kills landed mid-save (a staging directory left behind) and after complete saves.
    assert with_leftovers > 0, (with_leftovers, replaced)
    mml.save(b, path)
    assert _leftovers(path) == []
    assert mml.load(path) == b


def test_reader_racing_a_writer_sees_whole_values(tmp_path):
    a, b = values()
    path = tmp_path / "fs"
    proc = _start("loop", str(path))
    seen = {"a": 0, "b": 0}
    try:
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(300):
            got = mml.load(path)
            if got == a:
                seen["a"] += 1
            else:
                assert got == b
                seen["b"] += 1
    finally:
        proc.stdin.close()
        out = proc.stdout.read()
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0
    saves = int(out.split()[-1])
    assert saves > 10 and seen["a"] > 0 and seen["b"] > 0, (saves, seen)
    assert _leftovers(path) == []


def test_two_processes_saving_to_one_path(tmp_path):
    a, b = values()
    path = tmp_path / "fs"
    procs = [_start("count", str(path), which, "60") for which in "ab"]
    outs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        outs.append(out)
        assert proc.returncode == 0, out  # no raw OSError / FileNotFoundError escaped
    assert outs == ["artifact_errors 0\n"] * 2  # every save of both writers succeeded
    got = mml.load(path)
    assert got == a or got == b
    assert _leftovers(path) == []


def test_a_process_forked_after_saving_can_save(tmp_path):
    # BLAKE3's global rayon pool would not survive fork: the child would hang in its first hash.
    out = subprocess.run(
        [*WRITER, "fork", str(tmp_path / "fs")], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=60
    )
    assert out.stdout.strip() == "child 0", out.stdout + out.stderr


# -- leftovers and replacement rules --------------------------------------------------------


def test_next_save_removes_dead_leftovers_and_keeps_live_writers(tmp_path):
    path = tmp_path / "k"
    dead = tmp_path / f"{_store.staging_prefix(path)}dead"
    (dead / "tables").mkdir(parents=True)
    (dead / "tables" / "t0.arrow").write_bytes(b"x" * 1000)
    live = tmp_path / f"{_store.staging_prefix(path)}live"
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a live writer holds its staging dir
        mml.save(mml.random.key(1), path)
        assert _leftovers(path) == [live.name]
    finally:
        os.close(fd)
    mml.save(mml.random.key(2), path)
    assert _leftovers(path) == [] and mml.load(path) == mml.random.key(2)


def test_a_save_cleans_dead_staging_of_other_artifacts_in_its_directory(tmp_path):
    # e.g. a run killed while writing checkpoint epoch-3; the next checkpoint is epoch-4
    crashed = tmp_path / f"{_store.staging_prefix(tmp_path / 'epoch-3')}k2x9_a1b"
    crashed.mkdir()
    (crashed / "config.json").write_text("{}")
    mine = tmp_path / ".notes.mml-tmp-keep1"  # not a directory: not mml's, left alone
    mine.write_text("mine")
    mml.save(mml.random.key(4), tmp_path / "epoch-4")
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name, "epoch-4"]


def test_save_refuses_to_replace_what_is_not_an_artifact(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(mml.ArtifactError, match="not an mml artifact"):
        mml.save(mml.random.key(1), tmp_path / "notes")
    (tmp_path / "file").write_text("mine")
    with pytest.raises(mml.ArtifactError, match="not a directory"):
        mml.save(mml.random.key(1), tmp_path / "file")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"
    mml.save(mml.random.key(1), tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(mml.ArtifactError, match="is a symlink"):
        mml.save(mml.random.key(2), tmp_path / "link")
    assert mml.load(tmp_path / "link") == mml.random.key(1)  # loading through a user's link is fine
    (tmp_path / "empty").mkdir()
    mml.save(mml.random.key(1), tmp_path / "empty")  # an empty directory is fine
    assert mml.load(tmp_path / "empty") == mml.random.key(1)


def test_overwrite_without_an_atomic_swap_still_replaces(tmp_path, monkeypatch):
    # Platforms or filesystems without RENAME_EXCHANGE take the two-rename path.
    monkeypatch.setattr(_store, "_exchange", lambda a, b: False)
    path = tmp_path / "k"
    for seed in (1, 2, 3):
        mml.save(mml.random.key(seed), path)
        assert mml.load(path) == mml.random.key(seed)
    assert _leftovers(path) == []


def test_symlinked_file_inside_an_artifact_is_refused(tmp_path):
    p = mml.save(mml.random.key(1), tmp_path / "k")
    outside = tmp_path / "outside.json"
    outside.write_bytes((p / "config.json").read_bytes())
    (p / "config.json").unlink()
    (p / "config.json").symlink_to(outside)
    with pytest.raises(mml.ArtifactError, match="symlink"):
        mml.load(p)


# -- the previous format --------------------------------------------------------------------


def _save_format_1(obj, path: Path) -> None:
    """What mml wrote before format 2: a plain directory, SHA-256 digests, no hash field."""
    from safetensors.numpy import save_file

    doc, arrays, tables = to_document(obj)
    path.mkdir()
    (path / "config.json").write_text(
        json.dumps(
            {
                "type": mml.io._converter.type_path(type(obj)),
                "kind": type(obj).__dict__.get("kind"),
                "value": doc,
            },
            indent=1,
        )
    )
    if arrays:
        save_file(arrays, str(path / "arrays.safetensors"))
    if tables:
        import pyarrow.ipc as ipc

        (path / "tables").mkdir()
        for name, table in tables.items():
            with ipc.new_file(str(path / "tables" / f"{name}.arrow"), table.schema) as w:
                w.write_table(table)
    files = {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }
    manifest = {
        "format": "mml-artifact",
        "format_version": 1,
        "type": mml.io._converter.type_path(type(obj)),
        "kind": type(obj).__dict__.get("kind"),
        "mml_version": "0.1.0",
        "files": files,
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=1))


def test_format_1_artifacts_load_and_are_replaced(tmp_path):
    a, b = values()
    path = tmp_path / "old"
    _save_format_1(a, path)
    assert "hash" not in json.loads((path / "manifest.json").read_text())
    assert mml.load(path) == a
    data = bytearray((path / "tables" / "t0.arrow").read_bytes())
    data[len(data) // 2] ^= 1
    (path / "tables" / "t0.arrow").write_bytes(bytes(data))
    with pytest.raises(mml.ArtifactError, match="SHA256"):
        mml.load(path)
    mml.save(b, path)  # an old artifact is replaced like a new one
    assert mml.load(path) == b and _leftovers(path) == []


FIXTURES = Path(__file__).with_name("data") / "format1"


def test_artifacts_written_by_the_previous_version_load(tmp_path):
    # Written by mml at 7484f64 (format 1: SHA-256, no "hash" field, plain directories).
    fs = mml.FeatureSet.from_dict(
        {
            "x": np.arange(12, dtype=np.float32).reshape(6, 2),
            "y": np.arange(6.0),
            "cell": np.array(list("aabbcc")),
        },
        features="x",
        targets="y",
        tags="cell",
        label="old",
        key=mml.random.key(3),
    ).with_split("train", np.arange(4))
    assert json.loads((FIXTURES / "featureset" / "manifest.json").read_text())["format_version"] == 1
    assert mml.load(FIXTURES / "featureset") == fs
    assert mml.load(FIXTURES / "key") == mml.random.key(9)
    import shutil

    copy = shutil.copytree(FIXTURES / "featureset", tmp_path / "fs")
    mml.save(fs.with_split("test", [5]), copy)  # replaced by a format-2 artifact
    assert json.loads((copy / "manifest.json").read_text())["format_version"] == 2
    assert mml.load(copy) == fs.with_split("test", [5])


def test_blake3_digests_match_the_reference(tmp_path):
    import blake3

    p = mml.save(values()[0], tmp_path / "fs")
    manifest = json.loads((p / "manifest.json").read_text())
    for rel, digest in manifest["files"].items():
        assert blake3.blake3((p / rel).read_bytes()).hexdigest() == digest
    big = np.random.default_rng(0).bytes(20 << 20)  # above the multi-threaded chunk size
    assert _store.digest_bytes(big) == blake3.blake3(big).hexdigest()
