"""Metrics by name: one definition each, used by callbacks, ``EvalResult``, strategies and the CLI.

Regression metrics (``mae``, ``mse``, ``rmse``, ``r2``) compare outputs with targets of the same
shape. Classification metrics are backed by :mod:`sklearn.metrics` and read a head's *scores*
against integer class ids: ``(n, C)`` scores are logits (softmaxed) unless they are already
probabilities (non-negative rows summing to 1); ``(n, 1)`` scores are probabilities when they
lie in ``[0, 1]``, else logits (sigmoid). The predicted class is the arg-max (threshold ½ for
one column). ``f1``/``precision``/``recall`` are binary for two classes, macro-averaged for more;
``roc_auc`` is one-vs-rest macro for more than two classes.

>>> import numpy as np
>>> compute_metric("mae", np.array([1.0, 2.0]), np.array([1.5, 2.5]))
0.5
>>> scores = np.array([[2.0, 0.1, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
>>> compute_metric("balanced_accuracy", scores, np.array([0, 1, 2, 2]))
0.8333333333333334
>>> compute_metrics(("confusion_matrix",), np.array([[0.9], [0.2]]), np.array([1, 1]))
{'confusion_matrix_0_0': 0.0, 'confusion_matrix_0_1': 0.0, 'confusion_matrix_1_0': 1.0, 'confusion_matrix_1_1': 1.0}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mml.backends import SKLEARN_CLASSIFICATION_METRICS, classification_scores
from mml.errors import TrainingError

__all__ = [
    "METRICS",
    "REGRESSION_METRICS",
    "CLASSIFICATION_METRICS",
    "regression_metrics",
    "class_probabilities",
    "classification_metrics",
    "compute_metric",
    "compute_metrics",
]

REGRESSION_METRICS: tuple[str, ...] = ("mae", "mse", "rmse", "r2")
CLASSIFICATION_METRICS: tuple[str, ...] = SKLEARN_CLASSIFICATION_METRICS  # computed by the backends
METRICS: tuple[str, ...] = (*REGRESSION_METRICS, *CLASSIFICATION_METRICS)


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


def class_probabilities(scores: Any) -> np.ndarray:
    """Scores ``(n, C)`` or ``(n, 1)`` as class probabilities ``(n, max(C, 2))`` (see the module rule).

    >>> class_probabilities(np.array([[0.0], [0.75]])).tolist()
    [[1.0, 0.0], [0.25, 0.75]]
    >>> class_probabilities(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s.reshape(len(s), -1)
    if s.shape[1] == 1:
        p = s[:, 0]
        if p.size and (p.min() < 0 or p.max() > 1):
            p = 1.0 / (1.0 + np.exp(-p))
        return np.stack([1.0 - p, p], axis=1)
    if s.size and s.min() >= 0 and np.allclose(s.sum(axis=1), 1.0, atol=1e-5):
        return s
    z = np.exp(s - s.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _class_ids(y_true: Any, n: int) -> np.ndarray:
    t = np.asarray(y_true)
    t = t.reshape(n, -1)
    if t.shape[1] > 1:  # one-hot targets
        return t.argmax(axis=1)
    t = t[:, 0]
    if t.dtype.kind == "f":
        if not np.all(t == np.round(t)):
            raise TrainingError(
                "classification metrics need integer class ids as targets, got non-integral floats"
            )
        t = t.astype(np.int64)
    return t


def classification_metrics(
    y_true: Any, scores: Any, names: Sequence[str] = CLASSIFICATION_METRICS
) -> dict[str, float]:
    """Classification metrics of ``scores`` against class ids ``y_true``, computed by scikit-learn.

    ``confusion_matrix`` comes back as entries ``confusion_matrix_<true>_<predicted>``.

    >>> classification_metrics([0, 1, 1], np.array([[0.2], [0.9], [0.4]]), ("accuracy", "recall"))
    {'accuracy': 0.6666666666666666, 'recall': 0.5}
    """
    p = class_probabilities(scores)
    n, n_classes = p.shape
    t = _class_ids(y_true, n)
    labels = np.arange(max(n_classes, int(t.max()) + 1 if t.size else n_classes))
    if t.size and t.min() < 0:
        raise TrainingError(f"class ids must be >= 0, got {int(t.min())}")
    for name in names:
        if name not in CLASSIFICATION_METRICS:
            raise TrainingError(
                f"unknown classification metric {name!r}; use one of {', '.join(CLASSIFICATION_METRICS)}"
            )
    return classification_scores(t, p, labels, names)


def compute_metrics(names: Sequence[str], y_pred: Any, y_true: Any) -> dict[str, float]:
    """Several metrics at once (``confusion_matrix`` expands into its entries); see :func:`compute_metric`.

    >>> compute_metrics(("mse", "r2"), np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    {'mse': 0.5, 'r2': 0.5}
    """
    wanted = [n for n in names if n in CLASSIFICATION_METRICS]
    cls = classification_metrics(y_true, y_pred, wanted) if wanted else {}
    out: dict[str, float] = {}
    for name in names:
        if name == "confusion_matrix":
            out.update({k: v for k, v in cls.items() if k.startswith("confusion_matrix_")})
        elif name in CLASSIFICATION_METRICS:
            out[name] = cls[name]
        else:
            out[name.rpartition(":")[2]] = compute_metric(name, y_pred, y_true)
    return out


def compute_metric(name: str, y_pred: Any, y_true: Any) -> float:
    """A built-in metric (see :data:`METRICS`) or a function by import path.

    A user function is named ``"package.module:function"`` and called as
    ``fn(y_pred, y_true) -> float`` with numpy arrays. ``confusion_matrix`` is not one number: use
    :func:`compute_metrics`.
    """
    if name in REGRESSION_METRICS:
        p, t = _flat(y_pred), _flat(y_true)
        if p.shape != t.shape:
            t = t.reshape(p.shape)
        m = regression_metrics(t, p)
        return float(np.sqrt(m["mse"])) if name == "rmse" else m[name]
    if name == "confusion_matrix":
        raise TrainingError(
            "confusion_matrix is a matrix, not one number; use compute_metrics or classification_metrics"
        )
    if name in CLASSIFICATION_METRICS:
        return classification_metrics(y_true, y_pred, (name,))[name]
    from mml.io import import_function

    return float(import_function(name, "metric")(np.asarray(y_pred), np.asarray(y_true)))
