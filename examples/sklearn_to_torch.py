"""scikit-learn -> torch: a PCA of the voltage pulses feeds a small torch MLP.

The PCA node is closed-form: a FitPhase fits it on the training split (and, with
``freeze_after_fit=True``, records it in ``TrainState.fitted`` so later phases leave it
alone). A TrainPhase then trains the torch head on the PCA scores. Gradients stop at the
backend boundary between the two — ``mml.build`` reports that edge in ``gradient_stops``.

python examples/sklearn_to_torch.py      (MML_EXAMPLE_FAST=1 shrinks it for the tests)
"""

from __future__ import annotations

import os

import numpy as np

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP, SklearnModel
from mml.scalers import PerSampleZeroStart
from mml.training import AppliedLoss, EvalPhase, Experiment, FitPhase, InputBinding, PhaseGroup, TrainPhase

FAST = os.environ.get("MML_EXAMPLE_FAST") == "1"
N_SAMPLES, N_EPOCHS = (300, 3) if FAST else (1000, 30)


def main() -> None:
    fs = mml.datasets.load_battery(N_SAMPLES, seed=0)
    fs = fs.split(mml.RandomSplitter({"train": 0.8, "test": 0.2}, seed=0))
    fs = mml.scalers.fit_transform(fs, PerSampleZeroStart(), domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets", fit_on="train")

    graph = ModelGraph.of(
        ModelNode(
            "pca",
            SklearnModel("sklearn.decomposition:PCA", {"n_components": 6, "whiten": True}),
            FeatureSetRef("battery"),
        ),
        ModelNode("head", SequentialMLP(hidden=(32,)), NodeRef("pca"), optimizer=mml.optim.adam(3e-3)),
    )
    built = mml.build(graph, {"battery": fs}, key=0)
    print(built)
    assert built.gradient_stops == (("pca", "head"),)

    plan = PhaseGroup(
        "plan",
        [
            FitPhase("fit_pca", {"pca": InputBinding("battery", "train")}),
            TrainPhase.simple(
                "train_head",
                featureset="battery",
                heads=["pca"],  # data enters at the PCA node ...
                losses=AppliedLoss("mse", "head"),  # ... and only the head has a loss to learn from
                n_epochs=N_EPOCHS,
                sampler=mml.SimpleSampler(32),
            ),
            EvalPhase.simple(
                "test",
                featureset="battery",
                heads=["pca"],
                losses=[AppliedLoss("mse", "head")],
                inverse_transform=True,
            ),
        ],
    )
    exp = Experiment({"battery": fs}, graph, plan)
    state, history = mml.run(exp, mml.init(exp, 0))
    history.raise_for_status()

    pca = state.graph["pca"].fitted  # the fitted estimator, stored as data (no pickle)
    explained = np.asarray(pca.attributes["explained_variance_ratio_"]).sum()
    res = history.eval_result("test")
    y, p = res.targets["head"], res.outputs["head"]
    rmse = float(np.sqrt(np.mean((p - y) ** 2)))
    print(f"fitted: {state.fitted}; PCA keeps {explained:.3%} of the variance")
    print(f"sklearn_to_torch: test RMSE {rmse:.4f} SOH (std of SOH {float(np.std(y)):.4f})")


if __name__ == "__main__":
    main()
