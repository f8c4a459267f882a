"""Class ids of a cross-entropy loss, checked once per phase, the same for torch and TensorFlow.

``F.cross_entropy`` raises a bare ``IndexError`` (or a device assert) for a class id outside
``[0, n_classes)``, and TensorFlow's ``one_hot`` silently turns it into a row of zeros; mml
checks the ids the loss will read before the first step, on the prepared numpy arrays, and
raises one :class:`~mml.errors.TrainingError` naming the loss, the node and the bad ids.

>>> import numpy as np
>>> print(class_id_problem("head.cross_entropy", "head", np.array([0, 3, 1, 7]), 4))
loss 'head.cross_entropy' on node 'head': class ids must be integers in [0, 4) (the node outputs 4 logits) but the targets hold 7 (1 of 4 values); give the node output_shape=(8,) if there are 8 classes, or re-encode the labels as 0..3 (mask samples out with a mask, not with an id)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mml.errors import TrainingError

__all__ = ["class_id_problem", "check_class_ids"]

_SHOWN = 8


def class_id_problem(loss: str, node: str, ids: Any, n_classes: int) -> str | None:
    """What is wrong with ``ids`` as class ids for ``n_classes`` logits (``None`` if nothing).

    >>> class_id_problem("l", "n", np.array([[0.0], [2.0]]), 3) is None
    True
    """
    a = np.asarray(ids).reshape(-1)
    if a.size == 0:
        return None
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.floor(a)) | (a < 0) | (a >= n_classes)
    elif a.dtype.kind in "iub":
        bad = (a < 0) | (a >= n_classes)
    else:
        return (
            f"loss {loss!r} on node {node!r} reads class ids but got {a.dtype} values; use integer class ids"
        )
    if not bad.any():
        return None
    values = np.unique(a[bad])
    shown = ", ".join(f"{v:g}" if a.dtype.kind == "f" else str(v) for v in values[:_SHOWN].tolist())
    more = f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else ""
    top = int(np.nanmax(np.where(np.isfinite(a.astype(np.float64)), a, 0))) + 1
    hint = f"give the node output_shape=({top},) if there are {top} classes, or " if top > n_classes else ""
    return (
        f"loss {loss!r} on node {node!r}: class ids must be integers in [0, {n_classes}) (the node outputs "
        f"{n_classes} logits) but the targets hold {shown}{more} ({int(bad.sum())} of {a.size} values); "
        f"{hint}re-encode the labels as 0..{n_classes - 1} (mask samples out with a mask, not with an id)"
    )


def _source_array(data: Any, source: str, key: str | None) -> Any:
    if source == "tags":
        return data.tags.get(key)
    return getattr(data, source, None)


def check_class_ids(losses: Iterable[Any], data: Mapping[str, Any], shapes: Mapping[str, Any]) -> None:
    """Raise a :class:`~mml.errors.TrainingError` if a cross-entropy loss would read bad class ids.

    ``losses`` are the phase's resolved losses (``applied``, ``name``, ``node``, ``head``,
    ``getters``); ``data`` maps a head to what it reads (prepared data or one batch's
    ``SampleData``: ``targets``, ``features``, ``tags``); ``shapes`` the graph state's node
    shapes. Targets given as class probabilities (floats shaped like the logits) are not ids.
    """
    problems = []
    for lp in losses:
        if lp.applied.loss.fn != "cross_entropy" or lp.head not in data or len(lp.getters) < 2:
            continue
        _, source, key = lp.getters[1]
        shape = getattr(shapes.get(lp.node), "output_shape", ())
        if source == "outputs" or not shape:
            continue
        arr = _source_array(data[lp.head], source, key)
        if arr is None:
            continue
        if hasattr(arr, "detach"):  # already a torch tensor (data on a device)
            arr = arr.detach().cpu().numpy()
        arr = np.asarray(arr)
        n_classes = int(shape[0])
        if arr.dtype.kind == "f" and arr.ndim >= 2 and arr.shape[1:] == tuple(shape):
            continue  # class probabilities
        problem = class_id_problem(lp.name, lp.node, arr, n_classes)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise TrainingError("; ".join(problems))
