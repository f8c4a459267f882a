"""Cross-entropy class ids are checked once per phase, identically on torch and Keras (issue 16.3)."""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.training import AppliedLoss, EvalPhase, Experiment, Loss, PhaseGroup, TrainPhase, compile_loss

BACKENDS = [
    "torch",
    pytest.param("tensorflow", marks=pytest.mark.filterwarnings("ignore::DeprecationWarning")),
]


def classes_fs(n_classes: int, n: int = 60, *, float_ids: bool = False) -> mml.FeatureSet:
    rng = np.random.default_rng(0)
    y = np.arange(n) % n_classes
    return (
        mml.FeatureSet.from_dict(
            {"x": rng.normal(size=(n, 3)).astype(np.float32), "y": y.astype(np.float32) if float_ids else y},
            features="x",
            targets="y",
            label="cls",
        )
        .with_split("train", np.arange(n))
        .with_split("test", np.arange(n), overlap="allow")
    )


def experiment(fs: mml.FeatureSet, backend: str, n_out: int, *, eval_only: bool = False) -> Experiment:
    model = SequentialMLP(hidden=(8,), output_shape=(n_out,), backend=backend)
    g = ModelGraph.of(ModelNode("clf", model, FeatureSetRef("cls"), optimizer=mml.optim.sgd(0.1)))
    loss = AppliedLoss("cross_entropy", "clf")
    if eval_only:
        phase = EvalPhase.simple("check", featureset="cls", heads=["clf"], losses=loss)
    else:
        phase = TrainPhase.simple(
            "fit", featureset="cls", heads=["clf"], losses=loss, n_epochs=1, sampler=mml.SimpleSampler(16)
        )
    return Experiment({"cls": fs}, g, PhaseGroup("plan", [phase]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("float_ids", [False, True])
def test_five_classes_on_four_logits_fail_clearly(backend: str, float_ids: bool) -> None:
    if backend == "tensorflow":
        pytest.importorskip("tensorflow")
    pytest.importorskip("torch")
    exp = experiment(classes_fs(5, float_ids=float_ids), backend, 4)
    state, history = mml.run(exp, mml.init(exp, 0))
    assert history.status == "failed"  # before: torch raised IndexError, Keras completed
    message = str(history.error)
    assert "loss 'clf.cross_entropy' on node 'clf'" in message
    assert "[0, 4)" in message and "hold 4 (12 of 60 values)" in message
    assert "output_shape=(5,)" in message
    assert state.step == 0  # nothing trained: checked before the first step


@pytest.mark.parametrize("backend", BACKENDS)
def test_eval_phase_checks_too_and_good_ids_pass(backend: str) -> None:
    if backend == "tensorflow":
        pytest.importorskip("tensorflow")
    pytest.importorskip("torch")
    bad = experiment(classes_fs(5), backend, 4, eval_only=True)
    _, history = mml.run(bad, mml.init(bad, 0))
    assert history.status == "failed" and "class ids must be integers in [0, 4)" in str(history.error)
    good = experiment(classes_fs(4), backend, 4)
    _, history = mml.run(good, mml.init(good, 0))
    assert history.status == "completed", history.error


def test_messages_are_the_same_for_both_backends() -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("torch")
    messages = []
    for backend in ("torch", "tensorflow"):
        exp = experiment(classes_fs(6), backend, 4)
        messages.append(str(mml.run(exp, mml.init(exp, 0))[1].error))
    assert messages[0] == messages[1] and "hold 4, 5 (20 of 60 values)" in messages[0]


def test_negative_and_fractional_ids_and_probabilities() -> None:
    from mml.training._class_ids import class_id_problem

    assert "hold -1, 0.5" in class_id_problem("l", "n", np.array([0.0, -1.0, 0.5, 2.0]), 3)
    assert "with a mask" in class_id_problem("l", "n", np.array([-100, 1]), 3)
    assert class_id_problem("l", "n", np.array([0, 1, 2]), 3) is None
    torch = pytest.importorskip("torch")
    # class probabilities (float targets shaped like the logits) are not ids and still train
    fn = compile_loss(Loss("cross_entropy"), "torch")
    assert float(fn([torch.zeros(2, 3), torch.full((2, 3), 1 / 3)], None, None)) == pytest.approx(np.log(3))
