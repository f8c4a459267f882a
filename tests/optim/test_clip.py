"""Gradient clipping against torch.nn.utils (and the caller's gradients stay untouched)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

import mml.optim as optim  # noqa: E402
from mml.errors import BackendError, ConfigError  # noqa: E402


def grads(seed: int, scale: float) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=gen) * scale for k, s in {"w": (8, 4), "b": (8,), "c": (1,)}.items()}


def torch_clipped(g: dict[str, Any], how: str, limit: float) -> dict[str, Any]:
    ps = {k: torch.nn.Parameter(torch.zeros_like(v)) for k, v in g.items()}
    for k, p in ps.items():
        p.grad = g[k].clone()
    if how == "norm":
        torch.nn.utils.clip_grad_norm_(list(ps.values()), limit)
    else:
        torch.nn.utils.clip_grad_value_(list(ps.values()), limit)
    return {k: p.grad for k, p in ps.items()}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3), limit=st.floats(1e-2, 10.0))
def test_clip_matches_torch_and_leaves_input_alone(seed: int, scale: float, limit: float) -> None:
    g = grads(seed, scale)
    before = {k: v.clone() for k, v in g.items()}
    by_norm = optim.clip_by_global_norm(g, limit)
    by_value = optim.clip_by_value(g, limit)
    ref_norm, ref_value = torch_clipped(g, "norm", limit), torch_clipped(g, "value", limit)
    for k in g:
        assert torch.equal(g[k], before[k])
        assert torch.equal(by_norm[k], ref_norm[k])
        assert torch.equal(by_value[k], ref_value[k])
    assert float(optim.global_norm(by_norm)) <= limit * (1 + 1e-5)
    assert max(float(v.abs().max()) for v in by_value.values()) <= limit * (1 + 1e-6)  # float32 limit


def test_global_norm() -> None:
    assert float(optim.global_norm({"a": torch.tensor([3.0]), "b": torch.tensor([[4.0]])})) == 5.0


def test_clip_errors() -> None:
    g = grads(0, 1.0)
    with pytest.raises(ConfigError):
        optim.clip_by_global_norm(g, 0.0)
    with pytest.raises(ConfigError):
        optim.clip_by_value(g, -1.0)
    with pytest.raises(ConfigError):
        optim.global_norm({})
    with pytest.raises(BackendError):
        optim.global_norm({"a": [1.0, 2.0]})
    with pytest.raises(BackendError, match="one optimizer state per backend"):
        tf = pytest.importorskip("tensorflow")
        optim.global_norm({"a": torch.ones(1), "b": tf.ones(1)})
