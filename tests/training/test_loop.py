from __future__ import annotations

import math

import numpy as np
import pytest

import mml
from mml.training import AppliedLoss, EvalPhase, Experiment, FitPhase, PhaseGroup, TrainPhase

from .conftest import make_featureset, mlp_graph, params_of, same_params, simple_experiment

torch = pytest.importorskip("torch")


def test_same_key_same_weights_and_inputs_untouched(toy):
    exp = simple_experiment(toy, dropout=0.2)
    s0 = mml.init(exp, 3)
    before = params_of(s0)
    exp_copy = mml.io.roundtrip(exp)
    s1, h1 = mml.run(exp, s0)
    s2, h2 = mml.run(exp, s0)
    assert h1.status == "completed"
    assert same_params(params_of(s1), params_of(s2))  # bit-identical
    assert np.array_equal(h1.value, h2.value)
    assert same_params(params_of(s0), before)  # input state unchanged
    assert exp == exp_copy  # experiment unchanged
    assert not same_params(params_of(s1), before)  # training did something
    assert s1.step == 2 * 6 and s0.step == 0


def test_different_key_different_weights(toy):
    exp = simple_experiment(toy)
    a, _ = mml.run(exp, mml.init(exp, 1))
    b, _ = mml.run(exp, mml.init(exp, 2))
    assert not same_params(params_of(a), params_of(b))


def test_steps_is_lazy_and_matches_run_phase(toy):
    exp = simple_experiment(toy, n_epochs=1)
    s0 = mml.init(exp, 0)
    it = mml.steps(exp, exp.plan, s0)
    state, ctx = next(it)
    assert ctx.event == "batch" and ctx.batch == 0 and state.step == 1
    assert set(ctx.losses) == {"mlp.mse", "loss"}
    last = None
    for last, _ in mml.steps(exp, exp.plan, s0):  # noqa: B007 - the fold keeps the last state
        pass
    folded, _ = mml.run_phase(exp, exp.plan, s0)
    assert same_params(params_of(last), params_of(folded))


def test_history_queries(toy):
    exp = simple_experiment(toy, n_epochs=3)
    _, h = mml.run(exp, mml.init(exp, 0))
    assert len(h.where(epoch=1).batches().values("loss")) == 6
    per_epoch = h.batches().collapse("batch", "mean").values("loss")
    assert np.allclose(per_epoch, h.epochs().values("loss"))
    df = h.to_pandas()
    assert set(df.columns) == {"phase", "epoch", "batch", "step", "name", "value"}
    assert h.phase_result("fit").n_steps == 18


def test_recording_policy(toy):
    exp = simple_experiment(toy, n_epochs=2, record="last_epoch")
    _, h = mml.run(exp, mml.init(exp, 0))
    ctxs = h.phase_result("fit").contexts
    assert len(ctxs) == 6 and {c.epoch for c in ctxs} == {1}
    assert not ctxs[0].output("mlp").requires_grad


def test_eval_phase_stacks_outputs_and_targets(toy):
    train = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mse", "mlp"),
        sampler=mml.SimpleSampler(16),
    )
    ev = EvalPhase.simple(
        "val", featureset="toy", heads=["mlp"], split="val", losses=[AppliedLoss("mse", "mlp")], batch_size=7
    )
    exp = Experiment({"toy": toy}, mlp_graph(), PhaseGroup("plan", [train, ev]))
    _state, h = mml.run(exp, mml.init(exp, 0))
    res = h.eval_result("val")
    assert res.outputs["mlp"].shape == (30, 1) and res.targets["mlp"].shape == (30, 1)
    mse = float(np.mean((res.outputs["mlp"] - res.targets["mlp"]) ** 2))
    assert math.isclose(res.losses["mlp.mse"], mse, rel_tol=1e-4)
    assert math.isclose(h.where(phase="val").last("loss"), mse, rel_tol=1e-4)


def test_nan_loss_is_a_training_error_with_last_good_state(toy):
    exp = simple_experiment(toy, n_epochs=1, optimizer=None)
    graph = mlp_graph(lr=1e30)
    exp = Experiment(exp.featuresets, graph, exp.plan)
    s0 = mml.init(exp, 0)
    state, h = mml.run(exp, s0)
    assert h.status == "failed"
    assert isinstance(h.error, mml.TrainingError)
    assert "phase 'fit'" in str(h.error) and "epoch 0" in str(h.error) and "batch" in str(h.error)
    assert all(torch.isfinite(v).all() for v in state.params("mlp").params.values())
    with pytest.raises(mml.TrainingError):
        h.raise_for_status()


def test_hybrid_fit_pca_then_train_mlp(toy):
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP, SklearnModel

    g = ModelGraph.of(
        ModelNode(
            "pca", SklearnModel("sklearn.decomposition:PCA", {"n_components": 2}), FeatureSetRef("toy")
        ),
        ModelNode("head", SequentialMLP(hidden=(8,)), NodeRef("pca"), optimizer=mml.optim.adam(1e-2)),
    )
    plan = PhaseGroup(
        "plan",
        [
            FitPhase("fit_pca", {"pca": mml.training.InputBinding("toy", "train")}),
            TrainPhase.simple(
                "train",
                featureset="toy",
                heads=["pca"],
                losses=AppliedLoss("mse", "head"),
                n_epochs=2,
                sampler=mml.SimpleSampler(16),
            ),
        ],
    )
    exp = Experiment({"toy": toy}, g, plan)
    s0 = mml.init(exp, 0)
    state, h = mml.run(exp, s0)
    assert h.status == "completed", h.error
    assert state.fitted == ("pca",)
    assert state.params("pca").is_fitted and not s0.params("pca").is_fitted
    assert not same_params(params_of(s0, "head"), params_of(state, "head"))
    assert exp.graph["pca"].frozen is False  # the graph value is not edited


def two_node_graph():
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP

    return ModelGraph.of(
        ModelNode(
            "enc",
            SequentialMLP(hidden=(8,), output_shape=(1,)),
            FeatureSetRef("toy"),
            optimizer=mml.optim.adam(1e-2),
        ),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("enc"), optimizer=mml.optim.adam(1e-2)),
        optimizer=mml.optim.adam(1e-2),
    )


def _two_node(toy, losses, mode):
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["enc"],
        losses=losses,
        n_epochs=2,
        sampler=mml.SimpleSampler(16),
        mode=mode,
    )
    exp = Experiment({"toy": toy}, two_node_graph(), phase)
    s0 = mml.init(exp, 0)
    s1, h = mml.run(exp, s0)
    assert h.status == "completed", h.error
    return s0, s1


def test_stagewise_upstream_changes_only_through_its_own_loss(toy):
    both = [AppliedLoss("mse", "enc"), AppliedLoss("mse", "head")]
    s0, s_both = _two_node(toy, both, "stagewise")
    _, s_enc = _two_node(toy, [AppliedLoss("mse", "enc")], "stagewise")
    assert same_params(params_of(s_both, "enc"), params_of(s_enc, "enc"))
    _, s_head = _two_node(toy, [AppliedLoss("mse", "head")], "stagewise")
    assert same_params(params_of(s_head, "enc"), params_of(s0, "enc"))  # no loss on enc: untouched
    assert not same_params(params_of(s_head, "head"), params_of(s0, "head"))


def test_graphwise_backpropagates_through_every_node(toy):
    s0, s1 = _two_node(toy, [AppliedLoss("mse", "head")], "graphwise")
    assert not same_params(params_of(s1, "enc"), params_of(s0, "enc"))
    assert not same_params(params_of(s1, "head"), params_of(s0, "head"))
    assert set(s1.opt_states) == {mml.training.GRAPH_OPTIMIZER}


def test_frozen_node_runs_forward_only(toy):
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["enc"],
        losses=[AppliedLoss("mse", "head")],
        sampler=mml.SimpleSampler(16),
        mode="graphwise",
    )
    exp = Experiment({"toy": toy}, two_node_graph().freeze("enc"), phase)
    s0 = mml.init(exp, 0)
    s1, h = mml.run(exp, s0)
    assert h.status == "completed"
    assert same_params(params_of(s1, "enc"), params_of(s0, "enc"))
    assert not same_params(params_of(s1, "head"), params_of(s0, "head"))


def test_battery_mlp_beats_the_mean():
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP
    from mml.scalers import PerSampleZeroStart

    fs = mml.datasets.load_battery(400, seed=0)
    fs = fs.split(mml.RandomSplitter({"train": 0.8, "test": 0.2}, seed=0))
    fs = mml.scalers.fit_transform(fs, PerSampleZeroStart(), domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets", fit_on="train")
    g = ModelGraph.of(
        ModelNode(
            "mlp", SequentialMLP(hidden=(64, 64)), FeatureSetRef("battery"), optimizer=mml.optim.adam(3e-3)
        )
    )
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "fit",
                featureset="battery",
                heads=["mlp"],
                losses=AppliedLoss("mse", "mlp"),
                n_epochs=20,
                sampler=mml.SimpleSampler(32),
            ),
            EvalPhase.simple(
                "test",
                featureset="battery",
                heads=["mlp"],
                losses=[AppliedLoss("mse", "mlp")],
                inverse_transform=True,
            ),
        ],
    )
    exp = Experiment({"battery": fs}, g, plan)
    _, h = mml.run(exp, mml.init(exp, 0))
    res = h.eval_result("test")
    y = res.targets["mlp"]
    model_mse = float(np.mean((res.outputs["mlp"] - y) ** 2))
    mean_mse = float(np.mean((y - y.mean()) ** 2))
    assert model_mse < 0.5 * mean_mse, (model_mse, mean_mse)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_unavailable_raises_device_error(toy):
    exp = simple_experiment(toy, device="cuda")
    with pytest.raises(mml.DeviceError, match="cuda"):
        mml.run(exp, mml.init(exp, 0))


def test_make_featureset_is_deterministic():
    assert make_featureset(seed=1) == make_featureset(seed=1)
