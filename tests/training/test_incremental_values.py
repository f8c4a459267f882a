"""Incremental scikit-learn nodes pinned against scikit-learn's own ``partial_fit`` (issue 17).

A scikit-learn head (``StandardScaler``) feeding a scikit-learn regressor (``SGDRegressor``) is
trained batch by batch in a TrainPhase; the same batches through scikit-learn by hand give the
same fitted attributes, and the regressor's ``random_state`` is the one derived from the phase
key, the step and the node label.
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP, SklearnModel, TorchModule
from mml.random import fold_in, seed_int
from mml.training import AppliedLoss, Experiment, InputBinding, TrainPhase, steps
from mml.training._incremental import _numpy, classes_of, has_partial_fit, incremental_nodes

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

N, B = 24, 8


def _fs(classify: bool = False) -> mml.FeatureSet:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, 3)) * np.array([1.0, 3.0, 0.5]) + np.array([2.0, -1.0, 0.0])
    y = x @ np.array([1.0, -0.5, 2.0]) + 0.3
    if classify:
        # the first batch holds only class 0: partial_fit needs every class on its first call
        y = np.r_[np.zeros(B), np.arange(N - B) % 3].astype(
            np.float64
        )  # float labels: the mse loss reads them
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="fs")
    return fs.with_split("train", np.arange(N))


def _chain_experiment(n_epochs: int = 1):
    g = ModelGraph.of(
        ModelNode("sc", SklearnModel("sklearn.preprocessing:StandardScaler"), FeatureSetRef("fs")),
        ModelNode("sgd", SklearnModel("sklearn.linear_model:SGDRegressor"), NodeRef("sc")),
    )
    phase = TrainPhase(
        "inc",
        {"sc": InputBinding("fs", "train", mml.SimpleSampler(B, shuffle=False))},
        AppliedLoss("mse", "sgd"),
        n_epochs=n_epochs,
    )
    return Experiment({"fs": _fs()}, g, phase)


def test_a_head_and_a_downstream_node_take_one_partial_fit_per_step_like_sklearn():
    from sklearn.linear_model import SGDRegressor
    from sklearn.preprocessing import StandardScaler

    exp = _chain_experiment(n_epochs=2)
    state0 = mml.init(exp, 5)
    got = list(steps(exp, exp.plan, state0))
    final = got[-1][0]
    assert final.step == 2 * N // B
    fs = exp.featuresets["fs"]
    x, y = fs.to_numpy("features"), fs.to_numpy("targets").ravel()
    rs = seed_int(fold_in(fold_in(fold_in(state0.key, "inc"), "partial_fit/0"), "sgd"))
    sc, sgd = StandardScaler(), SGDRegressor(random_state=rs)
    for _ in range(2):
        for i in range(0, N, B):
            sc.partial_fit(x[i : i + B])
            sgd.partial_fit(sc.transform(x[i : i + B]), y[i : i + B])  # sees the scaler after its update
    fit_sc, fit_sgd = final.params("sc").fitted, final.params("sgd").fitted
    assert fit_sgd.params["random_state"] == rs
    np.testing.assert_allclose(fit_sc.attributes["mean_"], sc.mean_, rtol=1e-12)
    np.testing.assert_allclose(fit_sc.attributes["var_"], sc.var_, rtol=1e-12)
    assert fit_sc.attributes["n_samples_seen_"] == sc.n_samples_seen_ == 2 * N
    np.testing.assert_allclose(fit_sgd.attributes["coef_"], sgd.coef_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fit_sgd.attributes["intercept_"], sgd.intercept_, rtol=1e-5, atol=1e-7)
    assert fit_sgd.attributes["t_"] == sgd.t_
    # the first step already saw one partial_fit of each node
    first = got[0][0]
    assert first.params("sc").fitted.attributes["n_samples_seen_"] == B
    assert first.params("sgd").fitted.attributes["t_"] == B + 1
    assert state0.params("sc").fitted is None  # the input state is unchanged


def test_a_classifier_gets_every_class_on_its_first_partial_fit():
    from sklearn.linear_model import SGDClassifier

    g = ModelGraph.of(
        ModelNode(
            "clf", SklearnModel("sklearn.linear_model:SGDClassifier", method="predict"), FeatureSetRef("fs")
        )
    )
    phase = TrainPhase(
        "inc",
        {"clf": InputBinding("fs", "train", mml.SimpleSampler(B, shuffle=False))},
        AppliedLoss("mse", "clf"),
        n_epochs=1,
    )
    exp = Experiment({"fs": _fs(classify=True)}, g, phase)
    state0 = mml.init(exp, 2)
    final = list(steps(exp, phase, state0))[-1][0]
    fs = exp.featuresets["fs"]
    x, y = fs.to_numpy("features"), fs.to_numpy("targets").ravel()
    rs = seed_int(fold_in(fold_in(fold_in(state0.key, "inc"), "partial_fit/0"), "clf"))
    ref = SGDClassifier(random_state=rs)
    for i in range(0, N, B):
        ref.partial_fit(x[i : i + B], y[i : i + B], classes=np.array([0.0, 1.0, 2.0]))
    from mml.backends._sklearn import estimator_from_fitted

    est = estimator_from_fitted(final.params("clf").fitted)
    np.testing.assert_array_equal(est.classes_, [0.0, 1.0, 2.0])
    assert est.random_state == rs
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=1e-5, atol=1e-7)


def test_classes_of_numpy_and_torch_targets_and_of_a_regressor():
    g = ModelGraph.of(
        ModelNode("clf", SklearnModel("sklearn.linear_model:SGDClassifier"), FeatureSetRef("fs")),
        ModelNode("reg", SklearnModel("sklearn.linear_model:SGDRegressor"), FeatureSetRef("fs")),
    )
    y = np.array([[3], [1], [3], [2]])
    np.testing.assert_array_equal(classes_of(g, "clf", {"clf": y}), [1, 2, 3])
    t = torch.tensor([[2.0], [0.0], [2.0]], requires_grad=True)
    got = classes_of(g, "clf", {"clf": t})
    assert isinstance(got, np.ndarray) and got.tolist() == [0.0, 2.0]
    assert classes_of(g, "reg", {"reg": y}) is None


def test_numpy_of_a_tensor_that_needs_grad_and_of_a_list():
    t = torch.tensor([1.5, -2.0], requires_grad=True)
    got = _numpy(t)
    assert isinstance(got, np.ndarray) and got.tolist() == [1.5, -2.0]
    lst = _numpy([[1, 2]])
    assert isinstance(lst, np.ndarray) and lst.tolist() == [[1, 2]]


def test_classes_of_a_classifier_without_targets_is_none():
    from mml.data import SampleData

    g = ModelGraph.of(
        ModelNode("clf", SklearnModel("sklearn.linear_model:SGDClassifier"), FeatureSetRef("fs"))
    )
    assert classes_of(g, "clf", {"clf": SampleData(features=np.zeros((2, 3)), targets=None)}) is None


def test_has_partial_fit_names_an_estimator_it_cannot_import():
    from types import SimpleNamespace

    with pytest.raises(mml.ConfigError) as info:
        has_partial_fit(SimpleNamespace(backend="sklearn", estimator="mml_no_such_module:Thing"))
    assert str(info.value).startswith(
        "cannot import module 'mml_no_such_module' of the sklearn estimator 'mml_no_such_module:Thing' "
        "(ModuleNotFoundError: No module named 'mml_no_such_module'); "
    )


ENCODERS = {
    "mlp": SequentialMLP(hidden=(16,), dropout=0.5, output_shape=(2,)),
    "module": TorchModule(
        "tests.backends.backend_factories:bn_net", {"hidden": 8, "p": 0.5}, output_shape=(2,)
    ),
}


@pytest.mark.parametrize("enc", list(ENCODERS))
def test_a_node_below_a_dropout_node_partial_fits_its_eval_mode_output(enc):
    from sklearn.linear_model import SGDRegressor

    from mml.training import evaluate

    g = ModelGraph.of(
        # not frozen, no optimizer: it runs in training mode in the step's forward pass, never updated
        ModelNode("enc", ENCODERS[enc], FeatureSetRef("fs")),
        ModelNode("sgd", SklearnModel("sklearn.linear_model:SGDRegressor"), NodeRef("enc")),
    )
    bind = {"enc": InputBinding("fs", "train", mml.SimpleSampler(B, shuffle=False))}
    phase = TrainPhase("inc", bind, AppliedLoss("mse", "sgd"), n_epochs=1)
    exp = Experiment({"fs": _fs()}, g, phase)
    state0 = mml.init(exp, 1)
    got = [s for s, c in steps(exp, phase, state0) if c.event == "batch"]
    final = got[-1]
    y = exp.featuresets["fs"].to_numpy("targets").ravel()
    rs = seed_int(fold_in(fold_in(fold_in(state0.key, "inc"), "partial_fit/0"), "sgd"))
    ref = SGDRegressor(random_state=rs)
    for i, before in zip(range(0, N, B), [state0, *got]):
        # the encoder's output without dropout, from the state before the step (its batch-norm
        # statistics move with every step's training-mode forward pass)
        x = evaluate(exp, before, bind, nodes=["enc"]).outputs["enc"].astype(np.float64)
        ref.partial_fit(x[i : i + B], y[i : i + B])
    fitted = final.params("sgd").fitted
    np.testing.assert_allclose(fitted.attributes["coef_"], ref.coef_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fitted.attributes["intercept_"], ref.intercept_, rtol=1e-4, atol=1e-6)


def test_has_partial_fit_and_incremental_nodes_in_topological_order():
    assert has_partial_fit(SklearnModel("sklearn.linear_model:SGDRegressor")) is True
    assert has_partial_fit(SklearnModel("sklearn.linear_model:Ridge")) is False
    assert has_partial_fit(SequentialMLP(hidden=())) is False
    assert has_partial_fit(None) is False
    g = ModelGraph.of(
        ModelNode("z_sc", SklearnModel("sklearn.preprocessing:StandardScaler"), FeatureSetRef("fs")),
        ModelNode("a_sgd", SklearnModel("sklearn.linear_model:SGDRegressor"), NodeRef("z_sc")),
        ModelNode("ridge", SklearnModel("sklearn.linear_model:Ridge"), FeatureSetRef("fs")),
        ModelNode("mlp", SequentialMLP(hidden=(), output_shape=(1,)), FeatureSetRef("fs")),
        ConcatNode("cat", (NodeRef("ridge"), NodeRef("mlp"))),
    )
    every = {"z_sc", "a_sgd", "ridge", "mlp", "cat"}
    assert incremental_nodes(g, every, frozen=set()) == ("z_sc", "a_sgd")
    assert incremental_nodes(g, every, frozen={"z_sc"}) == ("a_sgd",)
    assert incremental_nodes(g, {"a_sgd", "ridge"}, frozen=()) == ("a_sgd",)
    assert incremental_nodes(g, set(), frozen=()) == ()


def test_batch_norm_statistics_evolve_in_a_step_without_gradients():
    # regression (issue 17): a step with no gradient (only scikit-learn nodes learn) dropped the
    # batch-norm statistics its training-mode forward pass had computed
    from tests.backends.backend_factories import bn_net

    spec = TorchModule("tests.backends.backend_factories:bn_net", {"hidden": 4, "p": 0.0}, output_shape=(2,))
    g = ModelGraph.of(
        ModelNode("enc", spec, FeatureSetRef("fs")),
        ModelNode("sgd", SklearnModel("sklearn.linear_model:SGDRegressor"), NodeRef("enc")),
    )
    phase = TrainPhase(
        "inc",
        {"enc": InputBinding("fs", "train", mml.SimpleSampler(B, shuffle=False))},
        AppliedLoss("mse", "sgd"),
    )
    exp = Experiment({"fs": _fs()}, g, phase)
    state0 = mml.init(exp, 0)
    net = bn_net((3,), (2,), hidden=4, p=0.0)
    rec = state0.params("enc")
    net.load_state_dict({**rec.params, **rec.buffers})
    net.train()
    n = 0
    for st, ctx in steps(exp, phase, state0):
        if ctx.event != "batch":
            continue
        n += 1
        with torch.no_grad():
            net(ctx.input("enc").features)
        for k, v in net.state_dict().items():
            got = st.params("enc").buffers.get(k, st.params("enc").params.get(k))
            np.testing.assert_allclose(got.detach().numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
        assert int(st.params("enc").buffers["1.num_batches_tracked"]) == n
    assert n == N // B and int(state0.params("enc").buffers["1.num_batches_tracked"]) == 0
