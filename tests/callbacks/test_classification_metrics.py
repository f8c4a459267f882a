"""Classification metrics equal scikit-learn's on the same arrays; hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from sklearn import metrics as skm

from mml.callbacks import (
    METRICS,
    Evaluation,
    class_probabilities,
    classification_metrics,
    compute_metric,
    compute_metrics,
)


@st.composite
def _scored(draw):
    n_classes = draw(st.integers(2, 4))
    n = draw(st.integers(n_classes * 2, 40))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, n - n_classes)])
    width = 1 if (n_classes == 2 and draw(st.booleans())) else n_classes
    logits = rng.normal(size=(n, width)) * 3
    return labels, logits


@given(_scored())
def test_metrics_equal_sklearn(case):
    labels, logits = case
    p = class_probabilities(logits)
    if logits.shape[1] == 1:
        assert np.allclose(p[:, 1], 1 / (1 + np.exp(-logits[:, 0])))
    else:
        assert np.allclose(p, np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    pred = p.argmax(1)
    avg = "binary" if p.shape[1] == 2 else "macro"
    got = classification_metrics(labels, logits)
    assert got["accuracy"] == skm.accuracy_score(labels, pred)
    assert got["balanced_accuracy"] == skm.balanced_accuracy_score(labels, pred)
    assert got["f1"] == skm.f1_score(labels, pred, average=avg, zero_division=0)
    assert got["precision"] == skm.precision_score(labels, pred, average=avg, zero_division=0)
    assert got["recall"] == skm.recall_score(labels, pred, average=avg, zero_division=0)
    assert got["log_loss"] == skm.log_loss(labels, p)
    auc = (
        skm.roc_auc_score(labels, p[:, 1])
        if p.shape[1] == 2
        else skm.roc_auc_score(labels, p, multi_class="ovr")
    )
    assert got["roc_auc"] == auc
    cm = skm.confusion_matrix(labels, pred)
    assert [
        got[f"confusion_matrix_{i}_{j}"] for i in range(len(cm)) for j in range(len(cm))
    ] == cm.ravel().tolist()


def test_hand_computed_values():
    y = np.array([0, 0, 1, 1])
    prob = np.array([[0.1], [0.6], [0.7], [0.4]])  # probabilities: predicted 0, 1, 1, 0
    m = classification_metrics(y, prob, ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"))
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5
    assert m["roc_auc"] == 0.75  # 3 of the 4 (positive, negative) pairs are ranked right
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.7, 0.4])))
    assert compute_metric("accuracy", np.array([[3.0, 0.0], [0.0, 1.0]]), np.array([[0], [1]])) == 1.0
    assert compute_metrics(("mae", "accuracy"), np.array([[0.2], [0.9]]), np.array([0, 1])) == {
        "mae": 0.15,
        "accuracy": 1.0,
    }


def test_names_are_validated_and_confusion_matrix_is_not_a_number():
    assert {"f1", "roc_auc", "log_loss", "balanced_accuracy", "confusion_matrix"} <= set(METRICS)
    Evaluation(metrics=("f1", "confusion_matrix"))
    with pytest.raises(Exception, match="confusion_matrix is a matrix"):
        compute_metric("confusion_matrix", np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(Exception, match="unknown metric 'f2'"):
        Evaluation(metrics=("f2",))
