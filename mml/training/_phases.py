"""Phases: what a run does, as values.

* :class:`TrainPhase` — gradient training over sampler batches for ``n_epochs``;
* :class:`EvalPhase` — a forward pass over a split, losses and stacked outputs;
* :class:`FitPhase` — closed-form fitting of scikit-learn nodes;
* :class:`PhaseGroup` — an ordered (nestable) sequence of phases.

Each head node of the graph is fed by an :class:`InputBinding`: FeatureSet label, split,
sampler and stream.

>>> from mml.training import TrainPhase, AppliedLoss
>>> p = TrainPhase.simple("fit", featureset="toy", heads=("mlp",), losses=[AppliedLoss("mse", "mlp")], n_epochs=2)
>>> p.inputs["mlp"].split, p.n_epochs
('train', 2)
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from mml._fields import FrozenDict
from mml.callbacks import AbstractCallback
from mml.errors import ConfigError
from mml.training._losses import AppliedLoss

__all__ = [
    "InputBinding",
    "AbstractPhase",
    "TrainPhase",
    "EvalPhase",
    "FitPhase",
    "PhaseGroup",
    "BATCH_SCHEDULES",
    "MODES",
    "RECORDING",
    "iter_phases",
]

BATCH_SCHEDULES: tuple[str, ...] = ("zip_strict", "zip_cycle", "alternate_strict", "alternate_cycle")
MODES: tuple[str, ...] = ("stagewise", "graphwise")
#: what a phase keeps of each step's context: every step, only the last epoch's, or nothing
RECORDING: tuple[str, ...] = ("all", "last_epoch", "none")


def _default_sampler() -> Any:
    from mml.samplers import SimpleSampler

    return SimpleSampler(256)


def _one_of(options: tuple[str, ...], what: str) -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if value not in options:
            raise ConfigError(
                f"{type(instance).__name__}.{what} must be one of {', '.join(options)}; got {value!r}"
            )

    return check


def _check_label(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value or "/" in value:
        raise ConfigError(f"a phase label is a non-empty string without '/', got {value!r}")


@attrs.frozen
class InputBinding:
    """Which data feeds a head node: FeatureSet label, split, sampler and stream.

    >>> InputBinding("battery", "val").split
    'val'
    """

    featureset: str
    split: str | None = "train"
    sampler: Any = attrs.field(factory=_default_sampler)
    stream: str | None = None


def _bindings(value: Mapping[str, Any] | None) -> FrozenDict[str, InputBinding]:
    out = {}
    for head, b in (value or {}).items():
        if isinstance(b, str):
            b = InputBinding(b)
        elif isinstance(b, Mapping):
            b = InputBinding(**b)
        if not isinstance(b, InputBinding):
            raise ConfigError(f"input of head {head!r} must be an InputBinding, got {b!r}")
        out[head] = b
    return FrozenDict(out)


def _losses(value: Any) -> tuple[AppliedLoss, ...]:
    if isinstance(value, AppliedLoss):
        return (value,)
    out = tuple(value or ())
    for v in out:
        if not isinstance(v, AppliedLoss):
            raise ConfigError(
                f"losses must be AppliedLoss values, got {v!r}; e.g. AppliedLoss('mse', node='mlp')"
            )
    return out


def _optional_labels(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _callbacks(value: Any) -> tuple[AbstractCallback, ...]:
    out = tuple(value or ())
    for cb in out:
        if not isinstance(cb, AbstractCallback):
            raise ConfigError(f"callbacks must be mml callback values (AbstractCallback), got {cb!r}")
    return out


def _positive_int(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{type(instance).__name__}.{attribute.name} must be an int >= 1, got {value!r}")


class AbstractPhase(abc.ABC):
    """A step of an experiment's plan; every phase has a unique ``label``.

    >>> issubclass(TrainPhase, AbstractPhase)
    True
    """

    _mml_union = True
    kind: ClassVar[str]
    label: str

    # What a phase that has no such field says (a FitPhase has no losses, a PhaseGroup no
    # inputs): the loop, validation and views read these on any phase instead of probing.
    @property
    def inputs(self) -> Mapping[str, InputBinding]:
        """The head -> :class:`InputBinding` map (none by default)."""
        return FrozenDict()

    @property
    def losses(self) -> tuple[AppliedLoss, ...]:
        """The losses the phase computes (none by default)."""
        return ()

    @property
    def callbacks(self) -> tuple[AbstractCallback, ...]:
        """The phase's callbacks (none by default)."""
        return ()

    @property
    def n_epochs(self) -> int | None:
        """Epochs of a training phase (``None`` for phases that do not loop over epochs)."""
        return None

    @property
    def active_nodes(self) -> tuple[str, ...] | None:
        """The nodes the phase runs (``None``: what its losses need)."""
        return None

    @property
    def trainable(self) -> tuple[str, ...] | None:
        """The nodes the phase updates (``None``: every active, unfrozen gradient node)."""
        return None


@attrs.frozen
class TrainPhase(AbstractPhase):
    """Gradient training: a fold over the batches of ``n_epochs`` epochs.

    * ``inputs``: head node label → :class:`InputBinding`;
    * ``losses``: the :class:`AppliedLoss` values summed (by weight) into the step's loss;
    * ``batch_schedule``: how the batch streams of several bindings are combined —
      ``zip_*`` feeds every head in each step, ``alternate_*`` one binding group per step in
      turn; ``*_strict`` stops when the shortest stream ends, ``*_cycle`` restarts the shorter
      streams (the same epoch's batches again) until the longest ends. With ``S1 = [b1, b2, b3]``
      and ``S2 = [c1, c2]``: ``zip_strict`` → ``(b1, c1), (b2, c2)``; ``zip_cycle`` → ``(b1, c1),
      (b2, c2), (b3, c1)``; ``alternate_strict`` → ``b1, c1, b2, c2``; ``alternate_cycle`` →
      ``b1, c1, b2, c2, b3, c1``;
    * ``active_nodes``: nodes run in this phase (default: all); ``trainable``: nodes updated
      (default: every active, unfrozen torch or Keras node);
    * ``mode``: ``"stagewise"`` (each node its own optimizer, gradients stop between nodes;
      torch and Keras nodes may be mixed) or ``"graphwise"`` (one optimizer — ``optimizer`` or
      the graph's — and one backward pass through every unfrozen node, all of one backend);
    * ``optimizer``: used for nodes without their own (stage-wise) or for the graph
      (graph-wise) when the graph has none;
    * ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"auto"`` (node devices win);
    * ``record``: keep each step's outputs for ``"all"`` steps, the ``"last_epoch"`` or ``"none"``.

    >>> TrainPhase("fit", {"mlp": InputBinding("toy")}, [AppliedLoss("mse", "mlp")], 3).mode
    'stagewise'
    """

    kind: ClassVar[str] = "phase.train"

    label: str = attrs.field(validator=_check_label)
    inputs: Mapping[str, InputBinding] = attrs.field(converter=_bindings)
    losses: tuple[AppliedLoss, ...] = attrs.field(converter=_losses)
    n_epochs: int = attrs.field(default=1, validator=_positive_int)
    batch_schedule: str = attrs.field(
        default="zip_strict", validator=_one_of(BATCH_SCHEDULES, "batch_schedule")
    )
    active_nodes: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_labels)
    trainable: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_labels)
    callbacks: tuple[AbstractCallback, ...] = attrs.field(default=(), converter=_callbacks)
    mode: str = attrs.field(default="stagewise", validator=_one_of(MODES, "mode"))
    device: str | None = None
    optimizer: Any = None
    record: str = attrs.field(default="none", validator=_one_of(RECORDING, "record"))

    def __attrs_post_init__(self) -> None:
        if not self.losses:
            raise ConfigError(
                f"TrainPhase {self.label!r} has no losses; pass losses=[AppliedLoss('mse', node=...)]"
            )

    @classmethod
    def simple(
        cls,
        label: str,
        *,
        featureset: str,
        heads: Sequence[str],
        losses: Sequence[AppliedLoss] | AppliedLoss,
        n_epochs: int = 1,
        split: str = "train",
        sampler: Any = None,
        **kwargs: Any,
    ) -> TrainPhase:
        """One FeatureSet split and one sampler for every head in ``heads``.

        >>> TrainPhase.simple("t", featureset="fs", heads=["a"], losses=AppliedLoss("mse", "a")).inputs["a"].featureset
        'fs'
        """
        binding = InputBinding(featureset, split, sampler if sampler is not None else _default_sampler())
        return cls(label, {h: binding for h in heads}, losses, n_epochs, **kwargs)


@attrs.frozen
class EvalPhase(AbstractPhase):
    """A forward pass over each binding's split in batches of ``batch_size``, in order.

    The result holds the losses and, per node, the stacked outputs and targets (optionally
    inverse-transformed to raw units, ``inverse_transform=True``).

    >>> EvalPhase("test", {"mlp": InputBinding("toy", "test")}).batch_size
    1024
    """

    kind: ClassVar[str] = "phase.eval"

    label: str = attrs.field(validator=_check_label)
    inputs: Mapping[str, InputBinding] = attrs.field(converter=_bindings)
    losses: tuple[AppliedLoss, ...] = attrs.field(default=(), converter=_losses)
    batch_size: int = attrs.field(default=1024, validator=_positive_int)
    nodes: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_labels)
    inverse_transform: bool = False
    device: str | None = None

    @classmethod
    def simple(
        cls, label: str, *, featureset: str, heads: Sequence[str], split: str = "test", **kwargs: Any
    ) -> EvalPhase:
        """One FeatureSet split for every head.

        >>> EvalPhase.simple("test", featureset="fs", heads=["a"]).inputs["a"].split
        'test'
        """
        from mml.samplers import SimpleSampler

        binding = InputBinding(
            featureset, split, SimpleSampler(kwargs.get("batch_size", 1024), shuffle=False)
        )
        return cls(label, {h: binding for h in heads}, **kwargs)


@attrs.frozen
class FitPhase(AbstractPhase):
    """Closed-form fitting (scikit-learn nodes) on each binding's full split.

    ``nodes`` (default: every unfitted scikit-learn node reached by the inputs) are fitted in
    topological order, each on the outputs of its (already fitted or trained) upstream nodes.
    With ``freeze_after_fit=True`` the fitted labels are recorded in ``TrainState.fitted``,
    which later phases treat as frozen; the graph value is never edited.

    >>> FitPhase("pca", {"pca": InputBinding("toy")}).freeze_after_fit
    True
    """

    kind: ClassVar[str] = "phase.fit"

    label: str = attrs.field(validator=_check_label)
    inputs: Mapping[str, InputBinding] = attrs.field(converter=_bindings)
    nodes: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_labels)
    freeze_after_fit: bool = True


def _phases(value: Any) -> tuple[AbstractPhase, ...]:
    out = tuple(value)
    for p in out:
        if not isinstance(p, AbstractPhase):
            raise ConfigError(
                f"a PhaseGroup holds phases (TrainPhase, EvalPhase, FitPhase, PhaseGroup), got {p!r}"
            )
    return out


@attrs.frozen
class PhaseGroup(AbstractPhase):
    """An ordered sequence of phases (groups nest).

    >>> g = PhaseGroup("plan", [FitPhase("a", {}), PhaseGroup("inner", [FitPhase("b", {})])])
    >>> [p.label for p in iter_phases(g)]
    ['a', 'b']
    """

    kind: ClassVar[str] = "phase.group"

    label: str = attrs.field(validator=_check_label)
    phases: tuple[AbstractPhase, ...] = attrs.field(converter=_phases)


def iter_phases(plan: AbstractPhase) -> Iterator[AbstractPhase]:
    """The leaf phases of a plan, in order."""
    if isinstance(plan, PhaseGroup):
        for p in plan.phases:
            yield from iter_phases(p)
    else:
        yield plan
