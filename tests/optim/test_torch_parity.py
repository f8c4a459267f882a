"""mml optimizers against torch.optim: 200 steps on a small MLP give the same numbers."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import mml.optim as optim  # noqa: E402

N_STEPS = 200  # the main parity tests
N_SHORT = 60  # the variations (clipping, schedules, torch implementations)


def grad_fn(model: Any) -> Callable[..., dict[str, Any]]:
    """Gradients of the MSE at ``params`` (autograd on fresh leaves; ``params`` are left alone)."""

    def grads(params: dict[str, Any], x: Any, y: Any) -> dict[str, Any]:
        leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        loss = ((torch.func.functional_call(model, leaves, (x,)) - y) ** 2).mean()
        return dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))

    return grads


def run_mml(opt: optim.AbstractOptimizer, model: Any, batches: list[Any]) -> dict[str, Any]:
    grads = grad_fn(model)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    state = opt.init(params)
    for step, (x, y) in enumerate(batches):
        params, state = opt.update(grads(params, x, y), state, params, step)
    return params


def run_torch(
    make_opt: Callable[[list[Any]], Any],
    model: Any,
    batches: list[Any],
    *,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    make_sched: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    ref = copy.deepcopy(model)
    opt = make_opt(list(ref.parameters()))
    sched = make_sched(opt) if make_sched else None
    for x, y in batches:
        opt.zero_grad()
        ((ref(x) - y) ** 2).mean().backward()
        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(ref.parameters(), clip_value)
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(ref.parameters(), clip_norm)
        opt.step()
        if sched is not None:
            sched.step()
    return {k: v.detach() for k, v in ref.named_parameters()}


def assert_close(mine: dict[str, Any], ref: dict[str, Any], atol: float = 1e-6) -> None:
    assert list(mine) == list(ref)
    for k in ref:
        assert mine[k].dtype == ref[k].dtype == torch.float32
        torch.testing.assert_close(mine[k], ref[k], atol=atol, rtol=1e-5, msg=lambda m, k=k: f"{k}: {m}")


CASES: list[tuple[str, optim.AbstractOptimizer, Callable[[list[Any]], Any]]] = [
    ("sgd", optim.sgd(0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    ("sgd-momentum", optim.sgd(0.02, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)),
    (
        "sgd-nesterov-wd",
        optim.sgd(0.02, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-3),
    ),
    (
        "sgd-dampening",
        optim.sgd(0.02, momentum=0.8, dampening=0.3),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, dampening=0.3),
    ),
    ("adam", optim.adam(1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    (
        "adam-wd-amsgrad",
        optim.adam(1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, amsgrad=True),
        lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, amsgrad=True),
    ),
    ("adamw", optim.adamw(1e-2), lambda p: torch.optim.AdamW(p, lr=1e-2)),
    (
        "adamw-amsgrad",
        optim.adamw(5e-3, weight_decay=0.1, amsgrad=True),
        lambda p: torch.optim.AdamW(p, lr=5e-3, weight_decay=0.1, amsgrad=True),
    ),
    ("rmsprop", optim.rmsprop(1e-3), lambda p: torch.optim.RMSprop(p, lr=1e-3)),
    (
        "rmsprop-centered-momentum-wd",
        optim.rmsprop(1e-3, alpha=0.9, momentum=0.5, centered=True, weight_decay=1e-2),
        lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9, momentum=0.5, centered=True, weight_decay=1e-2),
    ),
]


@pytest.mark.parametrize(("name", "opt", "make_ref"), CASES, ids=[c[0] for c in CASES])
def test_matches_torch_optim(name: str, opt: Any, make_ref: Any, mlp: Any, batches: list[Any]) -> None:
    assert_close(run_mml(opt, mlp, batches), run_torch(make_ref, mlp, batches))


@pytest.mark.parametrize("foreach", [True, False])
def test_adam_matches_both_torch_implementations(foreach: bool, mlp: Any, batches: list[Any]) -> None:
    batches = batches[:N_SHORT]
    ref = run_torch(lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3, foreach=foreach), mlp, batches)
    assert_close(run_mml(optim.adam(1e-2, weight_decay=1e-3), mlp, batches), ref)


@pytest.mark.parametrize(
    ("opt", "make_ref", "clip"),
    [
        (
            optim.clipped(optim.adam(1e-2), norm=0.5),
            lambda p: torch.optim.Adam(p, lr=1e-2),
            {"clip_norm": 0.5},
        ),
        (
            optim.clipped(optim.sgd(0.05, momentum=0.9), norm=0.1),
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
            {"clip_norm": 0.1},
        ),
        (
            optim.clipped(optim.sgd(0.05), value=0.01),
            lambda p: torch.optim.SGD(p, lr=0.05),
            {"clip_value": 0.01},
        ),
        (
            optim.clipped(optim.rmsprop(1e-3), value=0.05, norm=0.2),
            lambda p: torch.optim.RMSprop(p, lr=1e-3),
            {"clip_value": 0.05, "clip_norm": 0.2},
        ),
    ],
    ids=["adam-norm", "sgd-momentum-norm", "sgd-value", "rmsprop-value-then-norm"],
)
def test_clipping_matches_torch_utils(
    opt: Any, make_ref: Any, clip: dict[str, float], mlp: Any, batches: Any
) -> None:
    batches = batches[:N_SHORT]
    # the clip must actually bite, or the test says nothing
    grad = grad_fn(mlp)(dict(mlp.named_parameters()), *batches[0])
    assert float(optim.global_norm(grad)) > clip.get("clip_norm", 0.0)
    assert max(float(g.abs().max()) for g in grad.values()) > clip.get("clip_value", 0.0)
    assert_close(run_mml(opt, mlp, batches), run_torch(make_ref, mlp, batches, **clip))


@pytest.mark.parametrize(
    ("schedule", "make_sched"),
    [
        (
            optim.StepDecay(1e-2, step_size=15, gamma=0.5),
            lambda o: torch.optim.lr_scheduler.StepLR(o, 15, 0.5),
        ),
        (optim.Exponential(1e-2, gamma=0.97), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.97)),
        (
            optim.Cosine(1e-2, total_steps=N_SHORT, min_lr=1e-4),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=N_SHORT, eta_min=1e-4),
        ),
        (
            optim.LinearWarmup(1e-2, warmup_steps=20, start_factor=0.1),
            lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=20),
        ),
    ],
    ids=["step", "exponential", "cosine", "warmup"],
)
def test_scheduled_adam_matches_torch_scheduler(
    schedule: Any, make_sched: Any, mlp: Any, batches: Any
) -> None:
    batches = batches[:N_SHORT]
    mine = run_mml(optim.adam(lr=schedule), mlp, batches)
    ref = run_torch(lambda p: torch.optim.Adam(p, lr=1e-2), mlp, batches, make_sched=make_sched)
    assert_close(mine, ref)


def test_lr_scale_multiplies_the_learning_rate(mlp: Any, batches: Any) -> None:
    params = {k: v.detach().clone() for k, v in mlp.named_parameters()}
    grads = grad_fn(mlp)(params, *batches[0])
    for scaled, plain in [
        (optim.adam(1e-2), optim.adam(5e-3)),
        (optim.sgd(0.1, momentum=0.9), optim.sgd(0.05, momentum=0.9)),
        (optim.rmsprop(1e-2), optim.rmsprop(5e-3)),
    ]:
        a, _ = scaled.update(grads, scaled.init(params), params, 0, lr_scale=0.5)
        b, _ = plain.update(grads, plain.init(params), params, 0)
        c, _ = scaled.update(grads, scaled.init(params), params, 0)
        for k in params:
            assert torch.equal(a[k], b[k])
            assert not torch.equal(a[k], c[k])
