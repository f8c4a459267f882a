"""The built-in losses in TensorFlow ops, for Keras (TensorFlow) nodes.

Each function mirrors its PyTorch twin in :mod:`mml.backends._losses_torch` — same formula, same
defaults (Huber ``delta=1``, the ``log`` clamp at ``-100`` of ``F.binary_cross_entropy``, the
``1e-6`` of ``F.pairwise_distance``, PyTorch's label smoothing), same reduction: a mean over
samples that honours per-sample ``weights`` (``sum(w * l) / sum(w)``) and a boolean ``mask``
(masked-out samples weigh 0). The two agree to float32 precision (tested).

>>> import tensorflow as tf
>>> fn = builtin_tf("mse", {})
>>> float(fn([tf.ones((4, 1)), tf.zeros((4, 1))], None, None))
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mml.errors import ConfigError

__all__ = ["builtin_tf", "reduce_tf", "as_tf"]

LossFn = Callable[[Sequence[Any], Any, Any], Any]


def as_tf(x: Any) -> Any:
    """A TensorFlow tensor from a tf tensor (kept), a torch tensor or an array (floats become float32).

    >>> as_tf(np.arange(3.0)).dtype.name
    'float32'
    """
    import tensorflow as tf

    if isinstance(x, tf.Tensor):
        return x
    if hasattr(x, "detach"):  # a torch tensor crossing into TensorFlow: gradients stop here
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind == "f" and a.dtype != np.float32:
        a = a.astype(np.float32)
    return tf.convert_to_tensor(a)


def reduce_tf(per: Any, weights: Any, mask: Any) -> Any:
    """Mean of per-sample (or per-element) losses honouring sample weights and a validity mask.

    >>> import tensorflow as tf
    >>> float(reduce_tf(tf.constant([1.0, 3.0]), tf.constant([1.0, 0.0]), None))
    1.0
    """
    import tensorflow as tf

    if weights is None and mask is None:
        return tf.reduce_mean(per)
    n = tf.shape(per)[0]
    if per.shape.rank > 1:
        per = tf.reduce_mean(tf.reshape(per, (n, -1)), axis=1)
    w = tf.ones_like(per) if weights is None else tf.cast(tf.reshape(as_tf(weights), (-1,)), per.dtype)
    if mask is not None:
        w = w * tf.cast(tf.reshape(as_tf(mask), (-1,)), per.dtype)
    return tf.reduce_sum(per * w) / tf.maximum(tf.reduce_sum(w), 1e-12)


def _same_shape(o: Any, t: Any) -> Any:
    import tensorflow as tf

    t = as_tf(t)
    if t.shape != o.shape and t.shape.num_elements() == o.shape.num_elements():
        t = tf.reshape(t, tf.shape(o))
    return tf.cast(t, o.dtype) if t.dtype != o.dtype else t


def _flat(x: Any) -> Any:
    import tensorflow as tf

    return tf.reshape(x, (tf.shape(x)[0], -1))


def _pnorm(x: Any, p: float) -> Any:
    import tensorflow as tf

    if p == 2.0:
        return tf.sqrt(tf.reduce_sum(tf.square(x), axis=1))
    return tf.reduce_sum(tf.abs(x) ** p, axis=1) ** (1.0 / p)


def builtin_tf(name: str, kwargs: Mapping[str, Any]) -> LossFn:
    """The TensorFlow implementation of built-in loss ``name``: ``fn(inputs, weights, mask)``.

    >>> import tensorflow as tf
    >>> fn = builtin_tf("huber", {"delta": 0.5})
    >>> round(float(fn([tf.constant([[2.0]]), tf.constant([[0.0]])], None, None)), 4)
    0.875
    """
    import tensorflow as tf

    kw = dict(kwargs)
    if name == "mse":

        def mse(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            return reduce_tf(tf.square(o - _same_shape(o, t)), w, m)

        return mse
    if name == "mae":

        def mae(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            return reduce_tf(tf.abs(o - _same_shape(o, t)), w, m)

        return mae
    if name == "huber":
        delta = float(kw.get("delta", 1.0))

        def huber(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            d = o - _same_shape(o, t)
            a = tf.abs(d)
            per = tf.where(a <= delta, 0.5 * tf.square(d), delta * (a - 0.5 * delta))
            return reduce_tf(per, w, m)

        return huber
    if name == "bce":

        def bce(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            t = _same_shape(o, t)
            # F.binary_cross_entropy clamps each log at -100
            log_o = tf.maximum(tf.math.log(o), -100.0)
            log_1mo = tf.maximum(tf.math.log(1.0 - o), -100.0)
            return reduce_tf(-(t * log_o + (1.0 - t) * log_1mo), w, m)

        return bce
    if name == "bce_with_logits":

        def bce_logits(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            return reduce_tf(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=_same_shape(o, t), logits=o), w, m
            )

        return bce_logits
    if name == "cross_entropy":
        smoothing = float(kw.get("label_smoothing", 0.0))

        def cross_entropy(args: Sequence[Any], w: Any, m: Any) -> Any:
            o, t = args
            t = as_tf(t)
            n_classes = o.shape[1]
            logp = tf.nn.log_softmax(o, axis=1)
            if t.dtype.is_floating and t.shape == o.shape:
                q = tf.cast(t, o.dtype)
            else:
                q = tf.one_hot(tf.cast(tf.reshape(t, (-1,)), tf.int32), n_classes, dtype=o.dtype)
            if smoothing:
                q = q * (1.0 - smoothing) + smoothing / n_classes
            return reduce_tf(-tf.reduce_sum(q * logp, axis=1), w, m)

        return cross_entropy
    if name == "triplet_margin":
        margin = float(kw.get("margin", 1.0))
        p = float(kw.get("p", 2.0))

        def triplet(args: Sequence[Any], w: Any, m: Any) -> Any:
            a, pos, neg = (_flat(x) for x in args)
            # F.pairwise_distance adds eps=1e-6 to the difference
            d_pos = _pnorm(a - pos + 1e-6, p)
            d_neg = _pnorm(a - neg + 1e-6, p)
            return reduce_tf(tf.maximum(d_pos - d_neg + margin, 0.0), w, m)

        return triplet
    if name == "contrastive":
        margin = float(kw.get("margin", 1.0))
        fixed = kw.get("similar")

        def contrastive(args: Sequence[Any], w: Any, m: Any) -> Any:
            a, b = _flat(args[0]), _flat(args[1])
            d = tf.sqrt(tf.reduce_sum(tf.square(a - b), axis=1))
            if fixed is None:
                y = tf.cast(tf.reshape(as_tf(args[2]), (-1,)), d.dtype)
            else:
                y = tf.fill(tf.shape(d), tf.constant(1.0 if fixed else 0.0, d.dtype))
            per = y * tf.square(d) + (1.0 - y) * tf.square(tf.maximum(margin - d, 0.0))
            return reduce_tf(per, w, m)

        return contrastive
    raise ConfigError(f"unknown loss {name!r}")  # pragma: no cover - validated by Loss
