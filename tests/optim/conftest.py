"""Shared fixtures for the optimizer tests: a small MLP and deterministic batches."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")


def make_mlp(seed: int = 0) -> Any:
    """A 16→64→64→1 tanh MLP with weights drawn from an explicit generator.

    Weights are scaled by ``1/sqrt(fan_in)`` so that no tanh saturates: saturated units give
    gradients so small that their squares are subnormal floats, which makes ``sqrt`` (in
    torch.optim and here alike) hundreds of times slower.
    """
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 1),
    )
    with torch.no_grad():
        for p in model.parameters():
            scale = p.shape[1] ** -0.5 if p.ndim == 2 else 0.1
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return model


def make_batches(n: int, seed: int = 1) -> list[tuple[Any, Any]]:
    """``n`` deterministic regression batches of 32 samples."""
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(32, 16, generator=gen), torch.randn(32, 1, generator=gen)) for _ in range(n)]


@pytest.fixture(scope="module")
def mlp() -> Any:
    return make_mlp()


@pytest.fixture(scope="module")
def batches() -> list[tuple[Any, Any]]:
    return make_batches(200)
