"""Backends: run model specs on PyTorch, Keras 3 (TensorFlow) or scikit-learn behind one protocol.

``init_params(spec, input_shape, output_shape, key=...)`` makes a parameter record;
``apply(spec, params, x, training=..., key=...)`` runs it and returns ``(y, new_params)``;
``value_and_grad`` and ``fit`` train it. torch, tensorflow and sklearn are imported only when a
backend is first used. See ``docs/models.md``.

The training fold imports no framework: what it hands a backend goes through the names below —
batches and loss inputs as tensors (``feed_data``, ``as_loss_input``), parameter records placed
and updated (``move_params``, ``tensor_params``, ``trainable_dict``, ``with_trainable``,
``with_evolved``, ``params_device``), the built-in losses per framework (``loss_function``,
``loss_reduction``) and scikit-learn's classification metrics (``classification_scores``).

>>> import mml, numpy as np
>>> from mml.models import SequentialMLP
>>> spec = SequentialMLP(hidden=(4,), output_shape=(1,))
>>> p = mml.backends.init_params(spec, (2,), key=mml.random.key(0))
>>> tuple(mml.backends.apply(spec, p, np.ones((3, 2), np.float32))[0].shape)
(3, 1)
"""

from typing import Any

from mml.backends._convert import (
    resolve_device as resolve_device,
    to_backend as to_backend,
    to_numpy as to_numpy,
)
from mml.backends._feed import (
    detach as detach,
)
from mml.backends._losses import (
    loss_function as loss_function,
)
from mml.backends._params import (
    AbstractNodeParams as AbstractNodeParams,
    KerasParams as KerasParams,
    SklearnFitted as SklearnFitted,
    SklearnParams as SklearnParams,
    TorchParams as TorchParams,
)
from mml.backends._protocol import (
    AbstractBackend as AbstractBackend,
    apply as apply,
    fit as fit,
    get_backend as get_backend,
    init_params as init_params,
    output_shape as output_shape,
    partial_fit as partial_fit,
    value_and_grad as value_and_grad,
)
from mml.backends._torch import torch_forward as torch_forward
from mml.models import AbstractModel
from mml.random import Key


def is_classifier(spec: AbstractModel) -> bool:
    """Whether a scikit-learn model spec is a classifier (see :func:`mml.backends._sklearn.is_classifier`).

    >>> from mml.models import SklearnModel
    >>> is_classifier(SklearnModel(estimator="sklearn.linear_model:SGDClassifier"))
    True
    """
    from mml.backends._sklearn import is_classifier as _is_classifier

    return _is_classifier(spec)


__all__ = [
    "AbstractBackend",
    "AbstractNodeParams",
    "KerasParams",
    "SklearnFitted",
    "SklearnParams",
    "TorchParams",
    "apply",
    "detach",
    "fit",
    "get_backend",
    "init_params",
    "output_shape",
    "loss_function",
    "partial_fit",
    "resolve_device",
    "to_backend",
    "to_numpy",
    "torch_forward",
    "value_and_grad",
]

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.backends._tape import Term as Term, open_tape as open_tape  # noqa: E402
from mml.backends._torch_ops import _activation as torch_activation  # noqa: E402
from mml.errors import removed_names as _removed_names  # noqa: E402

#: names 0.2 removed (``mml.init`` is the training state's; one name per thing)
__getattr__ = _removed_names(
    "mml.backends", {"init": "mml.backends.init_params(spec, input_shape, output_shape, key=...)"}
)
from mml.backends._convert import backend_of as backend_of  # noqa: E402
from mml.backends._feed import (  # noqa: E402
    as_loss_input as as_loss_input,
    feed_data as feed_data,
    is_accelerator as is_accelerator,
    move_params as move_params,
    no_grad as no_grad,
    params_device as params_device,
    replace_fields as replace_fields,
    tensor_params as tensor_params,
    trainable_dict as trainable_dict,
    with_evolved as with_evolved,
    with_trainable as with_trainable,
    zeros_like as zeros_like,
)
from mml.backends._losses import (  # noqa: E402
    LOSS_FRAMEWORKS as LOSS_FRAMEWORKS,
    loss_reduction as loss_reduction,
)
from mml.backends._metrics import (  # noqa: E402
    SKLEARN_CLASSIFICATION_METRICS as SKLEARN_CLASSIFICATION_METRICS,
    classification_scores as classification_scores,
)
