from __future__ import annotations

import numpy as np
import pytest

import mml


def make_featureset(n: int = 48, seed: int = 0, *, scale: bool = True) -> mml.FeatureSet:
    """A tiny regression set with train/val/test splits and (optionally) standard scalers on both domains."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([0.5, -1.0, 0.25], np.float32) + 0.1).astype(np.float32)
    groups = np.repeat(np.arange(n // 4), 4)
    fs = mml.FeatureSet.from_dict(
        {"x": x, "y": y, "g": groups},
        features="x",
        targets="y",
        tags="g",
        label="toy",
        key=mml.random.key(seed),
    )
    fs = fs.split(mml.RandomSplitter({"train": 0.6, "val": 0.2, "test": 0.2}, seed=seed))
    if scale:
        fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
        fs = mml.scalers.fit_transform(fs, "standard", domain="targets", fit_on="train")
    return fs


def make_experiment(fs: mml.FeatureSet, *, n_epochs: int = 1, inverse: bool = True) -> mml.Experiment:
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP
    from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase

    graph = ModelGraph.of(
        ModelNode("mlp", SequentialMLP(hidden=(4,)), FeatureSetRef("toy"), optimizer=mml.optim.adam(1e-2))
    )
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "fit",
                featureset="toy",
                heads=["mlp"],
                losses=AppliedLoss("mse", "mlp"),
                n_epochs=n_epochs,
                sampler=mml.SimpleSampler(16),
            ),
            EvalPhase.simple(
                "val",
                featureset="toy",
                heads=["mlp"],
                split="val",
                losses=[AppliedLoss("mse", "mlp")],
                inverse_transform=inverse,
            ),
            EvalPhase.simple("test", featureset="toy", heads=["mlp"], split="test"),
        ],
    )
    return Experiment({"toy": fs}, graph, plan)


@pytest.fixture
def fs() -> mml.FeatureSet:
    return make_featureset()


@pytest.fixture
def exp(fs):
    pytest.importorskip("torch")
    return make_experiment(fs)
