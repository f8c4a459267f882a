"""A state made for another graph or other data is refused by name, before it trains or predicts.

``mml.graph.state_mismatches`` compares a GraphState's nodes, recorded shapes and torch tensors
with a graph over FeatureSets; ``mml.run`` and ``run_phase`` refuse a state that does not fit
(they used to train the old shapes silently: a state of ``hidden=(8,)`` under a spec of
``hidden=(4,)`` ran to "completed").
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef, build, state_mismatches
from mml.models import SequentialMLP, SklearnModel, TorchModule
from mml.training import AppliedLoss, Experiment, PhaseGroup, TrainPhase

RNG = np.random.default_rng(0)
FS = mml.FeatureSet.from_dict(
    {"a": RNG.normal(size=(32, 3)), "b": RNG.normal(size=32), "y": RNG.normal(size=32)},
    features=["a", "b"],
    targets="y",
    label="d",
).split(mml.RandomSplitter({"train": 0.75, "val": 0.25}, seed=0))


def mlp(label, hidden=(4,), ref=None, **kw):
    return ModelNode(
        label, SequentialMLP(hidden=hidden, **kw), ref or FeatureSetRef("d"), optimizer=mml.optim.adam()
    )


def test_a_state_fits_the_graph_it_was_built_for_and_after_training():
    g = ModelGraph.of(mlp("m"))
    s = build(g, {"d": FS}, 0)
    assert state_mismatches(g, {"d": FS}, s) == []
    exp = Experiment({"d": FS}, g, _plan("m"))
    trained, _ = mml.run(exp, mml.init(exp, 0), progress=False)
    assert state_mismatches(g, {"d": FS}, trained.graph) == []


def test_every_resized_tensor_is_named_with_both_shapes():
    s = build(ModelGraph.of(mlp("m", hidden=(8,))), {"d": FS}, 0)
    assert state_mismatches(ModelGraph.of(mlp("m", hidden=(4,))), {"d": FS}, s) == [
        "node 'm': params 'layers.0.weight' has shape (8, 4) in the state, but the model spec makes (4, 4)",
        "node 'm': params 'layers.0.bias' has shape (8,) in the state, but the model spec makes (4,)",
        "node 'm': params 'layers.1.weight' has shape (1, 8) in the state, but the model spec makes (1, 4)",
    ]


def test_a_layer_more_or_less_is_named():
    s = build(ModelGraph.of(mlp("m", hidden=(4,))), {"d": FS}, 0)
    problems = state_mismatches(ModelGraph.of(mlp("m", hidden=(4, 4))), {"d": FS}, s)
    assert "node 'm': the state has no params 'layers.2.weight', which the model spec makes" in problems
    s2 = build(ModelGraph.of(mlp("m", hidden=(4, 4))), {"d": FS}, 0)
    problems = state_mismatches(ModelGraph.of(mlp("m", hidden=(4,))), {"d": FS}, s2)
    assert (
        "node 'm': the state has params 'layers.2.weight', 'layers.2.bias', which the model spec does not make"
        in problems
    )


def test_other_data_is_named_by_the_input_shapes():
    g = ModelGraph.of(mlp("m"))
    s = build(g, {"d": FS}, 0)
    wider = mml.FeatureSet.from_dict(
        {"a": RNG.normal(size=(8, 5)), "b": RNG.normal(size=8), "y": RNG.normal(size=8)},
        features=["a", "b"],
        targets="y",
        label="d",
    )
    assert state_mismatches(g, {"d": wider}, s) == [
        "node 'm' was built for input shape(s) (4,), but its inputs now have (6,)"
    ]


def test_missing_and_extra_nodes_are_named():
    two = ModelGraph.of(mlp("m", output_shape=(1,)), mlp("n", ref=NodeRef("m")))
    s = build(ModelGraph.of(mlp("m", output_shape=(1,))), {"d": FS}, 0)
    assert state_mismatches(two, {"d": FS}, s) == ["the state has no node 'n' of the graph"]
    s2 = build(two, {"d": FS}, 0)
    assert state_mismatches(ModelGraph.of(mlp("m", output_shape=(1,))), {"d": FS}, s2) == [
        "the state has node(s) 'n', which the graph does not"
    ]


def test_a_join_node_and_what_follows_it_are_checked_through_recorded_shapes():
    g = ModelGraph.of(
        mlp("x1", output_shape=(2,)),
        mlp("x2", output_shape=(3,)),
        ConcatNode("cat", (NodeRef("x1"), NodeRef("x2"))),
        mlp("head", ref=NodeRef("cat"), output_shape=(1,)),
    )
    s = build(g, {"d": FS}, 0)
    assert state_mismatches(g, {"d": FS}, s) == []
    g4 = g.replace("x2", mlp("x2", output_shape=(4,)))
    problems = state_mismatches(g4, {"d": FS}, build(g4, {"d": FS}, 0))
    assert problems == []
    mixed = state_mismatches(g, {"d": FS}, build(g4, {"d": FS}, 0))
    # x2's recorded output (4,) is what cat and head were built on: one sentence, at the source
    assert mixed == ["node 'x2' output shape is (4,) in the state, but the model spec makes (3,)"]


def test_a_user_torch_module_and_a_scikit_learn_node_are_checked_by_shape():
    pytest.importorskip("torch")
    lin = ModelNode(
        "u",
        TorchModule(
            factory="torch.nn:Linear", kwargs={"in_features": 4, "out_features": 1}, output_shape=(1,)
        ),
        FeatureSetRef("d"),
        optimizer=mml.optim.adam(),
    )
    g = ModelGraph.of(lin)
    s = build(g, {"d": FS}, 0)
    assert state_mismatches(g, {"d": FS}, s) == []
    wide = ModelNode(
        "u",
        TorchModule(
            factory="torch.nn:Linear", kwargs={"in_features": 4, "out_features": 2}, output_shape=(2,)
        ),
        FeatureSetRef("d"),
        optimizer=mml.optim.adam(),
    )
    assert state_mismatches(ModelGraph.of(wide), {"d": FS}, s) == [
        "node 'u' output shape is (1,) in the state, but the model spec makes (2,)"
    ]
    same_out = ModelNode(  # same output, other hidden width: the tensors tell
        "u",
        TorchModule(
            factory="torch.nn:Bilinear",
            kwargs={"in1_features": 4, "in2_features": 4, "out_features": 1},
            output_shape=(1,),
        ),
        FeatureSetRef("d"),
        optimizer=mml.optim.adam(),
    )
    problems = state_mismatches(ModelGraph.of(same_out), {"d": FS}, s)
    assert problems == [
        "node 'u': params 'weight' has shape (1, 4) in the state, but the model spec makes (1, 4, 4)"
    ]
    sk = ModelGraph.of(ModelNode("r", SklearnModel("sklearn.linear_model:Ridge"), FeatureSetRef("d")))
    assert state_mismatches(sk, {"d": FS}, build(sk, {"d": FS}, 0)) == []


def _plan(node):
    return PhaseGroup(
        "p",
        [
            TrainPhase.simple(
                "t",
                featureset="d",
                heads=["m"],
                losses=AppliedLoss("mse", node),
                n_epochs=1,
                sampler=mml.SimpleSampler(8),
            )
        ],
    )


def test_run_and_run_phase_refuse_a_state_of_another_experiment():
    small = Experiment({"d": FS}, ModelGraph.of(mlp("m", hidden=(4,))), _plan("m"))
    big = Experiment({"d": FS}, ModelGraph.of(mlp("m", hidden=(8,))), _plan("m"))
    state = mml.init(big, 0)
    with pytest.raises(mml.TrainingError) as info:
        mml.run(small, state, progress=False)
    msg = str(info.value)
    assert msg.startswith(
        "run: the state does not fit experiment 'experiment' (was it made for another graph or other data?): node 'm': "
        "params 'layers.0.weight' has shape (8, 4) in the state, but the model spec makes (4, 4)"
    )
    assert msg.endswith(
        "start from mml.init(experiment, key), or use the experiment the state was trained with"
    )
    with pytest.raises(mml.TrainingError, match=r"^run_phase: the state does not fit"):
        mml.training.run_phase(small, small.plan.phases[0], state)
    assert mml.run(big, state, progress=False)[1].status == "completed"


@pytest.mark.parametrize("bad", [None, {"graph": None}, 0])
def test_run_takes_a_train_state(bad):
    exp = Experiment({"d": FS}, ModelGraph.of(mlp("m")), _plan("m"))
    with pytest.raises(mml.TrainingError) as info:
        mml.run(exp, bad, progress=False)
    assert str(info.value) == (
        "run takes the TrainState that mml.init(experiment, key) returns (or one a run returned), "
        f"got {type(bad).__name__}"
    )


def test_evaluate_takes_a_train_state_and_a_toy_state_without_a_graph_is_refused():
    exp = Experiment({"d": FS}, ModelGraph.of(mlp("m")), _plan("m"))
    inputs = exp.plan.phases[0].inputs
    with pytest.raises(mml.TrainingError) as info:
        mml.evaluate(exp, None, inputs)
    assert str(info.value) == (
        "evaluate takes the TrainState that mml.init(experiment, key) returns (or one a run returned), got NoneType"
    )
    toy = mml.training.TrainState(graph=None, key=mml.random.key(0))
    with pytest.raises(mml.TrainingError, match=r"got a TrainState without a graph$"):
        mml.run(exp, toy, progress=False)
    assert mml.evaluate(exp, mml.init(exp, 0), inputs, split="val").outputs["m"].shape == (8, 1)
