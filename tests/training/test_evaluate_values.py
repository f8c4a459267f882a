"""Evaluation pinned by value: losses averaged over samples, stacked outputs, raw units (issue 17).

A linear node evaluated in batches of 4 over a 10-row split (4 + 4 + 2) is compared with the same
affine map in numpy on the whole split; standard-scaled targets are inverted by hand.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import mml
from mml.training import AppliedLoss, EvalPhase, Experiment, InputBinding, TrainPhase, evaluate, steps

from .conftest import make_featureset

torch = pytest.importorskip("torch")


def _setup():
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP

    s = SimpleNamespace()
    raw = make_featureset(n=40)
    s.fs = mml.scalers.fit_transform(raw, "standard", domain="targets", fit_on="train")
    g = ModelGraph.of(
        ModelNode("lin", SequentialMLP(hidden=()), FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1))
    )
    phase = TrainPhase.simple("fit", featureset="toy", heads=["lin"], losses=AppliedLoss("mse", "lin"))
    exp = Experiment({"toy": s.fs}, g, phase)
    state = mml.init(exp, 3)
    p = state.params("lin").params
    w = p["layers.0.weight"].detach().numpy().astype(np.float64)
    b = p["layers.0.bias"].detach().numpy().astype(np.float64)
    s.rows = s.fs.rows("val")
    x = raw.to_numpy("features")[s.rows].astype(np.float64)
    s.y_raw = raw.to_numpy("targets")[s.rows].astype(np.float64)
    train_y = raw.to_numpy("targets")[s.fs.rows("train")].astype(np.float64)
    s.mean, s.std = train_y.mean(axis=0), train_y.std(axis=0)
    s.exp, s.state, s.out = exp, state, x @ w.T + b
    return s


def test_losses_are_sample_means_and_outputs_are_stacked_in_order():
    s = _setup()
    exp, state, out = s.exp, s.state, s.out
    y = (s.y_raw - s.mean) / s.std
    losses = [AppliedLoss("mse", "lin"), AppliedLoss("mae", "lin", weight=3.0)]
    res = evaluate(exp, state, exp.plan.inputs, losses=losses, batch_size=4, split="val", label="check")
    assert res.phase == "check"
    mse, mae = float(np.mean((out - y) ** 2)), float(np.mean(np.abs(out - y)))
    assert res.losses.keys() == {"lin.mse", "lin.mae", "loss"}
    assert res.losses["lin.mse"] == pytest.approx(mse, rel=1e-5)
    assert res.losses["lin.mae"] == pytest.approx(mae, rel=1e-5)
    assert res.losses["loss"] == pytest.approx(mse + 3.0 * mae, rel=1e-5)
    assert list(res.outputs) == ["lin"] and res.outputs["lin"].shape == (10, 1)
    np.testing.assert_allclose(res.outputs["lin"], out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.targets["lin"], y, rtol=1e-5, atol=1e-6)
    assert res.sample_uuids.keys() == {"default"}
    assert res.sample_uuids["default"].tolist() == s.fs.sample_uuids[s.rows].tolist()


def test_without_losses_there_is_no_total_and_the_binding_split_is_used():
    s = _setup()
    exp, state = s.exp, s.state
    res = evaluate(exp, state, exp.plan.inputs, batch_size=1024)
    assert dict(res.losses) == {}
    assert res.phase == "eval"
    assert res.outputs["lin"].shape == (30, 1)  # the binding's own split: train
    assert res.sample_uuids["default"].tolist() == s.fs.sample_uuids[s.fs.rows("train")].tolist()


def test_inverse_transform_gives_raw_units():
    s = _setup()
    exp, state, out = s.exp, s.state, s.out
    res = evaluate(exp, state, exp.plan.inputs, batch_size=3, split="val", inverse_transform=True)
    np.testing.assert_allclose(res.targets["lin"], s.y_raw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(res.outputs["lin"], out * s.std + s.mean, rtol=1e-5, atol=1e-5)


def test_an_eval_phase_yields_one_eval_context():
    s = _setup()
    exp, state, out = s.exp, s.state, s.out
    phase = EvalPhase.simple(
        "test", featureset="toy", heads=["lin"], split="val", losses=[AppliedLoss("mae", "lin")], batch_size=4
    )
    got = list(steps(exp, phase, state))
    assert len(got) == 1
    st, ctx = got[0]
    assert st is state
    y = (s.y_raw - s.mean) / s.std
    assert (ctx.phase, ctx.epoch, ctx.batch, ctx.step, ctx.event) == ("test", 0, -1, state.step, "eval")
    assert dict(ctx.inputs) == {}
    assert ctx.losses["lin.mae"] == pytest.approx(float(np.mean(np.abs(out - y))), rel=1e-5)
    assert ctx.losses["loss"] == ctx.losses["lin.mae"]
    np.testing.assert_allclose(ctx.output("lin"), out, rtol=1e-5, atol=1e-6)
    inv = EvalPhase.simple("test", featureset="toy", heads=["lin"], split="val", inverse_transform=True)
    _, ictx = next(iter(steps(exp, inv, state)))
    np.testing.assert_allclose(ictx.output("lin"), out * s.std + s.mean, rtol=1e-5, atol=1e-5)


def test_an_eval_phase_returns_the_nodes_it_names():
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP

    fs = make_featureset(n=40)
    g = ModelGraph.of(
        ModelNode(
            "a",
            SequentialMLP(hidden=(), output_shape=(2,)),
            FeatureSetRef("toy"),
            optimizer=mml.optim.sgd(0.1),
        ),
        ModelNode("b", SequentialMLP(hidden=()), NodeRef("a"), optimizer=mml.optim.sgd(0.1)),
    )
    phase = TrainPhase.simple("fit", featureset="toy", heads=["a"], losses=AppliedLoss("mse", "b"))
    exp = Experiment({"toy": fs}, g, phase)
    state = mml.init(exp, 0)
    ev = EvalPhase.simple("test", featureset="toy", heads=["a"], split="val", nodes=["a"])
    _, ctx = next(iter(steps(exp, ev, state)))
    assert list(ctx.outputs["default"]) == ["a"] and ctx.output("a").shape == (10, 2)
    _, tails = next(
        iter(steps(exp, EvalPhase.simple("test", featureset="toy", heads=["a"], split="val"), state))
    )
    assert list(tails.outputs["default"]) == ["b"]


def _two_head_setup(strategy: str):
    from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP

    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3)).astype(np.float32)
    raw = mml.FeatureSet.from_dict(
        {"x": x, "y1": x[:, 0] * 2.0 + 1.0, "y2": x[:, 1] * 3.0 - 5.0},
        features="x",
        targets=["y1", "y2"],
        label="fs",
    ).with_split("train", np.arange(24))
    fs = mml.scalers.fit_transform(raw, "standard", domain="targets", fit_on="train")
    g = ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=(), output_shape=(3,)), FeatureSetRef("fs", targets="y1")),
        ModelNode("b", SequentialMLP(hidden=(), output_shape=(3,)), FeatureSetRef("fs", targets="y2")),
        ConcatNode("cat", (NodeRef("a"), NodeRef("b")), targets=strategy),
        ModelNode("head", SequentialMLP(hidden=()), NodeRef("cat")),
        optimizer=mml.optim.adam(1e-2),
    )
    bindings = {h: InputBinding("fs", "train", mml.SimpleSampler(8)) for h in ("a", "b")}
    exp = Experiment({"fs": fs}, g, TrainPhase("fit", bindings, AppliedLoss("mse", "head")))
    ys = [raw.to_numpy("targets", k).astype(np.float64) for k in ("y1", "y2")]
    return exp, bindings, ys


def test_inverse_of_concatenated_targets_splits_the_output_columns():
    exp, bindings, (y1, y2) = _two_head_setup("concat")
    state = mml.init(exp, 0)
    scaled = evaluate(exp, state, bindings, nodes=["a", "head"])
    res = evaluate(exp, state, bindings, nodes=["a", "head"], inverse_transform=True)
    np.testing.assert_allclose(res.targets["head"], np.concatenate([y1, y2], axis=1), rtol=1e-5, atol=1e-5)
    out = scaled.outputs["head"].astype(np.float64)
    want = np.column_stack([out[:, 0] * y1.std() + y1.mean(), out[:, 1] * y2.std() + y2.mean()])
    np.testing.assert_allclose(res.outputs["head"], want, rtol=1e-5, atol=1e-5)
    # node a: raw targets, but its (24, 3) output is not in target units: kept as it is
    np.testing.assert_allclose(res.targets["a"], y1, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(res.outputs["a"], scaled.outputs["a"])
    np.testing.assert_allclose(
        scaled.targets["head"][:, 0], (y1[:, 0] - y1.mean()) / y1.std(), rtol=1e-5, atol=1e-5
    )


def test_averaged_targets_keep_transformed_units():
    exp, bindings, (y1, y2) = _two_head_setup("mean")
    state = mml.init(exp, 0)
    scaled = evaluate(exp, state, bindings)
    res = evaluate(exp, state, bindings, inverse_transform=True)
    np.testing.assert_array_equal(res.targets["head"], scaled.targets["head"])
    np.testing.assert_array_equal(res.outputs["head"], scaled.outputs["head"])
    z = ((y1 - y1.mean()) / y1.std() + (y2 - y2.mean()) / y2.std()) / 2
    np.testing.assert_allclose(scaled.targets["head"], z, rtol=1e-5, atol=1e-5)
