import attrs
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given

import mml
import mml.testing as mt
from mml.data import FeatureSet


def _demo(n=6):
    rng = np.random.default_rng(0)
    return FeatureSet.from_dict(
        {
            "v": rng.random((n, 4)).astype(np.float32),
            "t": rng.random(n),
            "soh": rng.random(n).astype(np.float32),
            "cell": np.array(["a", "b"] * (n // 2)),
        },
        features=["v", "t"],
        targets=["soh"],
        tags=["cell"],
        label="demo",
    )


@given(mt.featuresets())
def test_dict_roundtrip(fs):
    # dict -> FeatureSet -> dict equal
    data = {}
    for domain in ("features", "targets", "tags"):
        for k in fs.keys(domain):
            data[k] = fs.column_array(domain, k)
    again = FeatureSet.from_dict(
        data,
        features=fs.keys("features"),
        targets=fs.keys("targets"),
        tags=fs.keys("tags"),
        label=fs.label,
        key=mml.random.key(1),
    )
    for domain in ("features", "targets", "tags"):
        for k in fs.keys(domain):
            a, b = fs.column_array(domain, k), again.column_array(domain, k)
            assert a.shape == b.shape
            if a.dtype.kind == "f":
                np.testing.assert_array_equal(a, b)
            else:
                assert list(a) == list(b)


@given(mt.featuresets_with_splits())
def test_serialization_roundtrip(fs):
    assert mml.io.roundtrip(fs) == fs


def test_save_load_tensor_keys_and_splits(tmp_path):
    fs = _demo().with_split("train", [0, 2, 4]).with_split("test", [1])
    mml.save(fs, tmp_path / "fs")
    back = mml.load(tmp_path / "fs")
    assert back == fs
    assert back.key_shape("features", "v") == (4,)
    assert back["train"].to_numpy("features").shape == (3, 5)


@given(mt.featuresets_with_splits())
def test_views_never_copy_or_mutate(fs):
    before = fs.table
    uuids = fs.sample_uuids.copy()
    for _name, view in fs.splits.items():
        assert view.parent is fs
        for k in fs.keys("features"):
            view.to_numpy("features", keys=k)
        view.select(features=fs.keys("features")[:1]).take(np.arange(len(view)) % max(len(view), 1))
    assert fs.table is before
    np.testing.assert_array_equal(fs.sample_uuids, uuids)


@given(mt.featuresets())
def test_values_are_immutable(fs):
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fs.label = "other"  # type: ignore[misc]
    arr = fs.column_array("features", fs.keys()[0])
    with pytest.raises(ValueError):
        arr[0] = 1
    fs2 = fs.with_split("s", [0])
    with pytest.raises(ValueError):
        fs2.split_indices["s"][0] = 0
    with pytest.raises(TypeError):
        fs2.split_indices["t"] = np.array([0])  # type: ignore[index]
    with pytest.raises(ValueError):
        fs2["s"].indices[0] = 0


def test_zero_copy_reads():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    fs = FeatureSet.from_dict({"x": x}, features="x", label="z")
    out = fs.to_numpy("features")
    col = fs.table.column("features.x.raw").chunk(0).flatten()
    assert out.ctypes.data == np.frombuffer(col.buffers()[1], dtype=np.float32).ctypes.data + col.offset * 4
    np.testing.assert_array_equal(out, x)
    # a full view reads without gathering
    assert fs.view().to_numpy("features").ctypes.data == out.ctypes.data


def test_layout_rule():
    fs = _demo()
    assert fs.to_numpy("features").shape == (6, 5)  # (4,) + scalar -> 5
    assert fs.to_numpy("targets").shape == (6, 1)
    assert fs.to_numpy("features", keys="v").shape == (6, 4)
    np.testing.assert_array_equal(fs.to_numpy("features")[:, 4], fs.column_array("features", "t"))
    assert fs.domain_shape("features") == (5,)
    img = FeatureSet.from_dict(
        {"im": np.zeros((3, 2, 5)), "im2": np.ones((3, 2, 3))}, features=["im", "im2"], label="i"
    )
    assert img.to_numpy().shape == (3, 2, 8)
    bad = FeatureSet.from_dict(
        {"im": np.zeros((3, 2, 5)), "s": np.zeros((3, 4, 1))}, features=["im", "s"], label="b"
    )
    with pytest.raises(mml.SchemaError, match="cannot be concatenated"):
        bad.to_numpy()


def test_uuids_unique_stable_and_survive_views():
    fs = _demo(100)
    assert len(set(fs.sample_uuids.tolist())) == 100
    assert fs == _demo(100)  # same data and label -> same uuids (deterministic)
    view = fs.view().take([5, 7])
    np.testing.assert_array_equal(view.sample_uuids, fs.sample_uuids[[5, 7]])
    s = fs.uuid_strings([0])[0]
    assert len(s) == 36 and s[14] == "4"


def test_view_set_operations_and_filter():
    fs = _demo(10)
    a = fs.view().take(np.arange(0, 6))
    b = fs.view().take(np.arange(4, 10))
    assert a.intersection(b).indices.tolist() == [4, 5]
    assert a.difference(b).indices.tolist() == [0, 1, 2, 3]
    assert not a.is_disjoint_with(b)
    assert a.difference(b).is_disjoint_with(b)
    f = fs.view().filter((mml.col("cell") == "a") & mml.col("t").between(0.0, 1.0))
    assert set(f.indices.tolist()) == set(np.where(fs.column_array("tags", "cell") == "a")[0].tolist())
    assert fs.view().take_sample_uuids(fs.sample_uuids[[3, 1]]).indices.tolist() == [1, 3]
    sub = f.to_featureset(label="sub")
    assert len(sub) == len(f) and sub.label == "sub"


def test_predicates_roundtrip_and_errors():
    p = ~((mml.col("t") > 0.5) | mml.col("cell").isin(["a"])) & mml.col("t").not_in([0.1])
    assert mml.io.roundtrip(p) == p
    fs = _demo()
    p.evaluate(fs)
    with pytest.raises(mml.SchemaError, match="no key 'nope'"):
        (mml.col("nope") > 1).evaluate(fs)
    with pytest.raises(mml.SchemaError, match="scalar columns"):
        (mml.col("v") > 1).evaluate(fs)
    with pytest.raises(mml.DataError, match="lambdas"):
        fs.view().filter(lambda r: True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        (
            {"x": [1.0, 2.0], "y": [1.0]},
            {"features": ["x"], "targets": ["y"]},
            mml.DataError,
            "different numbers",
        ),
        ({"x": [1.0]}, {"features": ["x", "z"]}, mml.SchemaError, "'z'"),
        ({"x": [1.0]}, {"features": ["x"], "targets": ["x"]}, mml.SchemaError, "both"),
        ({"x": [[1.0, 2.0], [1.0]]}, {"features": ["x"]}, mml.DataError, "ragged"),
        ({"x": ["a", "b"]}, {"features": ["x"]}, mml.DataError, "numeric"),
        ({"x": np.zeros(0)}, {"features": ["x"]}, mml.DataError, "empty"),
        ({"x.y": [1.0]}, {"features": ["x.y"]}, mml.SchemaError, "not allowed"),
        ({"raw": [1.0]}, {"features": ["raw"]}, mml.SchemaError, "reserved"),
        ({"x": [1.0]}, {"features": []}, mml.SchemaError, "no features"),
    ],
)
def test_bad_input(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        FeatureSet.from_dict(data, label="bad", **kwargs)


def test_unknown_split_and_key_errors():
    fs = _demo()
    with pytest.raises(mml.SplitError, match="no split 'train'"):
        fs["train"]
    with pytest.raises(mml.SchemaError, match="no features key 'q'"):
        fs.column_array("features", "q")
    with pytest.raises(mml.SchemaError, match="transformed"):
        fs.column_array("features", "v", rep="transformed")
    with pytest.raises(mml.SplitError, match="outside"):
        fs.with_split("x", [100])


def test_from_pandas_grouped_matches_groupby_stack():
    rng = np.random.default_rng(1)
    n_groups, length = 7, 5
    df = pd.DataFrame(
        {
            "cell": np.repeat(np.arange(n_groups), length),
            "t": np.tile(np.arange(length), n_groups),
            "v": rng.random(n_groups * length),
            "soh": np.repeat(rng.random(n_groups), length),
        }
    ).sample(frac=1.0, random_state=0)
    fs = FeatureSet.from_pandas(df, features="v", targets="soh", label="p", group_by="cell", sort_by="t")
    expected = np.stack([g.sort_values("t")["v"].to_numpy() for _, g in df.groupby("cell")])
    np.testing.assert_array_equal(fs.to_numpy("features"), expected)
    assert fs.keys("tags") == ("cell",)
    assert fs.to_numpy("targets").shape == (n_groups, 1)
    with pytest.raises(mml.DataError, match="different sizes"):
        FeatureSet.from_pandas(df.iloc[1:], features="v", label="p", group_by="cell", sort_by="t")


def test_arrow_parquet_pandas_roundtrips(tmp_path):
    fs = _demo()
    fs.to_parquet(tmp_path / "d.parquet")
    back = FeatureSet.from_parquet(tmp_path / "d.parquet")
    assert back.label == "demo"
    np.testing.assert_array_equal(back.to_numpy(), fs.to_numpy())
    np.testing.assert_array_equal(back.sample_uuids, fs.sample_uuids)
    t = pa.table({"a": [1.0, 2.0], "b": [0.0, 1.0]})
    fa = FeatureSet.from_arrow(t, features="a", targets="b", label="arrow")
    assert fa.to_numpy("targets").ravel().tolist() == [0.0, 1.0]
    df = fs.to_pandas()
    assert "features.v.raw" in df.columns and len(df) == len(fs)


def test_repr_mentions_everything():
    fs = _demo().with_split("train", [0, 1])
    text = repr(fs)
    for s in ("demo", "6 samples", "v[4]", "soh", "cell", "train=2"):
        assert s in text
    html = fs._repr_html_()  # a table of keys, shapes, splits and records (not a <pre> dump)
    assert "<table" in html and all(k in html for k in ("soh", "cell", "train")) and "<pre>" not in html
