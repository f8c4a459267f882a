"""The same optimizer specs update TensorFlow tensors and variables, matching the torch numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

import mml  # noqa: E402
import mml.optim as optim  # noqa: E402

SHAPES = {"dense.kernel": (5, 3), "dense.bias": (3,), "gain": (1,)}
N = 50


def numbers(seed: int = 0) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    grads = [{k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()} for _ in range(N)]
    return params, grads


def run(opt: Any, params: dict[str, Any], grads: list[dict[str, Any]], convert: Any) -> dict[str, np.ndarray]:
    p = {k: convert(v) for k, v in params.items()}
    state = opt.init(p)
    for step, g in enumerate(grads):
        p, state = opt.update({k: convert(v) for k, v in g.items()}, state, p, step)
    return {k: np.asarray(v) for k, v in p.items()}


CASES = [
    optim.adam(1e-2),
    optim.clipped(optim.adam(1e-2, weight_decay=1e-2, amsgrad=True), norm=1.0),
    optim.clipped(optim.adamw(optim.Cosine(1e-2, N), weight_decay=0.1), value=0.5),
    optim.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    optim.sgd(0.05, momentum=0.9, dampening=0.2),
    optim.rmsprop(1e-3),
    optim.rmsprop(1e-3, momentum=0.5, centered=True, weight_decay=1e-2),
]


@pytest.mark.parametrize("opt", CASES, ids=lambda o: type(o).__name__)
def test_tensorflow_matches_torch(opt: Any) -> None:
    params, grads = numbers()
    on_tf = run(opt, params, grads, tf.constant)
    on_torch = run(opt, params, grads, torch.from_numpy)
    for k in SHAPES:
        assert on_tf[k].dtype == np.float32
        np.testing.assert_allclose(on_tf[k], on_torch[k], atol=1e-6, rtol=1e-5, err_msg=k)
    # and the run moved the parameters, so the comparison means something
    assert not np.allclose(on_tf["dense.kernel"], params["dense.kernel"])


def test_variables_are_read_not_written() -> None:
    params, grads = numbers(1)
    variables = {k: tf.Variable(v) for k, v in params.items()}
    opt = optim.adam(0.1)
    state = opt.init(variables)
    new, new_state = opt.update({k: tf.constant(v) for k, v in grads[0].items()}, state, variables, 0)
    for k in SHAPES:
        assert isinstance(new[k], tf.Tensor) and not isinstance(new[k], tf.Variable)
        np.testing.assert_array_equal(variables[k].numpy(), params[k])
        assert not np.array_equal(new[k].numpy(), params[k])
    np.testing.assert_array_equal(state.exp_avg["dense.bias"], np.zeros(3, np.float32))
    assert not np.array_equal(np.asarray(new_state.exp_avg["dense.bias"]), np.zeros(3, np.float32))


def test_keras_variables() -> None:
    keras = pytest.importorskip("keras")
    params, grads = numbers(2)
    variables = {k: keras.Variable(v) for k, v in params.items()}
    opt = optim.sgd(0.1, momentum=0.9)
    new, _ = opt.update({k: tf.constant(v) for k, v in grads[0].items()}, opt.init(variables), variables, 0)
    for k in SHAPES:
        np.testing.assert_allclose(np.asarray(new[k]), params[k] - 0.1 * grads[0][k], rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(variables[k]), params[k])


def test_tensorflow_state_survives_a_round_trip() -> None:
    params, grads = numbers(3)
    opt = optim.adam(1e-2, amsgrad=True)
    p = {k: tf.constant(v) for k, v in params.items()}
    state = opt.init(p)
    for step in range(3):
        p, state = opt.update({k: tf.constant(v) for k, v in grads[step].items()}, state, p, step)
    back = mml.io.roundtrip(state)  # tensorflow leaves come back as numpy arrays
    g = {k: tf.constant(v) for k, v in grads[3].items()}
    a, _ = opt.update(g, state, p, 3)
    b, _ = opt.update(g, back, p, 3)
    for k in SHAPES:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())


def test_tensorflow_clipping_matches_torch() -> None:
    _, grads = numbers(4)
    g_tf = {k: tf.constant(v) for k, v in grads[0].items()}
    g_torch = {k: torch.from_numpy(v) for k, v in grads[0].items()}
    assert float(optim.global_norm(g_tf)) == pytest.approx(float(optim.global_norm(g_torch)), rel=1e-6)
    for fn, arg in [(optim.clip_by_global_norm, 0.5), (optim.clip_by_value, 0.3)]:
        a, b = fn(g_tf, arg), fn(g_torch, arg)
        for k in SHAPES:
            np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-7)
