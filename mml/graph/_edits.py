"""The pure edits of a :class:`~mml.graph.ModelGraph`: each returns a new, validated graph.

``add``, ``remove``, ``replace``, ``insert_between``/``insert_before``/``insert_after``,
and ``freeze``/``unfreeze`` — :class:`ModelGraph` has them from this mixin, which holds no data
of its own (the graph's nodes, optimizer and index are its fields) and imports nothing of
``_graph`` (every edit builds its result through the graph's ``_with_nodes``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from mml.errors import GraphError
from mml.graph._analysis import UnknownNodeError, _describe
from mml.graph._draw import describe_ref
from mml.graph._nodes import AbstractNode, ModelNode
from mml.graph._refs import NodeRef, Ref, close_matches

if TYPE_CHECKING:  # the graph module imports this one
    from mml.graph._analysis import _Index
    from mml.graph._graph import ModelGraph

__all__: list[str] = []


def _labels_arg(labels: str | Iterable[str]) -> tuple[str, ...]:
    return (labels,) if isinstance(labels, str) else tuple(labels)


class _GraphEdits:
    """The edits of :class:`~mml.graph.ModelGraph` (a mixin: ``ModelGraph`` is its only subclass)."""

    __slots__ = ()

    if TYPE_CHECKING:
        nodes: tuple[AbstractNode, ...]
        optimizer: Any
        _index: _Index

        def _check_known(self, label: str) -> None: ...

        def __getitem__(self, label: str) -> AbstractNode: ...

        def _with_nodes(self, nodes: Iterable[AbstractNode]) -> ModelGraph: ...

    def add(self, node: AbstractNode) -> ModelGraph:
        """A new graph with ``node`` appended.

        >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")))
        >>> g.add(ModelNode("b", "s", NodeRef("a"))).tails
        ('b',)
        """
        if not isinstance(node, AbstractNode):
            raise GraphError(
                f"ModelGraph.add takes a node (ModelNode, ConcatNode, MergeNode), got {node!r:.100}"
            )
        return self._with_nodes((*self.nodes, node))

    def remove(self, label: str) -> ModelGraph:
        """A new graph without ``label``; its consumers read from its upstreams instead.

        Removing a node with several upstreams that feeds a ModelNode (which takes exactly one
        input) is an error.

        >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a")),
        ...                   ModelNode("c", "s", NodeRef("b")))
        >>> g.remove("b")["c"].upstream
        NodeRef(label='a')
        """
        removed = self[label]
        out = []
        for node in self.nodes:
            if node.label == label:
                continue
            try:
                out.append(node.reroute(label, removed.upstream_refs))
            except GraphError as exc:
                raise GraphError(f"cannot remove {label!r}: {exc}") from None
        return self._with_nodes(out)

    def replace(self, label: str, node: AbstractNode) -> ModelGraph:
        """A new graph with ``node`` in the place of ``label``; consumers follow a new label.

        >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a")))
        >>> g.replace("a", ModelNode("a2", "other", FeatureSetRef("fs")))["b"].upstream
        NodeRef(label='a2')
        """
        self._check_known(label)
        new_ref = (NodeRef(node.label),)
        out = []
        for n in self.nodes:
            if n.label == label:
                out.append(node)
            elif node.label != label:
                out.append(n.reroute(label, new_ref))
            else:
                out.append(n)
        return self._with_nodes(out)

    @staticmethod
    def _attach(node: AbstractNode, ref: Ref, where: str) -> AbstractNode:
        if node.max_upstreams == 1:
            return node.with_upstreams((ref,))
        if ref not in node.upstream_refs:
            raise GraphError(
                f"{_describe(node)} joins several inputs, so to insert it {where} it must already list "
                f"{ref!r} among its upstreams"
            )
        return node

    def insert_between(self, upstream_label: str, downstream_label: str, node: AbstractNode) -> ModelGraph:
        """A new graph with ``node`` on the edge ``upstream_label -> downstream_label``.

        A ModelNode is re-pointed at ``upstream_label``; a joining node must already list it.

        >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a")))
        >>> list(g.insert_between("a", "b", ModelNode("mid", "s", NodeRef("a"))))
        ['a', 'mid', 'b']
        """
        self._check_known(upstream_label)
        down = self[downstream_label]
        if upstream_label not in down.node_upstreams:
            raise GraphError(
                f"cannot insert {node.label!r} between {upstream_label!r} and {downstream_label!r}: "
                f"{downstream_label!r} does not read from {upstream_label!r} (its upstreams: "
                f"{', '.join(describe_ref(r) for r in down.upstream_refs)}); use insert_after or insert_before"
            )
        new = self._attach(node, NodeRef(upstream_label), f"after {upstream_label!r}")
        out: list[AbstractNode] = []
        for n in self.nodes:
            if n.label == downstream_label:
                out += [new, n.reroute(upstream_label, (NodeRef(new.label),))]
            else:
                out.append(n)
        return self._with_nodes(out)

    def insert_before(self, label: str, node: AbstractNode) -> ModelGraph:
        """A new graph with ``node`` between ``label`` and its one upstream.

        >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")))
        >>> g2 = g.insert_before("a", ModelNode("pre", "s", FeatureSetRef("fs")))
        >>> list(g2), g2.heads
        (['pre', 'a'], ('pre',))
        """
        target = self[label]
        refs = target.upstream_refs
        if len(refs) != 1:
            raise GraphError(
                f"cannot insert {node.label!r} before {label!r}: it has {len(refs)} upstreams "
                f"({', '.join(describe_ref(r) for r in refs)}); use insert_between(upstream, {label!r}, node) "
                "to pick the edge"
            )
        new = self._attach(node, refs[0], f"before {label!r}")
        out: list[AbstractNode] = []
        for n in self.nodes:
            if n.label == label:
                out += [new, n.with_upstreams((NodeRef(new.label),))]
            else:
                out.append(n)
        return self._with_nodes(out)

    def insert_after(self, label: str, node: AbstractNode) -> ModelGraph:
        """A new graph with ``node`` reading ``label``; every former consumer of ``label`` reads ``node``.

        >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs")), ModelNode("b", "s", NodeRef("a")))
        >>> g.insert_after("a", ModelNode("post", "s", NodeRef("a")))["b"].upstream
        NodeRef(label='post')
        """
        self._check_known(label)
        new = self._attach(node, NodeRef(label), f"after {label!r}")
        new_ref = (NodeRef(new.label),)
        out: list[AbstractNode] = []
        for n in self.nodes:
            out.append(n.reroute(label, new_ref))
            if n.label == label:
                out.append(new)
        return self._with_nodes(out)

    def _set_frozen(self, labels: str | Iterable[str], frozen: bool) -> ModelGraph:
        wanted = _labels_arg(labels)
        unknown = [x for x in wanted if x not in self._index.by_label]
        if unknown:
            hints = "".join(close_matches(x, self._index.by_label) for x in unknown)
            raise UnknownNodeError(
                f"cannot {'freeze' if frozen else 'unfreeze'} unknown node(s) {', '.join(map(repr, unknown))}"
                f"{hints}; the graph's nodes are: {', '.join(map(repr, self._index.order))}"
            )
        not_models = [x for x in wanted if not isinstance(self._index.by_label[x], ModelNode)]
        if not_models:
            raise GraphError(
                f"only ModelNodes have parameters to {'freeze' if frozen else 'unfreeze'}; "
                + ", ".join(_describe(self._index.by_label[x]) for x in not_models)
                + " has none"
            )
        chosen = set(wanted)
        return self._with_nodes(
            attrs.evolve(n, frozen=frozen) if n.label in chosen else n  # type: ignore[misc]
            for n in self.nodes
        )

    def freeze(self, labels: str | Iterable[str]) -> ModelGraph:
        """A new graph whose ModelNodes ``labels`` (a label or several) are frozen.

        >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
        >>> ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"))).freeze("a")["a"].frozen
        True
        """
        return self._set_frozen(labels, True)

    def unfreeze(self, labels: str | Iterable[str]) -> ModelGraph:
        """A new graph whose ModelNodes ``labels`` (a label or several) are trainable again.

        >>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef
        >>> g = ModelGraph.of(ModelNode("a", "s", FeatureSetRef("fs"), frozen=True))
        >>> g.unfreeze(["a"])["a"].frozen
        False
        """
        return self._set_frozen(labels, False)
