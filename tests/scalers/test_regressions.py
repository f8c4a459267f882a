"""Pinned behaviour from a bug hunt of FeatureSet scalers (chains, undo, partial inverses)."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.splitters import RandomSplitter


def _fs() -> mml.FeatureSet:
    rng = np.random.default_rng(0)
    return mml.FeatureSet.from_dict(
        {
            "x": rng.normal(size=10).astype(np.float32),
            "t": rng.normal(size=(10, 2, 3)) + 3,
            "u": rng.normal(size=(10, 4)) * 5,
            "y": rng.normal(size=10),
        },
        features=["x"],
        targets=["y", "t", "u"],
        label="s",
    ).with_split("train", range(8))


def _chained(fs: mml.FeatureSet) -> mml.FeatureSet:
    once = mml.scalers.fit_transform(fs, "standard", domain="targets", keys=["y", "u"])
    return mml.scalers.fit_transform(once, "minmax", domain="targets", keys=["u", "t"], fit_on=None)


@pytest.mark.parametrize("keys", [["y", "u"], ["u"], ["t"], ["u", "y"], "y"])
def test_inverse_of_overlapping_chain_for_a_subset_of_keys(keys) -> None:
    f = _chained(_fs())
    back = mml.scalers.inverse_transform(f, f.to_numpy("targets", keys), keys=keys)
    np.testing.assert_allclose(back, f.to_numpy("targets", keys, rep="raw"), atol=1e-12)


def test_undo_of_overlapping_chain() -> None:
    fs = _fs()
    f = _chained(fs)
    assert mml.scalers.undo_last_transform(f) == mml.scalers.fit_transform(
        fs, "standard", domain="targets", keys=["y", "u"]
    )
    assert mml.scalers.undo_all_transforms(f) == fs
    assert mml.scalers.undo_last_transform(mml.scalers.undo_last_transform(f)) == fs


def test_undo_after_a_later_split_keeps_the_split() -> None:
    fs = _fs()
    sp = RandomSplitter({"a": 0.5, "b": 0.5})
    k = mml.random.key(1)
    once = mml.scalers.fit_transform(fs, "standard", keys=["x"])
    f2 = mml.scalers.fit_transform(once, "minmax", keys=["x"], fit_on=None).split(sp, on="train", key=k)
    assert mml.scalers.undo_last_transform(f2) == once.split(sp, on="train", key=k)
    assert mml.scalers.undo_all_transforms(f2) == fs.split(sp, on="train", key=k)


@pytest.mark.parametrize("scaler", ["minmax", "standard", "robust", "maxabs"])
def test_tensor_key_fit_on_all_rows(scaler: str) -> None:
    fs = _fs()
    f = mml.scalers.fit_transform(fs, scaler, domain="targets", keys=["t"], fit_on=None)
    assert f.column_array("targets", "t").shape == (10, 2, 3)
    assert f.records[-1].n_fit == 10
    np.testing.assert_allclose(
        mml.scalers.inverse_transform(f, f.to_numpy("targets", "t"), keys="t"),
        fs.column_array("targets", "t"),
        atol=1e-12,
    )
    assert mml.io.roundtrip(f) == f


def test_segmented_edge_list_gets_one_error_that_says_drop_0_and_the_length() -> None:
    # regression: [0, 50, 110] first failed for the 0, then (with 0 dropped) for the 110
    from mml.scalers import MinMax, Segmented

    with pytest.raises(
        mml.ScalerError, match=r"drop 0 and the length — boundaries=\(50,\) if 110 is the axis length"
    ):
        Segmented(boundaries=[0, 50, 110], scalers=(MinMax(),))
    x = np.arange(220.0).reshape(2, 110)
    with pytest.raises(
        mml.ScalerError, match=r"end at the axis length 110.*drop the length — boundaries=\(50,\)"
    ):
        Segmented(boundaries=[50, 110], scalers=(MinMax(),)).fit(x)
    seg = Segmented(boundaries=(50,), scalers=(MinMax(),))
    y = seg.apply(seg.fit(x), x)
    assert (
        y[:, :50].min() == 0.0
        and y[:, :50].max() == 1.0
        and y[:, 50:].min() == 0.0
        and y[:, 50:].max() == 1.0
    )
    with pytest.raises(mml.ScalerError, match="strictly increasing positive ints"):
        Segmented(boundaries=[5, 3], scalers=(MinMax(),))
