"""Regressions from a bug hunt of the training loop (purity, restore_best, inverse transforms)."""

from __future__ import annotations

import numpy as np
import pytest

import mml

torch = pytest.importorskip("torch")

from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef  # noqa: E402
from mml.models import SequentialMLP, TorchModule  # noqa: E402
from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase  # noqa: E402

from .conftest import make_featureset  # noqa: E402


def _bn_graph() -> ModelGraph:
    enc = TorchModule("tests.backends.backend_factories:bn_net", {"hidden": 8, "p": 0.0}, output_shape=(1,))
    return ModelGraph.of(
        ModelNode("enc", enc, FeatureSetRef("toy"), optimizer=mml.optim.adam(1e-2)),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("enc"), optimizer=mml.optim.adam(1e-2)),
        optimizer=mml.optim.adam(1e-2),
    )


@pytest.mark.parametrize("mode", ["stagewise", "graphwise"])
def test_run_never_modifies_the_input_state(mode: str) -> None:
    from mml.callbacks import EarlyStopping, Evaluation

    losses = [AppliedLoss("mse", "head")] + ([AppliedLoss("mse", "enc")] if mode == "stagewise" else [])
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["enc"],
        losses=losses,
        n_epochs=4,
        sampler=mml.SimpleSampler(16),
        mode=mode,
        callbacks=[Evaluation(split="val"), EarlyStopping("val_loss", patience=4, restore_best=True)],
    )
    exp = Experiment({"toy": make_featureset(60)}, _bn_graph(), phase)
    s0 = mml.init(exp, 0)

    def tensors(state):
        return {
            (n, f, k): v
            for n in ("enc", "head")
            for f in ("params", "buffers")
            for k, v in getattr(state.params(n), f).items()
        }

    before = {k: v.detach().clone() for k, v in tensors(s0).items()}
    s1, h = mml.run(exp, s0)
    assert h.status == "completed", h.error
    now = tensors(s0)
    for k, v in before.items():
        assert torch.equal(now[k], v), k
    key = ("enc", "buffers", "1.running_mean")
    assert not torch.equal(tensors(s1)[key], before[key])  # BatchNorm did update (in the new state)
    # restore_best: the final params score the best epoch's val_loss
    vals = h.epochs().values("val_loss")
    again = mml.training.evaluate(
        exp, s1, {"enc": mml.training.InputBinding("toy")}, losses=losses, split="val"
    )
    assert again.losses["loss"] == pytest.approx(float(np.min(vals)), rel=1e-5)


@pytest.mark.parametrize("rep", [None, "raw"])
def test_eval_inverse_transform_with_reordered_subset_of_targets(rep) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    fs = mml.FeatureSet.from_dict(
        {"x": x, "y1": x[:, 0] * 100 + 50, "y2": x[:, 1] * 0.01 - 3, "y3": x[:, 2]},
        features="x",
        targets=["y1", "y2", "y3"],
        label="toy",
    )
    fs = fs.with_split("train", range(30)).with_split("test", range(30, 40))
    fs = mml.scalers.fit_transform(
        mml.scalers.fit_transform(fs, "standard", domain="targets", keys=["y1"]),
        "minmax",
        domain="targets",
        keys=["y2"],
    )
    ref = FeatureSetRef("toy", targets=("y2", "y1"), rep=rep)
    g = ModelGraph.of(ModelNode("m", SequentialMLP(hidden=(4,)), ref, optimizer=mml.optim.adam(1e-2)))
    plan = PhaseGroup(
        "p",
        [
            TrainPhase.simple(
                "fit",
                featureset="toy",
                heads=["m"],
                losses=AppliedLoss("mse", "m"),
                sampler=mml.SimpleSampler(16),
            ),
            EvalPhase.simple(
                "test",
                featureset="toy",
                heads=["m"],
                losses=[AppliedLoss("mse", "m")],
                inverse_transform=True,
            ),
        ],
    )
    exp = Experiment({"toy": fs}, g, plan)
    _, h = mml.run(exp, mml.init(exp, 0))
    got = h.eval_result("test").targets["m"]
    np.testing.assert_allclose(
        got, fs["test"].to_numpy("targets", ["y2", "y1"], rep="raw"), rtol=1e-5, atol=1e-4
    )
