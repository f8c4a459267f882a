"""Experiment, further values (issue 17): converters, sampler roles, backend and target checks, drawing.

Messages are pinned in full; each case also has its boundary (the same Experiment with the
mistake fixed builds).
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP, SklearnModel
from mml.samplers import MultiStreamSampler, PairedSampler, similar
from mml.training import AppliedLoss, EvalPhase, Experiment, FitPhase, InputBinding, PhaseGroup, TrainPhase

torch = pytest.importorskip("torch")

SGD = mml.optim.sgd(0.1)
HERE = __name__


def sq_first(a, b):
    return (a[:, 0] - b[:, 0]) ** 2


def rows(n: int = 6, targets: bool = True) -> mml.FeatureSet:
    i = np.arange(n, dtype=np.float64)
    cols = {"x0": i, "x1": 2 * i, "t": i % 2}
    if targets:
        cols["y"] = i / 10
    fs = mml.FeatureSet.from_dict(
        cols, features=["x0", "x1"], targets="y" if targets else None, tags="t", label="p"
    )
    return fs.with_split("train", np.arange(n))


def one(backend: str = "torch") -> ModelGraph:
    return ModelGraph.of(ModelNode("a", SequentialMLP(hidden=(2,), backend=backend), FeatureSetRef("p"), optimizer=SGD))


def train(loss=None, sampler=None, stream=None) -> TrainPhase:
    b = InputBinding("p", sampler=sampler or mml.SimpleSampler(2), stream=stream)
    return TrainPhase("fit", {"a": b}, loss or AppliedLoss("mse", "a"))


def err(*args, exc=mml.TrainingError) -> str:
    with pytest.raises(exc) as info:
        Experiment(*args)
    return str(info.value)


def test_featuresets_from_one_value_a_list_or_a_mapping():
    fs = rows()
    for given in (fs, [fs], (fs,), {"p": fs}):
        exp = Experiment(given, one(), train())
        assert dict(exp.featuresets) == {"p": fs} and exp.featuresets["p"] is fs


def test_a_list_plan_becomes_a_group_named_plan():
    phases = [train(), EvalPhase("ev", {"a": InputBinding("p", None)})]
    exp = Experiment(rows(), one(), phases)
    assert isinstance(exp.plan, PhaseGroup) and exp.plan.label == "plan"
    assert exp.plan.phases == tuple(phases) and exp.phases == tuple(phases)
    assert Experiment(rows(), one(), tuple(phases)).plan == exp.plan


PAIRED = PairedSampler({"t": similar(0.0)}, batch_size=2)
ROLES = (
    "phase 'fit': loss 'a.mse' reads role(s) {missing} but the sampler bound to 'a' makes batches with roles "
    "{roles}; qualify its inputs with those roles, e.g. inputs=({example})"
)


def test_the_roles_of_a_multi_stream_sampler_are_those_of_its_stream():
    anchor = AppliedLoss("mse", "a", inputs=("anchor.outputs", "anchor.targets"))
    # one stream: it is the stream, bound or not
    assert err(rows(), one(), train(sampler=MultiStreamSampler({"two": PAIRED}))) == ROLES.format(
        missing="'default'", roles="'anchor', 'pair'", example="'anchor.outputs', 'pair.outputs'"
    )
    Experiment(rows(), one(), train(anchor, MultiStreamSampler({"two": PAIRED})))
    two = MultiStreamSampler({"one": mml.SimpleSampler(2), "two": PAIRED})
    # two streams and none bound: the roles are not known before running (not checked here)
    Experiment(rows(), one(), train(anchor, two))
    Experiment(rows(), one(), train(AppliedLoss("mse", "a"), two))
    assert err(rows(), one(), train(anchor, two, stream="one")) == ROLES.format(
        missing="'anchor'", roles="'default'", example="'default.outputs'"
    )
    Experiment(rows(), one(), train(anchor, two, stream="two"))
    Experiment(rows(), one(), train(anchor, two, stream="zz"))  # an unknown stream: not known here either


def test_a_backend_loss_class_must_match_the_node():
    pytest.importorskip("tensorflow")
    with pytest.raises(mml.BackendError) as info:
        Experiment(rows(), one("tensorflow"), train(AppliedLoss("torch.nn:L1Loss", "a")))
    assert str(info.value) == (
        "loss 'a.L1Loss' is a torch loss (torch.nn:L1Loss) but node 'a' runs on tensorflow; use a built-in loss "
        "name (e.g. 'mse') or a tensorflow loss"
    )
    Experiment(rows(), one(), train(AppliedLoss("torch.nn:L1Loss", "a")))


def test_targets_are_required_only_by_losses_that_read_them():
    bare = rows(targets=False)
    reads_features = AppliedLoss(f"{HERE}:sq_first", "a", inputs=("outputs", "features"))
    Experiment(bare, one(), train(reads_features))
    assert err(bare, one(), train()) == (
        "phase 'fit': loss 'a.mse' reads targets, but the FeatureSet bound to 'a' has no targets; add targets to "
        "the FeatureSet or bind the loss to other inputs"
    )
    g = ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=(2,), output_shape=(1,)), FeatureSetRef("p"), optimizer=SGD),
        ModelNode("c", SequentialMLP(hidden=(2,), output_shape=(1,)), FeatureSetRef("p"), optimizer=SGD),
        ConcatNode("j", [NodeRef("a"), NodeRef("c")]),
    )
    b = InputBinding("p")
    assert err(bare, g, TrainPhase("fit", {"a": b, "c": b}, AppliedLoss("mse", "j"))) == (
        "phase 'fit': loss 'j.mse' reads targets, but the FeatureSet bound to 'a', 'c' has no targets; add "
        "targets to the FeatureSet or bind the loss to other inputs"
    )


def test_mermaid_of_a_plan_with_a_fit_phase():
    g = ModelGraph.of(ModelNode("s", SklearnModel("sklearn.linear_model:Ridge"), FeatureSetRef("p")))
    plan = PhaseGroup(
        "plan",
        [
            FitPhase("f", {"s": InputBinding("p")}),
            EvalPhase("ev", {"s": InputBinding("p", None)}, AppliedLoss("mse", "s", weight=2.5)),
        ],
    )
    exp = Experiment(rows(), g, plan)
    assert exp.to_mermaid().split("\n")[-8:] == [
        "  classDef sampler fill:#eef7ee,stroke:#2ca02c",
        "  classDef loss fill:#fdeeee,stroke:#d62728",
        '  s0[/"f: p[train]<br/>SimpleSampler(256)"/]:::sampler',
        "  s0 -.-> n0",
        '  s2[/"ev: p[all]<br/>SimpleSampler(256)"/]:::sampler',
        "  s2 -.-> n0",
        '  l3_0(("ev: mse * 2.5")):::loss',
        "  n0 -.-> l3_0",
    ]
    assert repr(exp).split("\n")[-4:] == [
        "  plan:",
        "    FitPhase 'f'; s <- p[train]",
        "    EvalPhase 'ev'; s <- p[all]; losses mse@s",
        ")",
    ]


def test_the_notebook_view_is_the_experiment_html():
    from mml.views._html import experiment_html

    exp = Experiment(rows(), one(), train())
    html = exp._repr_html_()
    assert html == experiment_html(exp) and "fit" in html


def test_repr_and_mermaid_of_callbacks_and_a_binding_without_sampler():
    cbs = [mml.callbacks.EarlyStopping("loss"), mml.callbacks.LRSchedulerOnPlateau("loss")]
    fit = TrainPhase("fit", {"a": InputBinding("p")}, AppliedLoss("mse", "a"), callbacks=cbs)
    exp = Experiment(rows(), one(), [fit, EvalPhase("ev", {"a": InputBinding("p", None, None)})])
    assert repr(exp).split("\n")[-3] == (
        "    TrainPhase 'fit'; 1 epoch; a <- p[train]; losses mse@a; callbacks EarlyStopping, LRSchedulerOnPlateau"
    )
    assert exp.to_mermaid().split("\n")[-2:] == ['  s2[/"ev: p[all]<br/>all rows"/]:::sampler', "  s2 -.-> n0"]


def test_from_config_paths_in_messages_and_trust_for_the_plan():
    doc = {"graph": mml.io.unstructure(one()), "plan": mml.io.unstructure(train()), "featuresets": {"p": rows()}}
    with pytest.raises(mml.ConfigError) as info:
        Experiment.from_config({**doc, "graph": {"nodes": 3}})
    assert str(info.value) == "cannot build a ModelGraph from the document: $.graph.nodes: expected a list, got int 3"
    bad_plan = {**mml.io.unstructure(train()), "n_epochs": "x"}
    with pytest.raises(mml.ConfigError) as info:
        Experiment.from_config({**doc, "plan": bad_plan})
    assert str(info.value) == (
        "cannot build an AbstractPhase from the document: $.plan.n_epochs: invalid literal for int() with base 10: 'x'"
    )
    user = TrainPhase(
        "fit", {"a": InputBinding("p")}, AppliedLoss(f"{HERE}:sq_first", "a", inputs=("outputs", "features"))
    )
    with_user = {**doc, "plan": mml.io.unstructure(user)}
    with pytest.raises(mml.UntrustedTypeError):
        Experiment.from_config(with_user)
    assert Experiment.from_config(with_user, trusted=[f"{HERE}:sq_first"]).plan == user
    assert Experiment.from_config(with_user, trusted="*").plan == user


def test_an_unknown_loss_node_lists_the_graph_nodes():
    g = ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=(2,), output_shape=(2,)), FeatureSetRef("p"), optimizer=SGD),
        ModelNode("b", SequentialMLP(hidden=(2,)), NodeRef("a"), optimizer=SGD),
    )
    assert err(rows(), g, train(AppliedLoss("mse", "zz"))) == (
        "phase 'fit': loss 'zz.mse' is bound to unknown node 'zz'; the graph's nodes are 'a', 'b'"
    )
