"""Regressions found in a bug hunt of the data layer (views, multi-key reads, pandas, Parquet)."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.errors import DataError, SchemaError


def _mixed() -> mml.FeatureSet:
    return mml.FeatureSet.from_dict(
        {
            "i": np.arange(6, dtype=np.int64),
            "f32": np.arange(6, dtype=np.float32) / 2,
            "f64": np.arange(6.0) * 10,
            "t": np.arange(36.0).reshape(6, 2, 3),
            "s": list("abcdef"),
            "y": np.arange(6.0),
        },
        features=["i", "f32", "f64", "t"],
        targets=["y"],
        tags=["s"],
        label="mixed",
    )


@pytest.mark.parametrize("keys", [["i", "f64"], ["f32", "f64"], ["i", "f32"], ["i", "f32", "f64"]])
def test_multi_key_to_numpy_of_a_view_with_mixed_dtypes(keys: list[str]) -> None:
    # np.take(out=) refused int64 -> float64 and float32 -> float64 gathers: views raised TypeError.
    fs = _mixed()
    v = fs.view().filter(mml.col("i") > 1).take([2, 0])
    got = v.to_numpy("features", keys)
    want = np.stack([fs.column_array("features", k)[[4, 2]] for k in keys], axis=1)
    assert got.dtype == np.result_type(*(fs.key_dtype("features", k) for k in keys))
    np.testing.assert_array_equal(got, want)


def test_select_rep_raw_then_to_numpy_reads_raw() -> None:
    fs = mml.scalers.fit_transform(_mixed().with_split("train", [0, 1, 2]), "minmax", keys=["f64"])
    raw = fs.view().select(features=["f64"], rep="raw")
    np.testing.assert_array_equal(raw.to_numpy().ravel(), np.arange(6.0) * 10)
    np.testing.assert_array_equal(raw.column_array("features", "f64"), np.arange(6.0) * 10)
    # Without a rep the transformed column is read, per key (i has no transformed column).
    both = fs.view().select(features=["i", "f64"])
    np.testing.assert_allclose(both.to_numpy()[:, 1], np.arange(6.0) / 2)
    with pytest.raises(SchemaError, match="transformed"):
        raw.to_numpy(rep="transformed")


def test_string_tag_with_missing_values_is_refused() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "s": ["a", None, "c"]})
    with pytest.raises(DataError, match="missing"):
        mml.FeatureSet.from_pandas(df, features=["x"], tags=["s"], label="p")
    df2 = pd.DataFrame({"x": [1.0, 2.0], "s": pd.array(["a", pd.NA], dtype="string")})
    with pytest.raises(DataError, match="missing"):
        mml.FeatureSet.from_pandas(df2, features=["x"], tags=["s"], label="p")


def test_from_pandas_categorical_tag_and_nan_group() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "s": pd.Categorical(["a", "b", "a"])})
    fs = mml.FeatureSet.from_pandas(df, features=["x"], tags=["s"], label="p")
    assert fs.column_array("tags", "s").tolist() == ["a", "b", "a"]
    bad = pd.DataFrame({"g": [1.0, np.nan, 1.0], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="missing"):
        mml.FeatureSet.from_pandas(bad, features=["x"], group_by="g", label="q")


def test_parquet_round_trip_is_equal(tmp_path) -> None:
    fs = _mixed()
    fs.to_parquet(tmp_path / "m.parquet")
    back = mml.FeatureSet.from_parquet(tmp_path / "m.parquet")
    assert back == fs
    assert back.key_shape("features", "t") == (2, 3)
    assert back.column_array("tags", "s").tolist() == list("abcdef")
    np.testing.assert_array_equal(back.to_numpy("features", ["t"]), fs.to_numpy("features", ["t"]))


def test_intersection_across_featuresets_is_by_uuid() -> None:
    fs = _mixed().with_split("train", [0, 1, 2])
    scaled = mml.scalers.fit_transform(
        fs, "minmax", keys=["f64"]
    )  # same rows, same UUIDs, another FeatureSet
    both = fs.view().take([1, 3, 5]).intersection(scaled["train"])
    assert both.indices.tolist() == [1]
    assert both.parent is fs
    # with_split accepts a view of an equal table, refuses one of other rows.
    assert fs.with_split("v", fs.view().take([4])).split_indices["v"].tolist() == [4]
    other = mml.FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="o")
    with pytest.raises(mml.errors.SplitError):
        fs.with_split("v", other.view())


def test_select_keeps_the_requested_key_order() -> None:
    # keys() followed the parent's order, so select(targets=["f64", "i"]).to_numpy() swapped them.
    fs = _mixed()
    v = fs.view().select(features=["f64", "i"])
    assert v.keys() == ("f64", "i")
    np.testing.assert_array_equal(v.to_numpy(), fs.to_numpy("features", ["f64", "i"]))


def test_with_split_reports_overlap_like_condition_splitter() -> None:
    # regression: adding a split that shares rows with an existing one said nothing
    import warnings

    from mml.errors import SplitError
    from mml.splitters import OverlappingSplitsWarning

    fs = mml.FeatureSet.from_dict({"x": np.arange(6.0)}, features="x", label="ov").with_split(
        "train", [0, 1, 2, 3]
    )
    with pytest.warns(OverlappingSplitsWarning, match=r"shares rows with 'train' \(2 rows, e\.g\. row 2\)"):
        out = fs.with_split("test", [2, 3, 4, 5])
    assert out["test"].indices.tolist() == [2, 3, 4, 5]  # still added: a warning, not a refusal
    with pytest.raises(SplitError, match="overlap='allow'"):
        fs.with_split("test", [3, 4], overlap="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fs.with_split("test", [4, 5])  # disjoint
        fs.with_split("train", [0, 5])  # replaces itself
        fs.with_split("train/part", [0, 1])  # a part of train
        fs.with_split("test", [3, 4], overlap="allow")
    with pytest.raises(SplitError, match="overlap= is one of"):
        fs.with_split("test", [4], overlap="loud")
