"""The views glue pinned by value (issue 17): a head's rows (its split, in the view's order),
its columns, its batches, its backend, and the message for a split that does not exist."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.training import AppliedLoss, Experiment, InputBinding, TrainPhase
from mml.training._views import feed_backend, full_batches, head_keys, head_view

from .conftest import make_featureset

torch = pytest.importorskip("torch")


def experiment(ref=None, fs=None):
    fs = make_featureset(n=12) if fs is None else fs
    g = ModelGraph.of(
        ModelNode(
            "mlp", SequentialMLP(hidden=(2,)), ref or FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1)
        )
    )
    phase = TrainPhase.simple(
        "fit", featureset="toy", heads=["mlp"], losses=AppliedLoss("mse", "mlp"), n_epochs=1
    )
    return Experiment({"toy": fs}, g, phase)


def y_of(fs):
    return fs.column_array("targets", "y")


def test_full_batches_are_every_row_of_the_split_in_order():
    exp = experiment()
    fs = exp.featuresets["toy"]
    y = y_of(fs)
    train = list(
        full_batches(exp, "mlp", InputBinding("toy"), 4, None)
    )  # the binding's split: train, rows 0..8
    assert [len(b.targets) for b in train] == [4, 4, 1]
    assert np.array_equal(np.concatenate([b.targets.reshape(-1) for b in train]), y[:9])
    val = list(full_batches(exp, "mlp", InputBinding("toy"), 2, "val"))  # the override wins
    assert [len(b.targets) for b in val] == [2, 1]
    assert np.array_equal(np.concatenate([b.targets.reshape(-1) for b in val]), y[9:])
    every = list(full_batches(exp, "mlp", InputBinding("toy", split=None), 100, None))
    assert len(every) == 1 and np.array_equal(every[0].targets.reshape(-1), y)


def test_full_batches_follow_a_split_given_in_another_order():
    fs = make_featureset(n=12).with_split("rev", [11, 3, 7, 0], overlap="allow")
    exp = experiment(fs=fs)
    (batch,) = full_batches(exp, "mlp", InputBinding("toy", split="rev"), 10, None)
    assert np.array_equal(batch.targets.reshape(-1), y_of(fs)[[11, 3, 7, 0]])
    assert batch.sample_uuids.tolist() == fs.sample_uuids[[11, 3, 7, 0]].tolist()


def test_head_view_selects_the_refs_columns():
    fs = make_featureset(n=12)
    exp = experiment(FeatureSetRef("toy", features=["a", "c"]), fs)
    keys = head_keys(exp, "mlp", InputBinding("toy"))
    assert keys == {"features": ["a", "c"], "targets": ["y"], "tags": [], "rep": None}
    view = head_view(exp, "mlp", InputBinding("toy"))
    (batch,) = full_batches(exp, "mlp", InputBinding("toy"), 9, None)
    a_c = np.stack([fs.column_array("features", k) for k in ("a", "c")], axis=1)[:9]
    assert len(view) == 9 and np.array_equal(batch.features, a_c)
    assert len(head_view(exp, "mlp", InputBinding("toy"), "val")) == 3
    assert len(head_view(exp, "mlp", InputBinding("toy", split=None))) == 12


def test_a_split_that_does_not_exist_is_named_with_the_ones_that_do():
    exp = experiment()
    with pytest.raises(mml.TrainingError) as info:
        head_view(exp, "mlp", InputBinding("toy"), "test")
    assert str(info.value) == "FeatureSet 'toy' has no split 'test' (splits: train, val)"
    bare = mml.FeatureSet.from_dict({"a": [1.0], "y": [0.0]}, features="a", targets="y", label="toy")
    from types import SimpleNamespace

    with pytest.raises(mml.TrainingError) as info:
        head_view(SimpleNamespace(featuresets={"toy": bare}, graph=exp.graph), "mlp", InputBinding("toy"))
    assert str(info.value) == "FeatureSet 'toy' has no split 'train' (splits: none)"


def test_feed_backend():
    exp = experiment()
    assert feed_backend(exp.graph, "mlp") == "torch"
    keras = ModelGraph.of(
        ModelNode("k", SequentialMLP(hidden=(2,), backend="tensorflow"), FeatureSetRef("toy"))
    )
    assert feed_backend(keras, "k") == "tensorflow"


def test_a_head_reads_the_refs_representation_and_tags():
    fs = make_featureset(n=12)
    g = np.arange(12) % 3
    fs = mml.FeatureSet.from_dict(
        {**{k: fs.column_array("features", k) for k in ("a", "b", "c")}, "y": y_of(fs), "g": g},
        features=["a", "b", "c"],
        targets="y",
        tags="g",
        label="toy",
    ).with_split("train", np.arange(9))
    scaled = mml.scalers.fit_transform(fs, mml.scalers.MinMax())
    raw = np.stack([fs.column_array("features", k) for k in ("a", "b", "c")], axis=1)[:9]
    exp = experiment(FeatureSetRef("toy", rep="raw", tags=["g"]), scaled)
    assert head_keys(exp, "mlp", InputBinding("toy"))["rep"] == "raw"
    (batch,) = full_batches(exp, "mlp", InputBinding("toy"), 9, None)
    assert np.array_equal(batch.features, raw)
    assert np.array_equal(np.asarray(batch.tags["g"]).reshape(-1), g[:9])
    (default,) = full_batches(
        experiment(FeatureSetRef("toy", tags=["g"]), scaled), "mlp", InputBinding("toy"), 9, None
    )
    assert not np.allclose(default.features, raw) and float(default.features.min()) == 0.0
    assert float(default.features.max()) == 1.0
