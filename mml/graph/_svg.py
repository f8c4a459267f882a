"""Drawing a :class:`~mml.graph.ModelGraph` as inline SVG, for notebooks with no network.

A mermaid chart needs mermaid.js, which a notebook (or CI) without internet cannot fetch, so
the notebook view draws the graph itself: a left-to-right layered layout (a FeatureSet in
the first column, each node one column right of its furthest upstream), boxes styled like
the mermaid chart (FeatureSets blue, models white, frozen models grey and dashed, joins
yellow; each box a ``<g class="mml-node">``) and arrows labelled with the keys a FeatureSet
edge selects. The drawing scales down
to the width it is given (``max-width:100%``), so a wide graph never overflows a page.

>>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
>>> g = ModelGraph.of(ModelNode("enc", "s", FeatureSetRef("fs", features=("x",))), ModelNode("head", "s", NodeRef("enc")))
>>> svg = to_svg(g, shapes={"enc": ((1,), (8,))})
>>> svg.startswith("<svg"), svg.count("<rect"), "features: x" in svg, "out: (8,)" in svg
(True, 3, True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mml._html import escape
from mml.graph._draw import _check_shapes, _node_text, _shape_lines
from mml.graph._join import ConcatNode, MergeNode
from mml.graph._nodes import ModelNode
from mml.graph._refs import NodeRef

if TYPE_CHECKING:
    from mml.graph._graph import ModelGraph

__all__ = ["to_svg"]

#: monospace 12 px: about 7.2 px a character, 15 px a line; edge labels are 10 px (6 px a character)
_CHAR_W, _LABEL_W, _LINE_H, _PAD, _COL_GAP, _ROW_GAP = 7.3, 6.1, 15, 8, 56, 16

#: (fill, stroke, dash, corner radius) per kind of box, matching the mermaid chart's classes
_STYLES = {
    "featureset": ("#e8f4fd", "#1f77b4", "", 12),
    "model": ("#ffffff", "#333333", "", 3),
    "frozen": ("#eeeeee", "#999999", "4 3", 3),
    "join": ("#fdf6e3", "#b58900", "", 12),
}


def _kind(node: Any) -> str:
    if isinstance(node, ModelNode):
        return "frozen" if node.frozen else "model"
    if isinstance(node, (ConcatNode, MergeNode)):
        return "join"
    return "model"


def to_svg(graph: ModelGraph, shapes: Mapping[str, Any] | None = None) -> str:
    """An inline ``<svg>`` drawing of ``graph``; ``shapes`` maps labels to ``(in_shape, out_shape)``.

    >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
    >>> svg = to_svg(ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))))
    >>> ">fs<" in svg, ">a<" in svg, "<script" in svg
    (True, True, False)
    """
    shapes = _check_shapes(graph, shapes)
    # vertices: ("f", name) for FeatureSets, ("n", label) for nodes; each with its text lines
    text: dict[tuple[str, str], list[str]] = {}
    kind: dict[tuple[str, str], str] = {}
    column: dict[tuple[str, str], int] = {}
    for name in graph.featuresets:
        v = ("f", name)
        text[v], kind[v], column[v] = [name, *_shape_lines(name, shapes)], "featureset", 0
    ups: dict[str, list[tuple[tuple[str, str], str]]] = {label: [] for label in graph}
    for ref, label in graph.edges:
        src = ("n", ref.label) if isinstance(ref, NodeRef) else ("f", ref.featureset)
        ups[label].append((src, "" if isinstance(ref, NodeRef) else ref.describe()))
    for label in graph.topological_order:
        v = ("n", label)
        node = graph[label]
        text[v], kind[v] = _node_text(node) + _shape_lines(label, shapes), _kind(node)
        column[v] = 1 + max((column[s] for s, _ in ups[label]), default=0)
    size = {
        v: (max(len(t) for t in lines) * _CHAR_W + 2 * _PAD, len(lines) * _LINE_H + _PAD)
        for v, lines in text.items()
    }
    n_cols = max(column.values(), default=0) + 1
    cols: list[list[tuple[str, str]]] = [[v for v in text if column[v] == c] for c in range(n_cols)]
    col_w = [max((size[v][0] for v in col), default=0.0) for col in cols]
    col_h = [sum(size[v][1] for v in col) + _ROW_GAP * max(len(col) - 1, 0) for col in cols]
    height = max(col_h, default=0.0) + 2 * _PAD
    pos: dict[tuple[str, str], tuple[float, float]] = {}
    # the gap right of a column is wide enough for the labels of the edges leaving it
    gaps = [float(_COL_GAP)] * n_cols
    for label in graph:
        for src, sel in ups[label]:
            gaps[column[src]] = max(gaps[column[src]], len(sel) * _LABEL_W + 2 * _PAD)
    x = float(_PAD)
    for c, col in enumerate(cols):
        y = _PAD + (height - 2 * _PAD - col_h[c]) / 2  # centre each column vertically
        for v in col:
            pos[v] = (x + (col_w[c] - size[v][0]) / 2, y)
            y += size[v][1] + _ROW_GAP
        x += col_w[c] + gaps[c]
    width = x - gaps[-1] + _PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="mml-graph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'style="max-width:100%;height:auto" font-family="monospace" font-size="12">',
        '<defs><marker id="mml-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="8" '
        'markerHeight="8" orient="auto"><path d="M0,0L8,4L0,8z" fill="#555"/></marker></defs>',
    ]
    for label in graph.topological_order:
        dst = ("n", label)
        x1, y1 = pos[dst][0], pos[dst][1] + size[dst][1] / 2
        for src, sel in ups[label]:
            x0, y0 = pos[src][0] + size[src][0], pos[src][1] + size[src][1] / 2
            # the label sits in the gap right of the source column (on the curve when adjacent)
            col_end = pos[src][0] + (col_w[column[src]] + size[src][0]) / 2
            mid = (x0 + x1) / 2
            label_x = col_end + gaps[column[src]] / 2
            parts.append(
                f'<path d="M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}" '
                'fill="none" stroke="#555" marker-end="url(#mml-arrow)"/>'
            )
            if sel:
                parts.append(
                    f'<text class="mml-edge-label" x="{label_x:.1f}" y="{(y0 + y1) / 2 - 3:.1f}" '
                    f'text-anchor="middle" font-size="10" fill="#555">{escape(sel)}</text>'
                )
    for v, lines in text.items():
        (x0, y0), (w, h) = pos[v], size[v]
        fill, stroke, dash, r = _STYLES[kind[v]]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<g class="mml-node mml-{kind[v]}"><rect x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" '
            f'height="{h:.1f}" rx="{r}" fill="{fill}" stroke="{stroke}"{dash_attr}/>'
        )
        for i, line in enumerate(lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            parts.append(
                f'<text x="{x0 + w / 2:.1f}" y="{y0 + _PAD / 2 + (i + 0.8) * _LINE_H:.1f}" '
                f'text-anchor="middle"{weight}>{escape(line)}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
