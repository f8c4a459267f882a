"""Joining nodes: :class:`ConcatNode` and :class:`MergeNode`, one :class:`AbstractJoinNode`.

A joining node reads two or more upstreams and produces one array per batch; it has no
parameters. Shapes are **per-sample** (no batch axis), as in :mod:`mml.graph._nodes`.

>>> from mml.graph import ConcatNode, NodeRef
>>> ConcatNode("cat", (NodeRef("a"), NodeRef("b"))).output_shape([(1, 8), (1, 16)])
(1, 24)
"""

from __future__ import annotations

import abc
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

import attrs
import numpy as np

from mml.errors import GraphError, ShapeError
from mml.graph._nodes import AbstractNode, Shape, _check_bool, _check_label, _describe_ref
from mml.graph._refs import FeatureSetRef, NodeRef, Ref

__all__ = ["AbstractJoinNode", "ConcatNode", "MergeNode"]

_TARGET_STRATEGIES = ("concat", "first", "last", "mean")
_TAG_STRATEGIES = ("merge", "first", "last")


def _to_strategy(value: Any) -> Any:
    # a NodeRef comes back from a document as {"label": ...}
    if isinstance(value, Mapping) and set(value) == {"label"}:
        return NodeRef(value["label"])
    return value


def _upstream_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (FeatureSetRef, NodeRef)):
        return (value,)
    return tuple(value)


def _check_upstreams(inst: Any, _: Any, value: tuple[Any, ...]) -> None:
    name = type(inst).__name__
    label = getattr(inst, "label", "?")
    for r in value:
        if not isinstance(r, (FeatureSetRef, NodeRef)):
            raise GraphError(
                f"{name} {label!r}: every upstream must be a FeatureSetRef or a NodeRef, got {r!r}"
            )
    if len(value) < 2:
        raise GraphError(
            f"{name} {label!r} joins two or more upstreams, got {len(value)}; a single input needs no "
            f"{name} (connect it directly)"
        )


def _strategy_validator(allowed: tuple[str, ...]) -> Any:
    def check(inst: Any, attribute: Any, value: Any) -> None:
        name, label = type(inst).__name__, getattr(inst, "label", "?")
        if isinstance(value, NodeRef):
            if value not in inst.upstreams:
                raise GraphError(
                    f"{name} {label!r}: {attribute.name}={value!r} must name one of its upstreams "
                    f"({', '.join(_describe_ref(r) for r in inst.upstreams)})"
                )
            return
        if value not in allowed:
            raise GraphError(
                f"{name} {label!r}: {attribute.name} must be one of {', '.join(map(repr, allowed))} or a "
                f"NodeRef to one of its upstreams, got {value!r}"
            )

    return check


def _as_shapes(node: Any, input_shapes: Sequence[Sequence[int]]) -> list[Shape]:
    shapes = [tuple(int(d) for d in s) for s in input_shapes]
    if len(shapes) != len(node.upstreams):
        raise ShapeError(
            f"{type(node).__name__} {node.label!r} has {len(node.upstreams)} upstreams but got "
            f"{len(shapes)} input shapes"
        )
    return shapes


def _rank_check(node: Any, shapes: list[Shape]) -> None:
    for ref, shape in zip(node.upstreams[1:], shapes[1:]):
        if len(shape) != len(shapes[0]):
            raise ShapeError(
                f"{type(node).__name__} {node.label!r}: upstream {_describe_ref(node.upstreams[0])} has "
                f"per-sample shape {shapes[0]} ({len(shapes[0])} axes) but upstream {_describe_ref(ref)} has "
                f"{shape} ({len(shape)} axes); reshape one of them (e.g. flatten) so the ranks agree"
            )


class _Ops:
    """The few array operations joining nodes need, for numpy, torch or tensorflow values."""

    name: str
    concat: Callable[[Sequence[Any], int], Any]
    stack: Callable[[Sequence[Any], int], Any]
    pad: Callable[[Any, list[tuple[int, int]], float], Any]

    def __init__(self, example: Any) -> None:
        module = type(example).__module__
        if module.startswith("torch"):
            import torch

            self.name = "torch"
            self.concat = lambda xs, axis: torch.cat(list(xs), dim=axis)
            self.stack = lambda xs, axis: torch.stack(list(xs), dim=axis)

            def pad(x: Any, widths: list[tuple[int, int]], value: float) -> Any:
                flat: list[int] = []
                for before, after in reversed(widths):
                    flat += [before, after]
                return torch.nn.functional.pad(x, flat, mode="constant", value=value)

            self.pad = pad
        elif module.startswith(("tensorflow", "keras")):
            import tensorflow as tf

            self.name = "tensorflow"
            self.concat = lambda xs, axis: tf.concat(list(xs), axis=axis)
            self.stack = lambda xs, axis: tf.stack(list(xs), axis=axis)
            self.pad = lambda x, widths, value: tf.pad(x, widths, constant_values=value)
        else:
            self.name = "numpy"
            self.concat = lambda xs, axis: np.concatenate([np.asarray(x) for x in xs], axis=axis)
            self.stack = lambda xs, axis: np.stack([np.asarray(x) for x in xs], axis=axis)
            self.pad = lambda x, widths, value: np.pad(np.asarray(x), widths, constant_values=value)


def _sample_shapes(node: Any, arrays: Sequence[Any]) -> list[Shape]:
    if len(arrays) != len(node.upstreams):
        raise ShapeError(
            f"{type(node).__name__} {node.label!r} has {len(node.upstreams)} upstreams but got "
            f"{len(arrays)} arrays"
        )
    shapes = [tuple(int(d) for d in a.shape) for a in arrays]
    for ref, shape in zip(node.upstreams, shapes):
        if len(shape) < 1 or shape[0] != shapes[0][0]:
            raise ShapeError(
                f"{type(node).__name__} {node.label!r}: upstream {_describe_ref(ref)} has batch shape {shape} "
                f"but upstream {_describe_ref(node.upstreams[0])} has {shapes[0]}; batches must have the "
                "same number of samples"
            )
    return [s[1:] for s in shapes]


def _combine_targets(node: Any, strategy: Any, values: Sequence[Any]) -> Any:
    if len(values) != len(node.upstreams):
        raise GraphError(
            f"{type(node).__name__} {node.label!r} has {len(node.upstreams)} upstreams but got "
            f"{len(values)} target values"
        )
    if isinstance(strategy, NodeRef):
        return values[node.upstreams.index(strategy)]
    if strategy == "first":
        return values[0]
    if strategy == "last":
        return values[-1]
    present = [v for v in values if v is not None]
    if not present:
        return None
    if strategy == "mean":
        return functools.reduce(operator.add, present) / len(present)
    ops = _Ops(present[0])
    # targets are (batch, ...); scalar-per-sample targets are seen as (batch, 1)
    present = [v if len(v.shape) > 1 else v[:, None] for v in present]
    return ops.concat(present, -1)


def _combine_tags(strategy: Any, node: Any, values: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    if isinstance(strategy, NodeRef):
        return values[node.upstreams.index(strategy)]
    if strategy == "first":
        return values[0]
    if strategy == "last":
        return values[-1]
    merged: dict[str, Any] = {}
    for v in values:  # "merge": the first upstream that has a tag wins
        for k, x in v.items():
            merged.setdefault(k, x)
    return merged


def _reroute_joining(node: Any, old: str, new: Sequence[Ref]) -> Any:
    ref = NodeRef(old)
    if ref not in node.upstreams:
        return node
    new = tuple(new)
    ups: list[Ref] = []
    for r in node.upstreams:
        ups.extend(new if r == ref else (r,))
    changes: dict[str, Any] = {"upstreams": tuple(ups)}
    for name in ("targets", "tags"):
        if getattr(node, name) == ref:
            if len(new) == 1 and isinstance(new[0], NodeRef):
                changes[name] = new[0]
            else:
                raise GraphError(
                    f"{type(node).__name__} {node.label!r} takes its {name} from {old!r}, which would be "
                    f"replaced by {', '.join(_describe_ref(r) for r in new)}; set {name}= to another "
                    "strategy (e.g. 'first') first"
                )
    return attrs.evolve(node, **changes)


class AbstractJoinNode(AbstractNode):
    """A node that joins two or more upstreams into one, with no parameters of its own.

    Subclasses (:class:`ConcatNode`, :class:`MergeNode`) are final frozen attrs classes with the
    fields ``label``, ``upstreams``, ``targets`` and ``tags``, and define how arrays are joined
    (:meth:`output_shape`, :meth:`combine`); everything else — the inputs, rerouting, how targets
    and tags are combined — is this class's, once.

    >>> from mml.graph import ConcatNode, MergeNode, NodeRef
    >>> all(issubclass(c, AbstractJoinNode) for c in (ConcatNode, MergeNode))
    True
    """

    __slots__ = ()

    upstreams: tuple[FeatureSetRef | NodeRef, ...]
    targets: Any
    tags: Any

    @property
    def upstream_refs(self) -> tuple[Ref, ...]:
        """``upstreams``.

        >>> from mml.graph import ConcatNode, NodeRef
        >>> len(ConcatNode("c", (NodeRef("a"), NodeRef("b"))).upstream_refs)
        2
        """
        return self.upstreams

    @property
    def trainable(self) -> bool:
        """Always ``False``: joining has no parameters."""
        return False

    def with_upstreams(self, refs: Sequence[Ref]) -> Self:
        """This node joining ``refs`` instead.

        >>> from mml.graph import MergeNode, NodeRef
        >>> MergeNode("m", (NodeRef("a"), NodeRef("b"))).with_upstreams([NodeRef("x"), NodeRef("y")]).upstreams
        (NodeRef(label='x'), NodeRef(label='y'))
        """
        return attrs.evolve(self, upstreams=tuple(refs))  # type: ignore[misc]

    def reroute(self, old: str, new: Sequence[Ref]) -> Self:
        """This node with node ``old`` replaced by the refs ``new`` (spliced in place).

        >>> from mml.graph import ConcatNode, MergeNode, NodeRef
        >>> ConcatNode("c", (NodeRef("a"), NodeRef("b"))).reroute("a", [NodeRef("x"), NodeRef("y")]).upstreams
        (NodeRef(label='x'), NodeRef(label='y'), NodeRef(label='b'))
        >>> MergeNode("m", (NodeRef("a"), NodeRef("b"))).reroute("b", [NodeRef("z")]).upstreams
        (NodeRef(label='a'), NodeRef(label='z'))
        """
        return _reroute_joining(self, old, new)  # type: ignore[no-any-return]

    @abc.abstractmethod
    def output_shape(self, input_shapes: Sequence[Sequence[int]]) -> Shape:
        """The per-sample output shape for per-sample ``input_shapes`` (one per upstream, in order)."""

    @abc.abstractmethod
    def combine(self, arrays: Sequence[Any]) -> Any:
        """Join batched arrays (numpy, torch or tensorflow; batch axis first)."""

    def combine_targets(self, values: Sequence[Any]) -> Any:
        """Combine the upstreams' target arrays (``None`` where an upstream has none) by ``targets``.

        >>> import numpy as np
        >>> from mml.graph import ConcatNode, MergeNode, NodeRef
        >>> ConcatNode("c", (NodeRef("a"), NodeRef("b"))).combine_targets([np.zeros(2), np.ones((2, 2))]).shape
        (2, 3)
        >>> MergeNode("m", (NodeRef("a"), NodeRef("b"))).combine_targets([np.zeros(2), None]).tolist()
        [0.0, 0.0]
        """
        return _combine_targets(self, self.targets, values)

    def combine_tags(self, values: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        """Combine the upstreams' tag mappings by ``tags``.

        >>> from mml.graph import ConcatNode, MergeNode, NodeRef
        >>> ConcatNode("c", (NodeRef("a"), NodeRef("b"))).combine_tags([{"id": 1}, {"id": 2, "site": 3}])
        {'id': 1, 'site': 3}
        >>> MergeNode("m", (NodeRef("a"), NodeRef("b")), tags="last").combine_tags([{"i": 1}, {"i": 2}])
        {'i': 2}
        """
        return _combine_tags(self.tags, self, values)


@attrs.frozen
class ConcatNode(AbstractJoinNode):
    """Concatenates two or more upstreams along a per-sample axis.

    ``axis`` counts over per-sample dimensions (``axis=0`` is the first non-batch axis;
    negative axes count from the end). All other axes must agree, unless ``pad=True``: then
    each input is padded at the end with ``pad_value`` to the largest size on every other axis.
    ``targets`` says how the targets of the upstreams are combined: ``"concat"`` (along the last
    axis), ``"first"``, ``"last"``, ``"mean"`` or a :class:`NodeRef` to one upstream; ``tags``
    is ``"merge"`` (the first upstream with a tag wins), ``"first"``, ``"last"`` or a NodeRef.

    >>> from mml.graph import NodeRef
    >>> cat = ConcatNode("cat", (NodeRef("a"), NodeRef("b")), axis=0, pad=True)
    >>> cat.output_shape([(1, 10), (1, 5)])
    (2, 10)
    >>> import numpy as np
    >>> cat.combine([np.ones((4, 1, 10)), np.ones((4, 1, 5))]).shape
    (4, 2, 10)
    """

    kind: ClassVar[str] = "node.concat"
    min_upstreams: ClassVar[int] = 2
    max_upstreams: ClassVar[int | None] = None

    label: str = attrs.field(validator=_check_label)
    upstreams: tuple[FeatureSetRef | NodeRef, ...] = attrs.field(
        converter=_upstream_tuple, validator=_check_upstreams
    )
    axis: int = attrs.field(default=-1, validator=attrs.validators.instance_of(int))
    pad: bool = attrs.field(default=False, validator=_check_bool)
    pad_value: float = attrs.field(default=0.0, converter=float)
    targets: Any = attrs.field(
        default="concat", converter=_to_strategy, validator=_strategy_validator(_TARGET_STRATEGIES)
    )
    tags: Any = attrs.field(
        default="merge", converter=_to_strategy, validator=_strategy_validator(_TAG_STRATEGIES)
    )

    def output_shape(self, input_shapes: Sequence[Sequence[int]]) -> Shape:
        """The per-sample output shape for per-sample ``input_shapes`` (one per upstream, in order).

        Raises :class:`~mml.errors.ShapeError` naming both upstreams and their shapes when
        the inputs cannot be concatenated.

        >>> from mml.graph import NodeRef
        >>> ConcatNode("c", (NodeRef("a"), NodeRef("b"))).output_shape([(1, 8), (1, 16)])
        (1, 24)
        >>> ConcatNode("c", (NodeRef("a"), NodeRef("b")), axis=0).output_shape([(1, 10), (1, 5)])
        Traceback (most recent call last):
        ...
        mml.errors.ShapeError: ConcatNode 'c' cannot concatenate along axis 0: upstream 'a' has per-sample shape (1, 10) but upstream 'b' has (1, 5), which differ on axis 1; pass pad=True to pad to the larger size, or reshape the inputs
        """
        shapes = _as_shapes(self, input_shapes)
        _rank_check(self, shapes)
        rank = len(shapes[0])
        if not -rank <= self.axis < rank:
            raise ShapeError(
                f"ConcatNode {self.label!r}: axis {self.axis} is out of range for per-sample shapes with "
                f"{rank} axes ({', '.join(map(str, shapes))}); use an axis in [{-rank}, {rank - 1}] "
                "(axis 0 is the first non-batch axis)"
            )
        axis = self.axis % rank
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        for d in range(rank):
            if d == axis:
                continue
            sizes = [s[d] for s in shapes]
            if len(set(sizes)) == 1:
                continue
            if self.pad:
                out[d] = max(sizes)
                continue
            j = next(i for i, s in enumerate(sizes) if s != sizes[0])
            raise ShapeError(
                f"ConcatNode {self.label!r} cannot concatenate along axis {self.axis}: upstream "
                f"{_describe_ref(self.upstreams[0])} has per-sample shape {shapes[0]} but upstream "
                f"{_describe_ref(self.upstreams[j])} has {shapes[j]}, which differ on axis {d}; pass "
                "pad=True to pad to the larger size, or reshape the inputs"
            )
        return tuple(out)

    def combine(self, arrays: Sequence[Any]) -> Any:
        """Concatenate batched arrays (numpy, torch or tensorflow; batch axis first).

        Never writes to its inputs; padding (with ``pad=True``) goes at the end of each axis.

        >>> import numpy as np
        >>> from mml.graph import NodeRef
        >>> c = ConcatNode("c", (NodeRef("a"), NodeRef("b")))
        >>> c.combine([np.zeros((2, 3)), np.ones((2, 1))]).tolist()
        [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]]
        """
        shapes = _sample_shapes(self, arrays)
        out = self.output_shape(shapes)
        axis = self.axis % len(out)
        ops = _Ops(arrays[0])
        parts = list(arrays)
        if self.pad:
            for i, (a, s) in enumerate(zip(arrays, shapes)):
                widths = [(0, 0)] + [(0, 0 if d == axis else out[d] - s[d]) for d in range(len(s))]
                if any(w for _, w in widths):
                    parts[i] = ops.pad(a, widths, self.pad_value)
        return ops.concat(parts, axis + 1)


_MERGE_STRATEGIES = ("sum", "mean", "stack")


def _check_merge_strategy(inst: Any, _: Any, value: Any) -> None:
    if value not in _MERGE_STRATEGIES:
        raise GraphError(
            f"MergeNode {getattr(inst, 'label', '?')!r}: strategy must be one of "
            f"{', '.join(map(repr, _MERGE_STRATEGIES))}, got {value!r}"
        )


@attrs.frozen
class MergeNode(AbstractJoinNode):
    """Merges two or more upstreams of one shape elementwise (``"sum"``, ``"mean"``) or by
    stacking them on a new first per-sample axis (``"stack"``).

    ``targets`` (``"first"`` by default, or ``"last"``, ``"mean"``, ``"concat"``, a NodeRef)
    and ``tags`` (``"merge"``, ``"first"``, ``"last"``, a NodeRef) work as on
    :class:`ConcatNode`.

    >>> from mml.graph import NodeRef
    >>> m = MergeNode("m", (NodeRef("a"), NodeRef("b")), strategy="stack")
    >>> m.output_shape([(3,), (3,)])
    (2, 3)
    """

    kind: ClassVar[str] = "node.merge"
    min_upstreams: ClassVar[int] = 2
    max_upstreams: ClassVar[int | None] = None

    label: str = attrs.field(validator=_check_label)
    upstreams: tuple[FeatureSetRef | NodeRef, ...] = attrs.field(
        converter=_upstream_tuple, validator=_check_upstreams
    )
    strategy: str = attrs.field(default="sum", validator=_check_merge_strategy)
    targets: Any = attrs.field(
        default="first", converter=_to_strategy, validator=_strategy_validator(_TARGET_STRATEGIES)
    )
    tags: Any = attrs.field(
        default="merge", converter=_to_strategy, validator=_strategy_validator(_TAG_STRATEGIES)
    )

    def output_shape(self, input_shapes: Sequence[Sequence[int]]) -> Shape:
        """The per-sample output shape; every input must have the same per-sample shape.

        >>> from mml.graph import NodeRef
        >>> MergeNode("m", (NodeRef("a"), NodeRef("b"))).output_shape([(4,), (4,)])
        (4,)
        """
        shapes = _as_shapes(self, input_shapes)
        for ref, shape in zip(self.upstreams[1:], shapes[1:]):
            if shape != shapes[0]:
                raise ShapeError(
                    f"MergeNode {self.label!r} ({self.strategy}) needs inputs of one shape: upstream "
                    f"{_describe_ref(self.upstreams[0])} has per-sample shape {shapes[0]} but upstream "
                    f"{_describe_ref(ref)} has {shape}; use a ConcatNode (with pad=True) or reshape the inputs"
                )
        if self.strategy == "stack":
            return (len(shapes), *shapes[0])
        return shapes[0]

    def combine(self, arrays: Sequence[Any]) -> Any:
        """Merge batched arrays (numpy, torch or tensorflow; batch axis first).

        >>> import numpy as np
        >>> from mml.graph import NodeRef
        >>> m = MergeNode("m", (NodeRef("a"), NodeRef("b")), strategy="mean")
        >>> m.combine([np.zeros((2, 3)), np.ones((2, 3))]).tolist()
        [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
        """
        shapes = _sample_shapes(self, arrays)
        self.output_shape(shapes)
        if self.strategy == "stack":
            return _Ops(arrays[0]).stack(arrays, 1)
        total = functools.reduce(operator.add, arrays)
        return total / len(arrays) if self.strategy == "mean" else total
