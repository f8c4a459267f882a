"""Node parameter records: the learned numbers of one model node, per backend.

They are frozen values. Tensors are leaves: :mod:`mml.io` saves them to safetensors and
loads torch tensors back as torch tensors (numpy arrays where torch is absent, and always
numpy for Keras), so every backend converts numpy leaves lazily when it runs.

>>> import numpy as np
>>> p = SklearnParams(fitted=None, input_shape=(3,), output_shape=(1,))
>>> p.is_fitted
False
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar, TypeAlias

import attrs
import numpy as np

from mml._fields import FrozenDict, frozen_dict, frozen_tuple

__all__ = [
    "AbstractNodeParams",
    "TorchParams",
    "KerasParams",
    "SklearnParams",
    "SklearnFitted",
    "ModelParams",
    "leaves_equal",
]


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _leaf_equal(a: Any, b: Any) -> bool:
    if type(a).__module__.startswith("torch") or type(b).__module__.startswith("torch"):
        import torch

        ta = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
        tb = b if isinstance(b, torch.Tensor) else torch.as_tensor(np.asarray(b))
        return ta.shape == tb.shape and ta.dtype == tb.dtype and bool(torch.equal(ta.cpu(), tb.cpu()))
    na = np.asarray(a)
    nb = np.asarray(b)
    return (
        na.shape == nb.shape
        and na.dtype == nb.dtype
        and bool(np.array_equal(na, nb, equal_nan=na.dtype.kind == "f"))
    )


def leaves_equal(a: Any, b: Any) -> bool:
    """Value equality of two tuples or mappings of tensors/arrays (any backend).

    >>> import numpy as np
    >>> leaves_equal((np.ones(2),), (np.ones(2),)), leaves_equal((np.ones(2),), (np.zeros(2),))
    (True, False)
    """
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return list(a) == list(b) and all(_leaf_equal(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_leaf_equal(x, y) for x, y in zip(a, b))
    return False


class AbstractNodeParams(abc.ABC):
    """Base of the per-backend parameter records (a tagged union for :mod:`mml.io`).

    >>> issubclass(TorchParams, AbstractNodeParams)
    True
    """

    _mml_union = True
    kind: ClassVar[str]
    backend: ClassVar[str]


_LEAVES_EQ = attrs.cmp_using(eq=leaves_equal)


@attrs.frozen
class TorchParams(AbstractNodeParams):
    """Parameters and buffers of a torch node, keyed by ``state_dict``-style names.

    ``input_shape`` / ``output_shape`` are the per-sample shapes the node was built for.

    >>> import numpy as np
    >>> p = TorchParams(params={"w": np.zeros(2, np.float32)}, buffers={}, input_shape=(2,), output_shape=(1,))
    >>> list(p.params)
    ['w']
    """

    kind: ClassVar[str] = "params.torch"
    backend: ClassVar[str] = "torch"

    params: Mapping[str, Any] = attrs.field(converter=frozen_dict)
    buffers: Mapping[str, Any] = attrs.field(converter=frozen_dict, factory=FrozenDict)
    input_shape: tuple[int, ...] = attrs.field(default=(), converter=_shape)
    output_shape: tuple[int, ...] = attrs.field(default=(), converter=_shape)

    def replace_params(self, params: Mapping[str, Any]) -> TorchParams:
        """The same record with new parameter tensors (an optimizer step's result).

        >>> import numpy as np
        >>> p = TorchParams(params={"w": np.zeros(1)}, buffers={})
        >>> float(p.replace_params({"w": np.ones(1)}).params["w"][0])
        1.0
        """
        return attrs.evolve(self, params=params)


@attrs.frozen
class KerasParams(AbstractNodeParams):
    """Trainable and non-trainable variable values of a Keras node, in the model's variable order.

    Random-seed state variables of Keras layers are not stored: they are drawn from the key
    on every call.

    >>> import numpy as np
    >>> KerasParams(trainable=(np.ones(2),), non_trainable=()) == KerasParams(trainable=(np.ones(2),), non_trainable=())
    True
    """

    kind: ClassVar[str] = "params.keras"
    backend: ClassVar[str] = "tensorflow"

    trainable: tuple[Any, ...] = attrs.field(converter=frozen_tuple, eq=_LEAVES_EQ, hash=False)
    non_trainable: tuple[Any, ...] = attrs.field(
        converter=frozen_tuple, eq=_LEAVES_EQ, hash=False, default=()
    )
    input_shape: tuple[int, ...] = attrs.field(default=(), converter=_shape)
    output_shape: tuple[int, ...] = attrs.field(default=(), converter=_shape)

    def replace_params(self, trainable: tuple[Any, ...]) -> KerasParams:
        """The same record with new trainable values.

        >>> import numpy as np
        >>> KerasParams(trainable=(np.zeros(1),)).replace_params((np.ones(1),)).trainable[0][0]
        np.float64(1.0)
        """
        return attrs.evolve(self, trainable=tuple(trainable))


def _attrs_eq(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if list(a) != list(b):
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not _leaf_equal(x, y):
                return False
        elif x != y and not (isinstance(x, float) and isinstance(y, float) and x != x and y != y):
            return False
    return True


@attrs.frozen
class SklearnFitted(AbstractNodeParams):
    """A fitted scikit-learn estimator as data: class path, constructor params, fitted attributes.

    Built by the sklearn backend's ``fit``; rebuilt without pickle by constructing the
    estimator from ``params`` and setting ``attributes``.

    >>> SklearnFitted(estimator="sklearn.preprocessing:StandardScaler", params={}, attributes={}).estimator
    'sklearn.preprocessing:StandardScaler'
    """

    kind: ClassVar[str] = "params.sklearn_fitted"
    backend: ClassVar[str] = "sklearn"

    estimator: str
    params: Mapping[str, Any] = attrs.field(converter=frozen_dict)
    attributes: Mapping[str, Any] = attrs.field(
        converter=frozen_dict, eq=attrs.cmp_using(eq=_attrs_eq), hash=False
    )
    # the estimator rebuilt from this record, once (backends/_sklearn.py): kept on the value,
    # never compared, hashed or saved, gone with the record; only transform/predict are called on it
    _rebuilt: Any = attrs.field(init=False, default=None, eq=False, hash=False, repr=False)


@attrs.frozen
class SklearnParams(AbstractNodeParams):
    """The state of a scikit-learn node: ``fitted`` is ``None`` until the node is fitted.

    >>> SklearnParams(fitted=None).is_fitted
    False
    """

    kind: ClassVar[str] = "params.sklearn"
    backend: ClassVar[str] = "sklearn"

    fitted: SklearnFitted | None = None
    input_shape: tuple[int, ...] = attrs.field(default=(), converter=_shape)
    output_shape: tuple[int, ...] = attrs.field(default=(), converter=_shape)

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has been run."""
        return self.fitted is not None


#: What a backend's ``init`` returns: the parameter record of a model node on one backend
#: (all three carry the per-sample ``input_shape`` / ``output_shape`` the node was built for).
ModelParams: TypeAlias = TorchParams | KerasParams | SklearnParams
