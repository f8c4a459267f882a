"""Device names of phases and nodes to devices, with a clear error when a device is not there.

>>> resolve_device("cpu")
device(type='cpu')
>>> resolve_device("tpu")
Traceback (most recent call last):
...
mml.errors.DeviceError: unknown device 'tpu'; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'
"""

from __future__ import annotations

from typing import Any

from mml.backends import resolve_device as _resolve
from mml.errors import DeviceError

__all__ = ["resolve_device"]


def resolve_device(name: str | None) -> Any:
    """A ``torch.device`` for ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` (``None`` → ``None``).

    ``None`` means "not set" (a node's device then falls back to its phase's). ``"auto"``
    picks CUDA, then MPS, then the CPU. An unavailable device is a :class:`~mml.DeviceError`
    naming it (see :func:`mml.backends.resolve_device`).
    """
    if name is None:
        return None
    if not isinstance(name, str) and type(name).__module__.split(".")[0] != "torch":
        raise DeviceError(f"a device is a string such as 'cpu' or 'cuda:0', got {name!r}")
    return _resolve(name)
