"""A user's script as mypy sees it: the names re-exported by ``mml`` carry real types.

Checked by ``tox -e type`` (``mypy tests/typing``) and by tests/test_public_api.py; never run.
``assert_type`` fails the mypy check when a public name or what it returns is ``Any``: the
expected types are imported from the defining subpackages, which mypy always sees, so an
``Any`` from ``mml.<name>`` cannot match them.
"""

from __future__ import annotations

from typing import assert_type

import numpy as np

import mml
from mml.data import FeatureSet
from mml.graph import ModelGraph
from mml.inference import Predictor
from mml.training import History, TrainPhase, TrainState


def train() -> None:
    fs = mml.FeatureSet.from_dict(
        {"x": np.linspace(0.0, 1.0, 40), "y": np.linspace(1.0, 2.0, 40)},
        features="x",
        targets="y",
        label="toy",
    )
    assert_type(fs, FeatureSet)
    fs = fs.split(mml.RandomSplitter({"train": 0.75, "val": 0.25}, seed=0))
    assert_type(fs, FeatureSet)
    fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
    assert_type(fs, FeatureSet)

    graph = mml.ModelGraph.of(
        mml.ModelNode(
            "mlp",
            mml.SequentialMLP(hidden=(8,)),
            mml.FeatureSetRef("toy"),
            optimizer=mml.optim.adam(1e-2),
        )
    )
    assert_type(graph, ModelGraph)
    phase = mml.TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=mml.AppliedLoss("mse", "mlp"),
        n_epochs=2,
        sampler=mml.SimpleSampler(8),
    )
    assert_type(phase, TrainPhase)
    experiment = mml.Experiment({"toy": fs}, graph, phase)

    state = mml.init(experiment, 0)
    assert_type(state, TrainState)
    final, history = mml.run(experiment, state)
    assert_type(final, TrainState)
    assert_type(history, History)

    predictor = mml.export(experiment, final)
    assert_type(predictor, Predictor)
    mml.save(predictor, "predictor")
