from __future__ import annotations

import numpy as np
import pytest

import mml

torch = pytest.importorskip("torch")


def make_featureset(n: int = 120, seed: int = 0, label: str = "toy") -> mml.FeatureSet:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([0.5, -1.0, 0.25], np.float32) + 0.1).astype(np.float32)
    fs = mml.FeatureSet.from_dict(
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}, features=["a", "b", "c"], targets="y", label=label
    )
    idx = np.arange(n)
    return fs.with_split("train", idx[: n * 3 // 4]).with_split("val", idx[n * 3 // 4 :])


@pytest.fixture
def toy() -> mml.FeatureSet:
    return make_featureset()


def mlp_graph(hidden: tuple[int, ...] = (8,), lr: float = 1e-2, dropout: float = 0.0) -> mml.ModelGraph:
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP

    return ModelGraph.of(
        ModelNode(
            "mlp",
            SequentialMLP(hidden=hidden, dropout=dropout),
            FeatureSetRef("toy"),
            optimizer=mml.optim.adam(lr),
        )
    )


def simple_experiment(
    fs: mml.FeatureSet, n_epochs: int = 2, callbacks=(), dropout: float = 0.0, **kw
) -> mml.Experiment:
    from mml.training import AppliedLoss, Experiment, TrainPhase

    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mse", "mlp"),
        n_epochs=n_epochs,
        sampler=mml.SimpleSampler(16),
        callbacks=callbacks,
        **kw,
    )
    return Experiment({"toy": fs}, mlp_graph(dropout=dropout), phase)


def params_of(state, label: str = "mlp") -> dict:
    return {k: v.detach().clone() for k, v in state.params(label).params.items()}


def same_params(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def early_stopped_run() -> tuple[mml.Experiment, mml.TrainState, mml.training.History]:
    """25 epochs of the toy MLP with validation and early stopping (it stops early, restoring the
    best epoch), then a test phase on the validation split: the run the shell's views are checked on."""
    from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase

    fs = mml.scalers.fit_transform(make_featureset(), "standard", domain="targets", fit_on="train")
    cbs = [
        mml.callbacks.Evaluation(split="val", metrics=("r2",)),
        mml.callbacks.EarlyStopping("val_loss", patience=2, restore_best=True),
    ]
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "fit",
                featureset="toy",
                heads=["mlp"],
                losses=AppliedLoss("mse", "mlp"),
                n_epochs=25,
                sampler=mml.SimpleSampler(16),
                callbacks=cbs,
            ),
            EvalPhase.simple(
                "test",
                featureset="toy",
                heads=["mlp"],
                split="val",
                losses=[AppliedLoss("mse", "mlp"), AppliedLoss("mae", "mlp")],
                inverse_transform=True,
            ),
        ],
    )
    exp = Experiment({"toy": fs}, mlp_graph(lr=0.05), plan)
    state, history = mml.run(exp, mml.init(exp, 0), progress=False)
    return exp, state, history
