"""Learning-rate schedules: torch.optim.lr_scheduler equivalence and properties."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

import mml
import mml.optim as optim
from mml.errors import ConfigError

lrs = st.floats(1e-6, 10.0)
factors = st.floats(0.0, 1.0)
steps = st.integers(0, 10_000)


def torch_lrs(make_sched: Callable[[Any], Any], lr: float, n: int) -> list[float]:
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make_sched(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()  # before sched.step(), as torch asks
        sched.step()
    return out


@pytest.mark.parametrize(
    ("schedule", "make_sched"),
    [
        (optim.Constant(0.1), lambda o: torch_const(o)),
        (optim.StepDecay(0.1, step_size=7, gamma=0.3), lambda o: sched_mod().StepLR(o, 7, 0.3)),
        (optim.Exponential(0.1, gamma=0.95), lambda o: sched_mod().ExponentialLR(o, 0.95)),
        (
            optim.Cosine(0.1, total_steps=40, min_lr=1e-3),
            lambda o: sched_mod().CosineAnnealingLR(o, 40, 1e-3),
        ),
        (
            optim.LinearWarmup(0.1, warmup_steps=10, start_factor=0.25),
            lambda o: sched_mod().LinearLR(o, start_factor=0.25, total_iters=10),
        ),
        (
            optim.LinearWarmup(optim.Cosine(0.1, total_steps=30), warmup_steps=10, start_factor=0.1),
            lambda o: sched_mod().SequentialLR(
                o,
                [sched_mod().LinearLR(o, 0.1, total_iters=10), sched_mod().CosineAnnealingLR(o, 30)],
                milestones=[10],
            ),
        ),
    ],
    ids=["constant", "step", "exponential", "cosine", "warmup", "warmup-cosine"],
)
def test_matches_torch_lr_scheduler(schedule: optim.AbstractSchedule, make_sched: Any) -> None:
    n = 41
    ref = torch_lrs(make_sched, schedule(0) if not isinstance(schedule, optim.LinearWarmup) else 0.1, n)
    assert [schedule(t) for t in range(n)] == pytest.approx(ref, rel=1e-9, abs=1e-12)


def sched_mod() -> Any:
    torch = pytest.importorskip("torch")
    return torch.optim.lr_scheduler


def torch_const(o: Any) -> Any:
    return sched_mod().LambdaLR(o, lambda _: 1.0)


# -- properties -----------------------------------------------------------------------


@settings(max_examples=50)
@given(lr=lrs, t=steps)
def test_constant_is_constant(lr: float, t: int) -> None:
    assert optim.Constant(lr)(t) == lr


@settings(max_examples=50)
@given(lr=lrs, step_size=st.integers(1, 100), gamma=st.floats(0.01, 1.0), t=steps)
def test_step_decay_is_non_increasing_and_piecewise_constant(
    lr: float, step_size: int, gamma: float, t: int
) -> None:
    s = optim.StepDecay(lr, step_size=step_size, gamma=gamma)
    assert s(t + 1) <= s(t) <= lr
    assert s(t) == s((t // step_size) * step_size)


@settings(max_examples=50)
@given(lr=lrs, gamma=st.floats(0.01, 1.0), t=st.integers(0, 1000))
def test_exponential_is_non_increasing(lr: float, gamma: float, t: int) -> None:
    s = optim.Exponential(lr, gamma=gamma)
    assert s(0) == lr
    assert s(t + 1) <= s(t)
    assert s(t + 1) == pytest.approx(s(t) * gamma, rel=1e-9, abs=1e-300)


@settings(max_examples=50)
@given(lr=lrs, frac=factors, total=st.integers(1, 1000), t=st.integers(0, 2000))
def test_cosine_falls_from_lr_to_min_lr_and_stays(lr: float, frac: float, total: int, t: int) -> None:
    min_lr = lr * frac
    s = optim.Cosine(lr, total_steps=total, min_lr=min_lr)
    assert s(0) == pytest.approx(lr)
    assert s(total) == min_lr
    assert s(total + t) == min_lr
    assert min_lr - 1e-12 <= s(t) <= lr + 1e-12
    assert s(t + 1) <= s(t) + 1e-12


@settings(max_examples=50)
@given(lr=lrs, warmup=st.integers(1, 200), start=factors, t=st.integers(0, 400))
def test_warmup_starts_at_start_factor_and_rises_to_the_schedule(
    lr: float, warmup: int, start: float, t: int
) -> None:
    inner = optim.Cosine(lr, total_steps=100)
    s = optim.LinearWarmup(inner, warmup_steps=warmup, start_factor=start)
    assert s(0) == pytest.approx(start * lr)
    if t < warmup:
        assert start * lr - 1e-12 <= s(t) <= s(t + 1) + 1e-12 <= lr + 2e-12
    else:
        assert s(t) == inner(t - warmup)


def test_warmup_of_zero_steps_is_the_schedule() -> None:
    inner = optim.Exponential(1.0, 0.5)
    assert [optim.LinearWarmup(inner, 0)(t) for t in range(4)] == [inner(t) for t in range(4)]


SCHEDULES = [
    optim.Constant(0.1),
    optim.StepDecay(0.1, 10),
    optim.Exponential(0.1, 0.9),
    optim.Cosine(0.1, 100, 1e-4),
    optim.LinearWarmup(optim.LinearWarmup(optim.Cosine(0.1, 100), 5), 10, start_factor=0.5),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_schedules_round_trip(schedule: optim.AbstractSchedule) -> None:
    assert mml.io.roundtrip(schedule) == schedule
    assert mml.io.structure(mml.io.unstructure(schedule), optim.AbstractSchedule) == schedule
    assert hash(mml.io.roundtrip(schedule)) == hash(schedule)


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.Constant(-1.0),
        lambda: optim.StepDecay(0.1, step_size=0),
        lambda: optim.StepDecay(0.1, step_size=1.5),
        lambda: optim.Exponential(0.1, gamma=0.0),
        lambda: optim.Cosine(0.1, total_steps=0),
        lambda: optim.Cosine(0.1, total_steps=10, min_lr=0.2),
        lambda: optim.LinearWarmup(0.1, warmup_steps=-1),
        lambda: optim.LinearWarmup(0.1, warmup_steps=5, start_factor=1.5),
        lambda: optim.Constant(0.1)(-1),
        lambda: optim.learning_rate_at(0.1, -1),
    ],
)
def test_bad_schedules_raise_config_error(make: Any) -> None:
    with pytest.raises(ConfigError):
        make()


def test_learning_rate_at() -> None:
    assert optim.learning_rate_at(0.5, 3) == 0.5
    assert optim.learning_rate_at(optim.Cosine(1.0, 2), 1) == pytest.approx(0.5)
    assert math.isclose(optim.adam(optim.Cosine(1.0, 2)).learning_rate(1), 0.5)
