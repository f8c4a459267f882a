"""The notebook view of a ModelGraph: its nodes as a table and its mermaid source."""

from __future__ import annotations

from typing import Any

from mml._html import escape, table, view

__all__ = ["graph_html"]


def graph_html(graph: Any, shapes: Any = None) -> str:
    """A ModelGraph's nodes (type, model, upstreams) and its mermaid source, folded."""
    rows = []
    for label in graph.topological_order:
        node = graph[label]
        model = getattr(node, "model", None)
        ups = ", ".join(f"{r!r}" for r, dst in graph.edges if dst == label)
        rows.append([label, type(node).__name__, type(model).__name__ if model is not None else "-", ups])
    chart = escape(graph.to_mermaid(shapes))
    return view(
        table(["node", "type", "model", "upstream"], rows, "ModelGraph"),
        f"<details><summary>mermaid</summary><pre>{chart}</pre></details>",
    )
