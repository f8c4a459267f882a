import json
import os

import attrs
import numpy as np
import pytest
from returns.result import Failure, Success

import mml
from mml.data import FeatureSet


def _fs():
    return FeatureSet.from_dict(
        {"x": np.arange(20, dtype=np.float32).reshape(10, 2), "y": np.arange(10.0)},
        features="x",
        targets="y",
        label="art",
    ).with_split("train", np.arange(5))


def test_save_load_and_manifest(tmp_path):
    p = mml.save(_fs(), tmp_path / "a")
    manifest = json.loads((p / "manifest.json").read_text())
    assert (
        manifest["format"] == "mml-artifact"
        and manifest["format_version"] == 2
        and manifest["hash"] == "blake3"
    )
    assert set(manifest["files"]) >= {"config.json"}
    assert mml.load(p) == _fs()
    assert mml.load(p, FeatureSet) == _fs()
    with pytest.raises(mml.ArtifactError, match="not a Key"):
        mml.load(p, mml.random.Key)


def test_try_load(tmp_path):
    p = mml.save(_fs(), tmp_path / "a")
    assert isinstance(mml.io.try_load(p), Success)
    res = mml.io.try_load(tmp_path / "missing")
    assert isinstance(res, Failure) and isinstance(res.failure(), mml.ArtifactError)


def _files(p):
    return [f for f in p.rglob("*") if f.is_file() and f.name != "manifest.json"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete_manifest", "extra_file", "delete_file"])
def test_corruption_detected(tmp_path, damage):
    p = mml.save(_fs(), tmp_path / "a")
    target = sorted(_files(p), key=lambda f: f.stat().st_size)[-1]
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "delete_manifest":
        (p / "manifest.json").unlink()
    elif damage == "extra_file":
        (p / "evil.py").write_text("print('hi')")
    else:
        target.unlink()
    with pytest.raises(mml.ArtifactError) as info:
        mml.load(p)
    assert str(p) in str(info.value)


def test_wrong_version_and_garbage(tmp_path):
    p = mml.save(_fs(), tmp_path / "a")
    m = json.loads((p / "manifest.json").read_text())
    m["format_version"] = 99
    (p / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(mml.ArtifactError, match="upgrade mml"):
        mml.load(p)
    (p / "manifest.json").write_text("{not json")
    with pytest.raises(mml.ArtifactError, match="not valid JSON"):
        mml.load(p)
    with pytest.raises(mml.ArtifactError, match="not an mml artifact"):
        mml.load(tmp_path / "nothing")


def test_failed_save_leaves_nothing(tmp_path):
    @attrs.frozen
    class Holder:
        value: object

    with pytest.raises(mml.ArtifactError, match="cannot save"):
        mml.save(Holder(object()), tmp_path / "h")
    assert os.listdir(tmp_path) == []


def test_overwrite_is_atomic_replace(tmp_path):
    p = tmp_path / "a"
    mml.save(_fs(), p)
    fs2 = _fs().with_split("test", [9])
    mml.save(fs2, p)
    assert mml.load(p) == fs2
    assert sorted(os.listdir(tmp_path)) == ["a"]
    with pytest.raises(mml.ArtifactError, match="exists"):
        mml.save(fs2, p, overwrite=False)


def test_loading_never_imports_arbitrary_types(tmp_path):
    from tests.io.helpers import edit_config

    p = mml.save(mml.random.key(1), tmp_path / "k")
    # re-hash so only the trust check can stop it
    edit_config(p, lambda cfg: {**cfg, "type": "os:system"})
    with pytest.raises(mml.UntrustedTypeError, match="os:system"):
        mml.load(p)
    with pytest.raises(mml.ArtifactError, match="not an attrs class"):
        mml.load(p, trusted=["os:system"])


def test_no_pickle_in_codebase():
    import pathlib

    root = pathlib.Path(mml.__file__).parent
    for f in root.rglob("*.py"):
        text = f.read_text()
        assert "import pickle" not in text and "torch.load(" not in text, f


def test_random_keys():
    k = mml.random.key(0)
    assert mml.random.fold_in(k, "a") != mml.random.fold_in(k, "b")
    assert mml.random.fold_in(k, 1) != mml.random.fold_in(k, 2)
    assert len(set(mml.random.split(k, 5))) == 5
    with pytest.raises(mml.ConfigError):
        mml.random.key(-1)
    a = mml.random.numpy_rng(k).random(3)
    b = mml.random.numpy_rng(k).random(3)
    np.testing.assert_array_equal(a, b)
    assert mml.io.roundtrip(k) == k


def test_components_in_any_fields_are_rebuilt():
    from typing import Any

    @attrs.frozen
    class Holder:
        spec: Any
        extra: Any = None

    h = Holder(mml.random.key(3), {"keys": [mml.data.col("t") > 1], "n": 2})
    back = mml.io.roundtrip(Holder(mml.data.col("t") > 1, {"keys": [mml.data.col("t") < 1], "n": 2}))
    assert back == Holder(mml.data.col("t") > 1, {"keys": [mml.data.col("t") < 1], "n": 2})
    assert mml.io.roundtrip(h).extra["n"] == 2


def test_byte_arrays_roundtrip_exactly(tmp_path):
    from typing import Any

    @attrs.frozen
    class Holder:
        uuids: Any

    raw = np.array([b"\x00" * 15 + b"\x01", b"\xff" * 16, b"ab" + b"\x00" * 14], dtype="S16")
    back = mml.io.roundtrip(Holder(raw)).uuids
    assert back.dtype == raw.dtype and back.shape == raw.shape
    assert back.tobytes() == raw.tobytes()
