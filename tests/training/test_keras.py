"""Keras 3 (TensorFlow) nodes in the training loop: stage-wise, graph-wise, mixed with torch."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP
from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase

from .conftest import make_featureset

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")


def keras_params(state, label: str = "mlp") -> list[np.ndarray]:
    return [np.asarray(v) for v in state.params(label).trainable]


def torch_params(state, label: str) -> list[np.ndarray]:
    return [v.detach().numpy().copy() for v in state.params(label).params.values()]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def keras_mlp(hidden=(8,), **kw) -> SequentialMLP:
    return SequentialMLP(hidden=hidden, backend="tensorflow", **kw)


def keras_experiment(fs, *, n_epochs=2, lr=1e-2, shuffle=True, plan_extra=()) -> Experiment:
    g = ModelGraph.of(ModelNode("mlp", keras_mlp(), FeatureSetRef("toy"), optimizer=mml.optim.adam(lr)))
    train = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mse", "mlp"),
        n_epochs=n_epochs,
        sampler=mml.SimpleSampler(16, shuffle=shuffle),
    )
    return Experiment({"toy": fs}, g, PhaseGroup("plan", [train, *plan_extra]))


def test_keras_node_trains_and_same_key_same_params(toy):
    exp = keras_experiment(toy)
    s0 = mml.init(exp, 4)
    before = keras_params(s0)
    s1, h1 = mml.run(exp, s0)
    s2, h2 = mml.run(exp, s0)
    assert h1.status == "completed", h1.error
    assert same(keras_params(s1), keras_params(s2))  # bit-identical
    assert np.array_equal(h1.value, h2.value)
    assert same(keras_params(s0), before)  # the input state is untouched
    assert not same(keras_params(s1), before)
    assert s1.step == 2 * 6
    other, _ = mml.run(exp, mml.init(exp, 5))
    assert not same(keras_params(other), keras_params(s1))
    losses = h1.epochs().values("loss")
    assert losses[-1] < losses[0]


def test_keras_params_match_a_hand_written_gradient_tape_loop(toy):
    """Same batches, same mml optimizer: the loop's update equals GradientTape + opt.update."""
    from mml.backends import value_and_grad

    exp = keras_experiment(toy, n_epochs=2, shuffle=False)
    s0 = mml.init(exp, 0)
    s1, h = mml.run(exp, s0)
    assert h.status == "completed", h.error

    spec = exp.graph["mlp"].model
    opt = mml.optim.adam(1e-2)
    rec = s0.params("mlp")
    params = {str(i): tf.convert_to_tensor(np.asarray(v)) for i, v in enumerate(rec.trainable)}
    opt_state = opt.init(params)
    train = toy["train"]
    x_all = train.to_numpy("features").astype(np.float32)
    y_all = train.to_numpy("targets").astype(np.float32).reshape(-1, 1)
    step = 0
    for _epoch in range(2):
        for start in range(0, len(x_all), 16):
            x, y = x_all[start : start + 16], y_all[start : start + 16]
            cur = rec.replace_params(tuple(params[str(i)] for i in range(len(params))))

            def loss_fn(pred, y=y):
                return tf.reduce_mean(tf.square(pred - y)), None

            _, grads, _ = value_and_grad(spec, cur, x, loss_fn)
            params, opt_state = opt.update({str(i): g for i, g in enumerate(grads)}, opt_state, params, step)
            step += 1
    assert step == s1.step
    for got, want in zip(keras_params(s1), (params[str(i)] for i in range(len(params)))):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)


def test_eval_phase_with_a_keras_node(toy):
    ev = EvalPhase.simple(
        "val", featureset="toy", heads=["mlp"], split="val", losses=[AppliedLoss("mae", "mlp")], batch_size=7
    )
    exp = keras_experiment(toy, n_epochs=1, plan_extra=[ev])
    state, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "completed", h.error
    res = h.eval_result("val")
    assert res.outputs["mlp"].shape == (30, 1) and res.targets["mlp"].shape == (30, 1)
    want = float(np.mean(np.abs(res.outputs["mlp"] - res.targets["mlp"])))
    assert res.losses["mlp.mae"] == pytest.approx(want, rel=1e-5)
    # the outputs are the trained node's forward pass over the val split
    x = toy["val"].to_numpy("features")
    y, _ = mml.backends.apply(exp.graph["mlp"].model, state.params("mlp"), x)
    np.testing.assert_allclose(res.outputs["mlp"], np.asarray(y), rtol=1e-5, atol=1e-6)


def test_resume_from_a_saved_keras_state_gives_the_same_numbers(toy):
    exp = keras_experiment(toy, n_epochs=1)
    s0 = mml.init(exp, 1)
    mid, _ = mml.run(exp, s0)
    loaded = mml.io.roundtrip(mid)  # Keras params come back as numpy arrays
    assert loaded == mid
    a, ha = mml.run(exp, mid)
    b, hb = mml.run(exp, loaded)
    assert ha.status == hb.status == "completed", (ha.error, hb.error)
    for x, y in zip(keras_params(a), keras_params(b)):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_keras_mlp_on_battery_beats_the_mean():
    from mml.scalers import PerSampleZeroStart

    fs = mml.datasets.load_battery(300, seed=0)
    fs = fs.split(mml.RandomSplitter({"train": 0.8, "test": 0.2}, seed=0))
    fs = mml.scalers.fit_transform(fs, PerSampleZeroStart(), domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets", fit_on="train")
    g = ModelGraph.of(
        ModelNode("mlp", keras_mlp(hidden=(64, 64)), FeatureSetRef("battery"), optimizer=mml.optim.adam(3e-3))
    )
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "fit",
                featureset="battery",
                heads=["mlp"],
                losses=AppliedLoss("mse", "mlp"),
                n_epochs=15,
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
    assert h.status == "completed", h.error
    res = h.eval_result("test")
    y = res.targets["mlp"]
    model_mse = float(np.mean((res.outputs["mlp"] - y) ** 2))
    mean_mse = float(np.mean((y - y.mean()) ** 2))
    assert model_mse < 0.5 * mean_mse, (model_mse, mean_mse)


# -- two-node graphs ---------------------------------------------------------------------------


def two_nodes(enc_backend: str, head_backend: str, **graph_kw) -> ModelGraph:
    return ModelGraph.of(
        ModelNode(
            "enc",
            SequentialMLP(hidden=(8,), output_shape=(1,), backend=enc_backend),
            FeatureSetRef("toy"),
            optimizer=mml.optim.adam(1e-2),
        ),
        ModelNode(
            "head",
            SequentialMLP(hidden=(4,), backend=head_backend),
            NodeRef("enc"),
            optimizer=mml.optim.adam(1e-2),
        ),
        **graph_kw,
    )


def run_two(fs, graph, losses, mode="stagewise", n_epochs=2):
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["enc"],
        losses=losses,
        n_epochs=n_epochs,
        sampler=mml.SimpleSampler(16),
        mode=mode,
        optimizer=mml.optim.adam(1e-2) if mode == "graphwise" else None,
    )
    exp = Experiment({"toy": fs}, graph, phase)
    s0 = mml.init(exp, 0)
    s1, h = mml.run(exp, s0)
    assert h.status == "completed", h.error
    return s0, s1, h


def params_of(state, label):
    rec = state.params(label)
    return keras_params(state, label) if hasattr(rec, "trainable") else torch_params(state, label)


@pytest.mark.parametrize(
    ("enc", "head"), [("torch", "tensorflow"), ("tensorflow", "torch"), ("tensorflow",) * 2]
)
def test_stagewise_each_node_trains_on_its_own_loss_only(toy, enc, head):
    both = [AppliedLoss("mse", "enc"), AppliedLoss("mse", "head")]
    s0, s_both, h = run_two(toy, two_nodes(enc, head), both)
    _, s_enc, _ = run_two(toy, two_nodes(enc, head), [AppliedLoss("mse", "enc")])
    # the head's loss never reaches the encoder: gradients stop at the node boundary
    assert same(params_of(s_both, "enc"), params_of(s_enc, "enc"))
    assert not same(params_of(s_both, "enc"), params_of(s0, "enc"))
    assert not same(params_of(s_both, "head"), params_of(s0, "head"))
    assert same(params_of(s_enc, "head"), params_of(s0, "head"))  # no loss on the head: untouched
    for name in ("enc.mse", "head.mse"):
        per_epoch = h.where(phase="fit").epochs().values(name)
        assert per_epoch[-1] < per_epoch[0], (name, per_epoch)


def test_graphwise_keras_backpropagates_through_both_nodes(toy):
    s0, s1, _ = run_two(toy, two_nodes("tensorflow", "tensorflow"), [AppliedLoss("mse", "head")], "graphwise")
    assert not same(params_of(s1, "enc"), params_of(s0, "enc"))
    assert not same(params_of(s1, "head"), params_of(s0, "head"))
    assert set(s1.opt_states) == {mml.training.GRAPH_OPTIMIZER}


def test_graphwise_with_mixed_backends_is_an_error_at_construction(toy):
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["enc"],
        losses=[AppliedLoss("mse", "head")],
        mode="graphwise",
        optimizer=mml.optim.adam(),
    )
    with pytest.raises(mml.TrainingError, match=r"graph-wise.*2 backends.*tensorflow: 'head'.*torch: 'enc'"):
        Experiment({"toy": toy}, two_nodes("torch", "tensorflow"), phase)
    # a graph-wide optimizer over mixed trainable backends is refused by the graph itself
    with pytest.raises(mml.GraphError, match="backend"):
        two_nodes("torch", "tensorflow", optimizer=mml.optim.adam())
    # freezing the nodes of one backend makes it valid
    Experiment({"toy": toy}, two_nodes("torch", "tensorflow").freeze("enc"), phase)


def test_torch_loss_class_on_a_keras_node_is_a_backend_error(toy):
    g = ModelGraph.of(ModelNode("mlp", keras_mlp(), FeatureSetRef("toy"), optimizer=mml.optim.adam()))
    phase = TrainPhase.simple(
        "fit", featureset="toy", heads=["mlp"], losses=AppliedLoss("torch.nn:SmoothL1Loss", "mlp")
    )
    with pytest.raises(mml.BackendError, match="tensorflow"):
        Experiment({"toy": toy}, g, phase)


def test_keras_loss_class_by_path_trains_a_keras_node(toy):
    g = ModelGraph.of(ModelNode("mlp", keras_mlp(), FeatureSetRef("toy"), optimizer=mml.optim.adam(1e-2)))
    losses = [AppliedLoss("keras.losses:MeanSquaredError", "mlp"), AppliedLoss("mse", "mlp", label="ref")]
    phase = TrainPhase.simple(
        "fit", featureset="toy", heads=["mlp"], losses=losses, sampler=mml.SimpleSampler(16)
    )
    exp = Experiment({"toy": make_featureset()}, g, phase)
    _, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "completed", h.error
    np.testing.assert_allclose(
        h.batches().values("mlp.MeanSquaredError"), h.batches().values("ref"), rtol=1e-5
    )
