"""The notebook view of a ModelGraph: the graph drawn as inline SVG, its nodes as a table.

The drawing is SVG made here (:func:`mml.graph._svg.to_svg`), not a mermaid chart: mermaid
needs a script from the network, which notebooks offline and CI do not have. The mermaid
source is kept, folded, for pasting into documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mml._html import escape, table, view
from mml.graph._refs import NodeRef
from mml.graph._svg import to_svg

if TYPE_CHECKING:  # the graph module imports this one
    from mml.graph._graph import ModelGraph

__all__ = ["graph_html"]


def _describe_ref(ref: Any) -> str:
    if isinstance(ref, NodeRef):
        return ref.label
    sel = ref.describe()
    return f"FeatureSet {ref.featureset}" + (f" ({sel})" if sel else "")


def graph_html(graph: ModelGraph, shapes: Any = None) -> str:
    """A ModelGraph drawn as SVG, its nodes (type, model, upstreams) and its mermaid source, folded.

    >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
    >>> html = graph_html(ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))))
    >>> "<svg" in html, "FeatureSet fs" in html, "flowchart LR" in html
    (True, True, True)
    """
    rows = []
    for label in graph.topological_order:
        node = graph[label]
        model = getattr(node, "model", None)
        ups = ", ".join(_describe_ref(r) for r, dst in graph.edges if dst == label)
        rows.append([label, type(node).__name__, type(model).__name__ if model is not None else "-", ups])
    chart = escape(graph.to_mermaid(shapes))
    return view(
        "<b>ModelGraph</b>",
        f"<div>{to_svg(graph, shapes)}</div>",
        table(["node", "type", "model", "upstream"], rows),
        f"<details><summary>mermaid source</summary><pre>{chart}</pre></details>",
    )
