"""TrainPlan (what a training phase resolves before its first step) pinned by value and message (issue 17)."""

from __future__ import annotations

import attrs
import pytest

import mml
from mml.training import AppliedLoss, Experiment, InputBinding, TrainPhase
from mml.training._plan import TrainPlan

from .conftest import make_featureset

torch = pytest.importorskip("torch")

OPT = mml.optim.sgd(0.1)


def _graph(with_optimizers: bool = True):
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP

    o = OPT if with_optimizers else None
    nodes = [
        ModelNode("a", SequentialMLP(hidden=(2,), output_shape=(2,)), FeatureSetRef("toy"), optimizer=o),
        ModelNode("b", SequentialMLP(hidden=(2,)), NodeRef("a"), optimizer=o),
    ]
    if with_optimizers:
        nodes.append(ModelNode("c", SequentialMLP(hidden=(2,)), FeatureSetRef("toy"), optimizer=o))
    return ModelGraph.of(*nodes)


def _plan(graph=None, losses=None, **kw):
    graph = graph if graph is not None else _graph()
    phase = TrainPhase(
        "fit",
        {"a": InputBinding("toy", sampler=mml.SimpleSampler(16))},
        losses if losses is not None else AppliedLoss("mse", "b"),
        **kw,
    )
    exp = Experiment({"toy": make_featureset(n=40)}, graph, phase)
    return TrainPlan(exp, phase, mml.init(exp, 0))


def _msg(**kw) -> str:
    with pytest.raises(mml.TrainingError) as info:
        _plan(**kw)
    return str(info.value)


def test_messages_in_full():
    assert _msg(active_nodes=["a", "b", "c"]) == (
        "phase 'fit': active head node(s) 'c' have no input binding; add them to inputs= or restrict active_nodes="
    )
    assert _msg(graph=_graph().freeze("a"), trainable=["a", "b"], mode="graphwise", optimizer=OPT) == (
        "phase 'fit': node(s) 'a' are frozen (in the graph or fitted by a FitPhase) but listed as trainable; "
        "unfreeze them with graph.unfreeze(...) first"
    )
    assert _msg(trainable=["c"], active_nodes=["a", "b"]) == (
        "phase 'fit': node(s) 'c' cannot be trained by gradients here (inactive, joining or scikit-learn nodes); "
        "fit scikit-learn nodes with a FitPhase"
    )
    assert _msg(trainable=["a", "b"]) == (
        "phase 'fit' (stage-wise): trainable node(s) 'a' have no loss bound; gradients stop between nodes, so "
        "bind a loss to each or use mode='graphwise'"
    )
    assert _msg(graph=_graph().freeze(["a", "b"])) == (
        "phase 'fit' has no trainable node (all frozen, fitted or without a loss); unfreeze a node, bind a loss "
        "to a torch or Keras node, or fit scikit-learn nodes without partial_fit in a FitPhase"
    )
    assert _msg(graph=_graph(False)) == (
        "phase 'fit': node 'b' has no optimizer; set ModelNode(optimizer=mml.optim.adam()) or TrainPhase(optimizer=...)"
    )
    assert _msg(graph=_graph(False), mode="graphwise") == (
        "phase 'fit' (graph-wise) needs one optimizer: ModelGraph(optimizer=...) or TrainPhase(optimizer=...)"
    )


def test_stagewise_plan():
    p = _plan()
    assert p.stagewise is True and p.trainable == ("b",) and list(p.optimizers) == ["b"]
    assert p.optimizers["b"] == OPT
    assert p.active == frozenset({"a", "b"}) and p.heads == ["a"] and p.groups == [("a",)]
    assert p.nbatches == {"a": 2} and p.slots == () and p.batch_callbacks is False and p.lr_callbacks == []
    assert p.phase_key == mml.random.fold_in(mml.random.key(0), "fit")
    assert p.sampler_key == mml.random.fold_in(p.phase_key, "sampler")
    assert p.incremental == () and p.tf_nodes == frozenset() and p.backends == {"a": "torch"}
    assert _plan(trainable=["b"]).trainable == ("b",)


def test_graphwise_plan_and_optimizer_choice():
    p = _plan(mode="graphwise", optimizer=OPT, callbacks=[mml.callbacks.EarlyStopping()])
    assert p.stagewise is False and p.trainable == ("a", "b") and list(p.optimizers) == ["*graph*"]
    assert p.slots == ("fit/0",) and p.lr_scale(None) == 1.0
    # graph-wise: the graph's optimizer wins over the phase's
    adam = mml.optim.adam(0.01)
    g2 = attrs.evolve(_graph(), optimizer=adam)
    assert _plan(graph=g2, mode="graphwise", optimizer=OPT).optimizers["*graph*"] == adam
    assert _plan(graph=attrs.evolve(_graph(False), optimizer=adam)).optimizers == {"b": adam}
    # stage-wise: the node's optimizer wins over the phase's, the phase's over the graph's
    no_opt = _graph(False)
    assert _plan(graph=no_opt, optimizer=adam).optimizers == {"b": adam}
    frozen_a = _plan(graph=_graph().freeze("a"), mode="graphwise", optimizer=OPT)
    assert frozen_a.trainable == ("b",)
