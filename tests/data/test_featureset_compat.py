"""The FeatureSet's 0.1 spellings are their free functions: the same call, the same result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mml
from mml.graph import FeatureSetRef
from mml.scalers import fit_transform, inverse_transform, undo_all_transforms, undo_last_transform
from mml.splitters import apply_split


@pytest.fixture(scope="module")
def fs():
    fs = mml.datasets.load_battery(60, seed=0)
    return fs.split(mml.RandomSplitter({"train": 0.7, "test": 0.3}, seed=0, group_by="cell_id"))


def test_scaling_methods_equal_the_free_functions(fs):
    a = fs.fit_transform("standard", domain="features", fit_on="train")
    assert a == fit_transform(fs, "standard", domain="features", fit_on="train")
    b = a.fit_transform("minmax", domain="targets", fit_on="train")
    assert b == fit_transform(a, "minmax", domain="targets", fit_on="train")
    assert b.undo_last_transform() == undo_last_transform(b) == a
    assert b.undo_all_transforms() == undo_all_transforms(b)
    assert b.undo_all_transforms().records == fs.records
    scaled = b.to_numpy("targets")
    raw = b.inverse_transform(scaled, domain="targets")
    np.testing.assert_array_equal(raw, inverse_transform(b, scaled, domain="targets"))
    np.testing.assert_allclose(raw.ravel(), fs.to_numpy("targets").ravel(), rtol=1e-6)


def test_transform_like_ref_and_apply_split_equal_theirs(fs):
    scaled = fs.fit_transform("standard", domain="features", fit_on="train")
    new = scaled.to_pandas().head(7)
    raw = pd.DataFrame(new)  # the raw columns are kept beside the transformed ones
    assert scaled.transform_like(raw) == mml.transform_like(scaled, raw)
    assert fs.ref() == FeatureSetRef.of(fs) == FeatureSetRef(fs.label)
    s = mml.RandomSplitter({"a": 0.5, "b": 0.5}, seed=1)
    assert apply_split(fs, s, on="train") == fs.split(s, on="train")
    with pytest.raises(mml.errors.SplitError, match="apply_split takes a FeatureSet first, got str"):
        apply_split("fs", s)
