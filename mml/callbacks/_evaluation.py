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
import numpy as np

from mml.callbacks._base import AbstractCallback, CallbackResult, Event
from mml.errors import ConfigError, TrainingError

__all__ = ["Evaluation", "MetricCallback", "METRICS", "compute_metric"]

METRICS: tuple[str, ...] = ("mae", "mse", "rmse", "r2", "accuracy")


def _flat(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(len(a), -1)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """``mse``, ``mae`` and ``r2`` of predictions (``r2`` averaged over output columns, as scikit-learn).

    A constant target column scores ``r2 = 1`` if predicted exactly, else ``0``.

    >>> regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    {'mse': 0.3333333333333333, 'mae': 0.3333333333333333, 'r2': 0.5}
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise TrainingError(
            f"targets of shape {t.shape} and predictions of shape {p.shape} cannot be compared"
        )
    n = t.shape[0] if t.ndim else 1
    t = t.reshape(n, -1)
    p = p.reshape(n, -1)
    err = p - t
    ss_res = (err**2).sum(axis=0)
    ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    safe = np.where(ss_tot > 0, ss_tot, 1.0)
    with np.errstate(over="ignore"):  # a near-constant target makes r2 hugely negative, as in sklearn
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))
    return {"mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err))), "r2": float(np.mean(r2))}


def compute_metric(name: str, y_pred: Any, y_true: Any) -> float:
    """A built-in metric (``mae``, ``mse``, ``rmse``, ``r2``, ``accuracy``) or a function by import path.

    A user function is named ``"package.module:function"`` and called as
    ``fn(y_pred, y_true) -> float`` with numpy arrays.
    """
    if name in ("mae", "mse", "rmse", "r2"):
        p, t = _flat(y_pred), _flat(y_true)
        if p.shape != t.shape:
            t = t.reshape(p.shape)
        m = regression_metrics(t, p)
        return float(np.sqrt(m["mse"])) if name == "rmse" else m[name]
    if name == "accuracy":
        p = np.asarray(y_pred)
        t = np.asarray(y_true).reshape(len(p), -1)
        pred = p.argmax(axis=1) if p.ndim > 1 and p.shape[1] > 1 else (p.reshape(len(p)) > 0.5).astype(int)
        true = t.argmax(axis=1) if t.shape[1] > 1 else t.reshape(len(t))
        return float(np.mean(pred == true))
    from mml.training._losses import _import

    return float(_import(name, "metric")(np.asarray(y_pred), np.asarray(y_true)))


def _check_metrics(instance: Any, attribute: Any, value: tuple[str, ...]) -> None:
    for m in value:
        if m not in METRICS and ":" not in m:
            raise ConfigError(
                f"unknown metric {m!r}; use {', '.join(METRICS)} or an import path 'module:function'"
            )


def _positive(instance: Any, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{type(instance).__name__}.{attribute.name} must be an int >= 1, got {value!r}")


def _run_eval(event: Event, split: str, losses: Any, nodes: Any = None) -> Any:
    from mml.training._loop import evaluate

    phase = event.phase_value
    if phase is None or not hasattr(phase, "inputs"):
        raise TrainingError("evaluation callbacks run inside a training phase")
    use = phase.losses if losses is None else losses
    return evaluate(event.experiment, event.state, phase.inputs, losses=use, split=split, nodes=nodes)


@attrs.frozen
class Evaluation(AbstractCallback):
    """Evaluate the current state on ``split`` every ``every_n_epochs`` epochs.

    Logs ``<prefix>loss`` (the weighted total, e.g. ``val_loss``), each loss as
    ``<prefix><loss label>``, and each metric in ``metrics`` as ``<prefix><metric>``
    (computed on the tail nodes' outputs against their targets). ``losses=None`` uses the
    phase's own losses.

    >>> Evaluation(split="val").prefix
    'val_'
    """

    kind: ClassVar[str] = "callback.evaluation"

    every_n_epochs: int = attrs.field(default=1, validator=_positive)
    split: str = "val"
    losses: tuple[Any, ...] | None = attrs.field(
        default=None, converter=lambda v: None if v is None else tuple(v)
    )
    metrics: tuple[str, ...] = attrs.field(default=(), converter=tuple, validator=_check_metrics)
    prefix: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.prefix is None:
            object.__setattr__(self, "prefix", f"{self.split}_")

    def on_epoch_end(self, event: Event, state: Any) -> CallbackResult | None:
        """Evaluate and log."""
        if (event.epoch + 1) % self.every_n_epochs:
            return None
        res = _run_eval(event, self.split, self.losses)
        out = {f"{self.prefix}{k}": v for k, v in res.losses.items()}
        for m in self.metrics:
            for node, y in res.outputs.items():
                if node in res.targets:
                    suffix = "" if len(res.outputs) == 1 else f"_{node}"
                    out[f"{self.prefix}{m.rpartition(':')[2]}{suffix}"] = compute_metric(
                        m, y, res.targets[node]
                    )
        return CallbackResult(state=state, metrics=out)


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
        out: dict[str, float] = {}
        for m in self.metrics:
            for node, y in res.outputs.items():
                if node in res.targets:
                    suffix = "" if len(res.outputs) == 1 else f"_{node}"
                    out[f"{self.split}_{m.rpartition(':')[2]}{suffix}"] = compute_metric(
                        m, y, res.targets[node]
                    )
        return CallbackResult(state=state, metrics=out)
