"""Cross-validation: 5 folds over the battery data, grouped by cell, with pooled out-of-fold metrics.

A held-out ``test`` split stays untouched; the folds cover the ``train`` split. Every fold
re-fits the scalers on its own training rows, so nothing about a validation fold leaks into
the model that predicts it.

python examples/cross_validation.py
"""

from __future__ import annotations

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.scalers import PerSampleZeroStart
from mml.strategies import cross_validate
from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase


def main() -> None:
    fs = mml.datasets.load_battery(600, seed=0)
    fs = fs.split(mml.RandomSplitter({"train": 0.7, "val": 0.15, "test": 0.15}, seed=0, group_by="cell_id"))
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
                n_epochs=15,
                sampler=mml.SimpleSampler(32),
            ),
            # evaluated on each fold's validation rows, in raw units: these are pooled
            EvalPhase.simple("val", featureset="battery", heads=["mlp"], split="val", inverse_transform=True),
            EvalPhase.simple(
                "test", featureset="battery", heads=["mlp"], split="test", inverse_transform=True
            ),
        ],
    )
    exp = Experiment({"battery": fs}, graph, plan)

    cv = cross_validate(
        exp,
        featureset="battery",
        splitter=mml.KFoldSplitter(5, seed=0, group_by="cell_id"),
        on="train",  # fold the training rows; 'test' stays held out
        key=mml.random.key(0),
    ).raise_for_status()

    table = cv.to_pandas()
    print(table.pivot_table(index="fold", columns="metric", values="value").round(5).to_string())
    print()
    print(cv.summary().round(5).to_string())
    pooled = cv.pooled["val"]
    print()
    print(
        f"pooled out-of-fold predictions: {len(pooled)} samples (each predicted once, by the fold that held it out)"
    )
    for name, value in cv.pooled_metrics().items():
        print(f"  {name}: {value:.5g}")


if __name__ == "__main__":
    main()
