"""``mml.training._devices.resolve_device`` pinned by value and message (issue 17)."""

from __future__ import annotations

import pytest

import mml
from mml.training._devices import resolve_device

torch = pytest.importorskip("torch")


def test_none_means_not_set():
    assert resolve_device(None) is None


def test_names_and_torch_devices_resolve_to_torch_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert type(resolve_device("cpu")) is torch.device
    dev = torch.device("cpu")
    assert resolve_device(dev) == dev  # a torch value is accepted as it is


@pytest.mark.parametrize("bad", [3, 0, b"cpu", ["cpu"], 1.5])
def test_a_device_that_is_not_a_string_says_what_it_got(bad):
    with pytest.raises(mml.DeviceError) as info:
        resolve_device(bad)
    assert str(info.value) == f"a device is a string such as 'cpu' or 'cuda:0', got {bad!r}"


def test_an_unknown_name_is_refused_with_the_options():
    with pytest.raises(mml.DeviceError) as info:
        resolve_device("tpu")
    assert str(info.value) == "unknown device 'tpu'; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'"


def test_torch_values_of_any_torch_module_go_to_the_backend_resolver():
    # a torch object that is not a torch.device (module 'torch.cuda') is not refused as "not a
    # string" here: the backends' resolver names it
    obj = torch.cuda.device(0)
    assert type(obj).__module__ == "torch.cuda"
    with pytest.raises(mml.DeviceError) as info:
        resolve_device(obj)
    assert str(info.value) == f"unknown device {str(obj)!r}; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'"
