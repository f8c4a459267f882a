"""Two branches -> concat -> head: a CNN on the voltage pulse beside an MLP on the conditions.

The battery pulses come with the cell temperature and the state of charge at the start of
the pulse. Here they are features too: the voltage goes through a 1-D CNN, (temperature,
soc) through a small MLP, a ConcatNode joins the two embeddings and a head predicts the SOH.
Every branch is a head of the graph, so each gets an input binding; both read the same
split with the same sampler, so their batches hold the same samples in the same order.

python examples/two_branches_concat.py   (MML_EXAMPLE_FAST=1 shrinks it for the tests)
"""

from __future__ import annotations

import os

import numpy as np

import mml
from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialCNN, SequentialMLP
from mml.scalers import PerSampleZeroStart
from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase

FAST = os.environ.get("MML_EXAMPLE_FAST") == "1"
N_SAMPLES, N_EPOCHS = (300, 3) if FAST else (1000, 12)


def main() -> None:
    raw = mml.datasets.battery_pulses(N_SAMPLES, seed=0)
    fs = mml.FeatureSet.from_dict(
        {k: raw[k] for k in ("voltage", "temperature", "soc", "soh", "cell_id")},
        features=["voltage", "temperature", "soc"],
        targets="soh",
        tags="cell_id",
        label="cells",
    )
    fs = fs.split(mml.RandomSplitter({"train": 0.8, "test": 0.2}, seed=0))
    fs = mml.scalers.fit_transform(
        fs, PerSampleZeroStart(), domain="features", keys=["voltage"], fit_on="train"
    )
    fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets", fit_on="train")

    graph = ModelGraph.of(
        ModelNode(
            "pulse",
            SequentialCNN(channels=(8, 16), kernel_size=5, pooling=4, output_shape=(16,)),
            FeatureSetRef("cells", features="voltage"),
        ),
        ModelNode(
            "conditions",
            SequentialMLP(hidden=(16,), output_shape=(4,)),
            FeatureSetRef("cells", features=("temperature", "soc")),
        ),
        ConcatNode("joint", (NodeRef("pulse"), NodeRef("conditions"))),  # (16,) + (4,) -> (20,)
        ModelNode("head", SequentialMLP(hidden=(32,)), NodeRef("joint")),
    ).with_optimizer(mml.optim.adam(3e-3))

    print(mml.build(graph, {"cells": fs}, key=0))

    heads = ["pulse", "conditions"]
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "fit",
                featureset="cells",
                heads=heads,
                losses=AppliedLoss("mse", "head"),
                n_epochs=N_EPOCHS,
                sampler=mml.SimpleSampler(32),
                mode="graphwise",  # one backward pass through both branches and the head
            ),
            EvalPhase.simple(
                "test",
                featureset="cells",
                heads=heads,
                losses=[AppliedLoss("mse", "head")],
                inverse_transform=True,
            ),
        ],
    )
    exp = Experiment({"cells": fs}, graph, plan)
    _, history = mml.run(exp, mml.init(exp, 0))
    history.raise_for_status()

    res = history.eval_result("test")
    y, p = res.targets["head"], res.outputs["head"]
    rmse = float(np.sqrt(np.mean((p - y) ** 2)))
    print(f"two_branches_concat: test RMSE {rmse:.4f} SOH (std of SOH {float(np.std(y)):.4f})")


if __name__ == "__main__":
    main()
