"""The :class:`Experiment`: FeatureSets, a graph and a plan, validated together at construction.

>>> import mml
>>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
>>> from mml.models import SequentialMLP
>>> from mml.training import Experiment, TrainPhase, AppliedLoss
>>> fs = mml.FeatureSet.from_dict({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 2.0, 4.0, 6.0]},
...                               features="x", targets="y", label="toy")
>>> fs = fs.with_split("train", [0, 1, 2, 3])
>>> g = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(4,)), FeatureSetRef("toy"), optimizer=mml.optim.adam()))
>>> exp = Experiment({"toy": fs}, g, TrainPhase.simple("fit", featureset="toy", heads=["mlp"],
...                  losses=AppliedLoss("mse", "mlp"), sampler=mml.SimpleSampler(2)))
>>> exp.label
'experiment'
>>> Experiment({"toy": fs}, g, TrainPhase.simple("fit", featureset="toy", heads=["mlp"],
...            losses=AppliedLoss("mse", "mpl")))
Traceback (most recent call last):
...
mml.errors.TrainingError: phase 'fit': loss 'mpl.mse' is bound to unknown node 'mpl' (did you mean 'mlp'?); the graph's nodes are 'mlp'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from mml._fields import FrozenDict
from mml.callbacks import AbstractCallback
from mml.data import FeatureSet
from mml.errors import ConfigError, GraphError, TrainingError
from mml.graph import GRADIENT_BACKENDS, ModelGraph
from mml.training._losses import AppliedLoss, check_loss_backend
from mml.training._phases import (
    AbstractPhase,
    EvalPhase,
    FitPhase,
    InputBinding,
    PhaseGroup,
    TrainPhase,
    iter_phases,
)
from mml.training._validate import active_nodes, plan_problems

__all__ = ["Experiment", "node_backend", "check_graphwise_backends", "GRADIENT_BACKENDS"]

#: backends whose nodes a TrainPhase trains by gradients


def _featuresets(value: Any) -> FrozenDict[str, Any]:
    if isinstance(value, FeatureSet):
        value = [value]
    if not isinstance(value, Mapping):
        value = {fs.label: fs for fs in value}
    for k, fs in value.items():
        if not isinstance(fs, FeatureSet):
            raise ConfigError(f"featureset {k!r} must be a FeatureSet, got {type(fs).__name__}")
    return FrozenDict(value)


def _graph(value: Any) -> Any:
    if not isinstance(value, ModelGraph):
        raise ConfigError(f"Experiment.graph must be a ModelGraph, got {type(value).__name__}")
    return value


def _plan(value: Any) -> AbstractPhase:
    if isinstance(value, (list, tuple)):
        value = PhaseGroup("plan", value)
    if not isinstance(value, AbstractPhase):
        raise ConfigError(f"Experiment.plan must be a phase or a PhaseGroup, got {type(value).__name__}")
    return value


def _callbacks(value: Any) -> tuple[AbstractCallback, ...]:
    out = tuple(value or ())
    for cb in out:
        if not isinstance(cb, AbstractCallback):
            raise ConfigError(f"Experiment callbacks must be AbstractCallback values, got {cb!r}")
    return out


def node_backend(graph: ModelGraph, label: str) -> str | None:
    """The backend of a model node (``None`` for joining nodes)."""
    return graph[label].backend


def check_graphwise_backends(phase: str, graph: ModelGraph, trainable: Sequence[str]) -> None:
    """A :class:`~mml.TrainingError` when graph-wise training would span several backends.

    >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
    >>> from mml.models import SequentialMLP
    >>> g = ModelGraph.of(ModelNode("a", SequentialMLP(hidden=(2,), output_shape=(2,)), FeatureSetRef("fs")),
    ...                   ModelNode("b", SequentialMLP(hidden=(2,), backend="tensorflow"), NodeRef("a")))
    >>> check_graphwise_backends("fit", g, ["a", "b"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mml.errors.TrainingError: phase 'fit' (graph-wise) would train nodes of 2 backends (tensorflow: 'b'; torch: 'a') ...
    """
    by_backend: dict[str, list[str]] = {}
    for n in trainable:
        by_backend.setdefault(node_backend(graph, n) or "?", []).append(n)
    if len(by_backend) > 1:
        groups = "; ".join(f"{b}: {', '.join(map(repr, ns))}" for b, ns in sorted(by_backend.items()))
        raise TrainingError(
            f"phase {phase!r} (graph-wise) would train nodes of {len(by_backend)} backends ({groups}) with one "
            "backward pass, but gradients stop at a backend boundary; use mode='stagewise' (a loss and an "
            "optimizer per node) or freeze the nodes of all but one backend (graph.freeze([...]))"
        )


def _graphwise_candidates(graph: ModelGraph, phase: TrainPhase) -> list[str]:
    if phase.trainable is not None:
        return [n for n in phase.trainable if n in graph]
    active = active_nodes(graph, phase)
    return [
        n
        for n in graph.topological_order
        if n in active and node_backend(graph, n) in GRADIENT_BACKENDS and not graph[n].frozen
    ]


def _hint(name: str, options: Sequence[str]) -> str:
    from mml.graph import close_matches

    return close_matches(name, options)


def _check_binding(
    exp: Experiment, phase: AbstractPhase, head: str, b: InputBinding, problems: list[str]
) -> None:
    g = exp.graph
    where = f"phase {phase.label!r}"
    if head not in g:
        problems.append(f"{where}: input bound to unknown node {head!r}{_hint(head, list(g))}")
        return
    if not g[head].is_head:
        problems.append(f"{where}: node {head!r} is not a head of the graph (heads: {', '.join(g.heads)})")
    if b.featureset not in exp.featuresets:
        problems.append(
            f"{where}: head {head!r} is bound to unknown FeatureSet {b.featureset!r}"
            f"{_hint(b.featureset, list(exp.featuresets))}; FeatureSets: {', '.join(exp.featuresets)}"
        )
        return
    fs = exp.featuresets[b.featureset]
    if b.split is not None and b.split not in fs.split_indices:
        problems.append(
            f"{where}: head {head!r} reads split {b.split!r} of FeatureSet {b.featureset!r}, which has "
            f"splits {', '.join(fs.split_indices) or '(none)'}; split it first (fs.split(RandomSplitter(...))) "
            "or bind an existing split"
        )


def _target_keys(exp: Experiment, phase: AbstractPhase, head: str) -> tuple[str, ...]:
    """The target keys the FeatureSet bound to ``head`` feeds it (``()`` when nothing is bound).

    Raises :class:`~mml.errors.GraphError` when a ref of ``head`` names target keys the
    bound FeatureSet does not have.
    """
    from mml.graph import resolve_keys

    b = phase.inputs.get(head)
    if b is None or b.featureset not in exp.featuresets:
        return ()
    node = exp.graph[head]
    refs: list[Any] = [r for r in node.upstream_refs if hasattr(r, "featureset")]
    fs = exp.featuresets[b.featureset]
    out: list[str] = []
    for r in refs:
        out.extend(resolve_keys(r, fs, "targets"))
    return tuple(out)


def _sampler_roles(sampler: Any, stream: str | None) -> tuple[str, ...] | None:
    """The roles of the batches ``sampler`` makes (``None`` when it cannot tell before running)."""
    from mml.samplers import MultiStreamSampler, NSampler, SimpleSampler

    if isinstance(sampler, MultiStreamSampler):
        names = tuple(sampler.streams)
        name = stream if stream is not None else (names[0] if len(names) == 1 else None)
        if name is None or name not in sampler.streams:
            return None
        return _sampler_roles(sampler.streams[name], None)
    if isinstance(sampler, NSampler):
        return tuple(sampler.roles)
    if isinstance(sampler, SimpleSampler):
        return ("default",)
    return None


def _check_loss(exp: Experiment, phase: AbstractPhase, applied: AppliedLoss, problems: list[str]) -> None:
    g = exp.graph
    where = f"phase {phase.label!r}"
    if applied.node not in g:
        nodes = ", ".join(repr(n) for n in g)
        problems.append(
            f"{where}: loss {applied.name!r} is bound to unknown node {applied.node!r}"
            f"{_hint(applied.node, list(g))}; the graph's nodes are {nodes}"
        )
        return
    check_loss_backend(applied, node_backend(g, applied.node))
    heads = g.heads_of(applied.node)
    unbound = [h for h in heads if h not in phase.inputs]
    if unbound and isinstance(phase, TrainPhase):
        problems.append(
            f"{where}: loss {applied.name!r} needs head node(s) {', '.join(map(repr, unbound))} but the phase "
            "binds no input to them; add them to inputs="
        )
        return
    for head in heads:
        b = phase.inputs.get(head)
        if b is None:
            continue
        # an EvalPhase reads each split in order with a SimpleSampler: one role, "default"
        roles = _sampler_roles(b.sampler, b.stream) if isinstance(phase, TrainPhase) else ("default",)
        missing = [r for r in applied.roles if roles is not None and r not in roles]
        if missing:
            problems.append(
                f"{where}: loss {applied.name!r} reads role(s) {', '.join(map(repr, missing))} but the sampler "
                f"bound to {head!r} makes batches with roles {', '.join(map(repr, roles or ()))}; qualify its inputs "
                f"with those roles, e.g. inputs=({', '.join(repr(f'{r}.outputs') for r in (roles or ()))})"
            )
            return
    if heads and any(spec.source == "targets" for spec in applied.specs):
        found = False
        for head in heads:
            try:
                keys = _target_keys(exp, phase, head)
            except GraphError as exc:
                # the ref names target keys the FeatureSet lacks: that is the cause to report
                # (the data loader would raise the same GraphError when the phase runs)
                problems.append(
                    f"{where}: loss {applied.name!r} reads the targets of {head!r}, but its input selects "
                    f"target keys that do not exist: {exc}; fix the node's FeatureSetRef(targets=...)"
                )
                return
            found = found or bool(keys)
        if not found:
            problems.append(
                f"{where}: loss {applied.name!r} reads targets, but the FeatureSet bound to "
                f"{', '.join(map(repr, heads))} has no targets; add targets to the FeatureSet or bind the loss "
                "to other inputs"
            )


def validate(exp: Experiment) -> None:
    """Check every phase against the graph and the FeatureSets (raises :class:`~mml.TrainingError`)."""
    problems: list[str] = []
    labels: list[str] = []
    for phase in iter_phases(exp.plan):
        labels.append(phase.label)
        inputs = phase.inputs
        for head, b in inputs.items():
            _check_binding(exp, phase, head, b, problems)
        for applied in phase.losses:
            _check_loss(exp, phase, applied, problems)
        for name in (phase.active_nodes or ()) + (phase.trainable or ()):
            if name not in exp.graph:
                problems.append(f"phase {phase.label!r}: unknown node {name!r}{_hint(name, list(exp.graph))}")
        if isinstance(phase, FitPhase):
            for name in phase.nodes or ():
                if name not in exp.graph:
                    problems.append(
                        f"phase {phase.label!r}: unknown node {name!r}{_hint(name, list(exp.graph))}"
                    )
        if isinstance(phase, TrainPhase) and phase.mode == "graphwise":
            try:
                check_graphwise_backends(phase.label, exp.graph, _graphwise_candidates(exp.graph, phase))
            except TrainingError as exc:
                problems.append(str(exc))
        if isinstance(phase, (TrainPhase, EvalPhase)) and not inputs:
            problems.append(f"phase {phase.label!r} binds no inputs; pass inputs={{head: InputBinding(...)}}")
    problems += plan_problems(exp)  # callbacks, loss shapes, FeatureSets, untrainable phases
    dup = sorted({n for n in labels if labels.count(n) > 1})
    if dup:
        problems.append(f"phase labels must be unique in a plan; repeated: {', '.join(dup)}")
    if problems:
        raise TrainingError("; ".join(problems))


@attrs.frozen
class Experiment:
    """FeatureSets (label → FeatureSet), a :class:`~mml.graph.ModelGraph` and a plan.

    Validated at construction: losses bound to unknown nodes, missing targets, bindings to
    missing FeatureSets or splits and loss/node backend mismatches are errors here, not in
    the middle of a run. ``callbacks`` are experiment-level (``on_experiment_*``,
    ``on_group_*`` and ``on_phase_*`` across phases).
    """

    featuresets: Mapping[str, FeatureSet] = attrs.field(converter=_featuresets)
    graph: ModelGraph = attrs.field(converter=_graph)
    plan: AbstractPhase = attrs.field(converter=_plan)
    label: str = "experiment"
    callbacks: tuple[AbstractCallback, ...] = attrs.field(default=(), converter=_callbacks)

    def __attrs_post_init__(self) -> None:
        validate(self)

    @property
    def phases(self) -> tuple[AbstractPhase, ...]:
        """The leaf phases of the plan, in order."""
        return tuple(iter_phases(self.plan))

    def phase(self, label: str) -> AbstractPhase:
        """A phase (or group) of the plan by label."""
        stack = [self.plan]
        while stack:
            p = stack.pop()
            if p.label == label:
                return p
            if isinstance(p, PhaseGroup):
                stack.extend(p.phases)
        raise TrainingError(f"no phase {label!r} in experiment {self.label!r}")

    def _repr_html_(self) -> str:
        from mml.views import experiment_html

        return experiment_html(self)

    def __repr__(self) -> str:
        def indent(text: str) -> str:
            return text.replace("\n", "\n    ")

        lines = [f"Experiment({self.label!r}"]
        for fs in self.featuresets.values():
            lines.append("  " + indent(repr(fs)))
        lines.append("  " + indent(repr(self.graph)))
        lines.append("  plan:")
        for phase in self.phases:
            parts = [f"{type(phase).__name__} {phase.label!r}"]
            if phase.n_epochs:
                parts.append(f"{phase.n_epochs} epoch{'' if phase.n_epochs == 1 else 's'}")
            for head, b in phase.inputs.items():
                parts.append(f"{head} <- {b.featureset}[{b.split or 'all'}]")
            losses = phase.losses
            if losses:
                parts.append("losses " + ", ".join(f"{a.loss.name}@{a.node}" for a in losses))
            callbacks = phase.callbacks
            if callbacks:
                parts.append("callbacks " + ", ".join(type(c).__name__ for c in callbacks))
            lines.append("    " + "; ".join(parts))
        lines.append(")")
        return "\n".join(lines)

    def to_mermaid(self, state: Any = None) -> str:
        """A mermaid flowchart of the whole pipeline: FeatureSets, the graph, and per phase
        the sampler feeding each head and the losses bound to each node.

        ``state`` (a :class:`TrainState` or :class:`~mml.GraphState`) adds the built shapes.
        """
        from mml.graph import to_mermaid

        graph_state = getattr(state, "graph", state)
        shapes = None
        if graph_state is not None and hasattr(graph_state, "shapes"):
            shapes = {
                k: ((v.input_shapes[0] if len(v.input_shapes) == 1 else v.input_shapes), v.output_shape)
                for k, v in graph_state.shapes.items()
            }
        lines = [to_mermaid(self.graph, shapes)]
        lines.append("  classDef sampler fill:#eef7ee,stroke:#2ca02c")
        lines.append("  classDef loss fill:#fdeeee,stroke:#d62728")
        node_ids = {label: f"n{i}" for i, label in enumerate(self.graph)}
        k = 0
        for phase in self.phases:
            bindings = phase.inputs
            for head, b in bindings.items():
                sampler = type(b.sampler).__name__ if b.sampler is not None else "all rows"
                size = getattr(b.sampler, "batch_size", None)
                text = f"{phase.label}: {b.featureset}[{b.split or 'all'}]<br/>{sampler}" + (
                    f"({size})" if size else ""
                )
                lines.append(f'  s{k}[/"{text}"/]:::sampler')
                lines.append(f"  s{k} -.-> {node_ids[head]}")
                k += 1
            for j, applied in enumerate(phase.losses):
                ident = f"l{k}_{j}"
                weight = f" * {applied.weight:g}" if applied.weight != 1.0 else ""
                lines.append(f'  {ident}(("{phase.label}: {applied.loss.name}{weight}")):::loss')
                lines.append(f"  {node_ids[applied.node]} -.-> {ident}")
            k += 1
        return "\n".join(lines)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], featuresets: Mapping[str, Any] | None = None, *, trusted: Any = None
    ) -> Experiment:
        """Build from a plain dict (e.g. parsed JSON/YAML), the document form of :mod:`mml.io`.

        ``config`` has ``graph`` and ``plan`` documents (as ``mml.io.unstructure`` writes
        them: components tagged with ``kind``), an optional ``label`` and ``callbacks``, and
        ``featuresets`` — unless FeatureSets are passed in directly (e.g. loaded by the CLI).
        ``trusted``: the user classes and functions the documents may name (as for
        :func:`mml.load`; ``"*"`` for a config you wrote yourself).
        """
        from mml.io import structure

        fss = featuresets if featuresets is not None else config.get("featuresets")
        if fss is None:
            raise ConfigError(
                "Experiment.from_config needs FeatureSets: a 'featuresets' entry or featuresets="
            )
        graph = (
            config["graph"]
            if isinstance(config["graph"], ModelGraph)
            else structure(config["graph"], ModelGraph, trusted=trusted, path="$.graph")
        )
        plan = config["plan"]
        if not isinstance(plan, AbstractPhase):
            plan = structure(plan, AbstractPhase, trusted=trusted, path="$.plan")
        cbs = tuple(
            cb
            if isinstance(cb, AbstractCallback)
            else structure(cb, AbstractCallback, trusted=trusted, path=f"$.callbacks[{i}]")
            for i, cb in enumerate(config.get("callbacks", ()))
        )
        return cls(fss, graph, plan, config.get("label", "experiment"), cbs)
