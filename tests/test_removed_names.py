"""Names 0.2 removed fail clearly, and the replacement each names does the job.

One way to scale (issue 12): the free functions of ``mml.scalers`` (and ``mml.transform_like``,
``mml.FeatureSetRef.of``); the 0.1 methods that called them are gone, so the data layer imports
nothing above it. A call of a removed method raises :class:`mml.RemovedNameError` whose message is
the call to write instead; that call, run as written, gives the 0.1 result.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import mml
from mml.scalers import fit_transform, inverse_transform, undo_all_transforms, undo_last_transform

REMOVED = {
    "fit_transform": "mml.scalers.fit_transform(fs, scaler, domain=..., keys=..., fit_on=...)",
    "undo_last_transform": "mml.scalers.undo_last_transform(fs)",
    "undo_all_transforms": "mml.scalers.undo_all_transforms(fs)",
    "inverse_transform": "mml.scalers.inverse_transform(fs, array, domain=..., keys=...)",
    "transform_like": "mml.transform_like(fs, data)",
    "ref": "mml.FeatureSetRef.of(fs, **selection)",
}


@pytest.fixture(scope="module")
def fs():
    fs = mml.datasets.load_battery(60, seed=0)
    return fs.split(mml.RandomSplitter({"train": 0.7, "test": 0.3}, seed=0, group_by="cell_id"))


@pytest.mark.parametrize("name", sorted(REMOVED))
def test_a_removed_method_names_its_replacement(fs, name):
    with pytest.raises(mml.RemovedNameError) as info:
        getattr(fs, name)  # the attribute itself, before any call
    assert str(info.value) == (
        f"FeatureSet.{name} was removed in mml 0.2: scaling is one free function per operation, so "
        f"the data layer imports nothing above it; call {REMOVED[name]} instead"
    )
    assert isinstance(info.value, AttributeError) and isinstance(info.value, mml.MMLError)
    assert not hasattr(fs, name)
    assert not hasattr(fs.view(), name)  # a view has none of them either


def test_other_missing_attributes_are_plain_attribute_errors(fs):
    with pytest.raises(
        AttributeError, match=re.escape("'FeatureSet' object has no attribute 'nope'")
    ) as info:
        fs.nope  # noqa: B018
    assert not isinstance(info.value, mml.MMLError)
    assert info.value.name == "nope" and info.value.obj is fs  # what Python's "did you mean" reads
    assert getattr(fs, "nope", 7) == 7


def test_every_named_replacement_resolves_to_a_public_callable():
    for instead in REMOVED.values():
        path = instead.split("(")[0].split(".")
        obj = mml
        for part in path[1:]:
            obj = getattr(obj, part)
        assert callable(obj), instead


def test_the_replacements_do_what_the_methods_did(fs):
    a = fit_transform(fs, "standard", domain="features", fit_on="train")
    b = fit_transform(a, "minmax", domain="targets", fit_on="train")
    assert undo_last_transform(b) == a
    assert undo_all_transforms(b).records == fs.records
    assert undo_all_transforms(b) == fs
    raw = inverse_transform(b, b.to_numpy("targets"), domain="targets")
    np.testing.assert_allclose(raw.ravel(), fs.to_numpy("targets").ravel(), rtol=1e-6)
    new = mml.transform_like(a, a.to_pandas().head(7))  # the raw columns are kept beside the transformed
    np.testing.assert_array_equal(new.to_numpy("features"), a.to_numpy("features")[:7])
    assert mml.FeatureSetRef.of(fs) == mml.FeatureSetRef(fs.label)
    assert mml.FeatureSetRef.of(fs, features="voltage").features == ("voltage",)


def test_apply_split_is_gone_and_fs_split_is_the_one_way(fs):
    assert not hasattr(mml.splitters, "apply_split")
    s = mml.RandomSplitter({"a": 0.5, "b": 0.5}, seed=1)
    assert fs.split(s, on="train") == s.split_featureset(fs, on="train", key=None)


@pytest.mark.parametrize(
    ("module", "name", "instead"),
    [
        ("mml.optim", "get", "mml.optim.get_optimizer(name, **hyperparameters)"),
        ("mml.splitters", "apply_split", "fs.split(splitter, on=..., key=...)"),
        ("mml.backends", "init", "mml.backends.init_params(spec, input_shape, output_shape, key=...)"),
    ],
)
def test_a_removed_module_name_names_its_replacement(module, name, instead):
    import importlib

    mod = importlib.import_module(module)
    with pytest.raises(mml.RemovedNameError) as info:
        getattr(mod, name)
    assert str(info.value) == f"{module}.{name} was removed in mml 0.2; call {instead} instead"
    assert not hasattr(mod, name)
    with pytest.raises(AttributeError, match=re.escape(f"module {module!r} has no attribute 'nope'")) as plain:
        mod.nope  # noqa: B018
    assert not isinstance(plain.value, mml.MMLError)


def test_the_renamed_names_are_the_ones_the_messages_name():
    assert mml.optim.get_optimizer("adam", lr=0.1) == mml.optim.Adam(lr=0.1)
    assert mml.scalers.get_scaler("minmax") == mml.scalers.MinMax()
    p = mml.backends.init_params(mml.SequentialMLP(hidden=(2,)), (3,), (1,), key=mml.random.key(0))
    assert (p.input_shape, p.output_shape) == ((3,), (1,))
