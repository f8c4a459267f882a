"""Results of a run: :class:`History` (metrics by phase/epoch/batch), phase and eval results.

Every logged number is one row ``(phase, epoch, batch, step, name, value)``; epoch-level
numbers (mean training losses, ``val_loss``, callback metrics) have ``batch == -1``.
Query by axis with :meth:`History.where` and :meth:`History.collapse`; export with
:meth:`History.to_pandas`.

>>> h = History.from_rows([("fit", 0, 0, 1, "loss", 2.0), ("fit", 0, 1, 2, "loss", 1.0),
...                        ("fit", 0, -1, 2, "loss", 1.5)])
>>> h.where(batch=1).values("loss").tolist()
[1.0]
>>> h.batches().collapse("batch", "mean").values("loss").tolist()
[1.5]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict, array_field, frozen_dict, frozen_tuple
from mml.errors import ConfigError, TrainingError
from mml.training._state import ExecutionContext

__all__ = ["History", "PhaseResult", "EvalResult", "ErrorRecord", "STATUSES"]

STATUSES: tuple[str, ...] = ("completed", "stopped", "failed")
_AXES = ("phase", "epoch", "batch", "step", "name")


def _str_array(values: Sequence[str]) -> np.ndarray:
    if not len(values):
        return np.zeros(0, dtype="<U1")
    # few distinct names repeated many times: encode once, then index
    uniq: dict[str, int] = {}
    codes = np.fromiter((uniq.setdefault(v, len(uniq)) for v in values), dtype=np.int64, count=len(values))
    return np.asarray(list(uniq), dtype=str)[codes]


#: attribute the loop sets on an exception to say where it was raised: ``(phase, epoch, batch)``
_LOCATION = "_mml_location"


def _locate(
    exc: BaseException, phase: str | None, epoch: int | None = None, batch: int | None = None
) -> None:
    """Record on ``exc`` where it was raised (the innermost, first call wins)."""
    if getattr(exc, _LOCATION, None) is None:
        setattr(exc, _LOCATION, (phase, epoch, batch))


@attrs.frozen
class ErrorRecord:
    """Why a run failed, as data: the exception's type path and message, and where it happened.

    A :class:`History` stores this record instead of the exception, so a failed run can be
    saved and loaded. In the process that ran it, :meth:`to_exception` gives back the
    original exception (with its traceback and cause); a loaded record rebuilds a
    :class:`mml.errors.TrainingError` with the same message. ``phase``, ``epoch`` and
    ``batch`` are ``None`` where they are unknown (an error outside any phase, a
    phase-level callback hook).

    >>> import mml
    >>> r = ErrorRecord.from_exception(mml.TrainingError("loss is nan"), phase="fit", epoch=2, batch=5)
    >>> r.type, str(r), (r.phase, r.epoch, r.batch)
    ('mml.errors:TrainingError', 'loss is nan', ('fit', 2, 5))
    >>> back = mml.io.roundtrip(r)
    >>> back == r, type(back.to_exception()).__name__, str(back.to_exception())
    (True, 'TrainingError', 'loss is nan')
    """

    type: str
    message: str
    phase: str | None = None
    epoch: int | None = None
    batch: int | None = None
    # the live exception, only in the process that raised it: never saved (init=False fields
    # are not part of the document), never compared
    _exception: BaseException | None = attrs.field(default=None, init=False, eq=False, repr=False)

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        phase: str | None = None,
        epoch: int | None = None,
        batch: int | None = None,
    ) -> ErrorRecord:
        """The record of ``exc``, holding ``exc`` itself for :meth:`to_exception`.

        Where the training loop recorded a location on the exception (the phase, epoch and
        batch of a failed step or callback hook), it wins over the arguments, which are the
        fallback.

        >>> ErrorRecord.from_exception(ValueError("bad"), phase="fit").type
        'builtins:ValueError'
        """
        where = getattr(exc, _LOCATION, None)
        if where is not None:
            p, e, b = where
            phase = p if p is not None else phase
            epoch = e if e is not None else epoch
            batch = b if b is not None else batch
        t = type(exc)
        rec = cls(f"{t.__module__}:{t.__qualname__}", str(exc), phase, epoch, batch)
        object.__setattr__(rec, "_exception", exc)
        return rec

    def to_exception(self) -> BaseException:
        """The original exception if this record was made in this process, else a :class:`~mml.errors.TrainingError`.

        The rebuilt error has the same message; a note names the original type and place.

        >>> e = ErrorRecord("mml.errors:CallbackError", "callback Boom failed", "fit").to_exception()
        >>> type(e).__name__, str(e), e.__notes__
        ('TrainingError', 'callback Boom failed', ["originally mml.errors:CallbackError in phase 'fit' (loaded from a saved History)"])
        """
        exc = self._exception
        if exc is None:
            exc = TrainingError(self.message)
            note = f"originally {self.type}{self._where()} (loaded from a saved History)"
            if hasattr(exc, "add_note"):  # Python >= 3.11
                exc.add_note(note)
            else:  # pragma: no cover - Python 3.10
                exc.__notes__ = [note]  # type: ignore[attr-defined]
            object.__setattr__(self, "_exception", exc)  # cache: the same object on every call
        return exc

    def _where(self) -> str:
        parts = []
        if self.phase is not None:
            parts.append(f"phase {self.phase!r}")
        if self.epoch is not None:
            parts.append(f"epoch {self.epoch}")
        if self.batch is not None:
            parts.append(f"batch {self.batch}")
        return " in " + ", ".join(parts) if parts else ""

    def __str__(self) -> str:
        return self.message


def _error_record(value: ErrorRecord | BaseException | None) -> ErrorRecord | None:
    """attrs converter: an exception becomes its :class:`ErrorRecord`."""
    if value is None or isinstance(value, ErrorRecord):
        return value
    if isinstance(value, BaseException):
        return ErrorRecord.from_exception(value)
    raise TypeError(f"error= takes an exception or an ErrorRecord, got {type(value).__name__}")


@attrs.frozen
class EvalResult:
    """Stacked outputs and targets of an evaluation, per node, plus the losses.

    ``outputs[node]`` and ``targets[node]`` are numpy arrays in sample order; with
    ``inverse_transform=True`` they are in raw units (see ``mml.scalers.inverse_transform``).
    ``sample_uuids["default"]`` holds the samples' UUIDs (``S16``) in the same order.

    >>> import numpy as np
    >>> r = EvalResult("test", {"loss": 0.5}, {"mlp": np.zeros((2, 1))}, {"mlp": np.ones((2, 1))})
    >>> r.outputs["mlp"].shape
    (2, 1)
    """

    phase: str
    losses: Mapping[str, float] = attrs.field(converter=frozen_dict)
    outputs: Mapping[str, Any] = attrs.field(converter=frozen_dict)
    targets: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=frozen_dict)
    sample_uuids: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=frozen_dict)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {np.shape(v)}" for n, v in self.outputs.items())
        losses = ", ".join(f"{k}={v:.4g}" for k, v in self.losses.items())
        return f"EvalResult({self.phase!r}, outputs {{{shapes}}}, losses {{{losses}}})"

    def _repr_html_(self) -> str:
        from mml.views import eval_html

        return eval_html(self)

    def plot(self, path: Any = None, *, node: str | None = None) -> Any:
        """Predicted against true and residuals (matplotlib; see :func:`mml.views.plot_eval`)."""
        from mml.views import plot_eval

        return plot_eval(self, path, node=node)

    def metrics(self, names: Sequence[str], node: str | None = None) -> dict[str, float]:
        """Metrics by name (``mml.callbacks.METRICS``) of a node's outputs against its targets.

        ``node`` may be left out when one node has targets.

        >>> r = EvalResult("test", {}, {"clf": np.array([[2.0, 0.0], [0.0, 1.0]])}, {"clf": np.array([[0], [0]])})
        >>> r.metrics(["accuracy", "recall"])
        {'accuracy': 0.5, 'recall': 0.0}
        """
        from mml.callbacks import compute_metrics

        with_targets = [n for n in self.outputs if n in self.targets]
        if node is None:
            if len(with_targets) != 1:
                raise TrainingError(
                    f"name the node: the nodes with targets are {', '.join(with_targets) or '(none)'}"
                )
            node = with_targets[0]
        if node not in with_targets:
            raise TrainingError(
                f"node {node!r} has no outputs with targets in {self.phase!r}; nodes: {', '.join(with_targets)}"
            )
        return compute_metrics(tuple(names), self.outputs[node], self.targets[node])


@attrs.frozen(eq=False)
class PhaseResult:
    """How one phase ended: status, failure (if failed), steps, wall time, eval result, recorded contexts.

    The constructor's ``error=`` takes the exception (or an :class:`ErrorRecord`); it is
    stored as the serializable record :attr:`failure`, and :attr:`error` gives an exception
    back (see :meth:`ErrorRecord.to_exception`).

    >>> import mml
    >>> PhaseResult("fit", "phase.train", "completed").ok
    True
    >>> r = PhaseResult("fit", "phase.train", "failed", mml.TrainingError("loss is nan"))
    >>> r.failure.message, isinstance(r.error, mml.TrainingError)
    ('loss is nan', True)
    """

    label: str
    kind: str
    status: str
    failure: ErrorRecord | None = attrs.field(default=None, converter=_error_record, alias="error")
    n_steps: int = 0
    seconds: float = 0.0
    eval: EvalResult | None = None
    contexts: tuple[ExecutionContext, ...] = attrs.field(default=(), converter=frozen_tuple)

    @property
    def ok(self) -> bool:
        """Whether the phase did not fail."""
        return self.status != "failed"

    @property
    def error(self) -> BaseException | None:
        """The phase's error as an exception (``None`` unless it failed)."""
        return None if self.failure is None else self.failure.to_exception()


@attrs.frozen
class History:
    """Metrics of a run in long form, plus per-phase results and the run's status.

    Columns: ``phase`` / ``name`` (strings), ``epoch`` / ``batch`` / ``step`` (ints),
    ``value`` (floats). Status is ``completed``, ``stopped`` (a callback ended a phase
    early) or ``failed`` (the returned state is the last good one). A failed History
    holds the serializable :class:`ErrorRecord` in :attr:`failure` (type, message, phase,
    epoch, batch) and gives an exception back from :attr:`error`: the original one in the
    process that ran it, a :class:`~mml.errors.TrainingError` with the same message after
    :func:`mml.load`. A History (eval results included) saves and loads with :func:`mml.save`.

    >>> import mml
    >>> History.from_rows([]).status
    'completed'
    >>> h = History(status="failed", error=mml.TrainingError("loss is nan"))
    >>> back = mml.io.roundtrip(h)
    >>> back == h, back.failure.message, type(back.error).__name__
    (True, 'loss is nan', 'TrainingError')
    """

    phase: np.ndarray = array_field(factory=lambda: _str_array([]))  # noqa: RUF009 - an attrs field
    epoch: np.ndarray = array_field(factory=lambda: np.zeros(0, np.int64))  # noqa: RUF009 - an attrs field
    batch: np.ndarray = array_field(factory=lambda: np.zeros(0, np.int64))  # noqa: RUF009 - an attrs field
    step: np.ndarray = array_field(factory=lambda: np.zeros(0, np.int64))  # noqa: RUF009 - an attrs field
    name: np.ndarray = array_field(factory=lambda: _str_array([]))  # noqa: RUF009 - an attrs field
    value: np.ndarray = array_field(factory=lambda: np.zeros(0, np.float64))  # noqa: RUF009 - an attrs field
    status: str = "completed"
    phases: tuple[PhaseResult, ...] = attrs.field(default=(), converter=frozen_tuple, eq=False)
    failure: ErrorRecord | None = attrs.field(default=None, converter=_error_record, alias="error")

    @property
    def error(self) -> BaseException | None:
        """The run's error as an exception (``None`` unless it failed); see :meth:`ErrorRecord.to_exception`."""
        return None if self.failure is None else self.failure.to_exception()

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, int, int, int, str, float]], **kwargs: Any) -> History:
        """Build from ``(phase, epoch, batch, step, name, value)`` rows."""
        rows = list(rows)
        if not rows:
            return cls(**kwargs)
        p, e, b, s, n, v = zip(*rows)
        return cls(
            _str_array(p),
            np.asarray(e, np.int64),
            np.asarray(b, np.int64),
            np.asarray(s, np.int64),
            _str_array(n),
            np.asarray(v, np.float64),
            **kwargs,
        )

    def __len__(self) -> int:
        return int(self.value.shape[0])

    def __repr__(self) -> str:
        phases = ", ".join(f"{p.label}:{p.status}" for p in self.phases)
        names = ", ".join(self.names()[:8]) + (", ..." if len(self.names()) > 8 else "")
        return f"History({len(self)} rows, status={self.status!r}, phases=[{phases}], names=[{names}])"

    def _repr_html_(self) -> str:
        from mml.views import history_html

        return history_html(self)

    def plot(self, path: Any = None, *, log_scale: bool = True) -> Any:
        """Loss and metric curves per train phase (matplotlib; see :func:`mml.views.plot_history`)."""
        from mml.views import plot_history

        return plot_history(self, path, log_scale=log_scale)

    def rows(self) -> list[tuple[str, int, int, int, str, float]]:
        """All rows as tuples."""
        return [
            (str(p), int(e), int(b), int(s), str(n), float(v))
            for p, e, b, s, n, v in zip(self.phase, self.epoch, self.batch, self.step, self.name, self.value)
        ]

    def _select(self, keep: np.ndarray) -> History:
        return attrs.evolve(
            self,
            phase=self.phase[keep],
            epoch=self.epoch[keep],
            batch=self.batch[keep],
            step=self.step[keep],
            name=self.name[keep],
            value=self.value[keep],
        )

    def where(self, **axes: Any) -> History:
        """Rows whose axes equal the given values (a value may be a list of allowed values).

        >>> h = History.from_rows([("a", 0, 0, 1, "loss", 1.0), ("b", 0, 0, 2, "loss", 2.0)])
        >>> h.where(phase="b").values().tolist()
        [2.0]
        """
        keep = np.ones(len(self), dtype=bool)
        for axis, wanted in axes.items():
            if axis not in _AXES:
                raise ConfigError(f"unknown History axis {axis!r}; axes are {', '.join(_AXES)}")
            col = getattr(self, axis)
            if isinstance(wanted, (list, tuple, set, frozenset)):
                keep &= np.isin(col, list(wanted))
            else:
                keep &= col == wanted
        return self._select(keep)

    def batches(self) -> History:
        """Only per-batch rows (``batch >= 0``)."""
        return self._select(self.batch >= 0)

    def epochs(self) -> History:
        """Only epoch-level rows (``batch == -1``)."""
        return self._select(self.batch < 0)

    def collapse(self, axis: str, how: str = "mean") -> History:
        """Aggregate over ``axis`` (``"batch"``, ``"epoch"`` or ``"step"``) with ``mean``/``sum``/``last``/``min``/``max``.

        The collapsed axis is set to -1; ``step`` keeps the largest step of each group.
        """
        if axis not in ("batch", "epoch", "step"):
            raise ConfigError(f"collapse takes 'batch', 'epoch' or 'step', got {axis!r}")
        funcs: dict[str, Callable[[np.ndarray], Any]] = {
            "mean": np.mean,
            "sum": np.sum,
            "min": np.min,
            "max": np.max,
            "last": lambda a: a[-1],
        }
        if how not in funcs:
            raise ConfigError(f"collapse how= must be one of {', '.join(funcs)}, got {how!r}")
        groups: dict[tuple[Any, ...], list[int]] = {}
        keys = [a for a in ("phase", "epoch", "batch", "name") if a != axis]
        for i in range(len(self)):
            groups.setdefault(tuple(getattr(self, a)[i] for a in keys), []).append(i)
        rows = []
        for g, idx in groups.items():
            d = dict(zip(keys, g))
            d[axis] = -1
            rows.append(
                (
                    str(d["phase"]),
                    int(d["epoch"]),
                    int(d["batch"]),
                    int(self.step[idx].max()) if axis != "step" else -1,
                    str(d["name"]),
                    float(funcs[how](self.value[idx])),
                )
            )
        return attrs.evolve(
            History.from_rows(rows), status=self.status, phases=self.phases, error=self.failure
        )

    def names(self) -> tuple[str, ...]:
        """The metric names present, in first-seen order."""
        return tuple(dict.fromkeys(str(n) for n in self.name))

    def values(self, name: str | None = None) -> np.ndarray:
        """The ``value`` column (of one metric if ``name`` is given)."""
        return self.value if name is None else self.value[self.name == name]

    def last(self, name: str) -> float:
        """The last logged value of a metric."""
        v = self.values(name)
        if v.size == 0:
            raise TrainingError(
                f"no metric {name!r} in the History; logged: {', '.join(self.names()) or 'nothing'}"
            )
        return float(v[-1])

    def phase_result(self, label: str) -> PhaseResult:
        """The :class:`PhaseResult` of a phase."""
        for p in self.phases:
            if p.label == label:
                return p
        raise TrainingError(
            f"no phase {label!r} in this History; phases: {', '.join(p.label for p in self.phases)}"
        )

    def eval_result(self, label: str) -> EvalResult:
        """The :class:`EvalResult` of an eval phase."""
        r = self.phase_result(label).eval
        if r is None:
            raise TrainingError(f"phase {label!r} is not an eval phase (it has no EvalResult)")
        return r

    def raise_for_status(self) -> History:
        """Raise the run's error if it failed, else return ``self``.

        In the process that ran it this is the original exception; a loaded History raises
        a :class:`~mml.errors.TrainingError` with the same message.

        >>> import mml
        >>> mml.io.roundtrip(History(status="failed", error=ValueError("boom"))).raise_for_status()
        Traceback (most recent call last):
        ...
        mml.errors.TrainingError: boom
        originally builtins:ValueError (loaded from a saved History)
        """
        if self.status == "failed" and self.failure is not None:
            raise self.failure.to_exception()
        return self

    def to_pandas(self) -> Any:
        """A long-form ``pandas.DataFrame`` with columns phase, epoch, batch, step, name, value."""
        import pandas as pd

        return pd.DataFrame(
            {
                "phase": self.phase.astype(object),
                "epoch": self.epoch,
                "batch": self.batch,
                "step": self.step,
                "name": self.name.astype(object),
                "value": self.value,
            }
        )

    def merge(self, other: History) -> History:
        """Rows of ``self`` then ``other``; the worse status wins, phases are concatenated."""
        rank = {s: i for i, s in enumerate(STATUSES)}
        status = max(self.status, other.status, key=rank.__getitem__)
        return History(
            np.concatenate([self.phase, other.phase]) if len(other) else self.phase,
            np.concatenate([self.epoch, other.epoch]),
            np.concatenate([self.batch, other.batch]),
            np.concatenate([self.step, other.step]),
            np.concatenate([self.name, other.name]) if len(other) else self.name,
            np.concatenate([self.value, other.value]),
            status=status,
            phases=self.phases + other.phases,
            error=self.failure if self.failure is not None else other.failure,
        )
