"""The torch backend pinned to values: initial weights drawn exactly as documented, dropout
with inverted scaling from the keyed generator, input conversion, and every message in full.

References: ``torch.Generator`` draws replayed by hand (``mml.random.torch_generator``),
``torch.nn.functional`` layers, hand-computed numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from fresh_memos import _fresh_memos  # noqa: F401, E402  (autouse: each test builds with the code under test)

import mml  # noqa: E402
from mml.backends import TorchParams, apply, get_backend, init_params, torch_forward, value_and_grad  # noqa: E402
from mml.models import SequentialCNN, SequentialMLP, SklearnModel, TemporalCNN, TorchModule  # noqa: E402
from mml.random import fold_in, torch_generator  # noqa: E402

K0 = mml.random.key(0)


def _replay(key: mml.random.Key, layout: list[tuple[str, tuple[int, ...], int]]) -> dict[str, torch.Tensor]:
    gen = torch_generator(fold_in(key, "init"))
    out = {}
    for name, shape, fan_in in layout:
        b = 1.0 / math.sqrt(fan_in)
        out[name] = torch.empty(shape, dtype=torch.float32).uniform_(-b, b, generator=gen)
    return out


def _assert_params(p: TorchParams, want: dict[str, torch.Tensor]) -> None:
    assert list(p.params) == list(want)
    for k, v in want.items():
        assert p.params[k].dtype == torch.float32 and torch.equal(p.params[k], v), k
    assert dict(p.buffers) == {}


def test_mlp_init_is_pytorch_default_drawn_from_the_key() -> None:
    p = init_params(SequentialMLP(hidden=(5, 3)), (2, 2), (2,), key=K0)
    layout = [
        ("layers.0.weight", (5, 4), 4),
        ("layers.0.bias", (5,), 4),
        ("layers.1.weight", (3, 5), 5),
        ("layers.1.bias", (3,), 5),
        ("layers.2.weight", (2, 3), 3),
        ("layers.2.bias", (2,), 3),
    ]
    _assert_params(p, _replay(K0, layout))
    assert p.input_shape == (2, 2) and p.output_shape == (2,)
    assert float(p.params["layers.0.weight"].abs().max()) <= 0.5
    assert float(p.params["layers.2.weight"].abs().max()) > 0.3  # bound 1/sqrt(3), not 1/sqrt(4)
    # no hidden layer: one linear map
    p0 = init_params(SequentialMLP(hidden=()), (3,), (1,), key=K0)
    _assert_params(p0, _replay(K0, [("layers.0.weight", (1, 3), 3), ("layers.0.bias", (1,), 3)]))


def test_cnn_and_tcn_init_layouts() -> None:
    cnn = SequentialCNN(channels=(4, 2), kernel_size=3, pooling=2)
    p = init_params(cnn, (3, 8), (5,), key=K0)  # 3 channels of length 8 -> 4 -> 2 after two pools
    _assert_params(
        p,
        _replay(
            K0,
            [
                ("convs.0.weight", (4, 3, 3), 9),
                ("convs.0.bias", (4,), 9),
                ("convs.1.weight", (2, 4, 3), 12),
                ("convs.1.bias", (2,), 12),
                ("head.weight", (5, 4), 4),
                ("head.bias", (5,), 4),
            ],
        ),
    )
    fmap = init_params(SequentialCNN(channels=(2,), flatten_output=False), (6,), (2, 6), key=K0)
    _assert_params(fmap, _replay(K0, [("convs.0.weight", (2, 1, 3), 3), ("convs.0.bias", (2,), 3)]))
    img = init_params(SequentialCNN(channels=(2,), kernel_size=2, dims=2), (3, 4, 4), (1,), key=K0)
    _assert_params(
        img,
        _replay(
            K0,
            [
                ("convs.0.weight", (2, 3, 2, 2), 12),
                ("convs.0.bias", (2,), 12),
                ("head.weight", (1, 8), 8),  # (2, 2, 2) after the default pooling of 2
                ("head.bias", (1,), 8),
            ],
        ),
    )
    tcn = init_params(TemporalCNN(channels=(2, 2, 3), kernel_size=2), (1, 8), (1,), key=K0)
    _assert_params(
        tcn,
        _replay(
            K0,
            [
                ("blocks.0.conv.weight", (2, 1, 2), 2),
                ("blocks.0.conv.bias", (2,), 2),
                ("blocks.0.downsample.weight", (2, 1, 1), 1),
                ("blocks.0.downsample.bias", (2,), 1),
                ("blocks.1.conv.weight", (2, 2, 2), 4),
                ("blocks.1.conv.bias", (2,), 4),
                ("blocks.2.conv.weight", (3, 2, 2), 4),
                ("blocks.2.conv.bias", (3,), 4),
                ("blocks.2.downsample.weight", (3, 2, 1), 2),
                ("blocks.2.downsample.bias", (3,), 2),
                ("head.weight", (1, 3), 3),
                ("head.bias", (1,), 3),
            ],
        ),
    )


def _set(p: TorchParams, **tensors: torch.Tensor) -> TorchParams:
    return p.replace_params({k.replace("__", "."): v for k, v in tensors.items()})


@pytest.mark.parametrize("rate", [0.5, 0.25])
def test_mlp_dropout_is_inverted_and_drawn_from_the_key(rate: float) -> None:
    # 1 -> 2000 hidden units all equal to 1 (relu(1)), read out as their mean
    n_hidden = 2000
    spec = SequentialMLP(hidden=(n_hidden,), dropout=rate, output_shape=(1,))
    p = _set(
        init_params(spec, (1,), (1,), key=K0),
        layers__0__weight=torch.ones(n_hidden, 1),
        layers__0__bias=torch.zeros(n_hidden),
        layers__1__weight=torch.full((1, n_hidden), 1.0 / n_hidden),
        layers__1__bias=torch.zeros(1),
    )
    x = torch.ones(3, 1)
    ev, same = apply(spec, p, x)
    assert same is p and torch.allclose(ev, torch.ones(3, 1))
    key = mml.random.key(11)
    y, _ = apply(spec, p, x, training=True, key=key)
    mask = torch.empty(3, n_hidden).bernoulli_(1.0 - rate, generator=torch_generator(key))
    want = (mask / (1.0 - rate)).mean(dim=1, keepdim=True)
    assert torch.allclose(y, want, rtol=1e-5)
    # the expectation is kept: the mean of the kept units, scaled up, is about 1
    assert float(y.mean()) == pytest.approx(1.0, abs=0.05)
    kept = mask.sum(dim=1)
    assert torch.allclose(y.ravel() * n_hidden * (1.0 - rate), kept, rtol=1e-4)


@pytest.mark.parametrize("dims", [1, 2])
def test_cnn_dropout_is_inverted_and_drawn_from_the_key(dims: int) -> None:
    spec = SequentialCNN(channels=(3,), dropout=0.5, flatten_output=False, dims=dims, pooling=2)
    shape = (1, 8) if dims == 1 else (1, 4, 4)
    p = init_params(spec, shape, spec.infer_output_shape(shape, None), key=K0)
    x = torch.randn((4, *shape), generator=torch_generator(mml.random.key(2)))
    ev, _ = apply(spec, p, x)
    key = mml.random.key(5)
    y, _ = apply(spec, p, x, training=True, key=key)
    mask = torch.empty_like(ev).bernoulli_(0.5, generator=torch_generator(key))
    assert torch.allclose(y, ev * mask * 2.0, rtol=1e-6)
    assert bool((y == 0).any()) and bool((y[mask.bool()] != 0).any())
    # the eval output is the plain network
    w, b = p.params["convs.0.weight"], p.params["convs.0.bias"]
    if dims == 1:
        ref = F.max_pool1d(torch.relu(F.conv1d(x, w, b, padding=1)), 2)
    else:
        ref = F.max_pool2d(torch.relu(F.conv2d(x, w, b, padding=1)), 2)
    assert torch.allclose(ev, ref, atol=1e-6)


def test_tcn_dropout_needs_a_key_and_is_keyed() -> None:
    spec = TemporalCNN(channels=(2,), dropout=0.5)
    p = init_params(spec, (8,), (1,), key=K0)
    x = torch.randn(5, 8, generator=torch_generator(mml.random.key(3)))
    with pytest.raises(mml.ConfigError) as err:
        apply(spec, p, x, training=True)
    assert str(err.value) == (
        "TemporalCNN uses dropout: training=True needs a key (key=mml.random.fold_in(k, step))"
    )
    a = apply(spec, p, x, training=True, key=mml.random.key(1))[0]
    b = apply(spec, p, x, training=True, key=mml.random.key(1))[0]
    c = apply(spec, p, x, training=True, key=mml.random.key(2))[0]
    ev = apply(spec, p, x)[0]
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, ev)
    # without dropout, training needs no key and equals eval
    plain = TemporalCNN(channels=(2,))
    q = init_params(plain, (8,), (1,), key=K0)
    assert torch.equal(apply(plain, q, x, training=True)[0], apply(plain, q, x)[0])


def test_even_kernel_same_padding_adds_the_extra_zero_right() -> None:
    spec = SequentialCNN(channels=(1,), kernel_size=2, flatten_output=False, activation="relu", pooling=1)
    p = init_params(spec, (4,), (1, 4), key=K0)
    p = _set(p, convs__0__weight=torch.tensor([[[1.0, 10.0]]]), convs__0__bias=torch.zeros(1))
    y, _ = apply(spec, p, torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert y.tolist() == [[[21.0, 32.0, 43.0, 4.0]]]  # x[i] + 10 x[i+1], zero after the end
    img = SequentialCNN(channels=(1,), kernel_size=2, flatten_output=False, dims=2, pooling=1)
    q = init_params(img, (2, 2), (1, 2, 2), key=K0)
    q = _set(q, convs__0__weight=torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), convs__0__bias=torch.zeros(1))
    z, _ = apply(img, q, torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]))
    # out[i, j] = x[i,j] + 2 x[i,j+1] + 3 x[i+1,j] + 4 x[i+1,j+1], zeros right and below
    assert z.tolist() == [[[[1 + 4 + 9 + 16.0, 2 + 12.0], [3 + 8.0, 4.0]]]]


def test_tcn_is_dilated_causal_with_a_residual_by_hand() -> None:
    spec = TemporalCNN(channels=(1, 1), kernel_size=2, activation="relu")
    p = init_params(spec, (4,), (1,), key=K0)
    p = _set(
        p,
        blocks__0__conv__weight=torch.tensor([[[1.0, 2.0]]]),
        blocks__0__conv__bias=torch.zeros(1),
        blocks__1__conv__weight=torch.tensor([[[1.0, 1.0]]]),
        blocks__1__conv__bias=torch.zeros(1),
        head__weight=torch.ones(1, 1),
        head__bias=torch.tensor([0.5]),
    )
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    # block 0 (dilation 1): y[t] = x[t-1] + 2 x[t] = 2, 5, 8, 11; h = y + x = 3, 7, 11, 15
    # block 1 (dilation 2): y[t] = h[t-2] + h[t] = 3, 7, 14, 22; h = y + h = 6, 14, 25, 37
    y, _ = apply(spec, p, x)
    assert y.tolist() == [[37.5]]


def test_input_conversion_and_the_shape_message() -> None:
    spec = SequentialMLP(hidden=(3,), output_shape=(2,))
    p = init_params(spec, (4,), (2,), key=K0)
    x32 = np.arange(8, dtype=np.float32).reshape(2, 4)
    want = apply(spec, p, torch.from_numpy(x32.copy()))[0]
    # float64, read-only, non-contiguous numpy and integer input all give the float32 result
    x64 = x32.astype(np.float64)
    ro = x32.copy()
    ro.flags.writeable = False
    wide = np.zeros((2, 8), np.float32)
    wide[:, ::2] = x32
    for x in (x64, ro, wide[:, ::2], x32.astype(np.int64), torch.from_numpy(x64), x32.tolist()):
        y = apply(spec, p, x)[0]
        assert y.dtype == torch.float32 and torch.allclose(y, want), type(x)
    with pytest.raises(mml.ShapeError) as err:
        apply(spec, p, np.zeros((2, 3), np.float32))
    assert str(err.value) == (
        "the torch node was built for per-sample input shape (4,), got a batch of shape (2, 3); expected (n, 4)"
    )
    q = init_params(SequentialMLP(hidden=()), (2, 3), (1,), key=K0)
    with pytest.raises(mml.ShapeError) as err:
        apply(SequentialMLP(hidden=()), q, torch.zeros(5, 6))
    assert str(err.value).endswith("got a batch of shape (5, 6); expected (n, 2, 3)")


def test_numpy_params_come_back_as_tensors_and_tensor_params_as_they_were() -> None:
    spec = SequentialMLP(hidden=(2,), output_shape=(1,))
    p = init_params(spec, (3,), (1,), key=K0)
    y, same = apply(spec, p, torch.ones(2, 3))
    assert same is p
    as_np = TorchParams({k: v.numpy() for k, v in p.params.items()}, {}, (3,), (1,))
    y2, new = apply(spec, as_np, torch.ones(2, 3))
    assert torch.equal(y, y2) and new is not as_np
    assert all(type(v) is torch.Tensor for v in new.params.values())
    assert new.input_shape == (3,) and new.output_shape == (1,)
    y3, same3 = torch_forward(spec, p, torch.ones(2, 3), training=False, device="cpu")
    assert same3 is p and torch.equal(y3, y)


def test_messages_in_full() -> None:
    spec = SequentialMLP(hidden=(2,))
    empty = TorchParams({}, {}, (3,), (1,))
    with pytest.raises(mml.BackendError) as err:
        apply(spec, empty, torch.ones(1, 3))
    assert str(err.value) == "SequentialMLP has no parameters; was it built with mml.backends.init_params()?"
    torch_backend = get_backend("torch")
    est = SklearnModel(estimator="sklearn.linear_model:Ridge")
    with pytest.raises(mml.BackendError) as err:
        torch_backend.init(est, (3,), (1,), key=K0)
    assert str(err.value) == "the torch backend cannot run a SklearnModel (backend 'sklearn')"
    p = init_params(spec, (3,), (1,), key=K0)
    for call in (torch_backend.fit, torch_backend.partial_fit):
        with pytest.raises(mml.BackendError) as err:
            call(spec, p, np.ones((1, 3)), key=K0)
        assert str(err.value) == "SequentialMLP is a torch model: train it with a TrainPhase, not fit()"
    with pytest.raises(mml.BackendError) as err:
        init_params(TorchModule(factory="backend_factories:keras_bn_net"), (3,), (1,), key=K0)
    assert str(err.value) == (
        "TorchModule factory 'backend_factories:keras_bn_net' returned a Functional, not a torch.nn.Module"
    )
    mod = TorchModule(factory="backend_factories:bn_net")
    q = init_params(mod, (4,), (1,), key=K0)
    with pytest.raises(mml.ConfigError) as err:
        apply(mod, q, torch.ones(2, 4), training=True)
    assert str(err.value) == "a TorchModule in training mode needs a key (its dropout draws from it)"


def test_user_module_init_is_its_own_under_the_key_and_output_shape_by_dry_run() -> None:
    mod = TorchModule(factory="torch.nn:Linear", kwargs={"in_features": 3, "out_features": 2})
    p = init_params(mod, (3,), None, key=K0)
    assert p.output_shape == (2,) and p.input_shape == (3,)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(mml.random.seed_int(fold_in(K0, "init")))
        ref = torch.nn.Linear(3, 2)
    assert torch.equal(p.params["weight"], ref.weight.detach()) and torch.equal(
        p.params["bias"], ref.bias.detach()
    )
    assert not p.params["weight"].requires_grad
    flat = init_params(TorchModule(factory="torch.nn:Flatten"), (2, 3), None, key=K0)
    assert flat.output_shape == (6,) and dict(flat.params) == {}
    x = torch.ones(4, 3)
    y, same = apply(mod, p, x)
    assert same is p and torch.allclose(y, F.linear(x, p.params["weight"], p.params["bias"]))


def test_batchnorm_training_updates_buffers_by_the_running_average() -> None:
    mod = TorchModule(factory="backend_factories:bn_net", kwargs={"hidden": 3, "p": 0.0})
    p = init_params(mod, (2,), (1,), key=K0)
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    _, new = apply(mod, p, x, training=True, key=mml.random.key(1))
    h = F.linear(x, p.params["0.weight"], p.params["0.bias"])
    mean, var = h.mean(dim=0), h.var(dim=0, unbiased=True)
    assert torch.allclose(new.buffers["1.running_mean"], 0.1 * mean, atol=1e-6)
    assert torch.allclose(new.buffers["1.running_var"], 0.9 + 0.1 * var, atol=1e-6)
    assert int(new.buffers["1.num_batches_tracked"]) == 1
    assert float(p.buffers["1.running_mean"].abs().sum()) == 0.0  # the caller's buffers untouched
    assert new.params is p.params or all(torch.equal(new.params[k], p.params[k]) for k in p.params)
    _, same = apply(mod, p, x)
    assert same is p


def test_value_and_grad_by_hand() -> None:
    spec = SequentialMLP(hidden=(), output_shape=(1,))
    p = _set(
        init_params(spec, (2,), (1,), key=K0),
        layers__0__weight=torch.tensor([[1.0, -2.0]]),
        layers__0__bias=torch.tensor([0.5]),
    )
    x = torch.tensor([[1.0, 1.0], [2.0, 0.0]])  # y = -0.5, 2.5
    (loss, aux), g, new = value_and_grad(spec, p, x, lambda y: ((y**2).sum(), "aux"))
    assert float(loss) == pytest.approx(0.25 + 6.25) and aux == "aux" and not loss.requires_grad
    # d/dw sum(y^2) = sum 2 y x; d/db = sum 2 y
    assert g["layers.0.weight"].tolist() == [[2 * (-0.5) * 1 + 2 * 2.5 * 2, 2 * (-0.5) * 1]]
    assert g["layers.0.bias"].tolist() == [2 * (-0.5) + 2 * 2.5]
    assert new.params is p.params
    assert not p.params["layers.0.weight"].requires_grad
    # an unused parameter gets zeros
    _, g2, _ = value_and_grad(spec, p, x, lambda y: ((y * 0).sum() + p.params["layers.0.bias"].sum(), None))
    assert g2["layers.0.weight"].tolist() == [[0.0, 0.0]] and g2["layers.0.bias"].tolist() == [0.0]


def test_backend_value_defaults_and_the_package_forward() -> None:
    spec = SequentialMLP(hidden=(32,), dropout=0.5, output_shape=(1,))
    p = init_params(spec, (3,), (1,), key=K0)
    be = get_backend("torch")
    x = torch.ones(4, 3)
    y, same = be.apply(spec, p, x)  # eval by default: no key needed
    assert same is p and torch.equal(y, apply(spec, p, x)[0])
    k = mml.random.key(4)
    train = apply(spec, p, x, training=True, key=k)[0]
    assert not torch.equal(train, y)
    (loss, _), _, _ = be.value_and_grad(spec, p, x, lambda y: (y.sum(), None), key=k)  # training by default
    assert float(loss) == pytest.approx(float(train.sum()), rel=1e-6)
    (loss2, _), _, _ = value_and_grad(spec, p, x, lambda y: (y.sum(), None), key=k)
    assert float(loss2) == pytest.approx(float(train.sum()), rel=1e-6)
    # mml.backends.torch_forward passes the key (and the device) on
    y3, _ = mml.backends.torch_forward(spec, p, x, training=True, key=k, device="cpu")
    assert torch.equal(y3, train)
    as_np = TorchParams({n: v.numpy() for n, v in p.params.items()}, {}, (3,), (1,))
    y4, moved = mml.backends.torch_forward(spec, as_np, x, training=False, device="cpu")
    assert torch.equal(y4, y) and all(v.device.type == "cpu" for v in moved.params.values())


def test_a_user_module_output_shape_comes_from_a_dry_run_at_the_input_shape() -> None:
    spec = TorchModule(factory="backend_factories:bn_net", kwargs={"hidden": 3})
    p = init_params(spec, (4,), target_shape=(2,), key=K0)  # the factory is given input_shape (4,)
    assert (p.input_shape, p.output_shape) == ((4,), (2,))
    assert tuple(p.params["0.weight"].shape) == (3, 4)


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        (SequentialMLP(hidden=(3,), output_shape=(1,)), (2,)),
        (SequentialCNN(channels=(2,), output_shape=(1,)), (6,)),
        (SequentialCNN(channels=(2,), output_shape=(1,), dims=2), (4, 4)),
        (TemporalCNN(channels=(2,), output_shape=(1,)), (6,)),
    ],
    ids=["mlp", "cnn", "cnn2d", "tcn"],
)
def test_without_dropout_training_needs_no_key_and_equals_eval(spec: object, shape: tuple[int, ...]) -> None:
    p = init_params(spec, shape, (1,), key=K0)  # type: ignore[arg-type]
    x = torch.randn((3, *shape), generator=torch_generator(mml.random.key(6)))
    y_train, _ = apply(spec, p, x, training=True)  # type: ignore[arg-type]
    assert torch.equal(y_train, apply(spec, p, x)[0])  # type: ignore[arg-type]
