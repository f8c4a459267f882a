"""A joining node's ``targets=`` decides what its tail is built for, trained on and evaluated
against (issue 11.1): build, the training loop, evaluate and FitPhase all read it."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import ConcatNode, FeatureSetRef, MergeNode, ModelGraph, ModelNode, NodeRef, build
from mml.models import SequentialMLP, SklearnModel
from mml.training import AppliedLoss, Experiment, FitPhase, InputBinding, PhaseGroup, TrainPhase, evaluate

torch = pytest.importorskip("torch")

N = 24


def two_targets() -> mml.FeatureSet:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype(np.float32)
    fs = mml.FeatureSet.from_dict(
        {"x": x, "y1": x[:, 0] * 2.0, "y2": x[:, 1] - 5.0}, features="x", targets=["y1", "y2"], label="fs"
    )
    return fs.with_split("train", np.arange(N))


def graph(targets: object, join: type = ConcatNode) -> ModelGraph:
    return ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=(4,), output_shape=(3,)), FeatureSetRef("fs", targets="y1")),
        ModelNode("b", SequentialMLP(hidden=(4,), output_shape=(3,)), FeatureSetRef("fs", targets="y2")),
        join("cat", (NodeRef("a"), NodeRef("b")), targets=targets),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("cat")),
        optimizer=mml.optim.adam(1e-2),
    )


def expected(fs: mml.FeatureSet, targets: object) -> np.ndarray:
    y1, y2 = fs.to_numpy("targets", "y1"), fs.to_numpy("targets", "y2")
    if targets == "concat":
        return np.concatenate([y1, y2], axis=1)
    if targets == "mean":
        return (y1 + y2) / 2
    return y2


@pytest.mark.parametrize(("targets", "shape"), [("concat", (2,)), ("mean", (1,)), (NodeRef("b"), (1,))])
@pytest.mark.parametrize("join", [ConcatNode, MergeNode])
def test_build_train_and_evaluate_read_the_join_strategy(targets: object, shape: tuple, join: type) -> None:  # type: ignore[type-arg]
    fs = two_targets()
    g = graph(targets, join)
    assert build(g, {"fs": fs}, key=0).shapes["head"].output_shape == shape
    bindings = {h: InputBinding("fs", "train", mml.SimpleSampler(8)) for h in ("a", "b")}
    exp = Experiment({"fs": fs}, g, TrainPhase("fit", bindings, AppliedLoss("mse", "head"), n_epochs=1))
    state, history = mml.run(exp, mml.init(exp, 0))
    assert history.status == "completed"
    res = evaluate(exp, state, bindings, losses=[AppliedLoss("mse", "head")])
    want = expected(fs, targets)
    np.testing.assert_array_equal(res.targets["head"], want)
    assert res.outputs["head"].shape == want.shape
    mse = float(np.mean((res.outputs["head"] - want) ** 2))
    assert res.losses["head.mse"] == pytest.approx(mse, rel=1e-5)


def test_branches_reading_the_same_targets_keep_them_once() -> None:
    fs = two_targets()
    g = ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=(4,), output_shape=(3,)), FeatureSetRef("fs", targets="y1")),
        ModelNode("b", SequentialMLP(hidden=(4,), output_shape=(2,)), FeatureSetRef("fs", targets="y1")),
        ConcatNode("cat", (NodeRef("a"), NodeRef("b"))),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("cat")),
    )
    assert build(g, {"fs": fs}, key=0).shapes["head"].output_shape == (1,)


def test_inverse_transform_splits_concatenated_targets_per_key() -> None:
    fs = mml.scalers.fit_transform(two_targets(), "standard", domain="targets", fit_on="train")
    g = graph("concat")
    bindings = {h: InputBinding("fs", "train") for h in ("a", "b")}
    exp = Experiment({"fs": fs}, g, TrainPhase("fit", bindings, AppliedLoss("mse", "head"), n_epochs=1))
    state = mml.init(exp, 0)
    scaled = evaluate(exp, state, bindings)
    raw = evaluate(exp, state, bindings, inverse_transform=True)
    np.testing.assert_allclose(raw.targets["head"], expected(two_targets(), "concat"), rtol=1e-5, atol=1e-5)
    # each output column is inverted with its own key's scaler
    mean = np.array([fs.to_numpy("targets", k, rep="raw").mean() for k in ("y1", "y2")])
    std = np.array([fs.to_numpy("targets", k, rep="raw").std() for k in ("y1", "y2")])
    np.testing.assert_allclose(raw.outputs["head"], scaled.outputs["head"] * std + mean, rtol=1e-4, atol=1e-4)


def test_fit_phase_fits_on_the_join_strategy() -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import Ridge

    fs = two_targets()
    g = ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=(4,), output_shape=(3,)), FeatureSetRef("fs", targets="y1")),
        ModelNode("b", SequentialMLP(hidden=(4,), output_shape=(3,)), FeatureSetRef("fs", targets="y2")),
        ConcatNode("cat", (NodeRef("a"), NodeRef("b")), targets=NodeRef("b")),
        ModelNode("ridge", SklearnModel("sklearn.linear_model:Ridge"), NodeRef("cat")),
    )
    bindings = {h: InputBinding("fs", "train") for h in ("a", "b")}
    exp = Experiment({"fs": fs}, g, PhaseGroup("plan", [FitPhase("fit", bindings)]))
    state0 = mml.init(exp, 0)
    state, history = mml.run(exp, state0)
    assert history.status == "completed"
    x = evaluate(exp, state0, bindings, nodes=["cat"]).outputs["cat"]
    ref = Ridge().fit(x, fs.to_numpy("targets", "y2").ravel())
    got = evaluate(exp, state, bindings, nodes=["ridge"]).outputs["ridge"]
    np.testing.assert_allclose(got.ravel(), ref.predict(x), rtol=1e-4, atol=1e-4)
