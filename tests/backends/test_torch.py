"""The torch backend: equivalence with plain modules, purity, keys, buffers, round-trips."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402
from hypothesis import (  # noqa: E402
    given,
    settings,
    strategies as st,
)

import mml  # noqa: E402
from mml.backends import TorchParams, apply, init_params, torch_forward, value_and_grad  # noqa: E402
from mml.errors import ConfigError, DeviceError, ShapeError  # noqa: E402
from mml.models import SequentialCNN, SequentialMLP, TemporalCNN, TorchModule  # noqa: E402

nn = torch.nn
K0 = mml.random.key(0)
ACTS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}


def _x(shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=mml.random.torch_generator(mml.random.key(seed)))


def _snapshot(p: TorchParams) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in [*p.params.items(), *p.buffers.items()]}


def _same(p: TorchParams, snap: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, snap[k]) for k, v in [*p.params.items(), *p.buffers.items()])


@settings(max_examples=15, deadline=None)
@given(
    hidden=st.lists(st.integers(1, 16), min_size=0, max_size=3).map(tuple),
    act=st.sampled_from(sorted(ACTS)),
    out=st.sampled_from([(1,), (3,), (2, 2)]),
)
def test_mlp_equals_plain_sequential(hidden: tuple[int, ...], act: str, out: tuple[int, ...]) -> None:
    spec = SequentialMLP(hidden=hidden, activation=act, output_shape=out)
    params = init_params(spec, (2, 3), out, key=K0)
    sizes = [6, *hidden, int(np.prod(out))]
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(params.params[f"layers.{i}.weight"])
            lin.bias.copy_(params.params[f"layers.{i}.bias"])
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(ACTS[act]())
    x = _x((5, 2, 3))
    y, new = apply(spec, params, x)
    assert new is params
    torch.testing.assert_close(y, nn.Sequential(*layers)(x).reshape(5, *out), rtol=0, atol=1e-6)


@pytest.mark.parametrize("input_shape", [(20,), (3, 20)])
def test_cnn_equals_plain_sequential(input_shape: tuple[int, ...]) -> None:
    spec = SequentialCNN(channels=(4, 6), kernel_size=4, pooling=2, activation="tanh", output_shape=(2,))
    params = init_params(spec, input_shape, (2,), key=K0)
    c_in = 1 if len(input_shape) == 1 else input_shape[0]
    convs = [nn.Conv1d(c_in, 4, 4), nn.Conv1d(4, 6, 4)]
    head = nn.Linear(6 * 5, 2)
    with torch.no_grad():
        for i, c in enumerate(convs):
            c.weight.copy_(params.params[f"convs.{i}.weight"])
            c.bias.copy_(params.params[f"convs.{i}.bias"])
        head.weight.copy_(params.params["head.weight"])
        head.bias.copy_(params.params["head.bias"])
    pad = nn.ConstantPad1d((1, 2), 0.0)  # "same" for an even kernel: the extra zero goes right
    plain = nn.Sequential(
        pad,
        convs[0],
        nn.Tanh(),
        nn.MaxPool1d(2),
        pad,
        convs[1],
        nn.Tanh(),
        nn.MaxPool1d(2),
        nn.Flatten(),
        head,
    )
    x = _x((4, *input_shape))
    xin = x.unsqueeze(1) if len(input_shape) == 1 else x
    torch.testing.assert_close(apply(spec, params, x)[0], plain(xin), rtol=0, atol=1e-6)


def test_tcn_equals_plain_modules_and_is_causal() -> None:
    spec = TemporalCNN(channels=(3, 3), kernel_size=2, output_shape=(1,))
    params = init_params(spec, (2, 12), (1,), key=K0)
    p = params.params

    def conv(name: str, x: torch.Tensor, dilation: int, k: int) -> torch.Tensor:
        w, b = p[f"{name}.weight"], p[f"{name}.bias"]
        m = nn.Conv1d(w.shape[1], w.shape[0], k, dilation=dilation, padding=(k - 1) * dilation)
        with torch.no_grad():
            m.weight.copy_(w)
            m.bias.copy_(b)
        y = m(x)
        return y[:, :, : x.shape[-1]] if k > 1 else y  # chomp the right padding: causal

    x = _x((3, 2, 12))
    h = x
    h = torch.relu(torch.relu(conv("blocks.0.conv", h, 1, 2)) + conv("blocks.0.downsample", h, 1, 1))
    h = torch.relu(torch.relu(conv("blocks.1.conv", h, 2, 2)) + h)
    expected = h[:, :, -1] @ p["head.weight"].T + p["head.bias"]
    y = apply(spec, params, x)[0]
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)
    # causality: the last output ignores inputs beyond the receptive field
    x2 = x.clone()
    x2[:, :, : 12 - spec.receptive_field] += 10.0
    torch.testing.assert_close(apply(spec, params, x2)[0], y)


SPECS = [
    SequentialMLP(hidden=(8,), output_shape=(2,)),
    SequentialCNN(channels=(4,), output_shape=(2,)),
    TemporalCNN(channels=(4,), output_shape=(2,)),
    TorchModule(factory="backend_factories:bn_net"),
]
IDS = ["mlp", "cnn", "tcn", "module"]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_init_same_key_identical_different_key_different(spec: object) -> None:
    a = init_params(spec, (16,), (2,), key=K0)
    b = init_params(spec, (16,), (2,), key=mml.random.key(0))
    c = init_params(spec, (16,), (2,), key=mml.random.key(1))
    assert a == b
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert any(not torch.equal(a.params[k], c.params[k]) for k in a.params)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_params_roundtrip(spec: object) -> None:
    a = init_params(spec, (16,), (2,), key=K0)
    back = mml.io.roundtrip(a)
    assert back == a and all(isinstance(v, torch.Tensor) for v in back.params.values())
    x = _x((3, 16))
    torch.testing.assert_close(apply(spec, back, x)[0], apply(spec, a, x)[0], rtol=0, atol=0)


def test_init_leaves_global_rng_untouched() -> None:
    state = torch.get_rng_state()
    init_params(TorchModule(factory="backend_factories:bn_net"), (4,), (1,), key=K0)
    apply(
        TorchModule(factory="backend_factories:bn_net"),
        init_params(TorchModule(factory="backend_factories:bn_net"), (4,), (1,), key=K0),
        _x((3, 4)),
        training=True,
        key=K0,
    )
    assert torch.equal(state, torch.get_rng_state())


def test_dropout_keyed() -> None:
    spec = SequentialMLP(hidden=(64,), dropout=0.5, output_shape=(4,))
    params = init_params(spec, (8,), (4,), key=K0)
    x = _x((32, 8))
    a = apply(spec, params, x, training=True, key=mml.random.key(5))[0]
    b = apply(spec, params, x, training=True, key=mml.random.key(5))[0]
    c = apply(spec, params, x, training=True, key=mml.random.key(6))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    e1, e2 = apply(spec, params, x)[0], apply(spec, params, x, key=mml.random.key(9))[0]
    assert torch.equal(e1, e2) and not torch.equal(a, e1)
    with pytest.raises(ConfigError, match="needs a key"):
        apply(spec, params, x, training=True)


def test_user_module_dropout_keyed() -> None:
    spec = TorchModule(factory="backend_factories:bn_net", kwargs={"hidden": 32})
    params = init_params(spec, (4,), (1,), key=K0)
    x = _x((16, 4))
    a = apply(spec, params, x, training=True, key=mml.random.key(1))[0]
    b = apply(spec, params, x, training=True, key=mml.random.key(1))[0]
    c = apply(spec, params, x, training=True, key=mml.random.key(2))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_batchnorm_buffers_come_back_new_and_inputs_untouched() -> None:
    spec = TorchModule(factory="backend_factories:bn_net")
    params = init_params(spec, (4,), (1,), key=K0)
    snap = _snapshot(params)
    x = _x((16, 4))
    x_before = x.clone()
    _, new = apply(spec, params, x, training=True, key=K0)
    assert _same(params, snap) and torch.equal(x, x_before)
    assert not torch.equal(new.buffers["1.running_mean"], params.buffers["1.running_mean"])
    assert int(new.buffers["1.num_batches_tracked"]) == 1
    assert new.params is params.params
    # eval mode: equals the plain module with the same state, and buffers are unchanged
    module = spec_module = __import__("backend_factories").bn_net((4,), (1,))
    spec_module.load_state_dict({**new.params, **new.buffers})
    module.eval()
    y, same = apply(spec, new, x)
    assert same is new
    torch.testing.assert_close(y, module(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "spec",
    [
        SequentialMLP(hidden=(8,), dropout=0.3, output_shape=(1,)),
        TorchModule(factory="backend_factories:bn_net"),
    ],
    ids=["mlp", "module"],
)
def test_value_and_grad_matches_autograd_and_is_pure(spec: object) -> None:
    params = init_params(spec, (4,), (1,), key=K0)
    snap = _snapshot(params)
    x = _x((16, 4))
    target = _x((16, 1), 3)

    def loss_fn(y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss = ((y - target) ** 2).mean()
        return loss, {"n": float(y.shape[0])}

    key = mml.random.key(4)
    (loss, aux), grads, new = value_and_grad(spec, params, x, loss_fn, key=key)
    assert _same(params, snap) and aux == {"n": 16.0}
    assert set(grads) == set(params.params)
    leaves = {k: v.clone().requires_grad_() for k, v in params.params.items()}
    y, _ = torch_forward(spec, params.replace_params(leaves), x, training=True, key=key)
    ref_loss, _ = loss_fn(y)
    ref_loss.backward()
    torch.testing.assert_close(loss, ref_loss.detach(), rtol=0, atol=0)
    for k, leaf in leaves.items():
        torch.testing.assert_close(grads[k], leaf.grad, rtol=0, atol=0)
    assert new.params is params.params


def test_graphwise_backward_through_two_nodes() -> None:
    enc, head = SequentialMLP(hidden=(8,), output_shape=(4,)), SequentialMLP(hidden=(), output_shape=(1,))
    pe, ph = init_params(enc, (3,), (4,), key=K0), init_params(head, (4,), (1,), key=mml.random.key(1))
    le = {k: v.detach().requires_grad_() for k, v in pe.params.items()}
    lh = {k: v.detach().requires_grad_() for k, v in ph.params.items()}
    z, _ = torch_forward(enc, pe.replace_params(le), _x((5, 3)), training=True, key=K0)
    y, _ = torch_forward(head, ph.replace_params(lh), z, training=True, key=K0)
    grads = torch.autograd.grad(y.sum(), [*le.values(), *lh.values()])
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_numpy_params_are_converted_lazily() -> None:
    spec = SequentialMLP(hidden=(4,), output_shape=(1,))
    params = init_params(spec, (3,), (1,), key=K0)
    as_numpy = TorchParams(
        {k: v.numpy().copy() for k, v in params.params.items()}, {}, params.input_shape, params.output_shape
    )
    for v in as_numpy.params.values():
        v.flags.writeable = False
    x = np.ones((2, 3), np.float64)
    torch.testing.assert_close(apply(spec, as_numpy, x)[0], apply(spec, params, x)[0], rtol=0, atol=0)


def test_wrong_input_shape_and_devices() -> None:
    spec = SequentialMLP(hidden=(4,), output_shape=(1,))
    params = init_params(spec, (3,), (1,), key=K0, device="auto")
    with pytest.raises(ShapeError, match=r"input shape \(3,\)"):
        apply(spec, params, torch.ones(2, 4))
    with pytest.raises(ShapeError, match="rank 3"):
        init_params(SequentialCNN(), (2, 3, 4), (1,), key=K0)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            init_params(spec, (3,), (1,), key=K0, device="cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        init_params(spec, (3,), (1,), key=K0, device="tpu9")


def test_user_module_output_shape_and_factory_type() -> None:
    spec = TorchModule(factory="torch.nn:Linear", kwargs={"in_features": 4, "out_features": 3})
    assert mml.backends.output_shape(spec, (4,)) == (3,)
    bad = TorchModule(factory="backend_factories:keras_bn_net")
    with pytest.raises(mml.BackendError, match=r"not a torch\.nn\.Module"):
        init_params(bad, (4,), (1,), key=K0)
