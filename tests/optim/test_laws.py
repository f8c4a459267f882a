"""Laws every optimizer obeys: inputs never mutated, same inputs ⇒ same bits, no aliasing,
specs and states round-trip, bad input fails with an mml error."""

from __future__ import annotations

import json
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

import mml  # noqa: E402
import mml.optim as optim  # noqa: E402
from mml.errors import BackendError, ConfigError, TrainingError  # noqa: E402

OPTIMIZERS = [
    optim.sgd(0.1),
    optim.clipped(optim.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=1e-2), norm=1.0),
    optim.clipped(optim.sgd(0.1, momentum=0.9, dampening=0.5), value=0.5),
    optim.adam(),
    optim.clipped(optim.adam(optim.Cosine(1e-2, 100), weight_decay=0.1, amsgrad=True), norm=0.5, value=1.0),
    optim.adamw(optim.LinearWarmup(optim.StepDecay(1e-2, 10, 0.5), warmup_steps=5, start_factor=0.1)),
    optim.adamw(amsgrad=True),
    optim.rmsprop(),
    optim.rmsprop(optim.Exponential(1e-2, 0.9), momentum=0.9, centered=True, weight_decay=1e-3),
]
IDS = [f"{type(o).__name__}-{i}" for i, o in enumerate(OPTIMIZERS)]


def tensors(seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    gen = torch.Generator().manual_seed(seed)
    shapes = {"layer.weight": (4, 3), "layer.bias": (4,), "scale": ()}
    params = {k: torch.randn(s, generator=gen) for k, s in shapes.items()}
    grads = {k: torch.randn(s, generator=gen) for k, s in shapes.items()}
    return params, grads


def state_tensors(state: Any) -> list[Any]:
    return [t for f in attrs.fields(type(state)) for t in getattr(state, f.name).values()]


def snapshot(*mappings: Any) -> list[Any]:
    return [t.clone() for m in mappings for t in m.values()]


def advance(opt: Any, n: int, seed: int = 0) -> tuple[dict[str, Any], Any]:
    params, grads = tensors(seed)
    state = opt.init(params)
    for step in range(n):
        params, state = opt.update(grads, state, params, step)
    return params, state


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=IDS)
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), step=st.integers(0, 50))
def test_inputs_never_mutated_and_outputs_are_new(opt: Any, seed: int, step: int) -> None:
    params, grads = tensors(seed)
    _, state = advance(opt, 2, seed + 1)
    before = snapshot(params, grads) + [t.clone() for t in state_tensors(state)]
    new_params, new_state = opt.update(grads, state, params, step)
    after = list(params.values()) + list(grads.values()) + state_tensors(state)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    # the results share no memory with the inputs, so writing to them cannot reach the caller
    old_ptrs = {t.data_ptr() for t in after}
    for t in list(new_params.values()) + state_tensors(new_state):
        assert t.data_ptr() not in old_ptrs
    assert type(new_state) is type(state)
    assert list(new_params) == list(params)


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=IDS)
def test_same_inputs_give_bit_identical_outputs(opt: Any) -> None:
    params, grads = tensors(3)
    _, state = advance(opt, 3, 4)
    a_params, a_state = opt.update(grads, state, params, 7)
    b_params, b_state = opt.update(grads, state, params, 7)
    assert all(torch.equal(a_params[k], b_params[k]) for k in params)
    assert a_state == b_state
    # and an optimizer rebuilt from its saved document does the same
    c_params, c_state = mml.io.roundtrip(opt).update(grads, mml.io.roundtrip(state), params, 7)
    assert all(torch.equal(a_params[k], c_params[k]) for k in params)
    assert a_state == c_state


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=IDS)
def test_specs_round_trip(opt: Any) -> None:
    assert mml.io.roundtrip(opt) == opt
    doc = mml.io.unstructure(opt)
    assert doc["kind"] == type(opt).kind
    assert mml.io.structure(json.loads(json.dumps(doc)), optim.AbstractOptimizer) == opt


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=IDS)
def test_states_round_trip_as_torch_tensors(opt: Any) -> None:
    _, state = advance(opt, 3)
    back = mml.io.roundtrip(state)
    assert back == state
    for a, b in zip(state_tensors(state), state_tensors(back)):
        assert isinstance(b, torch.Tensor)
        assert torch.equal(a, b) and a.dtype == b.dtype


def test_zero_dim_state_round_trips() -> None:
    opt = optim.adam()
    state = opt.init({"temperature": torch.tensor(1.0)})
    assert mml.io.roundtrip(state) == state


def test_state_equality_sees_values() -> None:
    opt = optim.adam()
    _, s1 = advance(opt, 1)
    _, s2 = advance(opt, 2)
    assert s1 != s2


def test_empty_params() -> None:
    for opt in OPTIMIZERS:
        state = opt.init({})
        assert opt.update({}, state, {}, 0) == ({}, state)


def test_returned_params_are_plain_dicts_usable_by_torch_func() -> None:
    params, grads = tensors(0)
    new_params, _ = optim.adam().update(grads, optim.adam().init(params), params, 0)
    assert type(new_params) is dict
    g = torch.func.grad(lambda p: sum((v**2).sum() for v in p.values()))(new_params)
    assert set(g) == set(params)


def test_learning_rate() -> None:
    opt = optim.sgd(optim.StepDecay(1.0, step_size=2, gamma=0.5))
    assert [opt.learning_rate(t) for t in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert opt.learning_rate(2, lr_scale=0.1) == 0.05
    assert optim.adam(0.3).learning_rate(10**9) == 0.3


# -- look-up by name ------------------------------------------------------------------


def test_get_by_name() -> None:
    assert optim.get_optimizer("adam", lr=1e-2) == optim.Adam(lr=0.01)
    assert optim.get_optimizer("AdamW") == optim.AdamW()
    assert optim.get_optimizer("sgd", lr=0.1, momentum=0.9) == optim.sgd(0.1, momentum=0.9)
    assert optim.get_optimizer("rmsprop", momentum=0.5) == optim.RMSprop(momentum=0.5)
    opt = optim.adam()
    assert optim.get_optimizer(opt) is opt


def test_get_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="valid names: 'adam', 'adamw', 'rmsprop', 'sgd'"):
        optim.get_optimizer("adagrad")
    with pytest.raises(ConfigError, match="no hyperparameter 'learning_rate'"):
        optim.get_optimizer("adam", learning_rate=0.1)
    with pytest.raises(ConfigError, match="needs more hyperparameters"):
        optim.get_optimizer("sgd")
    with pytest.raises(ConfigError, match=r"attrs.evolve"):
        optim.get_optimizer(optim.adam(), lr=0.1)
    with pytest.raises(ConfigError, match="is a name"):
        optim.get_optimizer(3)  # type: ignore[arg-type]
    # issue 12: clipping composes; the old hyperparameter says the new spelling
    with pytest.raises(ConfigError) as err:
        optim.get_optimizer("rmsprop", clip_norm=1)
    assert str(err.value) == (
        "RMSprop has no hyperparameter 'clip_norm': clipping composes with an optimizer: {kind: optim.clipped, "
        "optimizer: {kind: ...}, norm: 1.0} (in Python mml.optim.clipped(mml.optim.adam(1e-3), norm=1.0))"
    )


# -- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.sgd(-0.1),
        lambda: optim.sgd(0.1, momentum=-1),
        lambda: optim.sgd(0.1, nesterov=True),
        lambda: optim.sgd(0.1, momentum=0.9, nesterov=True, dampening=0.1),
        lambda: optim.adam(betas=(0.9, 1.0)),
        lambda: optim.adam(betas=(0.9,)),  # type: ignore[arg-type]
        lambda: optim.adam(eps=-1e-8),
        lambda: optim.adamw(weight_decay=float("nan")),
        lambda: optim.clipped(optim.adam(), norm=0.0),
        lambda: optim.clipped(optim.adam(), value=-1.0),
        lambda: optim.clipped(optim.adam()),  # clips nothing
        lambda: optim.clipped("adam", norm=1.0),  # type: ignore[arg-type]
        lambda: optim.rmsprop(alpha=1.0),
        lambda: optim.adam(lr="fast"),  # type: ignore[arg-type]
        lambda: optim.adam(lr=float("inf")),
    ],
)
def test_bad_hyperparameters_raise_config_error(make: Any) -> None:
    with pytest.raises(ConfigError):
        make()


def test_update_misuse_raises_specific_errors() -> None:
    params, grads = tensors(0)
    opt = optim.adam()
    state = opt.init(params)
    with pytest.raises(TrainingError, match=r"missing gradients for \['scale'\]"):
        opt.update({k: v for k, v in grads.items() if k != "scale"}, state, params, 0)
    with pytest.raises(TrainingError, match=r"unknown parameters \['extra'\]"):
        opt.update({**grads, "extra": grads["scale"]}, state, params, 0)
    with pytest.raises(TrainingError, match="expected a AdamState"):
        opt.update(grads, optim.sgd(0.1).init(params), params, 0)
    with pytest.raises(TrainingError, match="init"):
        opt.update({**grads, "new": grads["scale"]}, state, {**params, "new": params["scale"]}, 0)
    with pytest.raises(ConfigError, match="step"):
        opt.update(grads, state, params, -1)
    numpy_params = {k: np.asarray(v) for k, v in params.items()}
    with pytest.raises(BackendError, match="convert it"):
        opt.update(numpy_params, state, numpy_params, 0)
