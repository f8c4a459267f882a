"""Artifacts pinned value by value (issue 17): layout, manifest, leaves, messages in full.

Everything goes through the public functions (``mml.save``, ``mml.load``, ``mml.io.try_load``,
``read_manifest``, ``read_document``, ``to_document``/``from_document``); digests are checked
against ``blake3``/``hashlib`` directly.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import attrs
import blake3
import numpy as np
import pyarrow as pa
import pytest
from returns.result import Failure, Success

import mml
from mml.io import _artifact as art
from mml.io._store import digest_bytes, hasher, remove_leftovers, staging_prefix

from .helpers import edit_config, rehash


@attrs.frozen
class Box:
    value: Any = None
    other: Any = None


@attrs.frozen
class Tagged:
    kind: ClassVar[str] = "test.artifact_values.tagged"
    v: int = 0


TRUSTED = [f"{__name__}:*"]


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


def _load(p: Path) -> Any:
    return mml.load(p, trusted=TRUSTED)


# -- the files and the manifest --------------------------------------------------------------


def test_layout_manifest_and_digests(tmp_path: Path) -> None:
    t = pa.table({"a": [1, 2, 3]})
    p = mml.save(
        Box({"w": np.arange(6.0).reshape(2, 3), "t": t, "u": pa.table({"b": ["x"]})}), tmp_path / "a"
    )
    assert p == tmp_path / "a"
    names = sorted(str(f.relative_to(p)) for f in p.rglob("*") if f.is_file())
    assert names == [
        "arrays.safetensors",
        "config.json",
        "manifest.json",
        "tables/t0.arrow",
        "tables/t1.arrow",
    ]
    m = json.loads((p / "manifest.json").read_text())
    assert list(m) == ["format", "format_version", "type", "kind", "mml_version", "hash", "files", "sizes"]
    assert m["format"] == "mml-artifact" and m["format_version"] == 2 and m["hash"] == "blake3"
    assert m["type"] == f"{__name__}:Box" and m["kind"] is None and m["mml_version"] == mml.__version__
    for name in names[:2] + names[3:]:
        data = (p / name).read_bytes()
        assert m["files"][name] == blake3.blake3(data).hexdigest()
        assert m["sizes"][name] == len(data)
    assert set(m["files"]) == set(m["sizes"]) == set(names) - {"manifest.json"}
    cfg = json.loads((p / "config.json").read_text())
    assert cfg == {
        "type": f"{__name__}:Box",
        "kind": None,
        "value": {
            "value": {"w": {"$array": "a0"}, "t": {"$table": "t0"}, "u": {"$table": "t1"}},
            "other": None,
        },
    }
    assert (p / "config.json").read_bytes() == json.dumps(cfg, indent=1).encode()
    assert mml.io.read_manifest(p) == m
    assert mml.io.read_document(p) == (m, cfg)
    back = _load(p)
    assert back.value["w"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert back.value["t"].equals(t) and back.value["u"].column("b").to_pylist() == ["x"]


def test_a_value_without_arrays_or_tables_has_only_its_document(tmp_path: Path) -> None:
    p = mml.save(Box(1.5, "s"), tmp_path / "a")
    assert sorted(os.listdir(p)) == ["config.json", "manifest.json"]
    m = mml.io.read_manifest(p)
    assert list(m["files"]) == ["config.json"]
    assert _load(p) == Box(1.5, "s")


def test_kind_of_a_component_is_in_manifest_and_config(tmp_path: Path) -> None:
    k = mml.random.key(4)
    s = mml.splitters.RandomSplitter({"a": 0.5, "b": 0.5})
    p = mml.save(s, tmp_path / "s")
    m, cfg = mml.io.read_document(p)
    assert m["kind"] == cfg["kind"] == "splitter.random"
    assert m["type"] == cfg["type"] == "mml.splitters._random:RandomSplitter"
    assert mml.load(p) == s
    assert mml.load(mml.save(k, tmp_path / "k")) == k


def test_digests_of_both_algorithms() -> None:
    assert digest_bytes(b"abc", "sha256") == hashlib.sha256(b"abc").hexdigest()
    assert digest_bytes(b"abc") == blake3.blake3(b"abc").hexdigest()
    big = bytes(range(256)) * 8192  # 2 MiB: the multi-threaded path
    assert digest_bytes(big, "blake3") == blake3.blake3(big).hexdigest()
    h = hasher("blake3", 1 << 20)
    h.update(big)
    assert h.hexdigest() == blake3.blake3(big).hexdigest()
    assert _raises(mml.ArtifactError, hasher, "md5") == (
        "unknown hash algorithm 'md5'; this mml verifies blake3, sha256"
    )
    assert staging_prefix(Path("x/run")) == ".run.mml-tmp-"


def test_big_arrays_are_hashed_whole(tmp_path: Path) -> None:
    w = np.arange(600_000, dtype=np.float32).reshape(1000, 600)  # 2.4 MB: hashed on another core
    t = pa.table({"v": np.arange(300_000, dtype=np.float64)})
    p = mml.save(Box(w, t), tmp_path / "big")
    m = mml.io.read_manifest(p)
    for name in ("arrays.safetensors", "tables/t0.arrow"):
        data = (p / name).read_bytes()
        assert len(data) > 1 << 21 and m["files"][name] == blake3.blake3(data).hexdigest()
    back = _load(p)
    assert np.array_equal(back.value, w) and back.other.equals(t)


# -- leaves ----------------------------------------------------------------------------------


def test_to_document_leaves() -> None:
    uu = np.array([b"0123456789abcdef", b"fedcba9876543210"], dtype="S16")
    doc, arrays, tables = art.to_document(
        Box(
            {
                "s": np.array([["a", "bc"]]),
                "u": uu,
                "n": np.float32(1.5),
                "i": np.int64(3),
                "b": np.array([True]),
            },
            (1, [2.0, None], "x", False),
        )
    )
    assert doc == {
        "value": {
            "s": {"$strings": [["a", "bc"]], "shape": [1, 2]},
            "u": {"$array": "a0", "bytes": 16, "dtype": "|S16"},
            "n": 1.5,
            "i": 3,
            "b": {"$array": "a1"},
        },
        "other": {"$tuple": [1, [2.0, None], "x", False]},
    }
    assert arrays["a0"].dtype == np.uint8 and arrays["a0"].shape == (2, 16)
    assert arrays["a0"][1].tobytes() == b"fedcba9876543210"
    assert arrays["a1"].tolist() == [True] and tables == {}
    back = art.from_document(json.loads(json.dumps(doc)), arrays, tables, Box, trusted=TRUSTED)
    assert back.value["u"].dtype == np.dtype("S16") and back.value["u"].tolist() == uu.tolist()
    assert back.value["s"].tolist() == [["a", "bc"]] and back.value["s"].dtype.kind == "U"
    assert back.other == (1, [2.0, None], "x", False)
    assert art.roundtrip(Box(np.array([b"ab", b"c"], dtype="S2"))).value.tolist() == [b"ab", b"c"]


def test_byte_leaves_without_a_dtype_and_void_arrays() -> None:
    arrays = {"a0": np.frombuffer(b"abcdwxyz", dtype=np.uint8).reshape(2, 4)}
    out = art.from_document(
        {"value": {"$array": "a0", "bytes": 4}, "other": None}, arrays, {}, Box, trusted=TRUSTED
    )
    assert out.value.dtype == np.dtype("S4") and out.value.tolist() == [b"abcd", b"wxyz"]
    v = np.array([b"\x00\x01", b"\x02\x03"], dtype="V2")
    doc, arrs, _ = art.to_document(Box(v))
    assert doc["value"] == {"$array": "a0", "bytes": 2, "dtype": "|V2"}
    assert arrs["a0"].tolist() == [[0, 1], [2, 3]]


def test_torch_and_tensorflow_leaves(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    t = torch.arange(4.0, requires_grad=True)
    doc, arrays, _ = art.to_document(Box(t))
    assert doc["value"] == {"$array": "a0", "framework": "torch"}
    assert arrays["a0"].tolist() == [0.0, 1.0, 2.0, 3.0]
    back = _load(mml.save(Box(t), tmp_path / "t"))
    assert isinstance(back.value, torch.Tensor) and back.value.tolist() == [0.0, 1.0, 2.0, 3.0]
    back.value.add_(1)  # an owned, writable tensor (a copy of the read-only file bytes)
    tf = pytest.importorskip("tensorflow")
    doc, arrays, _ = art.to_document(Box(tf.constant([1, 2])))
    assert doc["value"] == {"$array": "a0", "framework": "tensorflow"}
    assert arrays["a0"].tolist() == [1, 2] and arrays["a0"].dtype == np.int32
    loaded = _load(mml.save(Box(tf.constant([1, 2])), tmp_path / "k"))
    assert isinstance(loaded.value, np.ndarray) and loaded.value.tolist() == [1, 2]


def test_leaf_errors_name_the_path() -> None:
    assert _raises(mml.ArtifactError, art.to_document, Box({"a": {1: 2}})) == (
        "cannot save a mapping with non-string key 1 at $.value.a"
    )
    assert _raises(mml.ArtifactError, art.to_document, Box([0, np.array([1 + 2j])])) == (
        "cannot save an array of dtype complex128 at $.value[1]"
    )
    assert _raises(mml.ArtifactError, art.to_document, Box(other={"k": [object()]})) == (
        "cannot save an object of type builtins.object at $.other.k[0]; "
        "only attrs values, arrays, tables, tensors and plain data can be saved"
    )
    assert _raises(mml.ArtifactError, art.to_document, Box(np.array(["2020-01-01"], dtype="M8[D]"))) == (
        "cannot save an array of dtype datetime64[D] at $.value"
    )
    assert _raises(mml.ArtifactError, mml.save, {"a": 1}, "/tmp/never") == (
        "mml.save takes an mml value (an attrs class), got dict"
    )


def test_from_document_reference_errors() -> None:
    doc = {"value": {"$array": "a3"}, "other": None}
    assert _raises(mml.ArtifactError, art.from_document, doc, {}, {}, Box, trusted=TRUSTED) == (
        "the document refers to array 'a3' which is not in arrays.safetensors"
    )
    doc = {"value": {"$table": "t2"}, "other": None}
    assert _raises(mml.ArtifactError, art.from_document, doc, {}, {}, Box, trusted=TRUSTED) == (
        "the document refers to table 't2' which is missing"
    )
    t = pa.table({"a": [1]})
    got = art.from_document({"value": [{"$table": "t0"}], "other": None}, {}, {"t0": t}, Box, trusted=TRUSTED)
    assert got.value[0] is t


# -- replacing -------------------------------------------------------------------------------


def test_overwrite_and_what_is_never_replaced(tmp_path: Path) -> None:
    p = mml.save(Box(1), tmp_path / "a")
    assert _raises(mml.ArtifactError, mml.save, Box(2), p, overwrite=False) == (
        f"{p} exists; pass overwrite=True or choose another path"
    )
    assert _load(p) == Box(1)
    mml.save(Box(2), p)
    assert _load(p) == Box(2)
    assert mml.save(Box(3), tmp_path / "new", overwrite=False) == tmp_path / "new"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _load(mml.save(Box(4), empty)) == Box(4)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert _raises(mml.ArtifactError, mml.save, Box(5), other) == (
        f"{other} is a directory that is not an mml artifact (it has no manifest.json); "
        "mml.save replaces only artifacts — choose another path or remove it yourself"
    )
    assert (other / "notes.txt").read_text() == "mine"
    f = tmp_path / "file"
    f.write_text("x")
    assert _raises(mml.ArtifactError, mml.save, Box(6), f) == (
        f"{f} exists and is not a directory; choose another path or remove it yourself"
    )
    link = tmp_path / "link"
    link.symlink_to(p)
    assert _raises(mml.ArtifactError, mml.save, Box(7), link) == (
        f"{link} is a symlink; mml.save replaces only artifact directories — save to the path "
        f"it points to ({os.path.realpath(link)}) or remove the link yourself"
    )
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    assert _raises(mml.ArtifactError, mml.save, Box(8), dangling, overwrite=False) == (
        f"{dangling} exists; pass overwrite=True or choose another path"
    )
    assert "is a symlink" in _raises(mml.ArtifactError, mml.save, Box(8), dangling)
    assert sorted(os.listdir(tmp_path)) == ["a", "dangling", "empty", "file", "link", "new", "other"]


def test_leftovers_are_removed_by_the_next_save(tmp_path: Path) -> None:
    (tmp_path / ".run.mml-tmp-abc123").mkdir()
    (tmp_path / ".run.mml-tmp-abc123" / "config.json").write_text("{}")
    (tmp_path / ".other.mml-tmp-x_9").mkdir()
    (tmp_path / ".keep.mml-tmp-").mkdir()  # no random suffix: not a staging name
    (tmp_path / "run.mml-tmp-abc").mkdir()  # not hidden
    (tmp_path / ".f.mml-tmp-zz").write_text("a file")  # not a directory: not mml's
    mml.save(Box(1), tmp_path / "new")
    assert sorted(os.listdir(tmp_path)) == [".f.mml-tmp-zz", ".keep.mml-tmp-", "new", "run.mml-tmp-abc"]
    assert remove_leftovers(tmp_path / "missing" / "x") == []


def test_a_failed_save_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(mml.ArtifactError):
        mml.save(Box(np.array([1j])), tmp_path / "a")
    assert os.listdir(tmp_path) == []
    p = mml.save(Box(1), tmp_path / "b")
    with pytest.raises(mml.ArtifactError):
        mml.save(Box(other={3: 4}), p)
    assert _load(p) == Box(1) and sorted(os.listdir(tmp_path)) == ["b"]


def test_prepare_save_writes_later_and_snapshots(tmp_path: Path) -> None:
    w = np.zeros(3)
    write = art.prepare_save(Box(w), tmp_path / "a", snapshot=True)
    w[0] = 9.0
    assert not (tmp_path / "a").exists()
    assert write() == tmp_path / "a"
    assert _load(tmp_path / "a").value.tolist() == [0.0, 0.0, 0.0]
    w2 = np.zeros(2)
    write2 = art.prepare_save(Box(w2), tmp_path / "b")
    w2[1] = 5.0
    write2()
    assert _load(tmp_path / "b").value.tolist() == [0.0, 5.0]
    frozen = np.ones(2)
    frozen.flags.writeable = False
    art.prepare_save(Box(frozen), tmp_path / "c", snapshot=True)()
    assert _load(tmp_path / "c").value.tolist() == [1.0, 1.0]


# -- reading ---------------------------------------------------------------------------------


def test_read_manifest_messages(tmp_path: Path) -> None:
    assert _raises(mml.ArtifactError, mml.io.read_manifest, tmp_path / "no") == (
        f"{tmp_path / 'no'} is not an mml artifact directory (it does not exist or is a file)"
    )
    (tmp_path / "f").write_text("")
    assert _raises(mml.ArtifactError, mml.io.read_manifest, tmp_path / "f") == (
        f"{tmp_path / 'f'} is not an mml artifact directory (it does not exist or is a file)"
    )
    (tmp_path / "d").mkdir()
    assert _raises(mml.ArtifactError, mml.io.read_manifest, tmp_path / "d") == (
        f"{tmp_path / 'd' / 'manifest.json'} is missing: {tmp_path / 'd'} is not a complete mml artifact "
        "(an interrupted save, or not saved by mml)"
    )


def test_unknown_hash_algorithm(tmp_path: Path) -> None:
    p = mml.save(Box(1), tmp_path / "a")
    m = json.loads((p / "manifest.json").read_text())
    m["hash"] = "md5"
    (p / "manifest.json").write_text(json.dumps(m))
    msg = f"{p / 'manifest.json'} names hash 'md5'; this mml verifies blake3, sha256; upgrade mml"
    assert _raises(mml.ArtifactError, mml.io.read_manifest, p) == msg
    assert _raises(mml.ArtifactError, _load, p) == msg


def test_format_1_manifests_mean_sha256(tmp_path: Path) -> None:
    p = mml.save(Box(np.arange(3.0)), tmp_path / "a")
    m = json.loads((p / "manifest.json").read_text())
    m["format_version"] = 1
    del m["hash"], m["sizes"]
    m["files"] = {n: hashlib.sha256((p / n).read_bytes()).hexdigest() for n in m["files"]}
    (p / "manifest.json").write_text(json.dumps(m))
    assert mml.io.read_manifest(p)["hash"] == "sha256"
    assert _load(p).value.tolist() == [0.0, 1.0, 2.0]
    m["files"]["config.json"] = "0" * 64
    (p / "manifest.json").write_text(json.dumps(m))
    assert _raises(mml.ArtifactError, _load, p) == (
        f"{p / 'config.json'} does not match its SHA256 hash in the manifest: the file is corrupted or was modified"
    )
    m["hash"] = "md5"  # format 1 never named one: the field is taken as it is, then refused
    m["format_version"] = 1
    (p / "manifest.json").write_text(json.dumps(m))
    assert "names hash 'md5'" in _raises(mml.ArtifactError, mml.io.read_manifest, p)


def test_config_document_checks(tmp_path: Path) -> None:
    p = mml.save(Box(1), tmp_path / "a")
    edit_config(p, lambda c: {**c, "extra": 1})
    assert _raises(mml.ArtifactError, _load, p) == (
        f"{p / 'config.json'} must hold exactly 'type', 'kind' and 'value'"
    )
    p = mml.save(Box(1), tmp_path / "b")
    edit_config(p, lambda c: [c])
    assert _raises(mml.ArtifactError, mml.io.read_document, p) == (
        f"{p / 'config.json'} must hold exactly 'type', 'kind' and 'value'"
    )
    p = mml.save(Box(1), tmp_path / "c")
    cfg = json.loads((p / "config.json").read_text())
    cfg["type"] = "mml.random:Key"
    (p / "config.json").write_text(json.dumps(cfg))
    rehash(p)
    assert _raises(mml.ArtifactError, _load, p) == (
        f"{p}: config.json names 'mml.random:Key' (kind None) but the manifest "
        f"names '{__name__}:Box' (kind None); the artifact was tampered with"
    )
    p = mml.save(Box(1), tmp_path / "d")
    cfg = json.loads((p / "config.json").read_text())
    cfg["kind"] = "box"
    (p / "config.json").write_text(json.dumps(cfg))
    rehash(p)
    assert _raises(mml.ArtifactError, _load, p) == (
        f"{p}: config.json names '{__name__}:Box' (kind 'box') but the manifest "
        f"names '{__name__}:Box' (kind None); the artifact was tampered with"
    )
    p = mml.save(Box(1), tmp_path / "e")
    m = json.loads((p / "manifest.json").read_text())
    (p / "config.json").rename(p / "other.json")
    m["files"] = {"other.json": m["files"]["config.json"]}
    m["sizes"] = {"other.json": m["sizes"]["config.json"]}
    (p / "manifest.json").write_text(json.dumps(m))
    assert _raises(mml.ArtifactError, _load, p) == (
        f"{p / 'manifest.json'} does not list config.json; the artifact is incomplete"
    )


def test_every_listed_file_is_hash_checked(tmp_path: Path) -> None:
    p = mml.save(Box(np.arange(4.0), pa.table({"a": [1.0, 2.0]})), tmp_path / "a")
    m = json.loads((p / "manifest.json").read_text())
    for name in m["files"]:
        q = mml.save(Box(np.arange(4.0), pa.table({"a": [1.0, 2.0]})), tmp_path / name.replace("/", "_"))
        mq = json.loads((q / "manifest.json").read_text())
        mq["files"][name] = blake3.blake3(b"other").hexdigest()
        (q / "manifest.json").write_text(json.dumps(mq))
        assert _raises(mml.ArtifactError, _load, q) == (
            f"{q / name} does not match its BLAKE3 hash in the manifest: the file is corrupted or was modified"
        )


def test_type_and_class_checks_on_load(tmp_path: Path) -> None:
    p = mml.save(Box(1), tmp_path / "a")
    assert mml.load(p, Box, trusted=TRUSTED) == Box(1)
    assert _raises(mml.ArtifactError, mml.load, p, mml.random.Key, trusted=TRUSTED) == (
        f"{p} holds a Box, not a Key"
    )
    edit_config(p, lambda c: {**c, "type": "json:JSONDecoder"})
    msg = _raises(mml.ArtifactError, mml.load, p, trusted=["json:*"])
    assert msg.startswith(f"{p / 'config.json'} names no loadable type: ")
    assert msg.endswith("'json:JSONDecoder' is not an attrs class; only mml component classes can be loaded")
    q = mml.save(Box(1), tmp_path / "b")
    edit_config(q, lambda c: {**c, "value": {"nope": 1}})
    assert _raises(mml.ArtifactError, _load, q) == (
        f"{q} cannot be rebuilt as a Box: cannot build a Box from the document: $.value.nope: unknown key; "
        "valid keys: value, other"
    )
    r = mml.save(Box(np.arange(2.0)), tmp_path / "c")
    edit_config(r, lambda c: {**c, "value": {"value": {"$array": "a7"}, "other": None}})
    assert _raises(mml.ArtifactError, _load, r) == (
        "the document refers to array 'a7' which is not in arrays.safetensors"
    )


def test_unreadable_arrays_and_tables(tmp_path: Path) -> None:
    p = mml.save(Box(np.arange(2.0)), tmp_path / "a")
    (p / "arrays.safetensors").write_bytes(b"not safetensors at all")
    rehash(p)
    msg = _raises(mml.ArtifactError, _load, p)
    assert msg.startswith(f"{p / 'arrays.safetensors'} cannot be read: ")
    q = mml.save(Box(pa.table({"a": [1]})), tmp_path / "b")
    (q / "tables" / "t0.arrow").write_bytes(b"ARROW1 but not really")
    rehash(q)
    msg = _raises(mml.ArtifactError, _load, q)
    assert msg.startswith(f"{q / 'tables' / 't0.arrow'} is not a valid Arrow IPC file: ")


def test_only_tables_files_are_tables(tmp_path: Path) -> None:
    t0, t1 = pa.table({"a": [1]}), pa.table({"b": [2.0]})
    p = mml.save(Box([t0, t1]), tmp_path / "a")
    back = _load(p)
    assert back.value[0].equals(t0) and back.value[1].equals(t1)


def test_try_load(tmp_path: Path) -> None:
    p = mml.save(Box(2), tmp_path / "a")
    ok = mml.io.try_load(p, Box, trusted=TRUSTED)
    assert isinstance(ok, Success) and ok.unwrap() == Box(2)
    bad = mml.io.try_load(p, mml.random.Key, trusted=TRUSTED)
    assert isinstance(bad, Failure) and str(bad.failure()) == f"{p} holds a Box, not a Key"
    miss = mml.io.try_load(tmp_path / "none")
    assert isinstance(miss, Failure) and isinstance(miss.failure(), mml.ArtifactError)
    untrusted = mml.io.try_load(p)
    assert isinstance(untrusted, Failure) and isinstance(untrusted.failure(), mml.UntrustedTypeError)


# -- the survivors of the first run ----------------------------------------------------------


def test_multidimensional_byte_arrays_and_empty_strings(tmp_path: Path) -> None:
    u = np.array(
        [[b"0123456789abcdef", b"x" * 16, b"y" * 16], [b"z" * 16, b"w" * 16, b"v" * 16]], dtype="S16"
    )
    back = _load(mml.save(Box(u, np.array([], dtype=str)), tmp_path / "a"))
    assert (
        back.value.shape == (2, 3)
        and back.value.dtype == np.dtype("S16")
        and back.value.tolist() == u.tolist()
    )
    assert back.other.shape == (0,) and back.other.dtype.kind == "U"


def test_file_modes(tmp_path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    p = mml.save(Box(np.arange(2.0), pa.table({"a": [1]})), tmp_path / "a")
    for name in ("config.json", "arrays.safetensors", "tables/t0.arrow", "manifest.json"):
        assert (p / name).stat().st_mode & 0o777 == 0o644 & ~umask, name


def test_a_format_2_manifest_must_name_its_hash(tmp_path: Path) -> None:
    p = mml.save(Box(1), tmp_path / "a")
    m = json.loads((p / "manifest.json").read_text())
    del m["hash"]
    (p / "manifest.json").write_text(json.dumps(m))
    assert _raises(mml.ArtifactError, _load, p) == (
        f"{p / 'manifest.json'} names hash None; this mml verifies blake3, sha256; upgrade mml"
    )


def test_manifest_and_config_messages_name_their_files(tmp_path: Path) -> None:
    p = mml.save(Box(1), tmp_path / "a")
    (p / "manifest.json").write_text(json.dumps({"format": "other"}))
    assert _raises(mml.ArtifactError, mml.io.read_manifest, p) == (
        f"{p / 'manifest.json'} is not an mml manifest (format is not 'mml-artifact')"
    )
    q = mml.save(Box(1), tmp_path / "b")
    (q / "config.json").write_text("{not json")
    rehash(q)
    assert str(q / "config.json") in _raises(mml.ArtifactError, _load, q)
    r = mml.save(Box(1), tmp_path / "c")
    (r / "extra.txt").write_text("")
    assert _raises(mml.ArtifactError, _load, r) == (
        f"{r / 'extra.txt'} is not listed in the manifest; the artifact was tampered with"
    )


def test_from_document_checks_the_trust_of_what_the_document_names() -> None:
    doc, arrays, tables = art.to_document(Box(Tagged(3)))
    assert doc["value"] == {"v": 3, "kind": "test.artifact_values.tagged", "type": f"{__name__}:Tagged"}
    assert art.from_document(doc, arrays, tables, Box, trusted=TRUSTED) == Box(Tagged(3))
    with pytest.raises(mml.UntrustedTypeError):
        art.from_document(doc, arrays, tables, Box)
