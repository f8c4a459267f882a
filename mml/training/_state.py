"""State records threaded through a run: :class:`TrainState` and :class:`ExecutionContext`.

A :class:`TrainState` holds every learned or evolving number of a run: the graph state (params
and buffers per node), the optimizer state per node (or one for the whole graph), the step,
epoch and batch cursor, the RNG key, the callbacks' own states and the stop flag. Helpers
return new records; nothing is changed in place.

>>> import mml
>>> s = TrainState(graph=None, key=mml.random.key(0))
>>> s.advance(batch=3).step, s.step
(1, 0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from mml._fields import FrozenDict, frozen_dict, frozen_tuple
from mml.data import SampleData
from mml.errors import ConfigError
from mml.graph import GraphState
from mml.random import Key

__all__ = ["Boxed", "Position", "TrainState", "ExecutionContext", "GRAPH_OPTIMIZER", "box", "unbox"]

#: key of the one graph-wide optimizer state in :attr:`TrainState.opt_states`
GRAPH_OPTIMIZER = "*graph*"


def _revive(value: Any, type_path: str) -> Any:
    # a Boxed value read back from a document is the value's own document: rebuild it from
    # the stored type path (an attrs class is imported, no code is executed)
    if type_path and isinstance(value, Mapping) and not isinstance(value, FrozenDict):
        from mml.io import import_type, structure_checked

        cls = import_type(type_path)
        if not isinstance(value, cls):
            return structure_checked(dict(value), cls)
    return value


@attrs.frozen
class Boxed:
    """A value of any attrs class (or plain data) together with its type path.

    Optimizer states and callback states are of many unrelated record types; boxing them
    with their type path lets :mod:`mml.io` save and load them without a common base class.

    >>> import mml
    >>> b = box(mml.random.key(1))
    >>> b.type
    'mml.random:Key'
    >>> mml.io.roundtrip(b) == b
    True
    """

    type: str
    value: Any = attrs.field(hash=False)

    def __attrs_post_init__(self) -> None:
        # the revival needs ``type``, so it runs after both fields are set (a converter only
        # sees its own field; ``attrs.Converter(takes_self=True)`` is opaque to type checkers)
        revived = _revive(self.value, self.type)
        if revived is not self.value:
            object.__setattr__(self, "value", revived)
        # ``type`` describes ``value``: refuse a pair that disagrees (e.g. evolve(b, value=...))
        # rather than save a document that would revive as the wrong class
        if attrs.has(type(revived)):
            from mml.io import type_path

            actual = type_path(type(revived))
            if actual != self.type:
                raise ConfigError(
                    f"Boxed.type is {self.type!r} but the value is a {actual}; "
                    "build it with box(value) (or evolve both fields together)"
                )


def box(value: Any) -> Boxed:
    """Wrap ``value`` in a :class:`Boxed` (plain data gets an empty type path).

    >>> box(3).type, box(3).value
    ('', 3)
    """
    if isinstance(value, Boxed):
        return value
    if attrs.has(type(value)):
        from mml.io import type_path

        return Boxed(type_path(type(value)), value)
    return Boxed("", value)


def unbox(value: Boxed | None) -> Any:
    """The value inside a :class:`Boxed` (``None`` stays ``None``).

    >>> unbox(box(2.5))
    2.5
    """
    return None if value is None else value.value


def _boxed_map(value: Mapping[str, Any] | None) -> FrozenDict[str, Boxed]:
    if isinstance(value, FrozenDict) and all(isinstance(v, Boxed) for v in value.values()):
        return value
    return FrozenDict({k: box(v) for k, v in (value or {}).items()})


@attrs.frozen
class Position:
    """Where a run is in its plan: what :func:`mml.run` continues from.

    * ``plan``: the fingerprint of the plan the position belongs to (see
      :func:`mml.training.plan_fingerprint`); a positioned state only continues that plan;
    * ``phase``: the path of the phase in the plan, group labels and the phase label joined
      by ``/`` (``"plan/train"``);
    * ``stage``: ``"running"`` (inside the phase), ``"ended"`` (the phase's steps and its
      own callbacks' hooks are done; the experiment-level ``on_phase_end`` is not) or
      ``"done"`` (the whole plan ran; ``phase`` is ``""``);
    * ``epoch`` and ``batch``: the epoch the next step belongs to and how many batches of it
      are done (the sampler's stream of that epoch is recomputed from its key and skipped to
      there: no step is replayed);
    * ``n_steps``: steps done in this phase; ``sums``: the epoch's running loss sums and counts
      (the epoch means then equal an uninterrupted run's, bit for bit);
    * ``history``: the run's :class:`~mml.training.History` up to here, boxed — set in a
      checkpoint, ``None`` in the states the fold yields.

    >>> Position("f00d", "plan/train", epoch=2, batch=5).stage
    'running'
    """

    plan: str
    phase: str
    stage: str = "running"
    epoch: int = 0
    batch: int = 0
    n_steps: int = 0
    sums: tuple[tuple[str, float, int], ...] = attrs.field(
        default=(), converter=lambda v: tuple((str(n), float(s), int(c)) for n, s, c in v)
    )
    history: Boxed | None = None


@attrs.frozen(repr=False)
class TrainState:
    """Everything that evolves during a run, as one frozen record.

    * ``graph``: the :class:`mml.graph.GraphState` (params and buffers per node);
    * ``opt_states``: optimizer state per trainable node label (stage-wise training), or
      under :data:`GRAPH_OPTIMIZER` for graph-wise training;
    * ``opt_steps``: how many updates each optimizer state has made (drives its schedule
      and bias corrections);
    * ``step`` (global update counter, drives schedules), ``epoch`` and ``batch`` (cursor
      inside the current phase);
    * ``key``: the run's root key (dropout keys are ``fold_in(fold_in(key, phase), step)``);
    * ``callback_states``: each callback's own state, keyed by ``"<phase>/<index>"``;
    * ``fitted``: labels of nodes fitted and frozen by a ``FitPhase(freeze_after_fit=True)``
      — later phases treat them as frozen (the graph value itself is never edited);
    * ``stop``: set by a callback (early stopping) to end the current phase;
    * ``position``: where in its plan a state taken during a run is, ``stage="done"`` for
      the state a finished run returns (:class:`Position`); ``None`` for a fresh state.

    >>> import mml
    >>> s = TrainState(graph=None, key=mml.random.key(0))
    >>> s.with_opt_state("mlp", 1.5).opt_state("mlp")
    1.5
    """

    graph: GraphState  # (None only in toy records built by hand, e.g. in docs)
    key: Key
    opt_states: Mapping[str, Boxed] = attrs.field(factory=FrozenDict, converter=_boxed_map)
    opt_steps: Mapping[str, int] = attrs.field(factory=FrozenDict, converter=frozen_dict)
    step: int = 0
    epoch: int = 0
    batch: int = 0
    callback_states: Mapping[str, Boxed] = attrs.field(factory=FrozenDict, converter=_boxed_map)
    fitted: tuple[str, ...] = attrs.field(default=(), converter=frozen_tuple)
    stop: bool = False
    position: Position | None = None

    # -- readers ------------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [
            f"TrainState(step={self.step}, epoch={self.epoch}, batch={self.batch}, stop={self.stop}, key={self.key!r}"
        ]
        if self.graph is not None:
            lines.append("  graph: " + repr(self.graph).replace("\n", "\n  "))
        for label, boxed in self.opt_states.items():
            # plain data is boxed with an empty type path: name the value's own type
            name = boxed.type.rsplit(":", 1)[-1] if boxed.type else type(boxed.value).__name__
            lines.append(f"  optimizer state {label!r}: {name}, {self.opt_steps.get(label, 0)} updates")
        for slot, boxed in self.callback_states.items():
            value = boxed.value
            lines.append(f"  callback state {slot!r}: {type(value).__name__}")
        if self.fitted:
            lines.append(f"  fitted (frozen by a FitPhase): {', '.join(self.fitted)}")
        if self.position is not None:
            p = self.position
            lines.append(f"  position: {p.phase} ({p.stage}), epoch {p.epoch}, batch {p.batch}")
        lines.append(")")
        return "\n".join(lines)

    def opt_state(self, label: str) -> Any:
        """The optimizer state of node ``label`` (or :data:`GRAPH_OPTIMIZER`), ``None`` if none."""
        return unbox(self.opt_states.get(label))

    def callback_state(self, slot: str) -> Any:
        """The state of the callback in ``slot`` (``None`` before it first ran)."""
        return unbox(self.callback_states.get(slot))

    def params(self, label: str) -> Any:
        """The backend params record of node ``label``."""
        return self.graph.params[label]

    # -- new records -------------------------------------------------------------------
    # Mapping fields hold FrozenDicts (their converters make sure); ``frozen_dict(m)`` returns
    # such a value as it is (no copy) and gives it its FrozenDict type for ``.set``.
    def with_graph(self, graph: Any) -> TrainState:
        """The same state with another graph state."""
        return attrs.evolve(self, graph=graph)

    def with_params(self, label: str, params: Any) -> TrainState:
        """The same state with node ``label``'s params record replaced."""
        return attrs.evolve(self, graph=self.graph.with_params({label: params}))

    def with_opt_state(self, label: str, opt_state: Any) -> TrainState:
        """The same state with the optimizer state of ``label`` replaced."""
        return attrs.evolve(self, opt_states=frozen_dict(self.opt_states).set(label, box(opt_state)))

    def with_opt_steps(self, label: str, n: int) -> TrainState:
        """The same state with optimizer ``label``'s update count set to ``n``."""
        return attrs.evolve(self, opt_steps=frozen_dict(self.opt_steps).set(label, n))

    def with_callback_state(self, slot: str, cb_state: Any) -> TrainState:
        """The same state with one callback's state replaced."""
        return attrs.evolve(self, callback_states=frozen_dict(self.callback_states).set(slot, box(cb_state)))

    def advance(self, *, batch: int) -> TrainState:
        """The state after one update: ``step + 1`` and the batch cursor set."""
        return attrs.evolve(self, step=self.step + 1, batch=batch)

    def with_stop(self, stop: bool = True) -> TrainState:
        """The same state with the stop flag set (or cleared)."""
        return attrs.evolve(self, stop=stop)

    def without_position(self) -> TrainState:
        """The same learned state with no position: :func:`mml.run` starts a plan at its beginning.

        Use it to run the same plan again from a trained state (more training), or to start a
        plan from a checkpoint without continuing it.

        >>> import mml
        >>> s = TrainState(graph=None, key=mml.random.key(0), position=Position("p", "plan/fit"))
        >>> s.without_position().position is None
        True
        """
        return self if self.position is None else attrs.evolve(self, position=None)

    def mark_fitted(self, label: str) -> TrainState:
        """The same state with ``label`` recorded as fitted-and-frozen."""
        if label in self.fitted:
            return self
        return attrs.evolve(self, fitted=(*self.fitted, label))


@attrs.frozen(eq=False)
class ExecutionContext:
    """One step of a phase, as the fold produced it (visible to losses and callbacks).

    ``inputs`` maps role → head node → the :class:`mml.data.SampleData` fed to it;
    ``outputs`` maps role → node → backend output; ``losses`` maps each applied loss label
    (and ``"loss"``, the weighted total) to a float. ``event`` is ``"batch"`` for a step;
    the fold also yields one ``"epoch_end"`` and one ``"phase_end"`` context per epoch and
    phase, whose ``metrics`` hold what callbacks logged (``val_loss``, ...), and ``checkpoints`` the
    checkpoints they asked for. With one role (``"default"``), :meth:`output` and :meth:`input`
    need no role. ``streams`` names every stream that fed the step, in head order (``stream`` is
    the first of them).

    >>> ctx = ExecutionContext("fit", 0, 0, 0, {}, {"default": {"mlp": 1.0}}, {"loss": 0.5})
    >>> ctx.output("mlp"), ctx.losses["loss"]
    (1.0, 0.5)
    """

    phase: str
    epoch: int
    batch: int
    step: int
    inputs: Mapping[str, Mapping[str, SampleData]]
    outputs: Mapping[str, Mapping[str, Any]]
    losses: Mapping[str, float]
    stream: str = "default"
    event: str = "batch"
    metrics: Mapping[str, float] = attrs.field(factory=FrozenDict)
    streams: tuple[str, ...] = ()
    #: paths the phase's ``Checkpointing`` callbacks asked to write after this step (the run
    #: writes them, with the History so far; see :class:`~mml.callbacks.Checkpointing`)
    checkpoints: tuple[Any, ...] = ()

    def output(self, node: str, role: str = "default") -> Any:
        """The output of ``node`` for ``role``."""
        return self.outputs[role][node]

    def input(self, node: str, role: str = "default") -> Any:
        """The :class:`~mml.data.SampleData` fed to head ``node`` for ``role``."""
        return self.inputs[role][node]
