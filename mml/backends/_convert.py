"""Conversions at backend boundaries: numpy <-> torch <-> tensorflow, and device names.

**Gradients stop here.** Converting a torch tensor to numpy or TensorFlow detaches it (and
the other way round): autograd graphs never cross a backend boundary. Within one backend a
conversion is a no-op that keeps the graph.

>>> import numpy as np
>>> to_backend(np.arange(3.0), "numpy").tolist()
[0.0, 1.0, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mml.data import torch_view
from mml.errors import BackendError, ConfigError, DeviceError

__all__ = ["to_backend", "to_numpy", "resolve_device", "backend_of"]

_TARGETS = ("numpy", "sklearn", "torch", "tensorflow")


def backend_of(x: Any) -> str:
    """``"torch"``, ``"tensorflow"`` or ``"numpy"`` for an array-like value.

    >>> backend_of(np.zeros(2))
    'numpy'
    """
    mod = type(x).__module__
    if mod.startswith("torch"):
        return "torch"
    if mod.startswith(("tensorflow", "keras")):
        return "tensorflow"
    return "numpy"


def to_numpy(x: Any) -> np.ndarray:
    """A numpy array from a numpy array, torch tensor (detached, moved to CPU) or TF tensor.

    >>> to_numpy([1, 2]).tolist()
    [1, 2]
    """
    kind = backend_of(x)
    if kind == "torch":
        return x.detach().cpu().numpy()  # type: ignore[no-any-return]
    if kind == "tensorflow":
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    return np.asarray(x)


def _torch_from_numpy(arr: np.ndarray) -> Any:

    if arr.dtype.kind not in "biuf":
        arr = np.asarray(arr, dtype=np.float32)
    return torch_view(arr)


def to_backend(x: Any, backend: str, *, device: Any = None) -> Any:
    """Convert ``x`` to the native array type of ``backend`` (``"numpy"``/``"sklearn"``, ``"torch"``, ``"tensorflow"``).

    Crossing backends detaches (gradients stop). Dtypes are kept. ``device`` is used for
    torch only.

    >>> t = to_backend(np.ones(2, np.float32), "torch")
    >>> type(t).__name__, t.dtype
    ('Tensor', torch.float32)
    """
    if backend not in _TARGETS:
        raise ConfigError(f"to_backend: unknown backend {backend!r}; use one of {', '.join(_TARGETS)}")
    source = backend_of(x)
    if backend in ("numpy", "sklearn"):
        return to_numpy(x)
    if backend == "torch":
        try:
            import torch  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise BackendError("to_backend(..., 'torch') needs PyTorch: pip install 'mml[torch]'") from exc
        t = x if source == "torch" else _torch_from_numpy(to_numpy(x))
        if device is not None:
            t = t.to(resolve_device(device))
        return t
    try:
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendError(
            "to_backend(..., 'tensorflow') needs TensorFlow: pip install 'mml[tensorflow]'"
        ) from exc
    if source == "tensorflow":
        return x
    return tf.convert_to_tensor(to_numpy(x))


def resolve_device(device: Any) -> Any:
    """A ``torch.device`` for ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"auto"`` (the best available).

    ``None`` is the CPU (callers with a fallback — a node's device falls back to its phase's —
    resolve only a device that is set). Anything but a string or a ``torch.device``, and an
    unavailable device, is a :class:`~mml.DeviceError` naming it.

    >>> str(resolve_device("cpu"))
    'cpu'
    >>> resolve_device(0)
    Traceback (most recent call last):
    ...
    mml.errors.DeviceError: a device is a string such as 'cpu' or 'cuda:0', got 0
    """
    import torch

    if device is None:
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise DeviceError(f"a device is a string such as 'cpu' or 'cuda:0', got {device!r}")
    if isinstance(device, torch.device):
        dev = device
    else:
        name = str(device)
        if name == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            mps = getattr(torch.backends, "mps", None)
            if mps is not None and mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            dev = torch.device(name)
        except RuntimeError as exc:
            raise DeviceError(
                f"unknown device {name!r}; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'"
            ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {str(dev)!r} was requested but CUDA is not available (torch {torch.__version__}); "
                "use device='cpu' or device='auto'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {str(dev)!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(
                f"device {str(dev)!r} was requested but MPS is not available; use 'cpu' or 'auto'"
            )
    return dev
