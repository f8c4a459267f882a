"""Losses as values: :class:`Loss` (what to compute) and :class:`AppliedLoss` (on what).

A :class:`Loss` names its function — a built-in name (``"mse"``, ``"mae"``, ``"huber"``,
``"bce"``, ``"bce_with_logits"``, ``"cross_entropy"``, ``"triplet_margin"``,
``"contrastive"``), a backend loss class by import path (``"torch.nn:SmoothL1Loss"``,
``"keras.losses:Huber"``) or any function by import path (``"my_pkg.losses:focal"``) — plus
keyword arguments. No lambdas: a lambda cannot be saved. An :class:`AppliedLoss` binds a loss
to a node's output and to the batch's targets (or features, tags, or role-qualified inputs
such as ``"anchor.outputs"``).

Built-in losses run in the backend of the node they are bound to: torch ops for torch nodes
(and scikit-learn outputs), TensorFlow ops for Keras nodes, so that gradients flow; the two
implementations agree to float32 precision. They live in the backends layer
(:func:`mml.backends.loss_function`): this module holds the specs and resolves one to a function,
and imports no framework.

>>> import torch
>>> loss = Loss("mse")
>>> fn = compile_loss(loss)
>>> float(fn([torch.ones(4, 1), torch.zeros(4, 1)], None, None))
1.0
>>> AppliedLoss(loss, "mlp").name
'mlp.mse'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from mml._fields import FrozenDict, frozen_dict
from mml.backends import LOSS_FRAMEWORKS, loss_function, loss_reduction
from mml.errors import BackendError, ConfigError, TrainingError
from mml.io import import_function

__all__ = ["Loss", "AppliedLoss", "LOSSES", "LOSS_BACKENDS", "compile_loss", "parse_input", "InputSpec"]

#: built-in loss names (implemented in torch and in TensorFlow)
LOSSES: tuple[str, ...] = (
    "mse",
    "mae",
    "huber",
    "bce",
    "bce_with_logits",
    "cross_entropy",
    "triplet_margin",
    "contrastive",
)
_N_INPUTS = {"triplet_margin": 3, "contrastive": 3}
#: what compile_loss accepts as a backend
LOSS_BACKENDS: tuple[str, ...] = LOSS_FRAMEWORKS
_SOURCES = ("outputs", "targets", "features", "weights", "mask")


def _check_fn(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(
            f"Loss takes a name ({', '.join(LOSSES)}) or an import path 'module:name', got {value!r}; "
            "lambdas and function objects cannot be saved — define the function in a module and name it"
        )
    if value in LOSSES:
        return
    if ":" not in value:
        import difflib

        hint = difflib.get_close_matches(value, LOSSES, n=1)
        raise ConfigError(
            f"unknown loss {value!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; use one of {', '.join(LOSSES)} or an import path such as 'torch.nn:SmoothL1Loss'"
        )
    import_function(value, "loss")


def _json_kwargs(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    kw = frozen_dict(value)
    for k, v in kw.items():
        if not isinstance(v, (bool, int, float, str, type(None), tuple, list)):
            raise ConfigError(f"loss kwarg {k}={v!r} is not plain data (numbers, strings, lists)")
    return kw


@attrs.frozen
class Loss:
    """A loss function, named by a built-in name or an import path, plus keyword arguments.

    >>> Loss("huber", {"delta": 0.5}).kwargs["delta"]
    0.5
    >>> Loss("torch.nn:SmoothL1Loss").backend
    'torch'
    >>> Loss("msee")
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: unknown loss 'msee' (did you mean 'mse'?); use one of mse, mae, huber, bce, bce_with_logits, cross_entropy, triplet_margin, contrastive or an import path such as 'torch.nn:SmoothL1Loss'
    """

    fn: str = attrs.field(validator=_check_fn)
    kwargs: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=_json_kwargs)

    @property
    def name(self) -> str:
        """A short name: the built-in name or the last part of the import path."""
        return self.fn if self.fn in LOSSES else self.fn.rpartition(":")[2].split(".")[-1]

    @property
    def backend(self) -> str | None:
        """``"torch"``/``"tensorflow"`` for backend loss classes, ``None`` for any backend."""
        if self.fn in LOSSES:
            return None
        module = self.fn.partition(":")[0]
        if module.split(".")[0] == "torch":
            return "torch"
        if module.split(".")[0] in ("tensorflow", "keras"):
            return "tensorflow"
        return None

    @property
    def n_inputs(self) -> int | None:
        """How many inputs the built-in loss takes (``None`` when unknown).

        ``contrastive`` takes ``(a, b, same)``, or ``(a, b)`` with ``kwargs={"similar": True}``
        (every pair similar) or ``False`` (every pair dissimilar).

        >>> Loss("contrastive").n_inputs, Loss("contrastive", {"similar": False}).n_inputs
        (3, 2)
        """
        if self.fn == "contrastive" and "similar" in self.kwargs:
            return 2
        if self.fn in LOSSES:
            return _N_INPUTS.get(self.fn, 2)
        return None


@attrs.frozen
class InputSpec:
    """One parsed loss input: ``[role.]source[.key]``.

    >>> parse_input("anchor.outputs")
    InputSpec(role='anchor', source='outputs', key=None)
    >>> parse_input("tags.similar")
    InputSpec(role=None, source='tags', key='similar')
    """

    role: str | None
    source: str
    key: str | None = None


def parse_input(text: str) -> InputSpec:
    """Parse a loss input name (see :class:`InputSpec`)."""
    if not isinstance(text, str) or not text:
        raise ConfigError(
            f"a loss input is a string such as 'outputs', 'targets' or 'anchor.outputs', got {text!r}"
        )
    parts = text.split(".")
    role: str | None = None
    if parts[0] not in (*_SOURCES, "tags"):
        role, parts = parts[0], parts[1:]
    if not parts or parts[0] not in (*_SOURCES, "tags"):
        raise ConfigError(
            f"loss input {text!r}: use [role.]outputs, targets, features, weights, mask or tags.<key> "
            "(e.g. 'outputs', 'targets', 'anchor.outputs', 'tags.similar')"
        )
    source = parts[0]
    if source == "tags":
        if len(parts) != 2:
            raise ConfigError(f"loss input {text!r}: a tag input is 'tags.<key>'")
        return InputSpec(role, source, parts[1])
    if len(parts) != 1:
        raise ConfigError(f"loss input {text!r} has extra parts after {source!r}")
    return InputSpec(role, source, None)


def _check_inputs(instance: Any, attribute: Any, value: tuple[str, ...]) -> None:
    for text in value:
        parse_input(text)
    n = instance.loss.n_inputs if isinstance(instance.loss, Loss) else None
    if n is not None and len(value) != n:
        raise ConfigError(
            f"loss {instance.loss.fn!r} takes {n} inputs, got {len(value)} ({', '.join(value)}); e.g. "
            + (
                "inputs=('anchor.outputs', 'positive.outputs', 'negative.outputs')"
                if instance.loss.fn == "triplet_margin"
                else "inputs=('anchor.outputs', 'pair.outputs', 'pair.tags.same') or Loss('contrastive', "
                "{'similar': True}) with inputs=('anchor.outputs', 'pair.outputs')"
                if instance.loss.fn == "contrastive"
                else "inputs=('outputs', 'targets')"
            )
        )


def _as_loss(value: Any) -> Any:
    if isinstance(value, str):
        return Loss(value)
    if isinstance(value, Mapping) and "fn" in value:
        return Loss(value["fn"], value.get("kwargs"))
    return value


def _inputs_tuple(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _check_weight(instance: Any, attribute: Any, value: float) -> None:
    if not value == value or value < 0:
        raise ConfigError(f"AppliedLoss weight must be a number >= 0, got {value!r}")


@attrs.frozen
class AppliedLoss:
    """A :class:`Loss` bound to a node's output and to batch data.

    ``inputs`` are, in order, the arguments of the loss: ``"outputs"`` (the node's output),
    ``"targets"``, ``"features"``, ``"weights"``, ``"mask"``, ``"tags.<key>"``, each optionally
    qualified by a sampler role (``"anchor.outputs"``, ``"negative.outputs"``). ``weight``
    scales the loss in the phase total; ``label`` names it in the History (default
    ``"<node>.<loss name>"``). Per-sample ``weights`` and ``mask`` of the batch are honoured.

    >>> AppliedLoss("mae", "head", weight=0.5).loss
    Loss(fn='mae', kwargs=FrozenDict({}))
    """

    loss: Loss = attrs.field(converter=_as_loss, validator=attrs.validators.instance_of(Loss))
    node: str = attrs.field(validator=attrs.validators.instance_of(str))
    inputs: tuple[str, ...] = attrs.field(
        default=("outputs", "targets"), converter=_inputs_tuple, validator=_check_inputs
    )
    weight: float = attrs.field(default=1.0, converter=float, validator=_check_weight)
    label: str | None = None

    @property
    def name(self) -> str:
        """The label under which the History records this loss."""
        return self.label if self.label is not None else f"{self.node}.{self.loss.name}"

    @property
    def specs(self) -> tuple[InputSpec, ...]:
        """The parsed inputs."""
        return tuple(parse_input(t) for t in self.inputs)

    @property
    def roles(self) -> tuple[str, ...]:
        """The sampler roles this loss reads (``("default",)`` when unqualified)."""
        return tuple(dict.fromkeys(s.role or "default" for s in self.specs))


# -- computing ---------------------------------------------------------------------------

LossFn = Callable[[Sequence[Any], Any, Any], Any]


def _ndim(x: Any) -> int:
    shape = getattr(x, "shape", None)
    if shape is None:
        raise TrainingError(f"a loss returned a {type(x).__name__}, not a tensor")
    return len(shape)


def compile_loss(loss: Loss, backend: str = "torch") -> LossFn:
    """The function computing ``loss``: ``fn(inputs, weights, mask) -> scalar tensor``.

    ``backend`` (``"torch"`` or ``"tensorflow"``) is the tensor library of the inputs: built-in
    losses have one implementation per backend. Backend loss classes are built once with
    ``reduction="none"`` when they accept it (so that sample weights and masks are honoured);
    a Keras loss class is called as Keras calls it, ``loss(y_true, y_pred)``, so its two
    inputs are given in mml's order ``("outputs", "targets")`` and swapped for it. User
    functions get the inputs as positional arguments plus ``**kwargs`` and may return
    per-sample or scalar losses.

    >>> import tensorflow as tf
    >>> fn = compile_loss(Loss("mae"), "tensorflow")
    >>> float(fn([tf.ones((2, 1)), tf.zeros((2, 1))], None, None))
    1.0
    """
    if backend not in LOSS_BACKENDS:
        raise ConfigError(f"compile_loss: backend must be one of {', '.join(LOSS_BACKENDS)}, got {backend!r}")
    if loss.fn in LOSSES:
        return loss_function(backend, loss.fn, loss.kwargs)
    reduce = loss_reduction(backend)
    obj = import_function(loss.fn, "loss")
    kwargs = dict(loss.kwargs)
    if isinstance(obj, type):
        try:
            module = obj(**{**kwargs, "reduction": "none"})
        except (TypeError, ValueError):
            try:
                module = obj(**kwargs)
            except TypeError as exc:
                raise ConfigError(f"{loss.fn} does not accept kwargs {kwargs!r}: {exc}") from exc
        swap = loss.backend == "tensorflow"

        def module_loss(args: Sequence[Any], w: Any, m: Any) -> Any:
            out = module(args[1], args[0], *args[2:]) if swap and len(args) >= 2 else module(*args)
            return out if _ndim(out) == 0 else reduce(out, w, m)

        return module_loss

    def user_loss(args: Sequence[Any], w: Any, m: Any) -> Any:
        out = obj(*args, **kwargs)
        if not hasattr(out, "shape") or not hasattr(out, "dtype"):
            raise TrainingError(f"loss function {loss.fn} returned a {type(out).__name__}, not a tensor")
        return out if _ndim(out) == 0 else reduce(out, w, m)

    return user_loss


def check_loss_backend(applied: AppliedLoss, node_backend: str | None) -> None:
    """A :class:`~mml.BackendError` when a backend loss class does not match the node's backend."""
    lb = applied.loss.backend
    if lb is not None and node_backend is not None and lb != node_backend:
        raise BackendError(
            f"loss {applied.name!r} is a {lb} loss ({applied.loss.fn}) but node {applied.node!r} runs on "
            f"{node_backend}; use a built-in loss name (e.g. 'mse') or a {node_backend} loss"
        )
