"""Encoder -> head: two torch nodes trained end to end (graph-wise) on the battery pulses.

The encoder compresses each 101-point voltage pulse into 8 numbers; a small head predicts
the state of health (SOH) from them. With ``mode="graphwise"`` one optimizer (the graph's)
updates both nodes in one backward pass, and the only loss sits on the head.

python examples/encoder_head.py          (MML_EXAMPLE_FAST=1 shrinks it for the tests)
"""

from __future__ import annotations

import os

import numpy as np

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP
from mml.scalers import PerSampleZeroStart
from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase

FAST = os.environ.get("MML_EXAMPLE_FAST") == "1"
N_SAMPLES, N_EPOCHS = (300, 3) if FAST else (1000, 25)


def main() -> None:
    fs = mml.datasets.load_battery(N_SAMPLES, seed=0)
    fs = fs.split(mml.RandomSplitter({"train": 0.8, "test": 0.2}, seed=0))
    # the pulse shape carries the SOH; the starting voltage mostly carries the SOC
    fs = mml.scalers.fit_transform(fs, PerSampleZeroStart(), domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets", fit_on="train")

    graph = ModelGraph.of(
        # output_shape is needed on the encoder: only the tail's output defaults to the target shape
        ModelNode("encoder", SequentialMLP(hidden=(64,), output_shape=(8,)), FeatureSetRef("battery")),
        ModelNode("head", SequentialMLP(hidden=(16,)), NodeRef("encoder")),
    ).with_optimizer(mml.optim.adam(3e-3))

    # build once by hand to see the inferred shapes (mml.init does the same inside)
    print(mml.build(graph, {"battery": fs}, key=0))

    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "fit",
                featureset="battery",
                heads=["encoder"],  # the node fed by the FeatureSet
                losses=AppliedLoss("mse", "head"),  # the loss reads the tail's output
                n_epochs=N_EPOCHS,
                sampler=mml.SimpleSampler(32),
                mode="graphwise",
            ),
            EvalPhase.simple(
                "test",
                featureset="battery",
                heads=["encoder"],
                losses=[AppliedLoss("mse", "head")],
                inverse_transform=True,
            ),
        ],
    )
    exp = Experiment({"battery": fs}, graph, plan)
    _, history = mml.run(exp, mml.init(exp, 0))
    history.raise_for_status()

    res = history.eval_result("test")
    y, p = res.targets["head"], res.outputs["head"]
    rmse = float(np.sqrt(np.mean((p - y) ** 2)))
    losses = history.epochs().where(phase="fit").values("loss")
    print(f"train loss: epoch 1 {losses[0]:.4f} -> epoch {len(losses)} {losses[-1]:.4f}")
    print(f"encoder_head: test RMSE {rmse:.4f} SOH (std of SOH {float(np.std(y)):.4f})")


if __name__ == "__main__":
    main()
