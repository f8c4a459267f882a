"""Triplet embedding: learn a pulse embedding in which cells of similar health sit close.

A TripletSampler draws, for every anchor pulse, a positive with an SOH within 0.01 and a
negative with an SOH more than 0.05 away. Each batch therefore has three roles (anchor,
positive, negative); the loop runs the encoder on each role and the triplet-margin loss
reads the three role-qualified outputs. Afterwards a nearest-neighbour lookup in the
embedding predicts the SOH of held-out pulses.

python examples/triplet_embedding.py     (MML_EXAMPLE_FAST=1 shrinks it for the tests)
"""

from __future__ import annotations

import os

import numpy as np

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode
from mml.models import SequentialMLP
from mml.samplers import TripletSampler, dissimilar, similar
from mml.scalers import PerSampleZeroStart
from mml.training import AppliedLoss, EvalPhase, Experiment, InputBinding, PhaseGroup, TrainPhase

FAST = os.environ.get("MML_EXAMPLE_FAST") == "1"
N_SAMPLES, N_EPOCHS = (300, 2) if FAST else (1000, 8)


def main() -> None:
    fs = mml.datasets.load_battery(N_SAMPLES, seed=0)
    fs = fs.split(mml.RandomSplitter({"train": 0.8, "test": 0.2}, seed=0))
    fs = mml.scalers.fit_transform(fs, PerSampleZeroStart(), domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")

    graph = ModelGraph.of(
        ModelNode(
            "encoder",
            SequentialMLP(hidden=(64,), output_shape=(8,)),
            FeatureSetRef("battery"),
            optimizer=mml.optim.adam(1e-3),
        )
    )
    triplets = TripletSampler(
        positive={"soh": similar(0.01)},  # conditions may read any scalar column (targets too)
        negative={"soh": dissimilar(0.05)},
        batch_size=32,
    )
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase(
                "fit",
                {"encoder": InputBinding("battery", "train", triplets)},
                AppliedLoss(
                    mml.Loss("triplet_margin", {"margin": 1.0}),
                    "encoder",
                    inputs=("anchor.outputs", "positive.outputs", "negative.outputs"),
                ),
                n_epochs=N_EPOCHS,
            ),
            # embed both splits in sample order (no loss needed: we only want the outputs)
            EvalPhase.simple("embed_train", featureset="battery", heads=["encoder"], split="train"),
            EvalPhase.simple("embed_test", featureset="battery", heads=["encoder"], split="test"),
        ],
    )
    exp = Experiment({"battery": fs}, graph, plan)
    _, history = mml.run(exp, mml.init(exp, 0))
    history.raise_for_status()

    train, test = history.eval_result("embed_train"), history.eval_result("embed_test")
    e_train, e_test = train.outputs["encoder"], test.outputs["encoder"]
    soh_train, soh_test = train.targets["encoder"].ravel(), test.targets["encoder"].ravel()
    # 5-nearest-neighbour SOH in the learned embedding
    d = ((e_test[:, None, :] - e_train[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(d, axis=1)[:, :5]
    mae = float(np.mean(np.abs(soh_train[nearest].mean(1) - soh_test)))
    losses = history.epochs().where(phase="fit").values("loss")
    print(f"triplet loss: epoch 1 {losses[0]:.3f} -> epoch {len(losses)} {losses[-1]:.3f}")
    print(
        f"triplet_embedding: 5-NN test MAE {mae:.4f} SOH (predicting the mean: {np.mean(np.abs(soh_test - soh_train.mean())):.4f})"
    )


if __name__ == "__main__":
    main()
