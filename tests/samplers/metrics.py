"""Distance functions named by import path in the sampler tests (``tests.samplers.metrics:...``)."""

from __future__ import annotations

import numpy as np


def squared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) ** 2``: similar(0.01) with it keeps the candidates similar(0.1) keeps."""
    return (a - b) ** 2


def first_only(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A broken metric: not elementwise."""
    return np.zeros(1)


NOT_A_FUNCTION = 3
