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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict, array_field, frozen_dict
from mml.errors import ConfigError, TrainingError

__all__ = ["History", "PhaseResult", "EvalResult", "STATUSES"]

STATUSES: tuple[str, ...] = ("completed", "stopped", "failed")
_AXES = ("phase", "epoch", "batch", "step", "name")


def _str_array(values: Sequence[str]) -> np.ndarray:
    if not len(values):
        return np.zeros(0, dtype="<U1")
    # few distinct names repeated many times: encode once, then index
    uniq: dict[str, int] = {}
    codes = np.fromiter((uniq.setdefault(v, len(uniq)) for v in values), dtype=np.int64, count=len(values))
    return np.asarray(list(uniq), dtype=str)[codes]


@attrs.frozen
class EvalResult:
    """Stacked outputs and targets of an evaluation, per node, plus the losses.

    ``outputs[node]`` and ``targets[node]`` are numpy arrays in sample order; with
    ``inverse_transform=True`` they are in raw units (see ``FeatureSet.inverse_transform``).

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


@attrs.frozen(eq=False)
class PhaseResult:
    """How one phase ended: status, error (if failed), steps, wall time, eval result, recorded contexts.

    >>> PhaseResult("fit", "phase.train", "completed").ok
    True
    """

    label: str
    kind: str
    status: str
    error: BaseException | None = None
    n_steps: int = 0
    seconds: float = 0.0
    eval: EvalResult | None = None
    contexts: tuple[Any, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the phase did not fail."""
        return self.status != "failed"


@attrs.frozen
class History:
    """Metrics of a run in long form, plus per-phase results and the run's status.

    Columns: ``phase`` / ``name`` (strings), ``epoch`` / ``batch`` / ``step`` (ints),
    ``value`` (floats). Status is ``completed``, ``stopped`` (a callback ended a phase
    early) or ``failed`` (``error`` holds the exception; the returned state is the last good
    one).

    >>> History.from_rows([]).status
    'completed'
    """

    phase: np.ndarray = array_field(factory=lambda: _str_array([]))  # noqa: RUF009 - an attrs field
    epoch: np.ndarray = array_field(factory=lambda: np.zeros(0, np.int64))  # noqa: RUF009 - an attrs field
    batch: np.ndarray = array_field(factory=lambda: np.zeros(0, np.int64))  # noqa: RUF009 - an attrs field
    step: np.ndarray = array_field(factory=lambda: np.zeros(0, np.int64))  # noqa: RUF009 - an attrs field
    name: np.ndarray = array_field(factory=lambda: _str_array([]))  # noqa: RUF009 - an attrs field
    value: np.ndarray = array_field(factory=lambda: np.zeros(0, np.float64))  # noqa: RUF009 - an attrs field
    status: str = "completed"
    phases: tuple[PhaseResult, ...] = attrs.field(default=(), converter=tuple, eq=False)
    error: BaseException | None = attrs.field(default=None, eq=False)

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
        funcs = {"mean": np.mean, "sum": np.sum, "min": np.min, "max": np.max, "last": lambda a: a[-1]}
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
        return attrs.evolve(History.from_rows(rows), status=self.status, phases=self.phases, error=self.error)

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
        """Raise the run's error if it failed, else return ``self``."""
        if self.status == "failed" and self.error is not None:
            raise self.error
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
            error=self.error or other.error,
        )
