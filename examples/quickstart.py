"""Quickstart: train a small MLP on the bundled battery data and evaluate it in raw units.

python examples/quickstart.py
"""

from __future__ import annotations

import numpy as np

import mml
from mml.callbacks import EarlyStopping, Evaluation
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.scalers import PerSampleZeroStart
from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase


def main() -> None:
    fs = mml.datasets.load_battery(1000, seed=0)
    fs = fs.split(mml.RandomSplitter({"train": 0.7, "val": 0.15, "test": 0.15}, seed=0))
    fs = mml.scalers.fit_transform(fs, PerSampleZeroStart(), domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets", fit_on="train")

    graph = ModelGraph.of(
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
                n_epochs=30,
                sampler=mml.SimpleSampler(32),
                callbacks=[
                    Evaluation(split="val", metrics=("r2",)),
                    EarlyStopping(patience=5, restore_best=True),
                ],
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
    exp = Experiment({"battery": fs}, graph, plan)
    _, history = mml.run(exp, mml.init(exp, 0))
    history.raise_for_status()
    res = history.eval_result("test")
    y, p = res.targets["mlp"], res.outputs["mlp"]
    print(
        f"status: {history.status}; test MSE {np.mean((p - y) ** 2):.2e} vs predicting the mean {np.var(y):.2e}"
    )
    print(history.epochs().to_pandas().pivot_table(index="epoch", columns="name", values="value").round(4))


if __name__ == "__main__":
    main()
