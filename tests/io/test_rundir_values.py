"""The run record (``run.json``) pinned value by value (issue 17): names, bytes, every message.

Plain directories stand in for what ``mml run`` writes (no training needed); digests are checked
against ``hashlib.sha256`` directly and the record's bytes against ``json.dumps``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import mml
from mml.io import _rundir as rd


def _raises(fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(mml.ArtifactError) as err:
        fn(*args)
    return str(err.value)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree(root: Path) -> Path:
    root.mkdir()
    (root / "history.csv").write_bytes(b"epoch,loss\n0,1.0\n")
    (root / "final_state").mkdir()
    (root / "final_state" / "manifest.json").write_bytes(b"{}")
    (root / "final_state" / "deep").mkdir()
    (root / "final_state" / "deep" / "x.bin").write_bytes(b"\x00\x01")
    return root


def _mismatch(root: Path, *problems: str) -> str:
    return f"the run directory {root} does not match its record run.json: " + "; ".join(problems)


def test_constants() -> None:
    assert rd.RUN_MANIFEST == "run.json" and rd.REPLAYED == "replayed_state" and rd._FORMAT == "mml-run"
    assert rd.__all__ == ["RUN_MANIFEST", "REPLAYED", "write_run_manifest", "verify_run"]
    assert mml.io.verify_run is rd.verify_run and mml.io.write_run_manifest is rd.write_run_manifest


def test_digest_is_sha256_of_the_whole_file_across_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * (1 << 14) + b"tail"  # 4 MiB + 4 bytes: two reads of 4 MiB
    p = tmp_path / "f"
    p.write_bytes(data)
    assert rd._digest(p) == _sha(data)
    (tmp_path / "e").write_bytes(b"")
    assert rd._digest(tmp_path / "e") == _sha(b"")


def test_record_names_bytes_and_the_atomic_write(tmp_path: Path) -> None:
    root = _tree(tmp_path / "run")
    record = rd.write_run_manifest(root)
    names = ["final_state/deep/x.bin", "final_state/manifest.json", "history.csv"]
    assert record == {
        "format": "mml-run",
        "format_version": 1,
        "files": {
            "final_state/deep/x.bin": _sha(b"\x00\x01"),
            "final_state/manifest.json": _sha(b"{}"),
            "history.csv": _sha(b"epoch,loss\n0,1.0\n"),
        },
        "sizes": {"final_state/deep/x.bin": 2, "final_state/manifest.json": 2, "history.csv": 17},
    }
    assert list(record) == ["format", "format_version", "files", "sizes"]
    assert list(record["files"]) == names and list(record["sizes"]) == names
    assert (root / "run.json").read_bytes() == json.dumps(record, indent=1).encode("utf-8")
    assert sorted(os.listdir(root)) == ["final_state", "history.csv", "run.json"]  # no temp file left
    rd.verify_run(root)
    # written again over an existing record: the record itself is never listed
    assert rd.write_run_manifest(root) == record
    rd.verify_run(str(root))  # a str path works too


def test_files_skips_replayed_state_and_the_root_record_only(tmp_path: Path) -> None:
    root = tmp_path / "run"
    (root / "replayed_state" / "inner").mkdir(parents=True)
    (root / "replayed_state" / "manifest.json").write_text("{}")
    (root / "replayed_state" / "inner" / "f").write_text("x")
    (root / "sub" / "replayed_state").mkdir(parents=True)
    (root / "sub" / "replayed_state" / "g").write_text("g")
    (root / "sub" / "run.json").write_text("{}")
    (root / "run.json").write_text("{}")
    (root / "b").write_text("")
    (root / "a").write_text("")
    assert rd._files(root) == ["a", "b", "sub/replayed_state/g", "sub/run.json"]


def test_links_are_listed_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "run"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_text("f")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    (root / "dlink").symlink_to(outside)
    (root / "flink").symlink_to(root / "d" / "f")
    assert rd._files(root) == ["d/f", "dlink", "flink"]


def test_replayed_state_is_not_part_of_the_record(tmp_path: Path) -> None:
    root = _tree(tmp_path / "run")
    rd.write_run_manifest(root)
    (root / "replayed_state").mkdir()
    (root / "replayed_state" / "manifest.json").write_text("{}")
    rd.verify_run(root)


def test_verify_reports_every_problem_in_order(tmp_path: Path) -> None:
    root = _tree(tmp_path / "run")
    (root / "b.txt").write_bytes(b"same")
    (root / "c.txt").write_bytes(b"size")
    (root / "d.txt").write_bytes(b"link")
    (root / "e").write_bytes(b"dir")
    rd.write_run_manifest(root)
    (root / "history.csv").unlink()
    (root / "zz-extra").write_text("")
    (root / "aa-extra").write_text("")
    (root / "b.txt").write_bytes(b"SAME")  # same size, other bytes
    (root / "c.txt").write_bytes(b"sizes")  # other size
    (root / "d.txt").unlink()
    (root / "d.txt").symlink_to(root / "c.txt")
    (root / "e").unlink()
    (root / "e").mkdir()
    (root / "e" / "inner").write_text("")
    assert _raises(rd.verify_run, root) == _mismatch(
        root,
        "e is missing",
        "history.csv is missing",
        "aa-extra is not part of the recorded run",
        "e/inner is not part of the recorded run",
        "zz-extra is not part of the recorded run",
        "b.txt was modified",
        "c.txt was modified",
        "d.txt is not a regular file",
    )


def test_a_listed_directory_link_is_not_a_regular_file(tmp_path: Path) -> None:
    root = _tree(tmp_path / "run")
    record = rd.write_run_manifest(root)
    (tmp_path / "elsewhere").mkdir()
    (root / "dlink").symlink_to(tmp_path / "elsewhere")
    record["files"]["dlink"] = _sha(b"")
    record["sizes"]["dlink"] = 0
    (root / "run.json").write_text(json.dumps(record))
    assert _raises(rd.verify_run, root) == _mismatch(root, "dlink is not a regular file")


@pytest.mark.parametrize("which", ["dir", "file", "dangling"])
def test_write_refuses_links_with_a_clear_error(tmp_path: Path, which: str) -> None:
    """Regression (issue 17): a directory link crashed with a bare IsADirectoryError, and a file
    link was hashed through the link into a record that ``verify_run`` then always refused."""
    root = _tree(tmp_path / "run")
    (tmp_path / "elsewhere").mkdir()
    target = {"dir": tmp_path / "elsewhere", "file": root / "history.csv", "dangling": tmp_path / "no"}
    (root / "link").symlink_to(target[which])
    assert _raises(rd.write_run_manifest, root) == (
        f"{root / 'link'} is a symlink or not a regular file; a run record holds only regular files "
        "(replace the link with a copy of what it points to, or remove it)"
    )
    assert not (root / "run.json").exists() and not (root / ".run.json.tmp").exists()


def test_size_alone_or_digest_alone_is_a_modification(tmp_path: Path) -> None:
    root = _tree(tmp_path / "run")
    record = rd.write_run_manifest(root)
    record["sizes"]["history.csv"] = 18  # bytes unchanged, recorded size wrong
    (root / "run.json").write_text(json.dumps(record))
    assert _raises(rd.verify_run, root) == _mismatch(root, "history.csv was modified")
    record["sizes"]["history.csv"] = 17
    record["files"]["history.csv"] = _sha(b"other")
    (root / "run.json").write_text(json.dumps(record))
    assert _raises(rd.verify_run, root) == _mismatch(root, "history.csv was modified")


def test_verify_without_a_directory_or_a_record(tmp_path: Path) -> None:
    assert _raises(rd.verify_run, tmp_path / "none") == (
        f"{tmp_path / 'none'} is not a run directory (it does not exist)"
    )
    (tmp_path / "file").write_text("")
    assert _raises(rd.verify_run, tmp_path / "file") == (
        f"{tmp_path / 'file'} is not a run directory (it does not exist)"
    )
    root = _tree(tmp_path / "run")
    no_record = (
        f"{root} has no run.json: it was not written by `mml run` (or by an mml older than the "
        "run record), so its files cannot be verified; run it again with `mml run`"
    )
    assert _raises(rd.verify_run, root) == no_record
    (root / "run.json").mkdir()
    assert _raises(rd.verify_run, root) == no_record
    (root / "run.json").rmdir()
    elsewhere = tmp_path / "real.json"
    rd.write_run_manifest(root)
    os.replace(root / "run.json", elsewhere)
    (root / "run.json").symlink_to(elsewhere)  # a valid record behind a link is still refused
    assert _raises(rd.verify_run, root) == no_record


def _valid(root: Path) -> dict:  # type: ignore[type-arg]
    return rd.write_run_manifest(root)


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: [r],
        lambda r: "text",
        lambda r: {**r, "format": "mml-artifact"},
        lambda r: {k: v for k, v in r.items() if k != "format"},
        lambda r: {**r, "format_version": 2},
        lambda r: {**r, "format_version": 0},
        lambda r: {**r, "format_version": "1"},
        lambda r: {k: v for k, v in r.items() if k != "format_version"},
        lambda r: {**r, "files": list(r["files"])},
        lambda r: {k: v for k, v in r.items() if k != "files"},
        lambda r: {**r, "sizes": list(r["sizes"].values())},
        lambda r: {k: v for k, v in r.items() if k != "sizes"},
        lambda r: {**r, "sizes": {**r["sizes"], "more": 1}},
        lambda r: {**r, "sizes": {k: v for k, v in r["sizes"].items() if k != "history.csv"}},
    ],
)
def test_an_invalid_record_is_refused_whole(tmp_path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    root = _tree(tmp_path / "run")
    (root / "run.json").write_text(json.dumps(edit(_valid(root))))
    assert _raises(rd.verify_run, root) == (
        f"{root / 'run.json'} is not a valid run record; the run directory is corrupted"
    )


def test_a_record_that_is_not_json(tmp_path: Path) -> None:
    root = _tree(tmp_path / "run")
    (root / "run.json").write_text("{")
    assert _raises(rd.verify_run, root).startswith(f"{root / 'run.json'} is not valid JSON (")


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/../b", "manifest.json", "a\\b", "./a"])
def test_record_names_are_checked_before_any_file_is_opened(tmp_path: Path, name: str) -> None:
    root = _tree(tmp_path / "run")
    record = _valid(root)
    record["files"][name] = _sha(b"")
    record["sizes"][name] = 0
    (root / "run.json").write_text(json.dumps(record))
    assert _raises(rd.verify_run, root) == (
        f"the manifest lists {name!r}: a file name must be a relative, normalised path inside the artifact"
    )
