"""Periodic evaluation and metrics: :class:`Evaluation` and :class:`MetricCallback`.

>>> import numpy as np
>>> compute_metric("mae", np.array([1.0, 2.0]), np.array([1.5, 2.5]))
0.5
>>> compute_metric("r2", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from mml.callbacks._base import AbstractCallback, CallbackResult, Event
from mml.callbacks._metrics import METRICS, compute_metric, compute_metrics, regression_metrics
from mml.errors import ConfigError, TrainingError

__all__ = ["Evaluation", "MetricCallback", "METRICS", "compute_metric", "regression_metrics"]


def _check_metrics(instance: Any, attribute: Any, value: tuple[str, ...]) -> None:
    for m in value:
        if m not in METRICS and ":" not in m:
            raise ConfigError(
                f"unknown metric {m!r}; use {', '.join(METRICS)} or an import path 'module:function'"
            )


def _positive(instance: Any, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{type(instance).__name__}.{attribute.name} must be an int >= 1, got {value!r}")


def _node_metrics(metrics: Sequence[str], res: Any, prefix: str) -> dict[str, float]:
    """``<prefix><metric>[_<node>]`` for every node with targets (the node named when there are several)."""
    out: dict[str, float] = {}
    if not metrics:
        return out
    for node, y in res.outputs.items():
        if node in res.targets:
            suffix = "" if len(res.outputs) == 1 else f"_{node}"
            for name, value in compute_metrics(metrics, y, res.targets[node]).items():
                out[f"{prefix}{name}{suffix}"] = value
    return out


def _run_eval(event: Event, split: str, losses: Any, nodes: Any = None) -> Any:
    phase = event.phase_value
    if phase is None or not phase.inputs or event.evaluate is None:
        raise TrainingError("evaluation callbacks run inside a training phase")
    use = phase.losses if losses is None else losses
    return event.evaluate(event.experiment, event.state, phase.inputs, losses=use, split=split, nodes=nodes)


@attrs.frozen
class Evaluation(AbstractCallback):
    """Evaluate the current state on ``split`` every ``every_n_epochs`` epochs.

    Logs ``<prefix>loss`` (the weighted total, e.g. ``val_loss``), each loss as
    ``<prefix><loss label>``, and each metric in ``metrics`` as ``<prefix><metric>``
    (computed on the tail nodes' outputs against their targets). ``losses=None`` uses the
    phase's own losses.

    ``prefix`` overrides the ``"<split>_"`` default; :attr:`log_prefix` is the one in use,
    computed from the fields, so it follows ``attrs.evolve``:

    >>> Evaluation(split="val").log_prefix
    'val_'
    >>> import attrs
    >>> attrs.evolve(Evaluation(split="val"), split="test").log_prefix
    'test_'
    >>> Evaluation(split="val", prefix="holdout_").log_prefix
    'holdout_'
    """

    kind: ClassVar[str] = "callback.evaluation"

    every_n_epochs: int = attrs.field(default=1, validator=_positive)
    split: str = "val"
    losses: tuple[Any, ...] | None = attrs.field(
        default=None, converter=lambda v: None if v is None else tuple(v)
    )
    metrics: tuple[str, ...] = attrs.field(default=(), converter=tuple, validator=_check_metrics)
    prefix: str | None = None

    @property
    def log_prefix(self) -> str:
        """The prefix of every logged name: ``prefix``, or ``"<split>_"`` when it is ``None``."""
        return f"{self.split}_" if self.prefix is None else self.prefix

    def on_epoch_end(self, event: Event, state: Any) -> CallbackResult | None:
        """Evaluate and log."""
        if (event.epoch + 1) % self.every_n_epochs:
            return None
        res = _run_eval(event, self.split, self.losses)
        _check_finite(res, self.split, event.epoch)
        out = {f"{self.log_prefix}{k}": v for k, v in res.losses.items()}
        out.update(_node_metrics(self.metrics, res, self.log_prefix))
        return CallbackResult(state=state, metrics=out)


def _check_finite(res: Any, split: str, epoch: int) -> None:
    """A NaN/inf validation loss fails the run (it would make every monitor and the table meaningless)."""
    import math

    import numpy as np

    bad = {k: v for k, v in res.losses.items() if not math.isfinite(v)}
    if not bad:
        return
    where = []
    for name, arrays in (("targets", res.targets), ("outputs", res.outputs)):
        for node, a in arrays.items():
            arr = np.asarray(a)
            if arr.dtype.kind == "f":
                rows = int((~np.isfinite(arr.reshape(len(arr), -1))).any(axis=1).sum()) if arr.ndim else 0
                if rows:
                    where.append(f"{rows} of {len(arr)} samples have non-finite {name} at node {node!r}")
    found = "; ".join(where) or "the outputs and targets are finite: a loss produced it"
    raise TrainingError(
        f"Evaluation on split {split!r}, epoch {epoch}: "
        + ", ".join(f"{k} = {v}" for k, v in bad.items())
        + f" ({found}); drop or impute the non-finite rows of split {split!r} "
        "(mml's scalers refuse NaN when they are fitted or applied)"
    )


@attrs.frozen
class MetricCallback(AbstractCallback):
    """User metrics on ``split`` every ``every_n_epochs`` epochs: built-ins by name
    (``mae``, ``r2``, ``accuracy``, ...) or functions by import path (``fn(y_pred, y_true)``).

    >>> MetricCallback(("mae", "r2")).metrics
    ('mae', 'r2')
    """

    kind: ClassVar[str] = "callback.metric"

    metrics: tuple[str, ...] = attrs.field(converter=tuple, validator=_check_metrics)
    split: str = "val"
    node: str | None = None
    every_n_epochs: int = attrs.field(default=1, validator=_positive)

    def on_epoch_end(self, event: Event, state: Any) -> CallbackResult | None:
        """Compute and log the metrics."""
        if (event.epoch + 1) % self.every_n_epochs:
            return None
        nodes: Sequence[str] | None = None if self.node is None else (self.node,)
        res = _run_eval(event, self.split, (), nodes)
        return CallbackResult(state=state, metrics=_node_metrics(self.metrics, res, f"{self.split}_"))
