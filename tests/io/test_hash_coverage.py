"""Every file of an artifact is covered by its hash (issue 17: "the artifact hash compared for
some file types only" survived the suite).

One byte of each file — config, arrays, each table — is changed in place (same size, so the
size check passes and only the hash can catch it), and the load must name that file.
"""

import json

import attrs
import numpy as np
import pytest

import mml
from mml.data import FeatureSet


@attrs.frozen
class Bundle:
    fs: FeatureSet
    key: mml.random.Key
    w: np.ndarray


TRUSTED = [f"{__name__}:*"]


def _saved(tmp_path):
    fs = FeatureSet.from_dict(
        {"x": np.arange(20, dtype=np.float32).reshape(10, 2), "y": np.arange(10.0)},
        features="x",
        targets="y",
        label="hash",
    ).with_split("train", np.arange(5))
    state = Bundle(fs, mml.random.key(7), np.arange(6.0).reshape(2, 3))
    p = mml.save(state, tmp_path / "a")
    return p


def _flip(path, at=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def test_the_saved_artifact_has_every_file_type(tmp_path):
    p = _saved(tmp_path)
    files = json.loads((p / "manifest.json").read_text())["files"]
    assert "config.json" in files
    assert "arrays.safetensors" in files
    assert any(n.startswith("tables/") and n.endswith(".arrow") for n in files)


@pytest.mark.parametrize("which", ["config.json", "arrays.safetensors", "table"])
def test_one_changed_byte_in_any_file_is_a_hash_error_naming_it(tmp_path, which):
    p = _saved(tmp_path)
    names = sorted(json.loads((p / "manifest.json").read_text())["files"])
    targets = [n for n in names if n.startswith("tables/")] if which == "table" else [which]
    assert targets
    for name in targets:
        q = _saved(tmp_path / name.replace("/", "_"))
        target = q / name
        size = target.stat().st_size
        if name == "config.json":
            text = target.read_bytes()
            i = text.index(b'"hash"')  # the FeatureSet label: still valid JSON after the change
            target.write_bytes(text[:i] + b'"hasi"' + text[i + 6 :])
        else:
            _flip(target)
        assert target.stat().st_size == size
        with pytest.raises(mml.ArtifactError) as info:
            mml.load(q, trusted=TRUSTED)
        assert str(info.value) == (
            f"{q / name} does not match its BLAKE3 hash in the manifest: the file is corrupted or was modified"
        )
        with pytest.raises(mml.ArtifactError, match="does not match its BLAKE3 hash"):
            mml.io.read_document(q)


def test_an_unchanged_artifact_loads(tmp_path):
    p = _saved(tmp_path)
    back = mml.load(p, trusted=TRUSTED)
    assert back.key == mml.random.key(7)
    np.testing.assert_array_equal(back.w, np.arange(6.0).reshape(2, 3))
    assert back.fs.label == "hash" and len(back.fs) == 10
