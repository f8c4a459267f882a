"""Graph nodes: the node protocol and model stages (joining nodes: :mod:`mml.graph._join`).

A node is a frozen value with a label and references to its inputs
(:class:`~mml.graph.FeatureSetRef` / :class:`~mml.graph.NodeRef`). Nodes are compared and
hashed by value; they never hold arrays or backend objects.

Shapes in this module are **per-sample** (no batch axis): ``axis=0`` of a per-sample shape
is the first non-batch axis of the batched array. Negative axes count from the end.

>>> from mml.graph import ConcatNode, FeatureSetRef, NodeRef
>>> cat = ConcatNode("cat", (NodeRef("a"), NodeRef("b")))
>>> cat.output_shape([(1, 8), (1, 16)])
(1, 24)
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from mml.errors import GraphError
from mml.graph._refs import FeatureSetRef, NodeRef, Ref, check_label

__all__ = ["AbstractNode", "ModelNode"]

Shape = tuple[int, ...]


def _check_label(_: Any, __: Any, value: Any) -> None:
    check_label(value)


def _describe_ref(ref: Ref) -> str:
    return f"FeatureSet {ref.featureset!r}" if isinstance(ref, FeatureSetRef) else repr(ref.label)


class AbstractNode(abc.ABC):
    """A node of a :class:`~mml.graph.ModelGraph`: a label plus references to its inputs.

    Concrete nodes are final frozen attrs classes with a stable ``kind`` tag. Every node
    has ``label`` (unique in its graph), ``upstream_refs`` (its inputs, in order) and
    ``min_upstreams``/``max_upstreams`` (its connection limits).

    >>> from mml.graph import ModelNode, FeatureSetRef
    >>> n = ModelNode("enc", model="a model spec", upstream=FeatureSetRef("fs"))
    >>> isinstance(n, AbstractNode), n.upstream_refs
    (True, (FeatureSetRef(featureset='fs', features=(), targets=(), tags=(), rep=None),))
    """

    _mml_union = True
    __slots__ = ()

    kind: ClassVar[str]
    min_upstreams: ClassVar[int]
    max_upstreams: ClassVar[int | None]
    label: str

    @property
    @abc.abstractmethod
    def upstream_refs(self) -> tuple[Ref, ...]:
        """The node's inputs, in order."""

    @abc.abstractmethod
    def with_upstreams(self, refs: Sequence[Ref]) -> AbstractNode:
        """The same node reading from ``refs`` instead (a new value)."""

    @abc.abstractmethod
    def reroute(self, old: str, new: Sequence[Ref]) -> AbstractNode:
        """The same node with every reference to node ``old`` replaced by the refs ``new``."""

    # What a node without a model says (join nodes): the training plan reads these on any node.
    @property
    def backend(self) -> str | None:
        """The backend of the node's model (``None``: no model, e.g. a join node)."""
        return None

    @property
    def frozen(self) -> bool:
        """Whether training leaves the node's parameters alone (a node without a model: ``False``)."""
        return False

    @property
    def optimizer(self) -> Any:
        """The node's own optimizer spec (``None``: the phase's or the graph's)."""
        return None

    @property
    def device(self) -> str | None:
        """The node's own device (``None``: the phase's)."""
        return None

    @property
    def node_upstreams(self) -> tuple[str, ...]:
        """Labels of the upstream *nodes* (FeatureSets left out), in order, without repeats.

        >>> from mml.graph import ConcatNode, NodeRef, FeatureSetRef
        >>> ConcatNode("c", (NodeRef("a"), FeatureSetRef("fs"), NodeRef("a"))).node_upstreams
        ('a',)
        """
        return tuple(dict.fromkeys(r.label for r in self.upstream_refs if isinstance(r, NodeRef)))

    @property
    def is_head(self) -> bool:
        """Whether every input is a FeatureSet (a head of the graph).

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelNode("enc", "spec", FeatureSetRef("fs")).is_head
        True
        """
        return all(isinstance(r, FeatureSetRef) for r in self.upstream_refs)

    @property
    @abc.abstractmethod
    def trainable(self) -> bool:
        """Whether the node has parameters that a training phase updates.

        >>> from mml.graph import ModelNode, FeatureSetRef
        >>> ModelNode("enc", "spec", FeatureSetRef("fs"), frozen=True).trainable
        False
        """


# -- ModelNode ----------------------------------------------------------------------------


def _check_single_upstream(inst: Any, _: Any, value: Any) -> None:
    if isinstance(value, (FeatureSetRef, NodeRef)):
        return
    label = getattr(inst, "label", "?")
    if isinstance(value, (tuple, list)):
        refs = ", ".join(
            _describe_ref(r) if isinstance(r, (FeatureSetRef, NodeRef)) else repr(r) for r in value
        )
        raise GraphError(
            f"ModelNode {label!r} takes exactly one upstream, got {len(value)} ({refs}); pass the "
            "reference itself, or join several inputs with a ConcatNode or MergeNode in front of it"
        )
    raise GraphError(
        f"ModelNode {label!r}: upstream must be a FeatureSetRef or a NodeRef, got {value!r}; "
        "e.g. upstream=FeatureSetRef('my_featureset') or upstream=NodeRef('encoder')"
    )


def _check_model(inst: Any, _: Any, value: Any) -> None:
    if value is None:
        raise GraphError(f"ModelNode {getattr(inst, 'label', '?')!r} needs a model spec, got None")


def _check_bool(inst: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, bool):
        raise GraphError(
            f"{type(inst).__name__} {getattr(inst, 'label', '?')!r}: {attribute.name} must be True or False, "
            f"got {value!r}"
        )


def _check_device(inst: Any, _: Any, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise GraphError(
            f"ModelNode {getattr(inst, 'label', '?')!r}: device must be None or a string such as 'cpu' or "
            f"'cuda:0', got {value!r}"
        )


@attrs.frozen
class ModelNode(AbstractNode):
    """A model stage: a model spec applied to exactly one input.

    ``model`` is an opaque spec (from :mod:`mml.models`) of which the graph reads only the
    ``backend`` attribute; ``optimizer`` is an optional per-node optimizer spec; a ``frozen``
    node keeps its parameters fixed during training; ``device`` (e.g. ``"cuda:0"``) pins it.

    >>> from mml.graph import FeatureSetRef, NodeRef
    >>> enc = ModelNode("enc", model="mlp spec", upstream=FeatureSetRef("fs"))
    >>> enc.kind, enc.upstream_refs[0].featureset
    ('node.model', 'fs')
    >>> head = ModelNode("head", model="mlp spec", upstream=NodeRef("enc"))
    >>> head.node_upstreams
    ('enc',)
    """

    kind: ClassVar[str] = "node.model"
    min_upstreams: ClassVar[int] = 1
    max_upstreams: ClassVar[int | None] = 1

    label: str = attrs.field(validator=_check_label)
    model: Any = attrs.field(validator=_check_model)
    upstream: FeatureSetRef | NodeRef = attrs.field(validator=_check_single_upstream)
    optimizer: Any = None
    frozen: bool = attrs.field(default=False, validator=_check_bool)
    device: str | None = attrs.field(default=None, validator=_check_device)

    @property
    def upstream_refs(self) -> tuple[Ref, ...]:
        """``(upstream,)``.

        >>> from mml.graph import NodeRef
        >>> ModelNode("m", "spec", NodeRef("a")).upstream_refs
        (NodeRef(label='a'),)
        """
        return (self.upstream,)

    @property
    def backend(self) -> str | None:
        """The ``backend`` attribute of the model spec (``None`` if it has none).

        >>> from mml.graph import NodeRef
        >>> ModelNode("m", "spec", NodeRef("a")).backend is None
        True
        """
        backend = getattr(self.model, "backend", None)
        return backend if isinstance(backend, str) else None

    @property
    def trainable(self) -> bool:
        """``not frozen``.

        >>> from mml.graph import NodeRef
        >>> ModelNode("m", "spec", NodeRef("a")).trainable
        True
        """
        return not self.frozen

    def with_upstreams(self, refs: Sequence[Ref]) -> ModelNode:
        """This node reading from the one ref in ``refs``.

        >>> from mml.graph import NodeRef
        >>> ModelNode("m", "spec", NodeRef("a")).with_upstreams([NodeRef("b")]).upstream
        NodeRef(label='b')
        """
        refs = tuple(refs)
        if len(refs) != 1:
            _check_single_upstream(self, None, refs)
        return attrs.evolve(self, upstream=refs[0])

    def reroute(self, old: str, new: Sequence[Ref]) -> ModelNode:
        """This node reading from ``new`` where it read from node ``old`` (``new`` must be one ref).

        >>> from mml.graph import NodeRef, FeatureSetRef
        >>> ModelNode("m", "spec", NodeRef("a")).reroute("a", [FeatureSetRef("fs")]).upstream.featureset
        'fs'
        """
        if self.upstream != NodeRef(old):
            return self
        new = tuple(new)
        if len(new) != 1:
            raise GraphError(
                f"ModelNode {self.label!r} takes exactly one upstream, but {old!r} would be replaced by "
                f"{len(new)} inputs ({', '.join(_describe_ref(r) for r in new)}); put a ConcatNode or "
                f"MergeNode in front of {self.label!r} to join them"
            )
        return attrs.evolve(self, upstream=new[0])
