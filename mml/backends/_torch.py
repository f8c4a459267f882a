"""The PyTorch backend: parameters as a dict of tensors, pure forward functions.

Built-in models (:class:`~mml.models.SequentialMLP`, :class:`~mml.models.SequentialCNN`,
:class:`~mml.models.TemporalCNN`) run as plain functions of their parameter dict
(``torch.nn.functional`` calls, no module objects), which keeps the per-call overhead near
zero. A user :class:`~mml.models.TorchModule` runs through
``torch.func.functional_call`` on a module skeleton memoised per (spec, shapes, mode).

Randomness: initial weights are drawn from a ``torch.Generator`` seeded by the key; dropout in
built-in models draws its masks from a generator seeded by the key. User modules (whose
``reset_parameters`` and ``nn.Dropout`` use torch's default generator) run inside
``torch.random.fork_rng`` seeded from the key, so the global generator is left as it was.

>>> import mml, torch
>>> from mml.models import SequentialMLP
>>> spec = SequentialMLP(hidden=(8,), output_shape=(1,))
>>> params = init(spec, (4,), (1,), key=mml.random.key(0))
>>> y, _ = apply(spec, params, torch.zeros(5, 4), training=False)
>>> tuple(y.shape)
(5, 1)
"""

from __future__ import annotations

import functools
import itertools
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs
import numpy as np

from mml._fields import FrozenDict
from mml.backends._convert import resolve_device
from mml.backends._params import TorchParams
from mml.backends._protocol import AbstractGradientBackend
from mml.backends._torch_ops import _activation, _dropout, _Plan
from mml.errors import BackendError, ConfigError, ShapeError
from mml.models import (
    AbstractModel,
    SequentialCNN,
    SequentialMLP,
    TemporalCNN,
    TorchModule,
    call_factory,
    import_object,
    numel,
    signal_shape,
)
from mml.random import Key, fold_in, seed_int, torch_generator

__all__ = [
    "output_shape",
    "init",
    "apply",
    "torch_forward",
    "value_and_grad",
    "dry_run_shape",
]


def _mlp_plan(spec: SequentialMLP, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> _Plan:
    sizes = [numel(input_shape), *spec.hidden, numel(output_shape)]
    shapes = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        shapes += [(f"layers.{i}.weight", (b, a), a), (f"layers.{i}.bias", (b,), a)]
    names = [(f"layers.{i}.weight", f"layers.{i}.bias") for i in range(len(sizes) - 1)]
    hidden_names, (w_out, b_out) = names[:-1], names[-1]
    act = _activation(spec.activation)
    rate = spec.dropout
    out = tuple(output_shape)

    import torch.nn.functional as F

    linear = F.linear

    def forward(p: Mapping[str, Any], x: Any, training: bool, gen: Any) -> Any:
        n = x.shape[0]
        h = x.reshape(n, -1)
        for w, b in hidden_names:
            h = act(linear(h, p[w], p[b]))
            if training and rate:
                h = _dropout(h, rate, gen)
        return linear(h, p[w_out], p[b_out]).reshape(n, *out)

    return _Plan(tuple(shapes), forward, rate > 0)


def _cnn_plan(spec: SequentialCNN, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> _Plan:
    import torch.nn.functional as F

    from mml.backends._torch_image import cnn2d_plan, conv_param_shapes

    if spec.dims == 2:
        return cnn2d_plan(spec, input_shape, output_shape)
    c_in, _ = signal_shape(spec, input_shape)
    k = spec.kernel_size
    fmap = spec.feature_map_shape(input_shape)
    shapes = conv_param_shapes(spec, c_in, (k,), fmap, output_shape)
    convs = [(f"convs.{i}.weight", f"convs.{i}.bias") for i in range(len(spec.channels))]
    act = _activation(spec.activation)
    rate, pool, flatten, out = spec.dropout, spec.pooling, spec.flatten_output, tuple(output_shape)
    unsqueeze = len(input_shape) == 1

    # "same" padding, extra zero on the right for even kernels (as torch's and Keras' "same").
    pad_left, pad_right = (k - 1) // 2, (k - 1) - (k - 1) // 2
    symmetric = pad_left == pad_right

    def forward(p: Mapping[str, Any], x: Any, training: bool, gen: Any) -> Any:
        h = x.unsqueeze(1) if unsqueeze else x
        for w, b in convs:
            if symmetric:
                h = act(F.conv1d(h, p[w], p[b], padding=pad_left))
            else:
                h = act(F.conv1d(F.pad(h, (pad_left, pad_right)), p[w], p[b]))
            if pool > 1:
                h = F.max_pool1d(h, pool)
            if training and rate:
                h = _dropout(h, rate, gen)
        if not flatten:
            return h
        return F.linear(h.flatten(1), p["head.weight"], p["head.bias"]).reshape(x.shape[0], *out)

    return _Plan(tuple(shapes), forward, rate > 0)


def _tcn_plan(spec: TemporalCNN, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> _Plan:
    from mml.backends._torch_image import tcn_plan

    return tcn_plan(spec, input_shape, output_shape)


_PLANS: dict[type, Callable[..., _Plan]] = {
    SequentialMLP: _mlp_plan,
    SequentialCNN: _cnn_plan,
    TemporalCNN: _tcn_plan,
}


@functools.lru_cache(maxsize=256)
def _plan(spec: AbstractModel, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> _Plan:
    return _PLANS[type(spec)](spec, input_shape, output_shape)


# -- user modules ------------------------------------------------------------------------


def _build_module(
    spec: TorchModule, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None
) -> Any:
    import torch

    factory = import_object(spec.factory, "TorchModule factory")
    module = call_factory(factory, spec.kwargs, input_shape, output_shape)
    if not isinstance(module, torch.nn.Module):
        raise BackendError(
            f"TorchModule factory {spec.factory!r} returned a {type(module).__name__}, not a torch.nn.Module"
        )
    return module


@functools.lru_cache(maxsize=64)
def _skeleton(
    spec: TorchModule, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None, training: bool
) -> Any:
    # A memo of a pure builder: the module only lends its structure; its own tensors are never
    # read because functional_call substitutes every parameter and buffer.
    import torch

    # Building draws initial weights from torch's global generator; fork_rng restores it after, and
    # the skeleton's own values are never read (functional_call supplies every tensor).
    with torch.random.fork_rng(devices=[]):
        module = _build_module(spec, input_shape, output_shape)
    module.train(training)
    return module


def output_shape(
    spec: AbstractModel, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
) -> tuple[int, ...]:
    """The spec's own answer; a :class:`~mml.models.TorchModule` without a declared shape is run once."""
    if isinstance(spec, TorchModule) and spec.output_shape is None:
        return dry_run_shape(spec, input_shape, target_shape)
    return spec.infer_output_shape(input_shape, target_shape)


def dry_run_shape(
    spec: TorchModule, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
) -> tuple[int, ...]:
    """Per-sample output shape of a user module: one eval-mode forward pass on zeros.

    >>> from mml.models import TorchModule
    >>> dry_run_shape(TorchModule(factory="torch.nn:Flatten"), (2, 3), None)
    (6,)
    """
    import torch

    module = _skeleton(spec, tuple(input_shape), target_shape, False)
    with torch.no_grad():
        y = module(torch.zeros((1, *input_shape)))
    if not isinstance(y, torch.Tensor):
        raise BackendError(f"TorchModule {spec.factory!r} must return one tensor, got {type(y).__name__}")
    return tuple(int(v) for v in y.shape[1:])


# -- init ----------------------------------------------------------------------------------


def init(
    spec: AbstractModel,
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    *,
    key: Key,
    device: Any = "cpu",
) -> TorchParams:
    """Fresh parameters for ``spec``: same key ⇒ bit-identical tensors.

    Built-ins use PyTorch's default scheme (uniform in ``±1/sqrt(fan_in)`` for weights and
    biases) drawn from a generator seeded by ``key``; user modules keep their own
    initialisation, run under a forked RNG seeded by ``key``.

    >>> import mml
    >>> from mml.models import SequentialMLP
    >>> p = init(SequentialMLP(hidden=(4,)), (3,), (1,), key=mml.random.key(0))
    >>> [tuple(t.shape) for t in p.params.values()]
    [(4, 3), (4,), (1, 4), (1,)]
    """
    import torch

    dev = resolve_device(device)
    input_shape = tuple(int(v) for v in input_shape)
    output_shape = tuple(int(v) for v in output_shape)
    if isinstance(spec, TorchModule):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_int(fold_in(key, "init")))
            module = _build_module(spec, input_shape, output_shape)
        params = {k: v.detach().clone().to(dev) for k, v in module.named_parameters()}
        buffers = {k: v.detach().clone().to(dev) for k, v in module.named_buffers()}
        return TorchParams(params, buffers, input_shape, output_shape)
    if type(spec) not in _PLANS:
        raise BackendError(f"the torch backend cannot run a {type(spec).__name__} (backend {spec.backend!r})")
    plan = _plan(spec, input_shape, output_shape)
    gen = torch_generator(fold_in(key, "init"))
    params = {}
    for name, shape, fan_in in plan.shapes:
        bound = 1.0 / math.sqrt(fan_in)
        t = torch.empty(shape, dtype=torch.float32).uniform_(-bound, bound, generator=gen)
        params[name] = t.to(dev)
    return TorchParams(params, {}, input_shape, output_shape)


# -- apply ---------------------------------------------------------------------------------


def _as_tensor(v: Any, device: Any = None) -> Any:
    import torch

    if isinstance(v, torch.Tensor):
        return v if device is None or v.device == device else v.to(device)
    arr = np.asarray(v)
    t = torch.from_numpy(np.array(arr, copy=True))
    return t if device is None else t.to(device)


def _tensors(m: Mapping[str, Any], device: Any) -> Mapping[str, Any]:
    import torch

    tensor = torch.Tensor
    for v in m.values():
        if type(v) is not tensor or (device is not None and v.device != device):
            return {k: _as_tensor(v, device) for k, v in m.items()}
    return m


def _input(x: Any, params: TorchParams, like: Any) -> Any:
    import torch

    if not isinstance(x, torch.Tensor):
        arr = np.asarray(x)
        if not arr.flags.writeable or not arr.flags.c_contiguous:
            arr = np.array(arr, copy=True, order="C")
        x = torch.from_numpy(arr)
    if x.dtype != like.dtype or x.device != like.device:
        x = x.to(
            device=like.device,
            dtype=like.dtype if x.is_floating_point() or like.is_floating_point() else None,
        )
    if tuple(x.shape[1:]) != params.input_shape:
        raise ShapeError(
            f"the torch node was built for per-sample input shape {params.input_shape}, got a batch of shape "
            f"{tuple(x.shape)}; expected ({'n, ' + ', '.join(map(str, params.input_shape))})"
        )
    return x


def torch_forward(
    spec: AbstractModel,
    params: TorchParams,
    x: Any,
    *,
    training: bool,
    key: Key | None = None,
    device: Any = None,
) -> tuple[Any, TorchParams]:
    """Differentiable forward pass: ``(y, new_params)``.

    ``y`` is differentiable with respect to the tensors in ``params.params`` (nothing is
    detached), so a training loop can chain several torch nodes and run one backward pass
    through all of them. ``new_params`` equals ``params`` except for updated buffers (BatchNorm
    running statistics in training mode), which are new tensors: the caller's buffers are
    never written to. ``key`` drives dropout and is required when ``training`` is true and the
    model is stochastic.

    >>> import mml, torch
    >>> from mml.models import SequentialMLP
    >>> spec = SequentialMLP(hidden=(4,), output_shape=(1,))
    >>> p = init(spec, (3,), (1,), key=mml.random.key(0))
    >>> leaves = {k: v.clone().requires_grad_() for k, v in p.params.items()}
    >>> y, _ = torch_forward(spec, p.replace_params(leaves), torch.ones(2, 3), training=True)
    >>> y.sum().backward(); leaves["layers.0.weight"].grad is not None
    True
    """

    dev = None if device is None else resolve_device(device)
    p = _tensors(params.params, dev)
    if not p:
        raise BackendError(
            f"{type(spec).__name__} has no parameters; was it built with mml.backends.init_params()?"
        )
    like = next(iter(p.values()))
    x = _input(x, params, like)
    if isinstance(spec, TorchModule):
        return _module_forward(spec, params, p, x, training, key, dev)
    plan = _plan(spec, params.input_shape, params.output_shape)
    gen = None
    if training and plan.stochastic:
        if key is None:
            raise ConfigError(
                f"{type(spec).__name__} uses dropout: training=True needs a key (key=mml.random.fold_in(k, step))"
            )
        gen = torch_generator(key, like.device)
    y = plan.forward(p, x, training, gen)
    if p is params.params:
        return y, params
    return y, attrs.evolve(params, params=p)


def _module_forward(
    spec: TorchModule,
    params: TorchParams,
    p: Mapping[str, Any],
    x: Any,
    training: bool,
    key: Key | None,
    dev: Any,
) -> tuple[Any, TorchParams]:
    import torch
    from torch.func import functional_call

    module = _skeleton(spec, params.input_shape, params.output_shape, training)
    buffers = _tensors(params.buffers, dev)
    if training and buffers:
        # functional_call lets BatchNorm update its running stats in place: hand it copies.
        buffers = {k: v.clone() for k, v in buffers.items()}
    if training:
        if key is None:
            raise ConfigError("a TorchModule in training mode needs a key (its dropout draws from it)")
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed_int(key))
            y = functional_call(module, (dict(p), dict(buffers)), (x,))
    else:
        y = functional_call(module, (dict(p), dict(buffers)), (x,))
    if p is params.params and buffers is params.buffers:
        return y, params
    return y, attrs.evolve(params, params=p, buffers=FrozenDict(buffers))


def apply(
    spec: AbstractModel,
    params: TorchParams,
    x: Any,
    *,
    training: bool = False,
    key: Key | None = None,
    device: Any = None,
) -> tuple[Any, TorchParams]:
    """Run the model: ``(y, new_params)``. Same as :func:`torch_forward` (torch tensors out).

    >>> import mml, numpy as np
    >>> from mml.models import SequentialMLP
    >>> spec = SequentialMLP(hidden=(4,), output_shape=(2,))
    >>> p = init(spec, (3,), (2,), key=mml.random.key(1))
    >>> tuple(apply(spec, p, np.zeros((5, 3), np.float32))[0].shape)
    (5, 2)
    """
    return torch_forward(spec, params, x, training=training, key=key, device=device)


def value_and_grad(
    spec: AbstractModel,
    params: TorchParams,
    x: Any,
    loss_fn: Callable[[Any], tuple[Any, Any]],
    *,
    key: Key | None = None,
    training: bool = True,
) -> tuple[tuple[Any, Any], Mapping[str, Any], TorchParams]:
    """``((loss, aux), grads, new_params)`` of ``loss_fn(model(x))`` with respect to ``params.params``.

    ``loss_fn(y) -> (scalar loss tensor, aux)``. ``grads`` is keyed like ``params.params``
    (zeros for unused parameters). The caller's tensors are never modified.

    >>> import mml, torch
    >>> from mml.models import SequentialMLP
    >>> spec = SequentialMLP(hidden=(4,), output_shape=(1,))
    >>> p = init(spec, (3,), (1,), key=mml.random.key(0))
    >>> (loss, aux), g, _ = value_and_grad(spec, p, torch.ones(8, 3), lambda y: ((y**2).mean(), None))
    >>> sorted(g) == sorted(p.params)
    True
    """
    import torch

    leaves = {k: _as_tensor(v).detach().requires_grad_(True) for k, v in params.params.items()}
    with torch.enable_grad():
        y, new = torch_forward(spec, attrs.evolve(params, params=leaves), x, training=training, key=key)
        loss, aux = loss_fn(y)
        values = list(leaves.values())
        grads = torch.autograd.grad(loss, values, allow_unused=True)
    gmap = {k: (torch.zeros_like(v) if g is None else g) for (k, v), g in zip(leaves.items(), grads)}
    new_params = attrs.evolve(new, params=params.params)
    return (loss.detach(), aux), FrozenDict(gmap), new_params


@typing.final
class TorchBackend(AbstractGradientBackend):
    """The PyTorch backend: this module's functions (see :class:`AbstractBackend`)."""

    name: ClassVar[str] = "torch"
    output_shape = staticmethod(output_shape)
    init = staticmethod(init)
    apply = staticmethod(apply)
    value_and_grad = staticmethod(value_and_grad)
