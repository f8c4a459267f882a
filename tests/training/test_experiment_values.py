"""Experiment validation messages, repr, phase lookup and mermaid drawing pinned (issue 17)."""

from __future__ import annotations

import pytest

import mml
from mml.training import AppliedLoss, EvalPhase, Experiment, FitPhase, InputBinding, PhaseGroup, TrainPhase
from mml.training._experiment import check_graphwise_backends, node_backend

from .conftest import make_featureset, mlp_graph

torch = pytest.importorskip("torch")

L = AppliedLoss("mse", "mlp")
NO_TARGETS = (
    "phase 'fit': loss 'mlp.mse' reads targets, but the FeatureSet bound to 'mlp' has no targets; add targets "
    "to the FeatureSet or bind the loss to other inputs"
)
UNBOUND = "phase 'fit': loss 'mlp.mse' needs head node(s) 'mlp' but the phase binds no input to them; add them to inputs="


def _fs():
    return make_featureset(n=40)


def _err(plan, graph=None, featuresets=None, exc=mml.TrainingError, **kw) -> str:
    with pytest.raises(exc) as info:
        Experiment(featuresets or {"toy": _fs()}, graph or mlp_graph(), plan, **kw)
    return str(info.value)


def _two():
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP

    return ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=(2,), output_shape=(2,)), FeatureSetRef("toy")),
        ModelNode("b", SequentialMLP(hidden=(2,)), NodeRef("a")),
    )


def test_binding_messages():
    assert _err(TrainPhase("fit", {"mlq": InputBinding("toy")}, L)) == (
        f"phase 'fit': input bound to unknown node 'mlq' (did you mean 'mlp'?); {UNBOUND}"
    )
    assert _err(TrainPhase("fit", {"mlp": InputBinding("tot")}, L)) == (
        "phase 'fit': head 'mlp' is bound to unknown FeatureSet 'tot' (did you mean 'toy'?); FeatureSets: toy; "
        + NO_TARGETS
    )
    assert _err(TrainPhase("fit", {"mlp": InputBinding("toy", "tests")}, L)) == (
        "phase 'fit': head 'mlp' reads split 'tests' of FeatureSet 'toy', which has splits train, val; split it "
        "first (fs.split(RandomSplitter(...))) or bind an existing split"
    )
    bare = mml.FeatureSet.from_dict(
        {"a": [1.0], "b": [2.0], "c": [3.0], "y": [0.0]}, features=["a", "b", "c"], targets="y", label="toy"
    )
    assert _err(TrainPhase("fit", {"mlp": InputBinding("toy", "train")}, L), featuresets={"toy": bare}) == (
        "phase 'fit': head 'mlp' reads split 'train' of FeatureSet 'toy', which has splits (none); split it "
        "first (fs.split(RandomSplitter(...))) or bind an existing split"
    )
    assert _err(TrainPhase("fit", {}, L)) == (
        f"{UNBOUND}; phase 'fit' binds no inputs; pass inputs={{head: InputBinding(...)}}"
    )
    assert _err(EvalPhase("fit", {})) == "phase 'fit' binds no inputs; pass inputs={head: InputBinding(...)}"
    assert _err(TrainPhase("fit", {"b": InputBinding("toy")}, AppliedLoss("mse", "b")), graph=_two()) == (
        "phase 'fit': node 'b' is not a head of the graph (heads: a); phase 'fit': loss 'b.mse' needs head "
        "node(s) 'a' but the phase binds no input to them; add them to inputs="
    )
    Experiment({"toy": _fs()}, _two(), TrainPhase("fit", {"a": InputBinding("toy")}, AppliedLoss("mse", "b")))


def test_loss_and_node_messages():
    assert _err(
        TrainPhase(
            "fit", {"mlp": InputBinding("toy")}, AppliedLoss("mse", "mlp", inputs=("a.outputs", "a.targets"))
        )
    ) == (
        "phase 'fit': loss 'mlp.mse' reads role(s) 'a' but the sampler bound to 'mlp' makes batches with roles "
        "'default'; qualify its inputs with those roles, e.g. inputs=('default.outputs')"
    )
    assert _err(TrainPhase("fit", {"mlp": InputBinding("toy")}, AppliedLoss("mse", "mpl"))) == (
        "phase 'fit': loss 'mpl.mse' is bound to unknown node 'mpl' (did you mean 'mlp'?); the graph's nodes "
        "are 'mlp'"
    )
    assert _err(
        TrainPhase("fit", {"mlp": InputBinding("toy")}, L, active_nodes=["mpl"], trainable=["zzz"])
    ) == ("phase 'fit': unknown node 'mpl' (did you mean 'mlp'?); phase 'fit': unknown node 'zzz'")
    assert (
        _err(FitPhase("f", {"mlp": InputBinding("toy")}, nodes=["nope"])) == "phase 'f': unknown node 'nope'"
    )
    two = PhaseGroup(
        "p",
        [
            TrainPhase("fit", {"mlp": InputBinding("toy")}, L),
            EvalPhase("fit", {"mlp": InputBinding("toy")}),
            EvalPhase("e", {"mlp": "toy"}),
            EvalPhase("e", {"mlp": "toy"}),
        ],
    )
    assert _err(two) == "phase labels must be unique in a plan; repeated: e, fit"


def test_converter_messages():
    phase = TrainPhase("fit", {"mlp": InputBinding("toy")}, L)
    assert (
        _err(phase, featuresets={"toy": 3}, exc=mml.ConfigError)
        == "featureset 'toy' must be a FeatureSet, got int"
    )
    with pytest.raises(mml.ConfigError) as info:
        Experiment({"toy": _fs()}, 3, phase)
    assert str(info.value) == "Experiment.graph must be a ModelGraph, got int"
    with pytest.raises(mml.ConfigError) as info:
        Experiment({"toy": _fs()}, mlp_graph(), 3)
    assert str(info.value) == "Experiment.plan must be a phase or a PhaseGroup, got int"
    assert (
        _err(phase, exc=mml.ConfigError, callbacks=[3])
        == "Experiment callbacks must be AbstractCallback values, got 3"
    )
    with pytest.raises(mml.ConfigError) as info:
        Experiment.from_config({"graph": mlp_graph(), "plan": phase})
    assert (
        str(info.value) == "Experiment.from_config needs FeatureSets: a 'featuresets' entry or featuresets="
    )
    fs = _fs()
    built = Experiment.from_config({"graph": mlp_graph(), "plan": phase, "featuresets": {"toy": fs}})
    assert built.label == "experiment" and built.callbacks == () and built.plan == phase


def test_graphwise_backends_and_heads():
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP

    g = ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=(2,), output_shape=(2,)), FeatureSetRef("fs")),
        ModelNode("b", SequentialMLP(hidden=(2,), backend="tensorflow"), NodeRef("a")),
        ModelNode("c", SequentialMLP(hidden=(2,)), NodeRef("b")),
    )
    assert node_backend(g, "a") == "torch" and node_backend(g, "b") == "tensorflow"
    assert g.heads_of("c") == ("a",) and g.heads_of("a") == ("a",)
    check_graphwise_backends("fit", g, ["a", "c"])
    check_graphwise_backends("fit", g, [])
    with pytest.raises(mml.TrainingError) as info:
        check_graphwise_backends("fit", g, ["c", "b", "a"])
    assert str(info.value) == (
        "phase 'fit' (graph-wise) would train nodes of 2 backends (tensorflow: 'b'; torch: 'c', 'a') with one "
        "backward pass, but gradients stop at a backend boundary; use mode='stagewise' (a loss and an optimizer "
        "per node) or freeze the nodes of all but one backend (graph.freeze([...]))"
    )


def _exp2():
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase(
                "fit",
                {"mlp": InputBinding("toy", sampler=mml.SimpleSampler(8))},
                [L, AppliedLoss("mae", "mlp", weight=0.5)],
                n_epochs=3,
                callbacks=[mml.callbacks.EarlyStopping()],
            ),
            EvalPhase("test", {"mlp": InputBinding("toy", None)}),
        ],
    )
    return Experiment({"toy": _fs()}, mlp_graph(), plan, label="e2")


def test_phase_lookup():
    exp = _exp2()
    assert [p.label for p in exp.phases] == ["fit", "test"]
    assert exp.phase("plan") is exp.plan and exp.phase("test") is exp.plan.phases[1]
    assert exp.phase("fit") is exp.plan.phases[0]
    with pytest.raises(mml.TrainingError) as info:
        exp.phase("zz")
    assert str(info.value) == "no phase 'zz' in experiment 'e2'"


def test_repr_plan_lines():
    lines = repr(_exp2()).split("\n")
    assert lines[0] == "Experiment('e2'"
    assert lines[1] == "  FeatureSet('toy', 40 samples)"
    assert lines[2].startswith("      features: ")
    assert lines[-4:] == [
        "  plan:",
        "    TrainPhase 'fit'; 3 epochs; mlp <- toy[train]; losses mse@mlp, mae@mlp; callbacks EarlyStopping",
        "    EvalPhase 'test'; mlp <- toy[all]",
        ")",
    ]
    assert (
        "  ModelGraph(" in lines
        and "        mlp  ModelNode(model=SequentialMLP[torch], optimizer=Adam)" in lines
    )


PHASE_PART = [
    "  classDef sampler fill:#eef7ee,stroke:#2ca02c",
    "  classDef loss fill:#fdeeee,stroke:#d62728",
    '  s0[/"fit: toy[train]<br/>SimpleSampler(8)"/]:::sampler',
    "  s0 -.-> n0",
    '  l1_0(("fit: mse")):::loss',
    "  n0 -.-> l1_0",
    '  l1_1(("fit: mae * 0.5")):::loss',
    "  n0 -.-> l1_1",
    '  s2[/"test: toy[all]<br/>SimpleSampler(256)"/]:::sampler',
    "  s2 -.-> n0",
]


def test_mermaid():
    exp = _exp2()
    text = exp.to_mermaid().split("\n")
    assert text[0] == "flowchart LR" and text[-len(PHASE_PART) :] == PHASE_PART
    assert '  n0["mlp<br/>SequentialMLP · torch"]:::model' in text
    with_state = exp.to_mermaid(mml.init(exp, 0)).split("\n")
    assert '  n0["mlp<br/>SequentialMLP · torch<br/>in: (3,)<br/>out: (1,)"]:::model' in with_state
    assert with_state[-len(PHASE_PART) :] == PHASE_PART
    assert exp.to_mermaid(mml.init(exp, 0).graph) == exp.to_mermaid(mml.init(exp, 0))


def test_graphwise_skips_frozen_nodes_of_another_backend():
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP

    g = ModelGraph.of(
        ModelNode(
            "k", SequentialMLP(hidden=(2,), output_shape=(2,), backend="tensorflow"), FeatureSetRef("toy")
        ),
        ModelNode("mlp", SequentialMLP(hidden=(2,)), NodeRef("k")),
    )
    phase = TrainPhase("fit", {"k": InputBinding("toy")}, L, mode="graphwise", optimizer=mml.optim.sgd(0.1))
    Experiment({"toy": _fs()}, g.freeze("k"), phase)  # only the torch node trains: one backend
    assert _err(phase, graph=g).startswith(
        "phase 'fit' (graph-wise) would train nodes of 2 backends (tensorflow: 'k'; torch: 'mlp')"
    )


def test_from_config_structures_documents():
    fs = _fs()
    phase = TrainPhase("fit", {"mlp": InputBinding("toy")}, L)
    cb = mml.callbacks.EarlyStopping(patience=3)
    doc = {
        "graph": mml.io.unstructure(mlp_graph()),
        "plan": mml.io.unstructure(phase),
        "callbacks": [mml.io.unstructure(cb)],
        "label": "from-doc",
    }
    built = Experiment.from_config(doc, featuresets={"toy": fs})
    assert built.graph == mlp_graph() and built.plan == phase and built.callbacks == (cb,)
    assert built.label == "from-doc"
