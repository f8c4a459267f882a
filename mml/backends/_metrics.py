"""Classification metrics computed by :mod:`sklearn.metrics` (imported when first asked for).

The metric names, the reading of scores as probabilities and the class-id rules live in
:mod:`mml.callbacks` (``classification_metrics``); this module only calls scikit-learn.

>>> import numpy as np
>>> p = np.array([[0.8, 0.2], [0.1, 0.9], [0.6, 0.4]])
>>> classification_scores(np.array([0, 1, 1]), p, np.arange(2), ("accuracy", "f1"))
{'accuracy': 0.6666666666666666, 'f1': 0.6666666666666666}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mml.errors import ConfigError

__all__ = ["SKLEARN_CLASSIFICATION_METRICS", "classification_scores"]

#: the names :func:`classification_scores` computes
SKLEARN_CLASSIFICATION_METRICS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "precision",
    "recall",
    "roc_auc",
    "log_loss",
    "confusion_matrix",
)


def classification_scores(
    y_true: np.ndarray, probabilities: np.ndarray, labels: np.ndarray, names: Sequence[str]
) -> dict[str, float]:
    """scikit-learn's metrics ``names`` of class ids ``y_true`` against ``(n, C)`` ``probabilities``.

    The predicted class is the arg-max; ``labels`` are all the class ids. ``f1``/``precision``/
    ``recall`` are binary for two labels, macro-averaged for more; ``roc_auc`` is one-vs-rest
    macro for more than two (``nan`` with one class present); ``confusion_matrix`` comes back as
    entries ``confusion_matrix_<true>_<predicted>``.

    >>> p = np.array([[0.8, 0.2], [0.1, 0.9]])
    >>> classification_scores(np.array([1, 1]), p, np.arange(2), ("roc_auc",))
    {'roc_auc': nan}
    """
    from sklearn import metrics as skm

    t, p = y_true, probabilities
    pred = p.argmax(axis=1)
    binary = len(labels) == 2
    out: dict[str, float] = {}
    for name in names:
        if name == "accuracy":
            out[name] = float(skm.accuracy_score(t, pred))
        elif name == "balanced_accuracy":
            out[name] = float(skm.balanced_accuracy_score(t, pred))
        elif name in ("f1", "precision", "recall"):
            fn = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}[name]
            average = "binary" if binary else "macro"
            out[name] = float(
                fn(t, pred, labels=labels if not binary else None, average=average, zero_division=0)
            )
        elif name == "roc_auc":
            if len(np.unique(t)) < 2:
                out[name] = float("nan")  # undefined with one class present, as scikit-learn warns
            elif binary:
                out[name] = float(skm.roc_auc_score(t, p[:, 1]))
            else:
                out[name] = float(skm.roc_auc_score(t, p, multi_class="ovr", labels=labels))
        elif name == "log_loss":
            out[name] = float(skm.log_loss(t, p, labels=labels))
        elif name == "confusion_matrix":
            cm = skm.confusion_matrix(t, pred, labels=labels)
            for i in range(cm.shape[0]):
                for j in range(cm.shape[1]):
                    out[f"confusion_matrix_{i}_{j}"] = float(cm[i, j])
        else:
            raise ConfigError(
                f"unknown classification metric {name!r}; use one of {', '.join(SKLEARN_CLASSIFICATION_METRICS)}"
            )
    return out
