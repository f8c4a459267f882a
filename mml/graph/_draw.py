"""Drawing a :class:`~mml.graph.ModelGraph`: mermaid flowcharts and Graphviz dot.

FeatureSets are drawn as cylinders, model nodes as boxes (frozen ones greyed and dashed),
concat nodes as hexagons and merge nodes as stadiums/trapezia. Edges from a FeatureSet carry
the selected keys. Pass ``shapes`` (label -> ``(in_shape, out_shape)``, e.g. from a built
graph) to print shapes on the nodes.

>>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
>>> g = ModelGraph.of(ModelNode("enc", "spec", FeatureSetRef("fs", features=("x",))))
>>> print(to_mermaid(g))
flowchart LR
  classDef featureset fill:#e8f4fd,stroke:#1f77b4
  classDef model fill:#ffffff,stroke:#333333
  classDef frozen fill:#eeeeee,stroke:#999999,stroke-dasharray:4 3
  classDef join fill:#fdf6e3,stroke:#b58900
  f0[("fs")]:::featureset
  n0["enc<br/>'spec'"]:::model
  f0 -->|"features: x"| n0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from mml.errors import GraphError
from mml.graph._join import ConcatNode, MergeNode
from mml.graph._nodes import AbstractNode, ModelNode
from mml.graph._refs import FeatureSetRef, NodeRef, Ref, close_matches

if TYPE_CHECKING:
    from mml.graph._graph import ModelGraph

__all__ = ["describe_ref", "graph_text", "to_mermaid", "to_dot"]


def _fmt_shape(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, (tuple, list)) and shape and all(isinstance(s, (tuple, list)) for s in shape):
        return ", ".join(_fmt_shape(s) for s in shape)
    if isinstance(shape, (tuple, list)):
        return "(" + ", ".join(str(int(d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    return str(shape)


def _shape_lines(label: str, shapes: Mapping[str, Any]) -> list[str]:
    if label not in shapes:
        return []
    value = shapes[label]
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return [f"in: {_fmt_shape(value[0])}", f"out: {_fmt_shape(value[1])}"]
    return [f"out: {_fmt_shape(value)}"]


def _check_shapes(graph: ModelGraph, shapes: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if shapes is None:
        return {}
    known = set(graph) | set(graph.featuresets)
    unknown = [k for k in shapes if k not in known]
    if unknown:
        hints = "".join(close_matches(str(k), known) for k in unknown)
        raise GraphError(
            f"shapes given for unknown node(s) {', '.join(map(repr, unknown))}{hints}; shapes maps node or "
            "FeatureSet labels to (in_shape, out_shape)"
        )
    return shapes


def _node_text(node: AbstractNode) -> list[str]:
    if isinstance(node, ModelNode):
        model = node.model
        backend = getattr(model, "backend", None)
        text = repr(model) if isinstance(model, str) else type(model).__name__
        if isinstance(backend, str):
            text += f" · {backend}"
        lines = [node.label, text]
        if node.frozen:
            lines.append("(frozen)")
        return lines
    if isinstance(node, ConcatNode):
        return [node.label, f"concat axis={node.axis}" + (" pad" if node.pad else "")]
    if isinstance(node, MergeNode):
        return [node.label, f"merge {node.strategy}"]
    return [node.label, type(node).__name__]


def _mermaid_text(lines: list[str]) -> str:
    return "<br/>".join(x.replace('"', "#quot;") for x in lines)


def to_mermaid(graph: ModelGraph, shapes: Mapping[str, Any] | None = None) -> str:
    """A mermaid ``flowchart LR`` of ``graph``; ``shapes`` maps labels to ``(in_shape, out_shape)``.

    >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
    >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a"), frozen=True))
    >>> text = to_mermaid(g, shapes={"a": ((3,), (8,))})
    >>> "n0 --> n1" in text, "(frozen)" in text, "out: (8,)" in text
    (True, True, True)
    """
    shapes = _check_shapes(graph, shapes)
    lines = [
        "flowchart LR",
        "  classDef featureset fill:#e8f4fd,stroke:#1f77b4",
        "  classDef model fill:#ffffff,stroke:#333333",
        "  classDef frozen fill:#eeeeee,stroke:#999999,stroke-dasharray:4 3",
        "  classDef join fill:#fdf6e3,stroke:#b58900",
    ]
    fs_ids = {name: f"f{i}" for i, name in enumerate(graph.featuresets)}
    node_ids = {label: f"n{i}" for i, label in enumerate(graph)}
    for name, ident in fs_ids.items():
        lines.append(f'  {ident}[("{_mermaid_text([name, *_shape_lines(name, shapes)])}")]:::featureset')
    for label in graph:
        node = graph[label]
        text = _mermaid_text(_node_text(node) + _shape_lines(label, shapes))
        ident = node_ids[label]
        if isinstance(node, ModelNode):
            lines.append(f'  {ident}["{text}"]:::{"frozen" if node.frozen else "model"}')
        elif isinstance(node, ConcatNode):
            lines.append(f'  {ident}{{{{"{text}"}}}}:::join')
        else:
            lines.append(f'  {ident}(["{text}"]):::join')
    for ref, label in graph.edges:
        if isinstance(ref, NodeRef):
            lines.append(f"  {node_ids[ref.label]} --> {node_ids[label]}")
        else:
            sel = ref.describe()
            arrow = f'-->|"{_mermaid_text([sel])}"|' if sel else "-->"
            lines.append(f"  {fs_ids[ref.featureset]} {arrow} {node_ids[label]}")
    return "\n".join(lines)


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: ModelGraph, shapes: Mapping[str, Any] | None = None) -> str:
    """A Graphviz ``digraph`` of ``graph``; ``shapes`` maps labels to ``(in_shape, out_shape)``.

    FeatureSet vertices are named ``featureset:<label>`` (``:`` cannot occur in node labels).

    >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
    >>> print(to_dot(ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")))))
    digraph ModelGraph {
      rankdir=LR;
      node [fontname="Helvetica"];
      "featureset:fs" [label="fs", shape=cylinder, style=filled, fillcolor="#e8f4fd"];
      "a" [label="a\\n's'", shape=box, style=filled, fillcolor="#ffffff"];
      "featureset:fs" -> "a";
    }
    """
    shapes = _check_shapes(graph, shapes)
    lines = ["digraph ModelGraph {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for name in graph.featuresets:
        text = "\n".join([name, *_shape_lines(name, shapes)])
        lines.append(
            f"  {_dot_quote('featureset:' + name)} [label={_dot_quote(text)}, shape=cylinder, style=filled, "
            'fillcolor="#e8f4fd"];'
        )
    for label in graph:
        node = graph[label]
        text = _dot_quote("\n".join(_node_text(node) + _shape_lines(label, shapes)))
        if isinstance(node, ModelNode):
            style = (
                'style="filled,dashed", fillcolor="#eeeeee", color="#999999"'
                if node.frozen
                else 'style=filled, fillcolor="#ffffff"'
            )
            lines.append(f"  {_dot_quote(label)} [label={text}, shape=box, {style}];")
        else:
            shape = "hexagon" if isinstance(node, ConcatNode) else "invtrapezium"
            lines.append(
                f'  {_dot_quote(label)} [label={text}, shape={shape}, style=filled, fillcolor="#fdf6e3"];'
            )
    for ref, label in graph.edges:
        if isinstance(ref, FeatureSetRef):
            sel = ref.describe()
            attr = f" [label={_dot_quote(sel)}]" if sel else ""
            lines.append(f"  {_dot_quote('featureset:' + ref.featureset)} -> {_dot_quote(label)}{attr};")
        else:
            lines.append(f"  {_dot_quote(ref.label)} -> {_dot_quote(label)};")
    lines.append("}")
    return "\n".join(lines)


def _describe_model(model: Any) -> str:
    if isinstance(model, str):
        return repr(model)
    backend = getattr(model, "backend", None)
    name = type(model).__name__
    return f"{name}[{backend}]" if isinstance(backend, str) else name


def describe_ref(ref: Ref) -> str:
    """A reference as the graph's text shows it: a node's label, or ``[featureset] (keys)``.

    >>> describe_ref(NodeRef("enc")), describe_ref(FeatureSetRef("fs", features=("x",)))
    ('enc', '[fs] (features: x)')
    """
    if isinstance(ref, NodeRef):
        return ref.label
    sel = ref.describe()
    return f"[{ref.featureset}]" + (f" ({sel})" if sel else "")


def graph_text(graph: ModelGraph) -> str:
    """The plain-text view of ``graph`` (its ``repr``): nodes in topological order, edges, optimizer.

    >>> from mml.graph import ModelGraph, ModelNode
    >>> print(graph_text(ModelGraph.of(ModelNode("enc", "spec", FeatureSetRef("fs")))))
    ModelGraph(
      nodes:
        enc  ModelNode(model='spec')
      edges:
        [fs] -> enc
      optimizer=None
    )
    """
    lines = ["ModelGraph(", "  nodes:"]
    order = graph.topological_order
    width = max((len(label) for label in order), default=0)
    for label in order:
        node = graph[label]
        if isinstance(node, ModelNode):
            extra = f"model={_describe_model(node.model)}"
            if node.frozen:
                extra += ", frozen"
            if node.optimizer is not None:
                extra += f", optimizer={type(node.optimizer).__name__}"
            if node.device is not None:
                extra += f", device={node.device!r}"
        else:
            fields = {a.name: getattr(node, a.name) for a in attrs.fields(type(node))}  # type: ignore[arg-type]
            extra = ", ".join(f"{k}={v!r}" for k, v in fields.items() if k not in ("label", "upstreams"))
        lines.append(f"    {label:<{width}}  {type(node).__name__}({extra})")
    lines.append("  edges:")
    for ref, label in graph.edges:
        lines.append(f"    {describe_ref(ref)} -> {label}")
    lines.append(f"  optimizer={graph.optimizer!r}")
    lines.append(")")
    return "\n".join(lines)
