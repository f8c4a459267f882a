"""Device names to torch devices, with a clear error when a device is not there.

>>> resolve_device("cpu")
device(type='cpu')
>>> resolve_device("tpu")
Traceback (most recent call last):
...
mml.errors.DeviceError: unknown device 'tpu'; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'
"""

from __future__ import annotations

from typing import Any

from mml.errors import DeviceError

__all__ = ["resolve_device"]


def resolve_device(name: str | None) -> Any:
    """A ``torch.device`` for ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` (``None`` → ``None``).

    ``"auto"`` picks CUDA, then MPS, then the CPU. An unavailable device is a
    :class:`~mml.DeviceError` naming it.
    """
    if name is None:
        return None
    import torch

    if not isinstance(name, str):
        if isinstance(name, torch.device):
            name = str(name)
        else:
            raise DeviceError(f"a device is a string such as 'cpu' or 'cuda:0', got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} was asked for but CUDA is not available on this machine; "
                "use device='cpu' or 'auto'"
            )
        index = name.partition(":")[2]
        if index:
            if not index.isdigit():
                raise DeviceError(f"bad CUDA device {name!r}; use 'cuda' or 'cuda:N'")
            if int(index) >= torch.cuda.device_count():
                raise DeviceError(
                    f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
                )
        return torch.device(name)
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(
                "device 'mps' was asked for but Apple MPS is not available; use 'cpu' or 'auto'"
            )
        return torch.device("mps")
    raise DeviceError(f"unknown device {name!r}; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'")
