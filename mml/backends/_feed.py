"""What a training or evaluation step hands a backend: batches, loss inputs, placed parameters.

The training fold knows no framework: it asks this module to turn a batch's numpy arrays into
the tensors a node's backend computes with (once per batch, sharing the batch's memory on the
CPU), to place a node's parameters where it runs, and to read numbers back. Torch and
TensorFlow are imported only when such a value is met.

>>> import numpy as np
>>> from mml.data import SampleData
>>> sd = SampleData(features=np.ones((2, 3), np.float64))
>>> feed_data(sd, "torch").features.dtype
torch.float32
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict
from mml.backends._losses_tf import as_tf
from mml.backends._params import KerasParams, TorchParams
from mml.data import torch_view

__all__ = [
    "as_loss_input",
    "detach",
    "feed_data",
    "is_accelerator",
    "no_grad",
    "params_device",
    "move_params",
    "replace_fields",
    "tensor_params",
    "trainable_dict",
    "with_evolved",
    "with_trainable",
    "zeros_like",
]


def replace_fields(inst: Any, **changes: Any) -> Any:
    """``attrs.evolve`` without re-running converters and validators.

    Only for values the loop itself just built from already-valid parts (the hot path):
    re-validating a frozen record every step costs more than the step's arithmetic.

    >>> p = TorchParams(params={"w": np.zeros(1)})
    >>> replace_fields(p, input_shape=(1,)).input_shape
    (1,)
    """
    cls = inst.__class__
    new = object.__new__(cls)
    for a in cls.__attrs_attrs__:
        name = a.name
        object.__setattr__(new, name, changes[name] if name in changes else getattr(inst, name))
    return new


# -- batches -------------------------------------------------------------------------------


def _torch_array(a: Any, device: Any) -> Any:
    import torch

    if a is None:
        return None
    if isinstance(a, torch.Tensor):
        t = a
    else:
        a = np.asarray(a)
        if a.dtype.kind == "f":
            if a.dtype != np.float32:
                a = a.astype(np.float32)
        elif a.dtype.kind not in "iub":
            return a
        t = torch_view(a)  # shares read-only batch memory (no per-step copy)
    if device is not None and t.device != device:
        t = t.to(device, non_blocking=True)
    return t


def _tf_array(a: Any, device: Any = None) -> Any:
    if a is None:
        return None
    if not hasattr(a, "dtype") or getattr(a.dtype, "kind", "f") not in "biuf":
        return a
    return as_loss_input(a, "tensorflow")


def feed_data(sd: Any, backend: str, device: Any = None) -> Any:
    """A :class:`~mml.data.SampleData` with features, targets, weights and mask as ``backend`` tensors.

    ``"torch"``: floats become float32 torch tensors sharing the batch's memory (moved to
    ``device`` when given); ``"tensorflow"``: float32 TensorFlow tensors. Tags, UUIDs and
    text stay as they are. Call it once per batch and head.

    >>> from mml.data import SampleData
    >>> sd = SampleData(features=np.ones((2, 1), np.float32), targets=np.zeros(2))
    >>> type(feed_data(sd, "tensorflow").targets).__name__
    'EagerTensor'
    """
    conv = _tf_array if backend == "tensorflow" else _torch_array
    return replace_fields(
        sd,
        features=conv(sd.features, device),
        targets=conv(sd.targets, device),
        weights=conv(sd.weights, device),
        mask=conv(sd.mask, device),
    )


def as_loss_input(y: Any, backend: str) -> Any:
    """``y`` (an output, target, weight or mask) as a tensor of ``backend``; crossing backends detaches.

    >>> as_loss_input(np.arange(3.0), "torch").dtype
    torch.float64
    """
    if backend == "tensorflow":
        return as_tf(y)
    import torch

    if isinstance(y, torch.Tensor):
        return y
    if hasattr(y, "numpy"):  # a TensorFlow tensor crossing into torch
        y = y.numpy()
    a = np.asarray(y)
    if a.dtype.kind in "biuf":
        return torch_view(a)
    return torch.as_tensor(a)


def detach(y: Any) -> Any:
    """``y`` without its autograd history (a torch tensor); other values as they are.

    >>> detach(1.5)
    1.5
    """
    return y.detach() if hasattr(y, "detach") else y


def zeros_like(v: Any) -> Any:
    """A tensor of zeros like ``v`` (torch or TensorFlow).

    >>> import torch
    >>> zeros_like(torch.ones(2)).tolist()
    [0.0, 0.0]
    """
    if hasattr(v, "detach"):
        import torch

        return torch.zeros_like(v)
    import tensorflow as tf

    return tf.zeros_like(v)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """A context in which torch records no gradients (a no-op without torch loaded).

    >>> with no_grad():
    ...     pass
    """
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    with torch.no_grad():
        yield


def is_accelerator(device: Any) -> bool:
    """Whether ``device`` (a torch device) is anything but the CPU.

    >>> is_accelerator(None)
    False
    """
    return device is not None and getattr(device, "type", "cpu") != "cpu"


# -- parameters ----------------------------------------------------------------------------


def trainable_dict(rec: Any) -> Mapping[str, Any]:
    """A node's trainable tensors by name (Keras variables are named by position: ``"0"``, ``"1"``...).

    >>> list(trainable_dict(KerasParams(trainable=(np.zeros(1), np.zeros(2)))))
    ['0', '1']
    """
    if isinstance(rec, KerasParams):
        return {str(i): v for i, v in enumerate(rec.trainable)}
    return rec.params  # type: ignore[no-any-return]


def with_trainable(rec: Any, params: Mapping[str, Any]) -> Any:
    """``rec`` with the trainable tensors of :func:`trainable_dict` replaced.

    >>> with_trainable(KerasParams(trainable=(np.zeros(1),)), {"0": np.ones(1)}).trainable[0][0]
    np.float64(1.0)
    """
    if isinstance(rec, KerasParams):
        return replace_fields(rec, trainable=tuple(params[str(i)] for i in range(len(rec.trainable))))
    return replace_fields(rec, params=FrozenDict.wrap(dict(params)))


def with_evolved(rec: Any, new: Any) -> Any:
    """``rec`` with the state a forward pass evolved in ``new`` (BatchNorm statistics) written in.

    >>> p = TorchParams(params={"w": np.zeros(1)})
    >>> with_evolved(p, p) is p
    True
    """
    if isinstance(new, KerasParams):
        return replace_fields(rec, non_trainable=new.non_trainable)
    if isinstance(new, TorchParams) and new.buffers:
        return replace_fields(rec, buffers=FrozenDict.wrap(dict(new.buffers.items())))
    return rec


def params_device(rec: Any) -> Any:
    """The device a torch node's parameters live on (``None`` for other records).

    >>> params_device(None) is None
    True
    """
    params = getattr(rec, "params", None)
    if isinstance(rec, TorchParams) and params:
        v = next(iter(params.values()))
        return getattr(v, "device", None)
    return None


def _tf_tensors(rec: KerasParams) -> KerasParams:
    import tensorflow as tf

    def conv(vs: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(tf.convert_to_tensor(np.asarray(v)) if not isinstance(v, tf.Tensor) else v for v in vs)

    if all(isinstance(v, tf.Tensor) for v in (*rec.trainable, *rec.non_trainable)):
        return rec
    return attrs.evolve(rec, trainable=conv(rec.trainable), non_trainable=conv(rec.non_trainable))


def _torch_on(rec: TorchParams, device: Any) -> TorchParams:
    import torch

    def conv(m: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: (v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))).to(device)
            for k, v in m.items()
        }

    if not rec.params:
        return rec
    if all(isinstance(v, torch.Tensor) and v.device == device for v in rec.params.values()):
        return rec
    new = attrs.evolve(rec, params=conv(rec.params))
    if rec.buffers:
        new = attrs.evolve(new, buffers=conv(rec.buffers))
    return new


def move_params(rec: Any, device: Any) -> Any:
    """A torch node's record with its tensors on ``device`` (a loaded state holds numpy arrays).

    Other records, and records already there, come back unchanged.

    >>> import torch
    >>> p = move_params(TorchParams(params={"w": np.zeros(1, np.float32)}), torch.device("cpu"))
    >>> type(p.params["w"]).__name__
    'Tensor'
    """
    if isinstance(rec, TorchParams) and device is not None:
        return _torch_on(rec, device)
    return rec


def tensor_params(rec: Any) -> Any:
    """A Keras node's record with TensorFlow tensors (a loaded state holds numpy arrays).

    >>> type(tensor_params(KerasParams(trainable=(np.zeros(1, np.float32),))).trainable[0]).__name__
    'EagerTensor'
    """
    if isinstance(rec, KerasParams):
        return _tf_tensors(rec)
    return rec
