"""Boundary conversions: values survive, gradients stop, devices are checked."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from mml.backends import backend_of, resolve_device, to_backend, to_numpy
from mml.errors import ConfigError, DeviceError

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

arrays = hnp.arrays(
    st.sampled_from([np.float32, np.float64, np.int64]),
    hnp.array_shapes(max_dims=3, max_side=4),
    elements=st.integers(-9, 9),
)


@settings(max_examples=20, deadline=None)
@given(
    arrays,
    st.sampled_from(["torch", "tensorflow", "numpy"]),
    st.sampled_from(["torch", "tensorflow", "numpy"]),
)
def test_roundtrip_between_backends_keeps_values_and_dtype(a: np.ndarray, first: str, second: str) -> None:
    a.flags.writeable = False  # read-only inputs are fine and never written to
    x = to_backend(to_backend(a, first), second)
    assert backend_of(x) == second
    back = to_numpy(x)
    assert back.dtype == a.dtype and np.array_equal(back, a)


def test_gradients_stop_at_the_boundary() -> None:
    t = torch.ones(3, requires_grad=True) * 2
    n = to_backend(t, "numpy")
    assert isinstance(n, np.ndarray)
    again = to_backend(to_backend(t, "tensorflow"), "torch")
    assert not again.requires_grad
    assert to_backend(t, "torch") is t  # same backend: no copy, graph kept


def test_errors() -> None:
    with pytest.raises(ConfigError, match="unknown backend"):
        to_backend(np.zeros(1), "jax")
    assert str(resolve_device("auto")) in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="use device='cpu'"):
            resolve_device("cuda:0")
