"""Forward-pass overhead of mml's torch backend against a plain ``torch.nn.Sequential``.

A 16 -> 64 -> 64 -> 1 :class:`~mml.models.SequentialMLP` through :func:`mml.backends.apply`
versus calling the same ``nn.Sequential`` (same weights, same input tensors) directly.
Reports the median over repeated runs of many iterations, and the ratio mml / plain.

Run: ``.venv/bin/python benchmarks/bench_forward.py``  (targets: ratio <= 1.15 at batch 256,
<= 1.5 at batch 32).
"""

from __future__ import annotations

import statistics
import time

import torch

import mml
from mml.backends import apply, init_params
from mml.models import SequentialMLP


def _time(fn, iters: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def bench(batch: int, *, repeats: int = 9, iters: int = 3000) -> tuple[float, float]:
    spec = SequentialMLP(hidden=(64, 64), output_shape=(1,))
    params = init_params(spec, (16,), (1,), key=mml.random.key(0))
    seq = torch.nn.Sequential(
        torch.nn.Linear(16, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    with torch.no_grad():
        for i, layer in enumerate([seq[0], seq[2], seq[4]]):
            layer.weight.copy_(params.params[f"layers.{i}.weight"])
            layer.bias.copy_(params.params[f"layers.{i}.bias"])
    seq.eval()
    x = torch.randn(batch, 16, generator=mml.random.torch_generator(mml.random.key(1)))
    assert torch.allclose(seq(x), apply(spec, params, x)[0])

    def plain() -> object:
        return seq(x)

    def ours() -> object:
        return apply(spec, params, x, training=False)

    mml_t, plain_t = [], []
    with torch.no_grad():
        for _ in range(repeats):  # interleave so both see the same machine state
            plain_t.append(_time(plain, iters))
            mml_t.append(_time(ours, iters))
    return statistics.median(mml_t), statistics.median(plain_t)


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, CPU")
    print(f"{'batch':>6} {'mml (us)':>10} {'plain (us)':>11} {'ratio':>7} {'target':>7}")
    for batch, target in ((256, 1.15), (32, 1.5)):
        ours, plain = bench(batch)
        print(f"{batch:>6} {ours * 1e6:>10.2f} {plain * 1e6:>11.2f} {ours / plain:>7.3f} {target:>7.2f}")


if __name__ == "__main__":
    main()
