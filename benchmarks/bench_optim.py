"""Cost of one optimizer update: mml.optim (functional, out of place) vs torch.optim (in place).

Model: the 16→64→64→1 MLP (5 313 parameters in 6 tensors), gradients fixed. Prints the median
microseconds per update over several repeats and the ratio mml / torch.

    .venv/bin/python benchmarks/bench_optim.py [--threads N] [--number 2000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

import mml.optim as optim


def median_us(fn: Callable[[], Any], number: int, repeat: int) -> float:
    for _ in range(max(number // 10, 10)):
        fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - t0) / number * 1e6)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--number", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 1),
    )
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    grads = {k: torch.randn(v.shape, generator=gen) * 0.1 for k, v in params.items()}
    for k, p in model.named_parameters():
        p.grad = grads[k].clone()
    n = sum(v.numel() for v in params.values())
    print(
        f"MLP 16-64-64-1: {n} parameters in {len(params)} tensors; torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    print(f"{'optimizer':<28}{'mml µs':>10}{'torch µs':>10}{'ratio':>8}")

    cases: list[tuple[str, Any, Callable[[list[Any]], Any]]] = [
        ("adam", optim.adam(1e-3), lambda p: torch.optim.Adam(p, 1e-3)),
        ("adam (torch foreach=True)", optim.adam(1e-3), lambda p: torch.optim.Adam(p, 1e-3, foreach=True)),
        ("adamw", optim.adamw(1e-3), lambda p: torch.optim.AdamW(p, 1e-3)),
        (
            "sgd momentum nesterov",
            optim.sgd(1e-2, momentum=0.9, nesterov=True),
            lambda p: torch.optim.SGD(p, 1e-2, momentum=0.9, nesterov=True),
        ),
        ("rmsprop", optim.rmsprop(1e-3), lambda p: torch.optim.RMSprop(p, 1e-3)),
        ("clipped(adam, norm=1)", optim.clipped(optim.adam(1e-3), norm=1.0), None),
    ]
    for name, opt, make_ref in cases:
        state = opt.init(params)
        mine = median_us(
            lambda opt=opt, state=state: opt.update(grads, state, params, 10), args.number, args.repeat
        )
        if make_ref is None:
            print(f"{name:<28}{mine:>10.1f}{'-':>10}{'-':>8}")
            continue
        ref = make_ref(list(model.parameters()))
        ref.step()  # create the state
        theirs = median_us(ref.step, args.number, args.repeat)
        print(f"{name:<28}{mine:>10.1f}{theirs:>10.1f}{mine / theirs:>8.2f}")


if __name__ == "__main__":
    main()
