"""Optimizer values pinned step by step: every option against ``torch.optim`` on tiny float64
tensors (parameters *and* state), the TensorFlow path against the same reference, schedules and
clipping against hand-computed numbers, and every error message in full.

These are the fast tests the mutation run of ``mml/optim`` uses (see ``benchmarks/MUTATION.md``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import mml.optim as optim  # noqa: E402
from mml.errors import BackendError, ConfigError, TrainingError  # noqa: E402
from mml.optim._backend import ordered  # noqa: E402
from mml.optim._checks import float_pair, optional_float, to_float  # noqa: E402


def full(message: str) -> str:
    return "^" + re.escape(message) + "$"


# parameters and four steps of gradients: signs change and magnitudes fall, so that the
# AMSGrad maximum, momentum and the centered average all matter
P0 = {"a": [0.5, -1.0, 2.0], "b": [0.25, -0.75]}
GRADS = [
    {"a": [1.0, -2.0, 3.0], "b": [0.5, 4.0]},
    {"a": [-0.5, 1.0, 0.25], "b": [2.0, -1.0]},
    {"a": [0.125, -0.25, -1.5], "b": [-0.3, 0.2]},
    {"a": [0.7, 0.1, -0.2], "b": [0.05, -3.0]},
]

# (mml spec, torch.optim factory, names of the torch state entries → mml state fields)
SGD_STATE = {"momentum_buffer": "momentum_buffers"}
ADAM_STATE = {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}
AMS_STATE = {**ADAM_STATE, "max_exp_avg_sq": "max_exp_avg_sq"}
RMS_STATE = {"square_avg": "square_avg"}

CASES: list[tuple[str, Any, Any, dict[str, str]]] = [
    ("sgd", optim.sgd(0.1), lambda ps: torch.optim.SGD(ps, lr=0.1), {}),
    (
        "sgd-wd",
        optim.sgd(0.1, weight_decay=0.3),
        lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.3),
        {},
    ),
    (
        "sgd-momentum",
        optim.sgd(0.1, momentum=0.7),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.7),
        SGD_STATE,
    ),
    (
        "sgd-dampening-wd",
        optim.sgd(0.1, momentum=0.7, dampening=0.4, weight_decay=0.2),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.7, dampening=0.4, weight_decay=0.2),
        SGD_STATE,
    ),
    (
        "sgd-nesterov",
        optim.sgd(0.1, momentum=0.6, nesterov=True),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.6, nesterov=True),
        SGD_STATE,
    ),
    (
        "adam",
        optim.adam(0.1, betas=(0.6, 0.8), eps=0.05),
        lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.6, 0.8), eps=0.05),
        ADAM_STATE,
    ),
    (
        "adam-wd",
        optim.adam(0.1, betas=(0.5, 0.9), eps=0.01, weight_decay=0.3),
        lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.9), eps=0.01, weight_decay=0.3),
        ADAM_STATE,
    ),
    (
        "adam-amsgrad",
        optim.adam(0.1, betas=(0.6, 0.7), eps=0.02, amsgrad=True),
        lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.6, 0.7), eps=0.02, amsgrad=True),
        AMS_STATE,
    ),
    (
        "adamw",
        optim.adamw(0.1, betas=(0.6, 0.8), eps=0.05, weight_decay=0.4),
        lambda ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.6, 0.8), eps=0.05, weight_decay=0.4),
        ADAM_STATE,
    ),
    (
        "adamw-no-wd",
        optim.adamw(0.1, betas=(0.6, 0.8), eps=0.05, weight_decay=0.0),
        lambda ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.6, 0.8), eps=0.05, weight_decay=0.0),
        ADAM_STATE,
    ),
    (
        "adamw-amsgrad",
        optim.adamw(0.1, betas=(0.6, 0.7), eps=0.02, weight_decay=0.2, amsgrad=True),
        lambda ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.6, 0.7), eps=0.02, weight_decay=0.2, amsgrad=True),
        AMS_STATE,
    ),
    # a weight decay of exactly 1 (a test of `weight_decay != 0`, not of its size)
    (
        "sgd-wd1",
        optim.sgd(0.1, momentum=0.5, weight_decay=1.0),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.5, weight_decay=1.0),
        SGD_STATE,
    ),
    (
        "adam-wd1",
        optim.adam(0.1, betas=(0.5, 0.9), eps=0.01, weight_decay=1.0),
        lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.9), eps=0.01, weight_decay=1.0),
        ADAM_STATE,
    ),
    (
        "adamw-wd1",
        optim.adamw(0.1, betas=(0.5, 0.9), eps=0.01, weight_decay=1.0),
        lambda ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.5, 0.9), eps=0.01, weight_decay=1.0),
        ADAM_STATE,
    ),
    (
        "rmsprop-wd1",
        optim.rmsprop(0.1, alpha=0.6, eps=0.05, weight_decay=1.0),
        lambda ps: torch.optim.RMSprop(ps, lr=0.1, alpha=0.6, eps=0.05, weight_decay=1.0),
        RMS_STATE,
    ),
    (
        "rmsprop",
        optim.rmsprop(0.1, alpha=0.6, eps=0.05),
        lambda ps: torch.optim.RMSprop(ps, lr=0.1, alpha=0.6, eps=0.05),
        RMS_STATE,
    ),
    (
        "rmsprop-centered-wd",
        optim.rmsprop(0.1, alpha=0.6, eps=0.05, centered=True, weight_decay=0.3),
        lambda ps: torch.optim.RMSprop(ps, lr=0.1, alpha=0.6, eps=0.05, centered=True, weight_decay=0.3),
        {**RMS_STATE, "grad_avg": "grad_avg"},
    ),
    (
        "rmsprop-momentum",
        optim.rmsprop(0.1, alpha=0.6, eps=0.05, momentum=0.5),
        lambda ps: torch.optim.RMSprop(ps, lr=0.1, alpha=0.6, eps=0.05, momentum=0.5),
        {**RMS_STATE, "momentum_buffer": "momentum_buffer"},
    ),
    (
        "rmsprop-all",
        optim.rmsprop(0.1, alpha=0.6, eps=0.05, momentum=0.5, centered=True, weight_decay=0.2),
        lambda ps: torch.optim.RMSprop(
            ps, lr=0.1, alpha=0.6, eps=0.05, momentum=0.5, centered=True, weight_decay=0.2
        ),
        {**RMS_STATE, "grad_avg": "grad_avg", "momentum_buffer": "momentum_buffer"},
    ),
]
IDS = [c[0] for c in CASES]


def t64(values: list[float]) -> Any:
    return torch.tensor(values, dtype=torch.float64)


def reference(
    make_ref: Any, state_names: dict[str, str], *, clip_norm: Any = None, clip_value: Any = None
) -> list[Any]:
    """After each step of ``torch.optim``: (params, {mml state field: {name: tensor}})."""
    ps = {k: torch.nn.Parameter(t64(v)) for k, v in P0.items()}
    opt = make_ref(list(ps.values()))
    out = []
    for g in GRADS:
        for k, p in ps.items():
            p.grad = t64(g[k])
        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(list(ps.values()), clip_value)
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(list(ps.values()), clip_norm)
        opt.step()
        params = {k: p.detach().clone() for k, p in ps.items()}
        state = {
            field: {k: opt.state[p][name].clone() for k, p in ps.items()}
            for name, field in state_names.items()
        }
        out.append((params, state))
    return out


def run_mml(opt: Any, convert: Any, to_torch: Any) -> list[Any]:
    params = {k: convert(v) for k, v in P0.items()}
    state = opt.init(params)
    out = []
    for step, g in enumerate(GRADS):
        params, state = opt.update({k: convert(v) for k, v in g.items()}, state, params, step)
        out.append(
            (
                {k: to_torch(v) for k, v in params.items()},
                {f.name: {k: to_torch(v) for k, v in getattr(state, f.name).items()} for f in _fields(state)},
            )
        )
    return out


def _fields(state: Any) -> Any:
    import attrs

    return attrs.fields(type(state))


def assert_same_run(got: list[Any], want: list[Any], state_names: dict[str, str]) -> None:
    for step, ((gp, gs), (wp, ws)) in enumerate(zip(got, want)):
        assert list(gp) == ["a", "b"]
        for k in P0:
            torch.testing.assert_close(gp[k], wp[k], rtol=1e-12, atol=1e-12, msg=f"param {k} at step {step}")
        # the state has exactly the fields torch keeps, and the others are empty
        for field, entries in gs.items():
            if field in ws:
                assert list(entries) == ["a", "b"], field
                for k in P0:
                    torch.testing.assert_close(entries[k], ws[field][k], rtol=1e-12, atol=1e-12, msg=field)
            else:
                assert entries == {}, field
        assert set(ws) <= set(gs)


@pytest.mark.parametrize(("name", "opt", "make_ref", "state_names"), CASES, ids=IDS)
def test_torch_step_by_step(name: str, opt: Any, make_ref: Any, state_names: dict[str, str]) -> None:
    got = run_mml(opt, t64, lambda v: v)
    assert_same_run(got, reference(make_ref, state_names), state_names)
    assert all(v.dtype == torch.float64 for v in got[-1][0].values())


@pytest.mark.parametrize(("name", "opt", "make_ref", "state_names"), CASES, ids=IDS)
def test_tensorflow_step_by_step(name: str, opt: Any, make_ref: Any, state_names: dict[str, str]) -> None:
    tf = pytest.importorskip("tensorflow")
    got = run_mml(opt, lambda v: tf.constant(v, dtype=tf.float64), lambda v: torch.from_numpy(v.numpy()))
    assert_same_run(got, reference(make_ref, state_names), state_names)


@pytest.mark.parametrize(("name", "opt", "make_ref", "state_names"), CASES, ids=IDS)
def test_tensorflow_state_is_cast_to_the_parameter_dtype(
    name: str, opt: Any, make_ref: Any, state_names: dict[str, str]
) -> None:
    """A state of float64 arrays (e.g. saved from a float64 run) updates float32 parameters."""
    import attrs

    tf = pytest.importorskip("tensorflow")
    import numpy as np

    params = {k: tf.constant(v, dtype=tf.float64) for k, v in P0.items()}
    state = opt.init(params)
    params, state = opt.update({k: tf.constant(v, tf.float64) for k, v in GRADS[0].items()}, state, params, 0)
    as_numpy = type(state)(
        **{
            f.name: {k: v.numpy() for k, v in getattr(state, f.name).items()}
            for f in attrs.fields(type(state))
        }
    )
    g64 = {k: tf.constant(v, tf.float64) for k, v in GRADS[1].items()}
    want, _ = opt.update(g64, state, params, 1)
    p32 = {k: tf.cast(v, tf.float32) for k, v in params.items()}
    got, new_state = opt.update({k: tf.cast(v, tf.float32) for k, v in g64.items()}, as_numpy, p32, 1)
    for k in P0:
        assert got[k].dtype == tf.float32
        np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), rtol=1e-5, atol=1e-6)
    for f in attrs.fields(type(new_state)):
        assert all(v.dtype == tf.float32 for v in getattr(new_state, f.name).values()), f.name


CLIPS = [(None, 1.5), (2.0, None), (2.0, 1.5), (100.0, 0.01), (0.01, 100.0)]


@pytest.mark.parametrize(("clip_norm", "clip_value"), CLIPS)
@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_clipping_inside_update(framework: str, clip_norm: Any, clip_value: Any) -> None:
    # issue 12: clipping composes with the optimizer; the reference is torch.nn.utils, then torch.optim
    _, opt, make_ref, names = CASES[5]  # adam
    opt = optim.clipped(opt, norm=clip_norm, value=clip_value)
    if framework == "torch":
        got = run_mml(opt, t64, lambda v: v)
    else:
        tf = pytest.importorskip("tensorflow")
        got = run_mml(opt, lambda v: tf.constant(v, dtype=tf.float64), lambda v: torch.from_numpy(v.numpy()))
    assert_same_run(got, reference(make_ref, names, clip_norm=clip_norm, clip_value=clip_value), names)


# -- hand-computed steps ----------------------------------------------------------------


def one(opt: Any, g: float, p: float = 1.0, step: int = 0, **kw: Any) -> float:
    params = {"w": t64([p])}
    new, _ = opt.update({"w": t64([g])}, opt.init(params), params, step, **kw)
    return float(new["w"][0])


def test_adam_bias_correction_uses_the_step_index() -> None:
    # from zero moments at step index 2 (t = 3): m = (1-b1) g, v = (1-b2) g², both bias-corrected
    b1, b2, eps, lr, g = 0.6, 0.8, 0.05, 0.1, 2.0
    m, v = (1 - b1) * g, (1 - b2) * g * g
    want = 1.0 - lr / (1 - b1**3) * m / (math.sqrt(v) / math.sqrt(1 - b2**3) + eps)
    assert one(optim.adam(lr, betas=(b1, b2), eps=eps), g, step=2) == pytest.approx(want, rel=1e-12)
    # lr_scale multiplies the step
    want_scaled = 1.0 - 0.5 * lr / (1 - b1**3) * m / (math.sqrt(v) / math.sqrt(1 - b2**3) + eps)
    assert one(optim.adam(lr, betas=(b1, b2), eps=eps), g, step=2, lr_scale=0.5) == pytest.approx(
        want_scaled, rel=1e-12
    )


def test_adamw_decays_the_parameter_not_the_gradient() -> None:
    # step 0: m̂ = g, v̂ = g², update = g / (|g| + eps); the decay multiplies p by 1 - lr*wd
    lr, wd, eps, g, p = 0.1, 0.5, 0.5, 2.0, 3.0
    assert one(optim.adamw(lr, eps=eps, weight_decay=wd), g, p) == pytest.approx(
        p * (1 - lr * wd) - lr * g / (abs(g) + eps), rel=1e-12
    )
    # Adam's L2 decay goes into the gradient instead: g' = g + wd p
    gp = g + wd * p
    assert one(optim.adam(lr, eps=eps, weight_decay=wd), g, p) == pytest.approx(
        p - lr * gp / (abs(gp) + eps), rel=1e-12
    )


def test_sgd_and_rmsprop_first_steps_by_hand() -> None:
    assert one(optim.sgd(0.1, weight_decay=0.5), 2.0, 3.0) == pytest.approx(
        3.0 - 0.1 * (2.0 + 1.5), rel=1e-12
    )
    # nesterov at step 0: buf = g, g' = g + mu * buf
    assert one(optim.sgd(0.1, momentum=0.5, nesterov=True), 2.0) == pytest.approx(1.0 - 0.1 * 3.0, rel=1e-12)
    # rmsprop: s = (1-alpha) g²
    assert one(optim.rmsprop(0.1, alpha=0.75, eps=0.5), 2.0) == pytest.approx(
        1.0 - 0.1 * 2.0 / (1.0 + 0.5), rel=1e-12
    )
    # centered: s - a² = 0.25*4 - 0.25 = 0.75
    assert one(optim.rmsprop(0.1, alpha=0.75, eps=0.5, centered=True), 2.0) == pytest.approx(
        1.0 - 0.1 * 2.0 / (math.sqrt(0.75) + 0.5), rel=1e-12
    )


def test_init_shapes_the_state() -> None:
    params = {"w": torch.ones(2, 3, dtype=torch.float64), "b": torch.ones(3)}
    s = optim.adam().init(params)
    assert list(s.exp_avg) == ["w", "b"] and s.max_exp_avg_sq == {}
    assert s.exp_avg["w"].shape == (2, 3) and s.exp_avg["w"].dtype == torch.float64
    assert float(s.exp_avg_sq["b"].abs().sum()) == 0.0
    assert s.exp_avg["w"] is not s.exp_avg_sq["w"]
    ams = optim.adam(amsgrad=True).init(params)
    assert list(ams.max_exp_avg_sq) == ["w", "b"]
    assert list(optim.sgd(0.1, momentum=0.5).init(params).momentum_buffers) == ["w", "b"]
    assert optim.sgd(0.1).init(params).momentum_buffers == {}
    r = optim.rmsprop().init(params)
    assert list(r.square_avg) == ["w", "b"] and r.grad_avg == {} and r.momentum_buffer == {}
    r = optim.rmsprop(centered=True, momentum=0.1).init(params)
    assert list(r.grad_avg) == ["w", "b"] and list(r.momentum_buffer) == ["w", "b"]


def test_defaults_are_torch_defaults() -> None:
    assert optim.adam() == optim.Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False)
    assert optim.adamw() == optim.AdamW(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False
    )
    assert optim.rmsprop() == optim.RMSprop(
        lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0
    )
    assert optim.sgd(0.5) == optim.SGD(0.5, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0)
    for o in (optim.adam(), optim.adamw(), optim.rmsprop(), optim.sgd(0.5)):
        assert not hasattr(o, "clip_norm") and not hasattr(o, "clip_value")  # issue 12: optim.clipped
    s = optim.sgd(0.5, 0.9, True, 0.1, 0.0)
    assert (s.momentum, s.nesterov, s.weight_decay, s.dampening) == (0.9, True, 0.1, 0.0)
    a = optim.adamw(0.5, (0.1, 0.2), 0.3, 0.4, True)
    assert (a.lr, a.betas, a.eps, a.weight_decay, a.amsgrad) == (0.5, (0.1, 0.2), 0.3, 0.4, True)
    a = optim.adam(0.5, (0.1, 0.2), 0.3, 0.4, True)
    assert (a.lr, a.betas, a.eps, a.weight_decay, a.amsgrad) == (0.5, (0.1, 0.2), 0.3, 0.4, True)
    r = optim.rmsprop(0.5, 0.1, 0.3, 0.4, True, 0.2)
    assert (r.lr, r.alpha, r.eps, r.momentum, r.centered, r.weight_decay) == (0.5, 0.1, 0.3, 0.4, True, 0.2)
    c = optim.clipped(a, norm=2, value=3)
    assert (c.optimizer, c.norm, c.value) == (a, 2.0, 3.0)


def test_empty_params_return_a_new_dict_and_the_same_state() -> None:
    for opt in (optim.sgd(0.1), optim.adam(), optim.rmsprop()):
        state = opt.init({})
        new, new_state = opt.update({}, state, {}, 3)
        assert new == {} and type(new) is dict and new_state is state


# -- clipping by hand -------------------------------------------------------------------


def test_clip_by_global_norm_by_hand() -> None:
    g = {"a": t64([3.0, 0.0]), "b": t64([4.0])}
    norm = optim.global_norm(g)
    assert isinstance(norm, torch.Tensor) and norm.dtype == torch.float64 and float(norm) == 5.0
    c = optim.clip_by_global_norm(g, 2.0)
    coef = 2.0 / (5.0 + 1e-6)
    assert list(c) == ["a", "b"]
    torch.testing.assert_close(c["a"], t64([3.0 * coef, 0.0]), rtol=1e-15, atol=0)
    torch.testing.assert_close(c["b"], t64([4.0 * coef]), rtol=1e-15, atol=0)
    # at or below the limit nothing changes (the coefficient is clamped at 1)
    same = optim.clip_by_global_norm(g, 10.0)
    assert torch.equal(same["a"], g["a"]) and torch.equal(same["b"], g["b"])
    assert optim.clip_by_global_norm({}, 1.0) == {}
    assert optim.clip_by_value({}, 1.0) == {}


def test_clip_by_value_by_hand() -> None:
    c = optim.clip_by_value({"a": t64([-3.0, 0.5, 2.0]), "b": t64([1.0])}, 1.0)
    assert list(c) == ["a", "b"]
    assert c["a"].tolist() == [-1.0, 0.5, 1.0] and c["b"].tolist() == [1.0]


def test_clipping_tensorflow_by_hand() -> None:
    tf = pytest.importorskip("tensorflow")
    g = {"a": tf.constant([3.0, 0.0], tf.float64), "b": tf.constant([4.0], tf.float64)}
    norm = optim.global_norm(g)
    assert isinstance(norm, tf.Tensor) and norm.dtype == tf.float64 and float(norm) == 5.0
    c = optim.clip_by_global_norm(g, 2.0)
    coef = 2.0 / (5.0 + 1e-6)
    assert c["a"].numpy().tolist() == pytest.approx([3.0 * coef, 0.0], rel=1e-15)
    assert optim.clip_by_global_norm(g, 10.0)["b"].numpy().tolist() == [4.0]
    v = optim.clip_by_value({"a": tf.constant([-3.0, 0.5, 2.0], tf.float64)}, 1.0)
    assert v["a"].numpy().tolist() == [-1.0, 0.5, 1.0]


def test_clip_error_messages() -> None:
    with pytest.raises(ConfigError, match=r"^clip_by_global_norm needs max_norm > 0, got 0\.0$"):
        optim.clip_by_global_norm({"a": t64([1.0])}, 0.0)
    with pytest.raises(ConfigError, match=r"^clip_by_value needs max_value > 0, got -1\.0$"):
        optim.clip_by_value({"a": t64([1.0])}, -1.0)
    with pytest.raises(ConfigError, match=r"^clip_by_value needs max_value > 0, got 0$"):
        optim.clip_by_value({"a": t64([1.0])}, 0)
    with pytest.raises(ConfigError, match=r"^global_norm needs at least one gradient$"):
        optim.global_norm({})


# -- schedules by hand ------------------------------------------------------------------


def test_schedule_values_by_hand() -> None:
    s = optim.StepDecay(2.0, step_size=3, gamma=0.5)
    assert [s(t) for t in (0, 2, 3, 5, 6, 9)] == [2.0, 2.0, 1.0, 1.0, 0.5, 0.25]
    assert optim.StepDecay(1.0, step_size=1)(2) == pytest.approx(0.01)  # default gamma 0.1
    e = optim.Exponential(2.0, gamma=0.5)
    assert [e(t) for t in range(4)] == [2.0, 1.0, 0.5, 0.25]
    c = optim.Cosine(1.0, total_steps=4, min_lr=0.2)
    want = [0.2 + 0.8 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)] + [0.2, 0.2]
    assert [c(t) for t in range(6)] == pytest.approx(want, rel=1e-15)
    assert optim.Cosine(1.0, total_steps=4).min_lr == 0.0
    assert optim.Cosine(0.5, total_steps=4, min_lr=0.5)(2) == 0.5  # min_lr == lr is allowed
    w = optim.LinearWarmup(optim.Exponential(1.0, 0.5), warmup_steps=4, start_factor=0.2)
    assert [w(t) for t in range(7)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 0.5, 0.25], rel=1e-15)
    assert optim.LinearWarmup(2.0, warmup_steps=2).start_factor == 0.0
    assert [optim.LinearWarmup(2.0, warmup_steps=2)(t) for t in range(3)] == [0.0, 1.0, 2.0]
    assert optim.LinearWarmup(2.0, warmup_steps=2, start_factor=1.0)(0) == 2.0
    assert optim.LinearWarmup(optim.Exponential(1.0, 0.5), warmup_steps=0)(1) == 0.5
    # a schedule's document is rebuilt, a bare number is a Constant
    assert optim.LinearWarmup({"kind": "schedule.constant", "lr": 0.3}, 1).schedule == optim.Constant(0.3)
    assert optim.LinearWarmup(0.3, 1).schedule == optim.Constant(0.3)
    assert optim.adam(lr={"kind": "schedule.exponential", "lr": 1.0, "gamma": 0.5}).lr == optim.Exponential(
        1.0, 0.5
    )
    assert optim.adam(lr=0).lr == 0.0


def test_schedules_drive_the_update() -> None:
    opt = optim.sgd(optim.Exponential(1.0, 0.5))
    assert one(opt, 1.0, 0.0, step=0) == -1.0
    assert one(opt, 1.0, 0.0, step=2) == -0.25
    assert one(opt, 1.0, 0.0, step=2, lr_scale=0.5) == -0.125


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: optim.Constant(1.0)(-1),
            "a schedule step is the 0-based index of an update and must be >= 0, got -1",
        ),
        (
            lambda: optim.StepDecay(1.0, 2)(-1),
            "a schedule step is the 0-based index of an update and must be >= 0, got -1",
        ),
        (lambda: optim.Exponential(1.0, 0.5)(-2), "must be >= 0, got -2"),
        (lambda: optim.Cosine(1.0, 2)(-1), "must be >= 0, got -1"),
        (lambda: optim.LinearWarmup(1.0, 2)(-1), "must be >= 0, got -1"),
        (lambda: optim.learning_rate_at(0.5, -1), "must be >= 0, got -1"),
        (
            lambda: optim.Cosine(0.1, total_steps=10, min_lr=0.2),
            "Cosine.min_lr (0.2) is larger than Cosine.lr (0.1); the schedule anneals from lr down to min_lr",
        ),
        (
            lambda: optim.LinearWarmup(0.1, 5, start_factor=1.01),
            "LinearWarmup.start_factor must be in [0, 1], got 1.01",
        ),
        (
            lambda: optim.LinearWarmup(0.1, 5, start_factor=-0.01),
            "LinearWarmup.start_factor must be in [0, 1], got -0.01",
        ),
        (lambda: optim.StepDecay(0.1, step_size=0), "StepDecay.step_size must be an integer >= 1, got 0"),
        (
            lambda: optim.StepDecay(0.1, step_size=True),
            "StepDecay.step_size must be an integer >= 1, got True",
        ),
        (lambda: optim.StepDecay(0.1, step_size=2.0), "StepDecay.step_size must be an integer >= 1, got 2.0"),
        (
            lambda: optim.LinearWarmup(0.1, warmup_steps=-1),
            "LinearWarmup.warmup_steps must be an integer >= 0, got -1",
        ),
        (
            lambda: optim.LinearWarmup(0.1, warmup_steps=False),
            "LinearWarmup.warmup_steps must be an integer >= 0, got False",
        ),
        (
            lambda: optim.LinearWarmup(0.1, warmup_steps=1.0),
            "LinearWarmup.warmup_steps must be an integer >= 0, got 1.0",
        ),
        (lambda: optim.Exponential(0.1, gamma=0.0), "Exponential.gamma must be > 0, got 0.0"),
        (lambda: optim.Exponential(0.1, gamma=math.inf), "Exponential.gamma must be > 0, got inf"),
        (lambda: optim.Constant(-0.5), "Constant.lr must be >= 0, got -0.5"),
        (lambda: optim.Constant(math.nan), "Constant.lr must be >= 0, got nan"),
        (lambda: optim.adam(lr=-1), "a learning rate must be a finite number >= 0 or a schedule, got -1"),
        (
            lambda: optim.adam(lr=math.nan),
            "a learning rate must be a finite number >= 0 or a schedule, got nan",
        ),
    ],
)
def test_schedule_and_learning_rate_errors(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()


def test_boundary_hyperparameters_are_accepted() -> None:
    assert optim.StepDecay(0.0, step_size=1).step_size == 1
    assert optim.LinearWarmup(0.1, warmup_steps=0).warmup_steps == 0
    assert optim.Exponential(0.0, gamma=1e-300).gamma == 1e-300
    assert optim.adam(betas=(0.0, 0.0), eps=0.0).betas == (0.0, 0.0)
    assert optim.rmsprop(alpha=0.0).alpha == 0.0
    assert optim.sgd(0.0, momentum=0.0).lr == 0.0
    assert optim.clipped(optim.adam(), norm=1e-300, value=1e-300).norm == 1e-300


# -- hyperparameter and misuse errors, in full -------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: optim.sgd(0.1, momentum=-1), "SGD.momentum must be >= 0, got -1.0"),
        (lambda: optim.sgd(0.1, momentum=math.inf), "SGD.momentum must be >= 0, got inf"),
        (
            lambda: optim.sgd(0.1, nesterov=True),
            "SGD(nesterov=True) needs momentum > 0 and dampening == 0, got momentum=0.0, dampening=0.0",
        ),
        (
            lambda: optim.sgd(0.1, momentum=0.9, nesterov=True, dampening=0.1),
            "SGD(nesterov=True) needs momentum > 0 and dampening == 0, got momentum=0.9, dampening=0.1",
        ),
        (lambda: optim.adam(betas=(1.0, 0.5)), "Adam.betas must be two numbers in [0, 1), got (1.0, 0.5)"),
        (lambda: optim.adam(betas=(0.5, -0.1)), "Adam.betas must be two numbers in [0, 1), got (0.5, -0.1)"),
        (
            lambda: optim.adam(betas=(0.5, 0.5, 0.5)),
            "Adam.betas must be two numbers in [0, 1), got (0.5, 0.5, 0.5)",
        ),
        (lambda: optim.adam(betas=(0.5,)), "Adam.betas must be two numbers in [0, 1), got (0.5,)"),
        (lambda: optim.adam(betas=0.9), "expected a pair of numbers such as (0.9, 0.999), got 0.9"),
        (
            lambda: optim.adam(betas=("a", 0.9)),
            "expected a pair of numbers such as (0.9, 0.999), got ('a', 0.9)",
        ),
        (lambda: optim.clipped(optim.adam(), norm=0.0), "Clipped.norm must be None (off) or > 0, got 0.0"),
        (
            lambda: optim.clipped(optim.adam(), value=math.inf),
            "Clipped.value must be None (off) or > 0, got inf",
        ),
        (lambda: optim.rmsprop(alpha=1.0), "RMSprop.alpha must be in [0, 1), got 1.0"),
        (lambda: optim.rmsprop(alpha=-0.1), "RMSprop.alpha must be in [0, 1), got -0.1"),
        (lambda: optim.adamw(eps=-1e-8), "AdamW.eps must be >= 0, got -1e-08"),
        (lambda: optim.adam(lr="fast"), "expected a number, got 'fast'"),
        (lambda: optim.adam(lr=True), "expected a number, got True"),
        (lambda: optim.adam(eps=b"1"), "expected a number, got b'1'"),
        (lambda: optim.adam(eps=[1.0]), "expected a number, got [1.0]"),
        (lambda: optim.adam(eps=object), "expected a number, got <class 'object'>"),
    ],
)
def test_hyperparameter_errors(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        make()


def test_converters() -> None:
    assert to_float(3) == 3.0 and type(to_float(3)) is float
    assert optional_float(None) is None and optional_float(2) == 2.0
    assert float_pair([1, 0.5]) == (1.0, 0.5)


def test_update_misuse_messages() -> None:
    params = {"w": t64([1.0]), "v": t64([2.0])}
    grads = {"w": t64([1.0]), "v": t64([1.0])}
    opt = optim.adam()
    state = opt.init(params)
    with pytest.raises(
        TrainingError,
        match="^"
        + re.escape(
            "the gradients do not match the parameters: missing gradients for ['v']; gradients for "
            "unknown parameters ['x', 'y']; pass one gradient per parameter, under the same names (a "
            "frozen parameter needs a zero gradient or its own optimizer)"
        )
        + "$",
    ):
        opt.update({"w": grads["w"], "y": grads["w"], "x": grads["w"]}, state, params, 0)
    with pytest.raises(
        TrainingError,
        match=r"^the gradients do not match the parameters: missing gradients for \['v', 'w'\]; pass",
    ):
        opt.update({}, state, params, 0)
    with pytest.raises(
        TrainingError,
        match="^"
        + re.escape(
            "Adam.update got a SGDState as its state, expected a AdamState; pass the state made by "
            "this optimizer's init(params)"
        )
        + "$",
    ):
        opt.update(grads, optim.sgd(0.1).init(params), params, 0)
    for bad in (-1, True, 1.0):
        with pytest.raises(
            ConfigError,
            match="^" + re.escape(f"step is the 0-based index of the update, an int >= 0; got {bad!r}") + "$",
        ):
            opt.update(grads, state, params, bad)
    assert opt.update(grads, state, params, 0)[0]["w"].shape == (1,)
    bigger = {**params, "new": t64([0.0])}
    with pytest.raises(
        TrainingError,
        match="^"
        + re.escape(
            "the optimizer state has no exp_avg for parameter 'new'; the state was made for other "
            "parameters (['v', 'w']) — call optimizer.init(params) for these parameters"
        )
        + "$",
    ):
        opt.update({**grads, "new": t64([0.0])}, state, bigger, 0)
    ams = optim.adam(amsgrad=True)
    with pytest.raises(TrainingError, match="no max_exp_avg_sq for parameter 'w'"):
        ams.update(grads, opt.init(params), params, 0)
    with pytest.raises(TrainingError, match="no momentum buffer for parameter 'w'"):
        optim.sgd(0.1, momentum=0.5).update(grads, optim.sgd(0.1).init(params), params, 0)
    with pytest.raises(TrainingError, match="no grad_avg for parameter 'w'"):
        optim.rmsprop(centered=True).update(grads, optim.rmsprop().init(params), params, 0)
    with pytest.raises(TrainingError, match="no momentum_buffer for parameter 'w'"):
        optim.rmsprop(momentum=0.5).update(grads, optim.rmsprop().init(params), params, 0)
    with pytest.raises(TrainingError, match="no square_avg for parameter 'w'"):
        optim.rmsprop().update(grads, optim.RMSpropState({}), params, 0)
    assert ordered({"a": 1, "b": 2}, ["b", "a"], "x") == [2, 1]


def test_backend_errors() -> None:
    import numpy as np

    with pytest.raises(
        BackendError,
        match="^"
        + re.escape(
            "parameter 'w' is a numpy.ndarray; mml optimizers update torch tensors or TensorFlow/Keras "
            "tensors and variables — convert it (torch.as_tensor / tf.convert_to_tensor) first"
        )
        + "$",
    ):
        optim.global_norm({"w": np.zeros(1)})
    with pytest.raises(BackendError, match=r"^parameter 'x' is a builtins\.list; "):
        optim.global_norm({"w": torch.zeros(1), "x": [1.0]})


def test_mixed_backends_error() -> None:
    tf = pytest.importorskip("tensorflow")
    with pytest.raises(
        BackendError,
        match="^"
        + re.escape(
            "parameter 'b' is a tensorflow value but others are torch values; use one optimizer "
            "state per backend (one per graph node)"
        )
        + "$",
    ):
        optim.global_norm({"a": torch.ones(1), "b": tf.ones(1)})
    assert optim.adam().init({"w": tf.ones(2)}).exp_avg["w"].numpy().tolist() == [0.0, 0.0]


def test_get_messages() -> None:
    with pytest.raises(
        ConfigError,
        match="^"
        + re.escape("unknown optimizer 'nadam'; valid names: 'adam', 'adamw', 'rmsprop', 'sgd'")
        + "$",
    ):
        optim.get_optimizer("nadam")
    with pytest.raises(
        ConfigError,
        match="^"
        + re.escape(
            "SGD has no hyperparameter 'learning_rate', 'beta'; valid: lr, momentum, nesterov, "
            "weight_decay, dampening"
        )
        + "$",
    ):
        optim.get_optimizer("sgd", learning_rate=0.1, beta=1)
    with pytest.raises(
        ConfigError,
        match="^"
        + re.escape("SGD needs more hyperparameters (")
        + r".*"
        + re.escape("); e.g. get_optimizer('SGD', lr=0.01)")
        + "$",
    ):
        optim.get_optimizer("SGD")
    with pytest.raises(
        ConfigError,
        match="^"
        + re.escape(
            "get_optimizer() got an optimizer value (Adam) and hyperparameters ['eps', 'lr']; pass a name with "
            "hyperparameters, or use attrs.evolve(optimizer, ...) to change a value"
        )
        + "$",
    ):
        optim.get_optimizer(optim.adam(), lr=0.1, eps=1.0)
    with pytest.raises(
        ConfigError,
        match="^"
        + re.escape(
            "an optimizer is a name ('adam', 'adamw', 'rmsprop', 'sgd') or an optimizer value such as "
            "mml.optim.adam(); got int 3"
        )
        + "$",
    ):
        optim.get_optimizer(3)  # type: ignore[arg-type]
    assert optim.get_optimizer("RMSprop", lr=0.5) == optim.RMSprop(lr=0.5)
    assert sorted(optim.OPTIMIZERS) == ["adam", "adamw", "rmsprop", "sgd"]
    assert optim.OPTIMIZERS["adamw"] is optim.AdamW and optim.OPTIMIZERS["sgd"] is optim.SGD


def test_learning_rate_method() -> None:
    opt = optim.adam(optim.Exponential(1.0, 0.5))
    assert opt.learning_rate(2) == 0.25
    assert opt.learning_rate(2, lr_scale=0.1) == 0.025
    assert optim.sgd(0.3).learning_rate(5) == 0.3


def test_framework_of_keras_variables_and_no_parameters() -> None:
    from mml.optim._backend import framework_of

    with pytest.raises(BackendError, match=full("framework_of needs at least one parameter")):
        framework_of({})
    keras = pytest.importorskip("keras")
    assert type(keras.Variable([1.0])).__module__.startswith("keras")
    assert framework_of({"w": keras.Variable([1.0, 2.0])}) == "tensorflow"


def test_missing_second_moment_is_named() -> None:
    params = {"w": t64([1.0])}
    state = optim.AdamState(exp_avg={"w": t64([0.0])}, exp_avg_sq={})
    with pytest.raises(TrainingError, match=r"^the optimizer state has no exp_avg_sq for parameter 'w'; "):
        optim.adam().update({"w": t64([1.0])}, state, params, 0)
