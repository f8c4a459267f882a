"""Keras: an encoder -> head graph on the Keras 3 / TensorFlow backend, trained with mml.run.

The built-in model specs run on either backend: ``backend="tensorflow"`` gives Keras models
driven through ``stateless_call`` (the weights live in the TrainState, never inside a Keras
object). The graph, the phases and the loop are the same as for torch; only the spec's
``backend`` changes. Your own Keras models plug in as ``KerasModel("pkg.mod:factory", {...})``.

python examples/keras_head.py            (MML_EXAMPLE_FAST=1 shrinks it for the tests)
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter quiet

import numpy as np

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef, forward
from mml.models import SequentialMLP
from mml.scalers import PerSampleZeroStart
from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase

FAST = os.environ.get("MML_EXAMPLE_FAST") == "1"
N_SAMPLES, N_EPOCHS = (300, 3) if FAST else (1000, 10)


def main() -> None:
    fs = mml.datasets.load_battery(N_SAMPLES, seed=0)
    fs = fs.split(mml.RandomSplitter({"train": 0.8, "test": 0.2}, seed=0))
    fs = mml.scalers.fit_transform(fs, PerSampleZeroStart(), domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="targets", fit_on="train")

    graph = ModelGraph.of(
        ModelNode(
            "encoder",
            SequentialMLP(hidden=(64,), output_shape=(8,), backend="tensorflow"),
            FeatureSetRef("battery"),
        ),
        ModelNode("head", SequentialMLP(hidden=(16,), backend="tensorflow"), NodeRef("encoder")),
    ).with_optimizer(mml.optim.adam(3e-3))

    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "fit",
                featureset="battery",
                heads=["encoder"],
                losses=AppliedLoss("mse", "head"),
                n_epochs=N_EPOCHS,
                sampler=mml.SimpleSampler(32),
                mode="graphwise",  # one tf.GradientTape through both Keras nodes
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
    state, history = mml.run(exp, mml.init(exp, 0))
    history.raise_for_status()

    # the trained params are plain data: run the graph by hand on a few test pulses
    x = fs["test"].to_numpy("features")[:4]
    out = forward(graph, state.graph, x)
    print(
        f"params: {type(state.graph['head']).__name__}; forward gives {type(out.outputs['head']).__name__} {tuple(out.outputs['head'].shape)}"
    )

    res = history.eval_result("test")
    y, p = res.targets["head"], res.outputs["head"]
    rmse = float(np.sqrt(np.mean((p - y) ** 2)))
    losses = history.epochs().where(phase="fit").values("loss")
    print(f"train loss: epoch 1 {losses[0]:.4f} -> epoch {len(losses)} {losses[-1]:.4f}")
    print(f"keras_head: test RMSE {rmse:.4f} SOH (std of SOH {float(np.std(y)):.4f})")


if __name__ == "__main__":
    main()
