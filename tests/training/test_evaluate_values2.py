"""More of evaluate pinned by value (issue 17): raw-target nodes keep their units under
``inverse_transform``, nested ``targets="concat"`` joins are inverted column by column, and a
cross-entropy loss is averaged like ``torch.nn.functional.cross_entropy`` over the split.
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP
from mml.training import AppliedLoss, Experiment, InputBinding, TrainPhase, evaluate

from .conftest import make_featureset

torch = pytest.importorskip("torch")


def abs_sum(outputs, targets):
    """Not a mean: the loss of a batch grows with its size, so the batch size shows in the average."""
    return (outputs - targets).abs().sum()


def test_an_eval_phase_weights_each_batch_loss_by_its_size_with_its_own_batch_size():
    from mml.training import EvalPhase, Loss, steps

    raw = make_featureset(n=40)
    g = ModelGraph.of(
        ModelNode("lin", SequentialMLP(hidden=()), FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1))
    )
    phase = TrainPhase.simple("fit", featureset="toy", heads=["lin"], losses=AppliedLoss("mse", "lin"))
    exp = Experiment({"toy": raw}, g, phase)
    state = mml.init(exp, 0)
    loss = AppliedLoss(Loss(f"{__name__}:abs_sum"), "lin", label="abs")
    ev = EvalPhase.simple("test", featureset="toy", heads=["lin"], split="val", losses=[loss], batch_size=4)
    ((_, ctx),) = list(steps(exp, ev, state))
    p = state.params("lin").params
    rows = raw.rows("val")
    x = raw.to_numpy("features")[rows].astype(np.float64)
    y = raw.to_numpy("targets")[rows].astype(np.float64)
    err = np.abs(
        x @ p["layers.0.weight"].detach().numpy().T.astype(np.float64)
        + p["layers.0.bias"].detach().numpy()
        - y
    )
    batches = [err[0:4].sum() * 4, err[4:8].sum() * 4, err[8:10].sum() * 2]  # 10 rows in batches of 4, 4, 2
    assert ctx.losses["abs"] == pytest.approx(sum(batches) / 10, rel=1e-5)
    assert ctx.losses["abs"] != pytest.approx(err.sum(), rel=1e-3)  # one batch of 10 would give this


def test_a_node_reading_raw_targets_is_not_inverted_again():
    raw = make_featureset(n=40)
    fs = mml.scalers.fit_transform(raw, "standard", domain="targets", fit_on="train")
    g = ModelGraph.of(
        ModelNode(
            "lin", SequentialMLP(hidden=()), FeatureSetRef("toy", rep="raw"), optimizer=mml.optim.sgd(0.1)
        )
    )
    phase = TrainPhase.simple("fit", featureset="toy", heads=["lin"], losses=AppliedLoss("mse", "lin"))
    exp = Experiment({"toy": fs}, g, phase)
    state = mml.init(exp, 0)
    scaled = evaluate(exp, state, exp.plan.inputs, split="val")
    res = evaluate(exp, state, exp.plan.inputs, split="val", inverse_transform=True)
    y_raw = raw.to_numpy("targets")[fs.rows("val")]
    np.testing.assert_allclose(scaled.targets["lin"], y_raw, rtol=1e-6)
    np.testing.assert_array_equal(res.targets["lin"], scaled.targets["lin"])
    np.testing.assert_array_equal(res.outputs["lin"], scaled.outputs["lin"])


def test_nested_concatenated_targets_are_inverted_column_by_column():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    cols = {"y1": x[:, 0] * 2.0 + 1.0, "y2": x[:, 1] * 3.0 - 5.0, "y3": x[:, 2] * 0.5 + 10.0}
    raw = mml.FeatureSet.from_dict({"x": x, **cols}, features="x", targets=list(cols), label="fs").with_split(
        "train", np.arange(20)
    )
    fs = mml.scalers.fit_transform(raw, "standard", domain="targets", fit_on="train")
    g = ModelGraph.of(
        *(
            ModelNode(h, SequentialMLP(hidden=(), output_shape=(2,)), FeatureSetRef("fs", targets=t))
            for h, t in (("a", "y1"), ("b", "y2"), ("c", "y3"))
        ),
        ConcatNode("ab", (NodeRef("a"), NodeRef("b")), targets="concat"),
        ConcatNode("abc", (NodeRef("ab"), NodeRef("c")), targets="concat"),
        ModelNode("head", SequentialMLP(hidden=(), output_shape=(3,)), NodeRef("abc")),
        optimizer=mml.optim.sgd(0.1),
    )
    bindings = {h: InputBinding("fs", "train", mml.SimpleSampler(8)) for h in ("a", "b", "c")}
    exp = Experiment({"fs": fs}, g, TrainPhase("fit", bindings, AppliedLoss("mse", "head")))
    state = mml.init(exp, 0)
    scaled = evaluate(exp, state, bindings, nodes=["head"])
    res = evaluate(exp, state, bindings, nodes=["head"], inverse_transform=True)
    ys = [raw.to_numpy("targets", k).astype(np.float64).ravel() for k in cols]
    np.testing.assert_allclose(res.targets["head"], np.column_stack(ys), rtol=1e-5, atol=1e-5)
    out = scaled.outputs["head"].astype(np.float64)
    want = np.column_stack([out[:, i] * y.std() + y.mean() for i, y in enumerate(ys)])
    np.testing.assert_allclose(res.outputs["head"], want, rtol=1e-5, atol=1e-5)


def test_a_cross_entropy_loss_is_the_sample_mean_over_the_split():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 3)).astype(np.float32)
    y = (np.arange(30) % 3).astype(np.int64)
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="toy").with_split(
        "train", np.arange(30)
    )
    g = ModelGraph.of(
        ModelNode(
            "clf",
            SequentialMLP(hidden=(), output_shape=(3,)),
            FeatureSetRef("toy"),
            optimizer=mml.optim.sgd(0.1),
        )
    )
    phase = TrainPhase.simple(
        "fit", featureset="toy", heads=["clf"], losses=AppliedLoss("cross_entropy", "clf")
    )
    exp = Experiment({"toy": fs}, g, phase)
    state = mml.init(exp, 0)
    res = evaluate(exp, state, exp.plan.inputs, losses=[AppliedLoss("cross_entropy", "clf")], batch_size=7)
    logits = torch.from_numpy(res.outputs["clf"]).double()
    want = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)))
    assert res.losses["clf.cross_entropy"] == pytest.approx(want, rel=1e-5)
    bad = mml.FeatureSet.from_dict({"x": x, "y": np.r_[y[:-1], 5]}, features="x", targets="y", label="toy")
    bad = bad.with_split("train", np.arange(30))
    exp_bad = Experiment({"toy": bad}, g, phase)
    with pytest.raises(mml.TrainingError) as info:
        evaluate(exp_bad, state, exp.plan.inputs, losses=[AppliedLoss("cross_entropy", "clf")], batch_size=7)
    # checked batch by batch: the last batch of 7 (rows 28, 29) holds the bad id
    assert str(info.value) == (
        "loss 'clf.cross_entropy' on node 'clf': class ids must be integers in [0, 3) (the node outputs 3 logits) "
        "but the targets hold 5 (1 of 2 values); give the node output_shape=(6,) if there are 6 classes, or "
        "re-encode the labels as 0..2 (mask samples out with a mask, not with an id)"
    )


def _linear_exp(n):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = x @ np.array([0.5, -1.0, 0.25], np.float32)
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="toy").with_split(
        "train", np.arange(n)
    )
    g = ModelGraph.of(
        ModelNode("lin", SequentialMLP(hidden=()), FeatureSetRef("toy"), optimizer=mml.optim.sgd(0.1))
    )
    exp = Experiment(
        {"toy": fs},
        g,
        TrainPhase.simple("fit", featureset="toy", heads=["lin"], losses=AppliedLoss("mse", "lin")),
    )
    state = mml.init(exp, 0)
    p = state.params("lin").params
    out = (
        x.astype(np.float64) @ p["layers.0.weight"].detach().numpy().T.astype(np.float64)
        + p["layers.0.bias"].detach().numpy()
    )
    return exp, state, np.abs(out - y.astype(np.float64)[:, None])


def test_a_split_of_one_sample_gives_that_samples_loss():
    exp, state, err = _linear_exp(1)
    res = evaluate(exp, state, exp.plan.inputs, losses=[AppliedLoss("mae", "lin")])
    assert res.losses["lin.mae"] == pytest.approx(float(err[0, 0]), rel=1e-5)
    assert res.losses["loss"] == res.losses["lin.mae"]


def test_the_default_batch_size_is_1024():
    from mml.training import Loss

    exp, state, err = _linear_exp(1100)
    loss = AppliedLoss(Loss(f"{__name__}:abs_sum"), "lin", label="abs")
    res = evaluate(exp, state, exp.plan.inputs, losses=[loss])
    want = (err[:1024].sum() * 1024 + err[1024:].sum() * 76) / 1100
    assert res.losses["abs"] == pytest.approx(want, rel=1e-5)


def test_a_featureset_without_targets_gives_outputs_and_no_targets():
    from mml.training import EvalPhase

    x = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    fs = mml.FeatureSet.from_dict({"x": x}, features="x", label="toy").with_split("train", np.arange(10))
    g = ModelGraph.of(ModelNode("lin", SequentialMLP(hidden=(), output_shape=(2,)), FeatureSetRef("toy")))
    exp = Experiment({"toy": fs}, g, EvalPhase.simple("test", featureset="toy", heads=["lin"], split="train"))
    state = mml.init(exp, 0)
    res = evaluate(exp, state, exp.plan.inputs, batch_size=4)
    assert dict(res.targets) == {} and res.outputs["lin"].shape == (10, 2)
    p = state.params("lin").params
    want = x @ p["layers.0.weight"].detach().numpy().T + p["layers.0.bias"].detach().numpy()
    np.testing.assert_allclose(res.outputs["lin"], want, rtol=1e-5, atol=1e-6)
