"""Gradient recording per backend: a tape over some nodes' parameters, then their gradients.

A tape is a single-use handle (torch's autograd and TensorFlow's ``GradientTape`` are
stateful): open it over the parameter records of the nodes to train, run the forward pass and
the losses inside it, then ask it for the gradients of the loss terms. ``mml.graph.value_and_grad``
opens one per backend of a step; nothing else in mml touches autograd.

>>> import mml, numpy as np
>>> from mml.models import SequentialMLP
>>> spec = SequentialMLP(hidden=(2,), output_shape=(1,))
>>> p = mml.backends.init_params(spec, (3,), key=mml.random.key(0))
>>> tape = open_tape("torch", {"m": p})
>>> with tape:
...     y, _ = mml.backends.apply(spec, tape.records["m"], np.ones((4, 3), np.float32), training=True)
>>> grads = tape.gradient([("m", (y**2).mean())])
>>> sorted(grads["m"]) == sorted(p.params)
True
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from mml.backends._feed import replace_fields
from mml.errors import BackendError

__all__ = ["AbstractTape", "KerasTape", "TorchTape", "open_tape"]

#: A loss term: the node it is bound to and its (weighted) scalar tensor.
Term = tuple[str, Any]


class AbstractTape(abc.ABC):
    """Records the forward pass of some nodes of one backend; gives their gradients once.

    ``records`` maps the watched labels to the parameter records the forward pass must use
    (for torch: records whose tensors are fresh leaves that require grad).
    """

    records: Mapping[str, Any]

    @abc.abstractmethod
    def __enter__(self) -> AbstractTape: ...

    @abc.abstractmethod
    def __exit__(self, *exc: Any) -> None: ...

    @abc.abstractmethod
    def gradient(self, terms: Sequence[Term]) -> dict[str, dict[str, Any]]:
        """Label → parameter name → gradient of this backend's loss terms (zeros where unused)."""


class TorchTape(AbstractTape):
    """Torch autograd over fresh leaves of the watched nodes' parameters (one backward pass).

    Gradients stop between nodes when the forward pass detaches (stage-wise training), so one
    backward pass over the sum of the terms gives each node the gradient of its own losses.
    A step whose torch terms reach no watched parameter gives no gradients (``{}``).
    """

    def __init__(self, records: Mapping[str, Any]) -> None:
        import torch

        self._torch = torch
        self._leaves: dict[str, dict[str, Any]] = {}
        self._flat: list[Any] = []
        watched: dict[str, Any] = {}
        for label, rec in records.items():
            lv = {k: v.detach().requires_grad_() for k, v in rec.params.items()}
            self._leaves[label] = lv
            self._flat.extend(lv.values())
            watched[label] = replace_fields(rec, params=lv)
        self.records = watched
        self._mode = torch.enable_grad()

    def __enter__(self) -> TorchTape:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)

    def gradient(self, terms: Sequence[Term]) -> dict[str, dict[str, Any]]:
        torch = self._torch
        total: Any = None
        with torch.enable_grad():  # the sum is on the graph also when asked under no_grad
            for _, t in terms:
                if isinstance(t, torch.Tensor):
                    total = t if total is None else total + t
        if total is None or not total.requires_grad or not self._flat:
            return {}
        grads = torch.autograd.grad(total, self._flat, allow_unused=True)
        out: dict[str, dict[str, Any]] = {}
        i = 0
        for label, lv in self._leaves.items():
            g: dict[str, Any] = {}
            for name, p in lv.items():
                gi = grads[i]
                i += 1
                g[name] = torch.zeros_like(p) if gi is None else gi
            out[label] = g
        return out


class KerasTape(AbstractTape):
    """A ``tf.GradientTape`` watching the Keras nodes' trainable values (Keras names them ``"0"``, ``"1"``...).

    With ``per_node`` (stage-wise training) each node gets the gradient of the terms bound to
    it (zeros if none); otherwise every node gets the gradient of the sum of all TensorFlow terms.
    """

    def __init__(self, records: Mapping[str, Any], *, per_node: bool = False) -> None:
        import tensorflow as tf

        self._tf = tf
        self._records = dict(records)
        self.records = {}  # Keras values are watched as they are: the forward pass uses the originals
        self._per_node = per_node
        self._tape = tf.GradientTape(persistent=per_node and len(records) > 1, watch_accessed_variables=False)

    def __enter__(self) -> KerasTape:
        self._tape.__enter__()
        for rec in self._records.values():
            for v in rec.trainable:
                self._tape.watch(v)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._tape.__exit__(*exc)

    def _is_tf(self, t: Any) -> bool:
        return isinstance(t, self._tf.Tensor)

    def gradient(self, terms: Sequence[Term]) -> dict[str, dict[str, Any]]:
        tf = self._tf
        zero = tf.UnconnectedGradients.ZERO
        tape = self._tape
        out: dict[str, dict[str, Any]] = {}
        # The tape stopped recording when its block ended: a sum of terms taken here would not
        # be on it (its gradient silently zero), so the terms go to tape.gradient as a list,
        # whose gradient is the sum of theirs.
        if self._per_node:
            own: dict[str, list[Any]] = {}
            for node, t in terms:
                if node in self._records and self._is_tf(t):
                    own.setdefault(node, []).append(t)
            for label, rec in self._records.items():
                params = rec.trainable
                if label in own:
                    g = tape.gradient(own[label], list(params), unconnected_gradients=zero)
                else:
                    g = [tf.zeros_like(v) for v in params]
                out[label] = {str(i): gi for i, gi in enumerate(g)}
            return out
        total = [t for _, t in terms if self._is_tf(t)]
        flat = [v for rec in self._records.values() for v in rec.trainable]
        g = (
            tape.gradient(total, flat, unconnected_gradients=zero)
            if total
            else [tf.zeros_like(v) for v in flat]
        )
        i = 0
        for label, rec in self._records.items():
            n = len(rec.trainable)
            out[label] = {str(j): g[i + j] for j in range(n)}
            i += n
        return out


def open_tape(backend: str, records: Mapping[str, Any], *, per_node: bool = False) -> AbstractTape:
    """A tape of ``backend`` (``"torch"`` or ``"tensorflow"``) over the nodes' parameter ``records``.

    >>> open_tape("sklearn", {})
    Traceback (most recent call last):
    ...
    mml.errors.BackendError: the sklearn backend has no gradients; fit its nodes with a FitPhase
    """
    if backend == "torch":
        return TorchTape(records)
    if backend == "tensorflow":
        return KerasTape(records, per_node=per_node)
    raise BackendError(f"the {backend} backend has no gradients; fit its nodes with a FitPhase")
