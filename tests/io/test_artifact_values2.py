"""Artifacts, second round (issue 17): the bytes of both JSON files, indented and compact."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mml
from mml.io import _artifact as art

from .test_artifact_values import TRUSTED, Box, Tagged


def test_indented_json_files_are_json_dumps_with_indent_1(tmp_path: Path) -> None:
    p = mml.save(Box({"w": np.arange(3.0)}, "é"), tmp_path / "a")
    for name in ("manifest.json", "config.json"):
        raw = (p / name).read_bytes()
        assert raw == json.dumps(json.loads(raw), indent=1).encode("utf-8")
        assert b"\n " in raw
    assert "\\u00e9" in (p / "config.json").read_text()  # ASCII-only, as json.dumps writes it


def test_compact_json_files_have_no_whitespace(tmp_path: Path) -> None:
    value = Box({"w": np.arange(3.0), "f": math.inf}, [1, "x", None])
    p = art.prepare_save(value, tmp_path / "c", compact=True)()
    assert p == tmp_path / "c"
    cfg_raw, man_raw = (p / "config.json").read_bytes(), (p / "manifest.json").read_bytes()
    cfg = json.loads(cfg_raw)
    assert cfg == {
        "type": f"{Box.__module__}:Box",
        "kind": None,
        "value": {"value": {"w": {"$array": "a0"}, "f": math.inf}, "other": [1, "x", None]},
    }
    assert cfg_raw == json.dumps(cfg, separators=(",", ":")).encode("utf-8")
    assert b'"f":Infinity' in cfg_raw and b" " not in cfg_raw and b"\n" not in cfg_raw
    man = json.loads(man_raw)
    assert man_raw == json.dumps(man, separators=(",", ":")).encode("utf-8")
    assert list(man) == ["format", "format_version", "type", "kind", "mml_version", "hash", "files", "sizes"]
    back = mml.load(p, trusted=TRUSTED)
    assert back.value["w"].tolist() == [0.0, 1.0, 2.0] and back.value["f"] == math.inf
    assert back.other == [1, "x", None]


def test_json_bytes_directly() -> None:
    data = {"a": [1, 2], "b": {"c": None}}
    assert art._json_bytes(data) == b'{\n "a": [\n  1,\n  2\n ],\n "b": {\n  "c": null\n }\n}'
    assert art._json_bytes(data, compact=True) == b'{"a":[1,2],"b":{"c":null}}'
    assert art._json_bytes({"z": 1, "a": 2}) == b'{\n "z": 1,\n "a": 2\n}'  # keys keep their order
    assert art._json_bytes(float("nan"), compact=True) == b"NaN"
    assert art._json_bytes(float("-inf")) == b"-Infinity"


def test_overwrite_false_holds_against_a_target_made_during_the_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before writing is not the only one: publishing refuses a target that another
    writer created while this save was writing its files."""
    target = tmp_path / "a"
    real = art.staging

    raced: list[bool] = []

    @contextmanager
    def racing(t: Path) -> Iterator[Any]:
        with real(t) as stage:
            if not raced:
                raced.append(True)
                mml.save(Box(2), target)  # another writer, between the check and the publish
            yield stage

    monkeypatch.setattr(art, "staging", racing)
    with pytest.raises(mml.ArtifactError) as err:
        mml.save(Box(1), target, overwrite=False)
    assert str(err.value) == f"{target} exists; pass overwrite=True or choose another path"
    monkeypatch.setattr(art, "staging", real)
    assert mml.load(target, trusted=TRUSTED) == Box(2)
    assert sorted(os.listdir(tmp_path)) == ["a"]


def test_roundtrip_trusts_the_callers_own_classes() -> None:
    value = Box({"w": np.arange(2.0)}, Tagged(3))  # a user component: its document names its type
    doc, _, _ = art.to_document(value)
    assert doc["other"] == {"v": 3, "kind": Tagged.kind, "type": f"{Tagged.__module__}:Tagged"}
    back = art.roundtrip(value)
    assert type(back) is Box and back.value["w"].tolist() == [0.0, 1.0] and back.other == Tagged(3)
    with pytest.raises(mml.UntrustedTypeError):  # what roundtrip spares its caller
        art.from_document(json.loads(json.dumps(doc)), {"a0": np.arange(2.0)}, {}, Box)


def test_from_document_checks_trust_before_it_resolves_any_leaf() -> None:
    doc = {"value": {"$array": "a9"}, "other": {"kind": "x.y", "type": "os:system"}}
    with pytest.raises(mml.UntrustedTypeError) as err:  # not the missing array: trust comes first
        art.from_document(doc, {}, {}, Box)
    assert "os:system" in str(err.value)
    with pytest.raises(mml.ArtifactError) as err2:
        art.from_document({"value": {"$array": "a9"}, "other": None}, {}, {}, Box)
    assert str(err2.value) == "the document refers to array 'a9' which is not in arrays.safetensors"


def test_an_array_in_an_any_field_loads_read_only(tmp_path: Path) -> None:
    """Values hold read-only arrays (DESIGN): also one that a plain ``Any`` field holds, after a load."""
    mml.io.save(Box(value={"best": np.arange(3.0)}, other=[np.ones(2)]), tmp_path / "r")
    back = mml.io.load(tmp_path / "r", trusted=TRUSTED)
    arr, other = back.value["best"], back.other[0]
    assert arr.tolist() == [0.0, 1.0, 2.0] and other.tolist() == [1.0, 1.0]
    assert not arr.flags.writeable and not other.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        arr[0] = 5.0
