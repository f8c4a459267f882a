"""Records compare torch tensors by value, also tensors that require grad."""

import numpy as np
import pytest

from mml._fields import arrays_equal

torch = pytest.importorskip("torch")


def test_a_tensor_that_requires_grad_compares_by_value() -> None:
    t = torch.ones(3, requires_grad=True)
    assert arrays_equal(t, np.ones(3, np.float32)) and arrays_equal(np.ones(3, np.float32), t)
    assert not arrays_equal(t, np.zeros(3, np.float32))
    assert not arrays_equal(t, np.ones(3, np.float64))  # the dtype counts
    assert t.requires_grad and t.grad is None  # nothing was computed through it


def test_torch_params_with_a_grad_tensor_compare_by_value() -> None:
    from mml.backends import TorchParams

    def params(w):  # type: ignore[no-untyped-def]
        return TorchParams(params={"w": w}, buffers={}, input_shape=(2,), output_shape=(1,))

    grad = params(torch.ones(2, requires_grad=True))
    assert grad == params(np.ones(2, np.float32)) == grad
    assert grad != params(torch.zeros(2, requires_grad=True))
