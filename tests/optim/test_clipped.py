"""Clipping composes with an optimizer (issue 12): ``clipped(opt, norm=, value=)`` is clip, then ``opt``."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

import mml  # noqa: E402
import mml.optim as optim  # noqa: E402
from mml.config import experiment_from_config, parse_yaml  # noqa: E402
from mml.errors import ConfigError  # noqa: E402

INNER = [
    optim.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    optim.adam(optim.Cosine(1e-2, 100), amsgrad=True),
    optim.adamw(1e-2),
    optim.rmsprop(1e-2, centered=True),
]


def _torch_clipped(grads: dict[str, Any], norm: float | None, value: float | None) -> dict[str, Any]:
    """The reference: torch.nn.utils' in-place clipping on copies (value first, then norm)."""
    ps = {k: torch.zeros_like(g, requires_grad=True) for k, g in grads.items()}
    for k, p in ps.items():
        p.grad = grads[k].clone()
    if value is not None:
        torch.nn.utils.clip_grad_value_(list(ps.values()), value)
    if norm is not None:
        torch.nn.utils.clip_grad_norm_(list(ps.values()), norm)
    return {k: p.grad for k, p in ps.items()}


@pytest.mark.parametrize("inner", INNER, ids=lambda o: type(o).__name__)
@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    norm=st.none() | st.floats(0.05, 5.0),
    value=st.none() | st.floats(0.01, 2.0),
    step=st.integers(0, 20),
)
def test_clipped_is_torch_clipping_then_the_optimizer(
    inner: Any, seed: int, norm: float | None, value: float | None, step: int
) -> None:
    if norm is None and value is None:
        value = 0.1
    gen = torch.Generator().manual_seed(seed)
    params = {"w": torch.randn(4, 3, generator=gen), "b": torch.randn(3, generator=gen)}
    grads = {k: 3 * torch.randn(v.shape, generator=gen) for k, v in params.items()}
    before = {k: g.clone() for k, g in grads.items()}
    opt = optim.clipped(inner, norm=norm, value=value)
    state = opt.init(params)
    assert state == inner.init(params)  # clipping keeps no state of its own
    got_p, got_s = opt.update(grads, state, params, step)
    want_p, want_s = inner.update(_torch_clipped(grads, norm, value), state, params, step)
    for k in params:
        torch.testing.assert_close(got_p[k], want_p[k], rtol=1e-6, atol=1e-7)
    assert all(torch.equal(grads[k], before[k]) for k in grads)  # the caller's gradients untouched
    assert type(got_s) is type(want_s)


def test_a_clip_that_bites_changes_the_step_and_one_that_does_not_changes_nothing() -> None:
    params = {"w": torch.zeros(2)}
    grads = {"w": torch.tensor([3.0, 4.0])}  # norm 5
    sgd = optim.sgd(1.0)
    state = sgd.init(params)
    # 1.0 / (5 + 1e-6) scales (3, 4) to (0.6, 0.8), less one part in 5e6
    bit, _ = optim.clipped(sgd, norm=1.0).update(grads, state, params, 0)
    torch.testing.assert_close(bit["w"], torch.tensor([-0.6, -0.8]) * (5 / (5 + 1e-6)), rtol=0, atol=1e-7)
    # by value first: (3, 4) -> (3, 3.5), norm 4.61 < 10: the norm clip leaves it
    both, _ = optim.clipped(sgd, norm=10.0, value=3.5).update(grads, state, params, 0)
    assert both["w"].tolist() == [-3.0, -3.5]
    loose, _ = optim.clipped(sgd, norm=100.0).update(grads, state, params, 0)
    assert torch.equal(loose["w"], sgd.update(grads, state, params, 0)[0]["w"])


def test_clipped_reads_its_optimizers_learning_rate() -> None:
    inner = optim.adam(optim.StepDecay(1e-2, step_size=10, gamma=0.5))
    c = optim.clipped(inner, value=1.0)
    assert c.lr == inner.lr
    assert [c.learning_rate(s, lr_scale=0.5) for s in (0, 10, 20)] == [0.005, 0.0025, 0.00125]


def test_the_document_of_a_clipped_optimizer() -> None:
    c = optim.clipped(optim.adam(1e-3), norm=1.0)
    doc = mml.io.unstructure(c)
    assert {k: doc[k] for k in ("kind", "norm", "value")} == {
        "kind": "optim.clipped",
        "norm": 1.0,
        "value": None,
    }
    assert doc["optimizer"]["kind"] == "optim.adam" and doc["optimizer"]["lr"] == 1e-3
    assert mml.io.structure(json.loads(json.dumps(doc)), optim.AbstractOptimizer) == c
    assert mml.io.roundtrip(c) == c
    assert "clip_norm" not in mml.io.unstructure(optim.adam())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: optim.clipped(optim.sgd(0.1)), "Clipped(SGD) clips nothing: pass norm=..."),
        (lambda: optim.clipped(optim.sgd(0.1), norm=0.0), "norm"),
        (lambda: optim.clipped(optim.sgd(0.1), value=-1.0), "value"),
        (
            lambda: optim.clipped("adam", norm=1.0),
            "Clipped.optimizer is the optimizer the clipped gradients feed",
        ),
    ],
)
def test_bad_clipping_is_a_config_error(make: Any, message: str) -> None:
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        make()


CONFIG = parse_yaml(
    """
label: toy
seed: 0
featuresets:
  battery:
    dataset: battery
    n_samples: 40
    split: {kind: splitter.random, ratios: {train: 0.5, val: 0.5}, seed: 0}
graph:
  nodes:
    - kind: node.model
      label: mlp
      model: {kind: model.mlp, hidden: [4]}
      upstream: {featureset: battery}
      optimizer: {kind: optim.clipped, norm: 1.0, optimizer: {kind: optim.adam, lr: 1e-2}}
plan:
  kind: phase.train
  label: train
  inputs:
    mlp: {featureset: battery, split: train, sampler: {kind: sampler.simple, batch_size: 8}}
  losses: [{loss: mse, node: mlp}]
  n_epochs: 1
"""
)


def test_a_yaml_config_composes_clipping_and_an_old_one_says_the_new_spelling() -> None:
    exp = experiment_from_config(CONFIG)[0]
    assert exp.graph["mlp"].optimizer == optim.clipped(optim.adam(1e-2), norm=1.0)
    old = copy.deepcopy(CONFIG)
    old["graph"]["nodes"][0]["optimizer"] = {"kind": "optim.adam", "lr": 1e-2, "clip_norm": 1.0}
    with pytest.raises(ConfigError) as err:
        experiment_from_config(old)
    assert (
        "$.graph.nodes[0].optimizer.clip_norm: unknown key (clip_norm was removed: clipping composes with an "
        "optimizer: {kind: optim.clipped, optimizer: {kind: ...}, norm: 1.0} (in Python "
        "mml.optim.clipped(mml.optim.adam(1e-3), norm=1.0)))"
    ) in str(err.value)
    old["graph"]["nodes"][0]["optimizer"] = {"kind": "optim.sgd", "lr": 0.1, "clip_value": 0.5}
    with pytest.raises(ConfigError, match=r"clip_value was removed: .*value: 0\.5"):
        experiment_from_config(old)


def test_a_clipped_optimizer_on_a_node_trains_and_replays() -> None:
    # the torch training path: the clip bites (other weights than without it), and the same run
    # twice is bit-identical
    tight = copy.deepcopy(CONFIG)
    tight["graph"]["nodes"][0]["optimizer"]["norm"] = 1e-3
    plain = copy.deepcopy(CONFIG)
    plain["graph"]["nodes"][0]["optimizer"] = {"kind": "optim.adam", "lr": 1e-2}

    def weights(cfg: Any) -> dict[str, Any]:
        exp = experiment_from_config(cfg)[0]
        state, history = mml.run(exp, mml.init(exp, 0), progress=False)
        assert history.status == "completed"
        return {k: v.detach().clone() for k, v in state.params("mlp").params.items()}

    a, b, c = weights(tight), weights(tight), weights(plain)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.allclose(a[k], c[k]) for k in a)


@pytest.mark.parametrize("factory", ["sgd", "adam", "adamw", "rmsprop"])
def test_the_factories_01_keywords_make_the_composed_value(factory):
    make = getattr(optim, factory)
    lr = 0.1
    assert make(lr) == make(lr, clip_norm=None, clip_value=None)
    assert type(make(lr)).__name__ != "Clipped"
    assert make(lr, clip_norm=1.0) == optim.clipped(make(lr), norm=1.0)
    assert make(lr, clip_value=0.5) == optim.clipped(make(lr), value=0.5)
    both = make(lr, clip_norm=2.0, clip_value=0.5)
    assert both == optim.clipped(make(lr), norm=2.0, value=0.5)
    assert mml.io.structure(mml.io.unstructure(both), type(both)) == both
