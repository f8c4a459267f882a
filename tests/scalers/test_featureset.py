"""Laws of scalers on FeatureSets: undo is exact, no leakage, inputs untouched, records round-trip."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml.errors import NotInvertibleError, ScalerError, SchemaError, SplitError
from mml.scalers import (
    Absolute,
    Log1p,
    MaxAbs,
    MinMax,
    Negate,
    PerSampleMinMax,
    PerSampleZeroStart,
    Robust,
    ScalerRecord,
    Segmented,
    Standard,
    fit_transform,
    inverse_transform,
    undo_all_transforms,
    undo_last_transform,
)

sk = pytest.importorskip("sklearn.preprocessing")

SCALERS: list[Any] = [
    "minmax",
    "StandardScaler",
    MaxAbs(),
    Robust(),
    Negate(),
    Absolute(),
    Log1p(),
    PerSampleMinMax(),
    PerSampleZeroStart(),
    Segmented(boundaries=(2,), scalers=(Standard(),)),
    sk.QuantileTransformer(n_quantiles=5),
    sk.PowerTransformer,
    sk.Normalizer(),
]
INVERTIBLE_ON_TARGETS: list[Any] = [
    "minmax",
    "standard",
    MaxAbs(),
    Robust(),
    Negate(),
    Log1p(),
    sk.PowerTransformer(),
]


def make_fs(seed: int = 0, n: int = 12, train: float = 0.75) -> mml.FeatureSet:
    rng = np.random.default_rng(seed)
    fs = mml.FeatureSet.from_dict(
        {
            "series": rng.uniform(0, 10, size=(n, 4)).astype(np.float32),
            "img": rng.uniform(0, 5, size=(n, 2, 3)),
            "temp": rng.uniform(0, 40, size=n),
            "soh": rng.uniform(0.5, 1.0, size=n),
            "vec": rng.uniform(1, 3, size=(n, 2)),
            "cell": np.array(["a", "b"] * (n // 2)),
        },
        features=["series", "img", "temp"],
        targets=["soh", "vec"],
        tags=["cell"],
        label="cells",
    )
    return fs.with_split("train", np.arange(int(train * n))).with_split("test", np.arange(int(train * n), n))


def copy_of(fs: mml.FeatureSet) -> mml.FeatureSet:
    return mml.FeatureSet(
        label=fs.label,
        table=pa.Table.from_batches(fs.table.to_batches(), schema=fs.table.schema)
        if fs.table.num_rows
        else fs.table,
        split_indices={k: np.array(v) for k, v in fs.split_indices.items()},
        records=fs.records,
    )


@pytest.mark.parametrize("scaler", SCALERS, ids=lambda s: repr(s)[:40])
@pytest.mark.parametrize("keys", [None, "series", ["img", "series"]])
def test_undo_fit_transform_is_identity(scaler: Any, keys: Any) -> None:
    fs = make_fs()
    before = copy_of(fs)
    out = fit_transform(fs, scaler, keys=keys if keys is not None else ["series", "img"])
    assert fs == before  # input unchanged
    assert out != fs
    assert isinstance(out.records[-1], ScalerRecord)
    assert undo_last_transform(out) == fs
    assert undo_all_transforms(out) == fs
    for k in out.records[-1].keys:
        np.testing.assert_array_equal(out.column_array("features", k, "raw"), fs.column_array("features", k))
        assert out.reps("features", k) == ("raw", "transformed")


def test_scalar_keys_and_all_keys_default() -> None:
    fs = make_fs()
    out = mml.scalers.fit_transform(fs, "standard", keys=["temp"])
    y = out.column_array("features", "temp")
    train = y[fs.split_indices["train"]]
    assert abs(train.mean()) < 1e-9 and abs(train.std() - 1) < 1e-9
    assert mml.scalers.undo_last_transform(out) == fs
    every = mml.scalers.fit_transform(fs, "minmax")
    assert every.records[-1].keys == ("series", "img", "temp")


def test_chained_scalers_undo_step_by_step() -> None:
    fs0 = make_fs()
    fs1 = fit_transform(fs0, "standard", keys=["series", "temp"])
    fs2 = fit_transform(fs1, "minmax", keys="series")
    fs3 = fit_transform(fs2, Negate(), domain="targets", fit_on=None)
    fs4 = fit_transform(fs3, "maxabs", keys=["temp", "img"], fit_on="test")
    assert fs4.records[-1].input_reps == ("transformed", "raw")
    # the chained scaler reads the current representation
    expected = MinMax().apply(fs2.records[-1].params_of("series"), fs1.column_array("features", "series"))
    np.testing.assert_array_equal(fs2.column_array("features", "series"), expected)
    assert undo_last_transform(fs4) == fs3
    assert undo_last_transform(fs3) == fs2
    assert undo_last_transform(fs2) == fs1
    assert undo_last_transform(fs1) == fs0
    assert undo_all_transforms(fs4) == fs0
    assert undo_all_transforms(fs0) == fs0


def test_undo_keeps_other_records_and_splits() -> None:
    fs = make_fs()
    out = fit_transform(fs, "minmax", keys="temp").with_split("extra", [0, 1], overlap="allow")
    undone = undo_last_transform(out)
    assert undone == fs.with_split("extra", [0, 1], overlap="allow")


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    shift=st.floats(-1e3, 1e3),
    scaler=st.sampled_from(["minmax", "standard", MaxAbs(), Robust()]),
)
def test_params_depend_only_on_fit_rows(seed: int, shift: float, scaler: Any) -> None:
    fs = make_fs(seed)
    test_rows = fs.split_indices["test"]
    x = np.array(fs.column_array("features", "series"))
    x[test_rows] += np.float32(shift)  # change only the rows outside the fit split
    changed = mml.FeatureSet.from_dict({"series": x}, features="series", label="cells").with_split(
        "train", fs.split_indices["train"]
    )
    a = fit_transform(fs, scaler, keys="series").records[-1]
    b = fit_transform(changed, scaler, keys="series").records[-1]
    assert a.params == b.params
    # the fit rows of the output are identical too
    rows = fs.split_indices["train"]
    np.testing.assert_array_equal(
        fit_transform(fs, scaler, keys="series").column_array("features", "series")[rows],
        fit_transform(changed, scaler, keys="series").column_array("features", "series")[rows],
    )


def test_fit_on_none_uses_all_rows() -> None:
    fs = make_fs()
    rec = fit_transform(fs, "minmax", keys="temp", fit_on=None).records[-1]
    assert rec.n_fit == len(fs) and rec.fit_on is None
    t = fs.column_array("features", "temp")
    np.testing.assert_allclose(rec.params[0].scale_, [1 / (t.max() - t.min())])


@pytest.mark.parametrize("scaler", INVERTIBLE_ON_TARGETS, ids=lambda s: repr(s)[:40])
def test_inverse_transform_maps_back_to_raw(scaler: Any) -> None:
    fs = make_fs()
    out = fit_transform(fs, scaler, domain="targets")
    out = fit_transform(out, "minmax", domain="targets", keys="soh")  # a chain on one key
    transformed = out.to_numpy("targets")
    before = transformed.copy()
    back = inverse_transform(out, transformed)
    np.testing.assert_array_equal(transformed, before)
    np.testing.assert_allclose(back, fs.to_numpy("targets"), rtol=1e-9, atol=1e-9)
    one = mml.scalers.inverse_transform(out, out.to_numpy("targets", keys="soh"), keys="soh")
    assert one.shape == (len(fs), 1)
    np.testing.assert_allclose(one, fs.to_numpy("targets", keys="soh"), rtol=1e-9, atol=1e-9)
    # model outputs for new rows: any number of rows
    np.testing.assert_allclose(
        inverse_transform(out, transformed[:3], keys=["soh", "vec"]),
        fs.to_numpy("targets")[:3],
        rtol=1e-9,
        atol=1e-9,
    )


def test_inverse_transform_tensor_feature_and_errors() -> None:
    fs = make_fs()
    out = fit_transform(fs, "standard", keys="img")
    np.testing.assert_allclose(
        inverse_transform(out, out.column_array("features", "img"), domain="features", keys="img"),
        fs.column_array("features", "img"),
    )
    untouched = inverse_transform(out, np.ones((2, 1)), domain="features", keys="temp")
    np.testing.assert_array_equal(untouched, np.ones((2, 1)))
    with pytest.raises(ScalerError, match=r"expected an array of shape \(n, 2, 3\)"):
        inverse_transform(out, np.ones((2, 6)), domain="features", keys="img")
    ps = fit_transform(fs, PerSampleMinMax(), domain="targets", keys="vec")
    with pytest.raises(NotInvertibleError, match="targets key 'vec'"):
        inverse_transform(ps, np.ones((2, 2)), keys="vec")


def test_errors_name_the_thing() -> None:
    fs = make_fs()
    with pytest.raises(ScalerError, match="'cell'"):
        fit_transform(fs, "minmax", domain="tags", keys="cell")
    with pytest.raises(SchemaError, match="'nope'"):
        fit_transform(fs, "minmax", keys="nope")
    with pytest.raises(SchemaError, match="'soh'"):
        fit_transform(fs, "minmax", keys="soh")  # a target, not a feature
    with pytest.raises(SchemaError, match="domain"):
        fit_transform(fs, "minmax", domain="inputs")
    with pytest.raises(SplitError, match=r"fit_on='val'.*train, test"):
        fit_transform(fs, "minmax", fit_on="val")
    with pytest.raises(ScalerError, match="valid names"):
        fit_transform(fs, "minmux")
    with pytest.raises(ScalerError, match="no scaler records"):
        undo_last_transform(fs)
    with pytest.raises(ScalerError, match=r"features key 'temp'.*> -1"):
        fit_transform(mml.scalers.fit_transform(fs, Negate(), keys="temp"), Log1p(), keys="temp")
    with pytest.raises(ScalerError, match="0 samples"):
        fit_transform(fs.with_split("empty", np.array([], dtype=np.int64)), "minmax", fit_on="empty")


def test_record_and_featureset_round_trip(tmp_path: Any) -> None:
    fs = make_fs()
    out = fit_transform(fs, "standard", keys=["series", "img"])
    out = fit_transform(out, sk.QuantileTransformer(n_quantiles=5), domain="targets", keys="soh")
    out = fit_transform(out, Segmented(boundaries=(1,), scalers=(MinMax(), Absolute())), keys="series")
    for rec in out.records:
        assert mml.io.roundtrip(rec) == rec
    path = os.path.join(tmp_path, "fs")
    mml.save(out, path)
    loaded = mml.load(path)
    assert loaded == out
    assert undo_last_transform(loaded) == undo_last_transform(out)
    assert undo_all_transforms(loaded) == fs
    # the loaded records re-apply to identical values
    rec = loaded.records[-1]
    np.testing.assert_array_equal(
        rec.scaler.apply(
            rec.params_of("series"), undo_last_transform(loaded).column_array("features", "series")
        ),
        out.column_array("features", "series"),
    )


def test_featureset_methods_delegate() -> None:
    fs = make_fs()
    out = mml.scalers.fit_transform(fs, "minmax", keys="temp")
    assert out == fit_transform(fs, "minmax", keys="temp")
    assert mml.scalers.undo_last_transform(out) == fs
    assert mml.scalers.undo_all_transforms(out) == fs
