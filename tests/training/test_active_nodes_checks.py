"""A phase's explicit ``active_nodes`` are checked when the Experiment is built.

A node runs only when every node it reads runs, and a loss reads the output of its node; a
careless ``active_nodes`` used to fail inside the first step with ``ValueError: min() arg is an
empty sequence`` (an active node reading an inactive one) or with a misleading "no trainable
node" (a loss on an inactive node).
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP
from mml.training import AppliedLoss, Experiment, PhaseGroup, TrainPhase


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(0)
    fs = mml.FeatureSet.from_dict(
        {"x": rng.normal(size=(64, 3)), "y": rng.normal(size=64)}, features="x", targets="y", label="d"
    ).split(mml.RandomSplitter({"train": 0.75, "val": 0.25}, seed=0))
    g = ModelGraph.of(
        ModelNode(
            "enc",
            SequentialMLP(hidden=(4,), output_shape=(4,)),
            FeatureSetRef("d"),
            optimizer=mml.optim.adam(),
        ),
        ModelNode(
            "mid", SequentialMLP(hidden=(4,), output_shape=(4,)), NodeRef("enc"), optimizer=mml.optim.adam()
        ),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("mid"), optimizer=mml.optim.adam()),
    )
    return fs, g


def _experiment(parts, active, loss_node="head"):
    fs, g = parts
    phase = TrainPhase.simple(
        "t",
        featureset="d",
        heads=["enc"],
        losses=AppliedLoss("mse", loss_node),
        n_epochs=1,
        sampler=mml.SimpleSampler(16),
        active_nodes=active,
    )
    return Experiment({"d": fs}, g, PhaseGroup("p", [phase]))


def test_an_active_node_that_reads_an_inactive_one_is_refused_by_name(parts):
    with pytest.raises(mml.TrainingError) as info:
        _experiment(parts, ["enc", "head"])
    assert str(info.value) == (
        "phase 't': active node 'head' reads node 'mid', which is not in active_nodes ['enc', 'head']; add 'mid' "
        "to active_nodes= (a node runs only when the nodes it reads run)"
    )


def test_every_gap_is_listed_once_in_graph_order(parts):
    with pytest.raises(mml.TrainingError) as info:
        _experiment(parts, ["head", "mid"])
    msg = str(info.value)
    assert (
        msg.count("reads node") == 1 and "active node 'mid' reads node 'enc'" in msg
    )  # head reads mid: fine


def test_a_loss_on_an_inactive_node_is_refused_by_name(parts):
    with pytest.raises(mml.TrainingError) as info:
        _experiment(parts, ["enc", "mid"])
    assert str(info.value) == (
        "phase 't': loss 'head.mse' is bound to node 'head', which is not in active_nodes ['enc', 'mid']; add "
        "'head' to active_nodes= or bind the loss to an active node"
    )


def test_closed_active_nodes_train_only_those_nodes(parts):
    fs, _ = parts
    g = ModelGraph.of(
        ModelNode(
            "enc",
            SequentialMLP(hidden=(4,), output_shape=(4,)),
            FeatureSetRef("d"),
            optimizer=mml.optim.adam(),
        ),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("enc"), optimizer=mml.optim.adam()),
        ModelNode("aux", SequentialMLP(hidden=(4,)), NodeRef("enc"), optimizer=mml.optim.adam()),  # left out
    )
    phase = TrainPhase.simple(
        "t",
        featureset="d",
        heads=["enc"],
        losses=AppliedLoss("mse", "head"),
        n_epochs=1,
        sampler=mml.SimpleSampler(16),
        active_nodes=["enc", "head"],
    )
    exp = Experiment({"d": fs}, g, PhaseGroup("p", [phase]))
    s0 = mml.init(exp, mml.random.key(0))
    state, history = mml.run(exp, s0, progress=False)
    assert history.status == "completed"
    assert state.graph.params["aux"] == s0.graph.params["aux"]  # never ran, never changed
    assert state.graph.params["head"] != s0.graph.params["head"]


def test_no_active_nodes_means_the_losses_ancestors_and_no_check(parts):
    exp = _experiment(parts, None)
    assert mml.training._validate.active_nodes(exp.graph, exp.plan.phases[0]) == {"enc", "mid", "head"}


def test_an_unknown_label_in_active_nodes_is_the_only_problem_reported(parts):
    with pytest.raises(mml.TrainingError) as info:
        _experiment(parts, ["enc", "mid", "haed"])
    assert str(info.value) == "phase 't': unknown node 'haed' (did you mean 'head'?)"
