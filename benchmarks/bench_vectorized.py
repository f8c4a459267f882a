"""Vectorised training: K folds / trials / ensemble members in one stacked step vs one model.

The battery MLP of ``bench_training.py`` (16 -> 64 -> 64 -> 1, Adam(1e-3), batch 256, min-max
scaled synthetic data), ``--n`` samples, one epoch, a test evaluation. Every case is timed
in this process, interleaved with the single-model baseline, medians of ``--repeats`` runs.
Ratios: (time of the K-model run) / (time of one model's run). Targets: 5-fold CV <= 1.5x one
fold; an 8-trial learning-rate sweep <= 2x one trial.

    python benchmarks/bench_vectorized.py [--n 20000] [--repeats 3] [--threads 1] [--ks 1 2 5 10 20]
                                          [--widths 32 64 128 256] [--ks-widths 64] [--floor-only]
                                          [--clock wall|cpu] [--skip cv sweep ks widths]

The first table is the floor: a hand-written PyTorch loop of one model (``torch.nn`` +
``torch.optim.Adam``) against a hand-written stacked loop of K models (``torch.baddbmm``, one
``torch.optim.Adam`` over the stacked tensors, each member its own shuffle of its own rows), the
same epoch and eval. No framework can stack K models for less than that on this machine; the
mml rows are to be read against it.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from typing import Any

from _timing import interleaved


def make_experiment(n: int, width: int = 64, batch: int = 256):  # type: ignore[no-untyped-def]
    import numpy as np

    import mml
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.models import SequentialMLP
    from mml.training import AppliedLoss, EvalPhase, Experiment, PhaseGroup, TrainPhase

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    w = rng.normal(size=16).astype(np.float32)
    y = (np.tanh(x @ w / 4) + 0.05 * rng.normal(size=n)).astype(np.float32)
    fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="bench")
    fs = fs.split(mml.RandomSplitter({"train": 0.8, "val": 0.2}, seed=0))
    fs = mml.scalers.fit_transform(fs, "minmax", domain="features", fit_on="train")
    fs = mml.scalers.fit_transform(fs, "minmax", domain="targets", fit_on="train")
    graph = ModelGraph.of(
        ModelNode(
            "mlp",
            SequentialMLP(hidden=(width, width)),
            FeatureSetRef("bench"),
            optimizer=mml.optim.adam(1e-3),
        )
    )
    plan = PhaseGroup(
        "plan",
        [
            TrainPhase.simple(
                "fit",
                featureset="bench",
                heads=["mlp"],
                losses=AppliedLoss("mse", "mlp"),
                n_epochs=1,
                sampler=mml.SimpleSampler(batch),
            ),
            EvalPhase.simple("val", featureset="bench", heads=["mlp"], split="val", batch_size=4096),
        ],
    )
    return Experiment({"bench": fs}, graph, plan)


def hand_floor(n_train: int, ks: list[int], width: int, repeats: int, clock: Any = None) -> dict[str, float]:
    """Times of the hand-written one-model loop and the hand-written K-model stacked loop."""
    return interleaved(floor_fns(n_train, ks, width), repeats=repeats, **({"clock": clock} if clock else {}))


def floor_fns(n_train: int, ks: list[int], width: int) -> dict[str, Any]:
    """The hand-written one-model loop (``"one"``) and K-model stacked loops (``"K=<k>"``), to time."""
    import torch

    torch.manual_seed(0)
    x = torch.randn(n_train, 16)
    y = torch.tanh(x @ torch.randn(16, 1) / 4)
    xv, yv = x[: n_train // 4], y[: n_train // 4]
    batch = 256

    def one() -> None:
        net = torch.nn.Sequential(
            torch.nn.Linear(16, width),
            torch.nn.ReLU(),
            torch.nn.Linear(width, width),
            torch.nn.ReLU(),
            torch.nn.Linear(width, 1),
        )
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        perm = torch.randperm(n_train)
        for i in range(0, n_train, batch):
            idx = perm[i : i + batch]
            loss = torch.nn.functional.mse_loss(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            float(torch.nn.functional.mse_loss(net(xv), yv))

    def stacked(k: int) -> None:
        def lin(i: int, o: int) -> list[torch.Tensor]:
            bound = 1 / i**0.5
            w = (torch.rand(k, i, o) * 2 - 1) * bound
            return [w.requires_grad_(), ((torch.rand(k, 1, o) * 2 - 1) * bound).requires_grad_()]

        ps = lin(16, width) + lin(width, width) + lin(width, 1)
        opt = torch.optim.Adam(ps, 1e-3)

        def fwd(xb: torch.Tensor) -> torch.Tensor:
            h = torch.relu(torch.baddbmm(ps[1], xb, ps[0]))
            h = torch.relu(torch.baddbmm(ps[3], h, ps[2]))
            return torch.baddbmm(ps[5], h, ps[4])

        perms = torch.stack([torch.randperm(n_train) for _ in range(k)])  # each member its own order
        for i in range(0, n_train, batch):
            idx = perms[:, i : i + batch]
            loss = ((fwd(x[idx]) - y[idx]) ** 2).mean(dim=(1, 2)).sum()  # sum of the members' means
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            ((fwd(xv.expand(k, -1, -1)) - yv) ** 2).mean(dim=(1, 2))

    return {"one": one, **{f"K={k}": (lambda k=k: stacked(k)) for k in ks}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ks", type=int, nargs="*", default=[1, 2, 5, 10, 20])
    ap.add_argument("--widths", type=int, nargs="*", default=[32, 64, 128, 256])
    ap.add_argument(
        "--ks-widths", type=int, nargs="*", default=[64], help="widths of the ensemble-of-K table"
    )
    ap.add_argument("--floor-only", action="store_true", help="only the hand-written floor table")
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall time, or process CPU time (steadier on a busy box)",
    )
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=["cv", "sweep", "ks", "widths"], help="tables to leave out"
    )
    args = ap.parse_args()
    import time

    clock = {"clock": time.process_time} if args.clock == "cpu" else {}

    import torch

    torch.set_num_threads(args.threads)
    n_train = int(args.n * 0.8)
    print(
        f"floor: hand-written torch, {n_train} training rows, batch 256, 1 epoch, medians of {args.repeats}"
    )
    for width in args.widths if args.floor_only else [64]:
        t = hand_floor(n_train, args.ks, width, args.repeats, **clock)
        print(
            f"  width {width:4d}: "
            + "  ".join(f"{name}: {t[name] / t['one']:.2f}" for name in t if name != "one")
            + f"   (one model {t['one'] * 1e3:.0f} ms)"
        )
    if args.floor_only:
        return
    import mml
    from mml.strategies import (
        Job,
        LocalExecutor,
        VectorizedExecutor,
        cross_validate,
        ensemble,
        fold_featureset,
        run_job,
        sweep,
    )

    exp = make_experiment(args.n)
    folds = mml.KFoldSplitter(5, seed=0)
    fs = exp.featuresets["bench"]
    train, val = folds.folds(fs.view())[0]
    fold_exp = mml.training.Experiment({"bench": fold_featureset(fs, train, val, key=0)}, exp.graph, exp.plan)
    lrs = {"graph.nodes.mlp.optimizer.lr": [1e-4 * 2**i for i in range(8)]}
    r = args.repeats
    print(f"n={args.n}, batch 256, 1 epoch, torch threads {args.threads}, medians of {r}, {args.clock} clock")
    if "cv" not in args.skip:
        t = interleaved(
            {
                "one fold": lambda: run_job(Job(fold_exp, mml.random.key(0))),
                "5-fold CV, sequential": lambda: cross_validate(
                    exp, featureset="bench", splitter=folds, key=0
                ),
                "5-fold CV, vectorised": lambda: cross_validate(
                    exp, featureset="bench", splitter=folds, key=0, vectorize=True
                ),
            },
            repeats=r,
            **clock,
        )
        base = t["one fold"]
        for name, v in t.items():
            print(f"  {name:28s} {v * 1e3:9.1f} ms   ratio {v / base:5.2f}")

    if "sweep" not in args.skip:
        t = interleaved(
            {
                "one trial": lambda: run_job(Job(exp, mml.random.key(0))),
                "8-trial LR sweep, sequential": lambda: sweep(exp, lrs, key=0),
                "8-trial LR sweep, vectorised": lambda: sweep(exp, lrs, key=0, vectorize=True),
            },
            repeats=r,
            **clock,
        )
        base = t["one trial"]
        for name, v in t.items():
            print(f"  {name:28s} {v * 1e3:9.1f} ms   ratio {v / base:5.2f}")

    if "ks" not in args.skip:
        for width in args.ks_widths:
            e = exp if width == 64 else make_experiment(args.n, width)
            fns = {"one": lambda e=e: run_job(Job(e, mml.random.key(0)))}
            for k in args.ks:
                fns[f"K={k}"] = lambda k=k, e=e: ensemble(e, k, key=0, keep_states=False)
            t = interleaved(fns, repeats=r, **clock)
            print(f"ensemble of K (vectorised) / one model, width {width}:")
            print("  " + "  ".join(f"{name}: {t[name] / t['one']:.2f}" for name in fns if name != "one"))

    if "widths" not in args.skip:
        print("5 members (vectorised) / one model, by width; the hand-written floor in the same runs:")
        for width in args.widths:
            e = make_experiment(args.n, width)
            hand = floor_fns(n_train, [5], width)
            t = interleaved(
                {
                    "one": lambda e=e: run_job(Job(e, mml.random.key(0))),
                    "K=5": lambda e=e: VectorizedExecutor().map(
                        [Job(e, mml.random.fold_in(mml.random.key(0), i)) for i in range(5)]
                    ),
                    "K=5 seq": lambda e=e: LocalExecutor().map(
                        [Job(e, mml.random.fold_in(mml.random.key(0), i)) for i in range(5)]
                    ),
                    "hand one": hand["one"],
                    "hand K=5": hand["K=5"],
                },
                repeats=r,
                **clock,
            )
            print(
                f"  width {width:4d}: vectorised {t['K=5'] / t['one']:.2f}, sequential {t['K=5 seq'] / t['one']:.2f},"
                f" hand floor {t['hand K=5'] / t['hand one']:.2f}; mml K=5 / hand K=5 {t['K=5'] / t['hand K=5']:.2f}"
                f"   (one model {t['one'] * 1e3:.0f} ms, hand {t['hand one'] * 1e3:.0f} ms)"
            )


if __name__ == "__main__":
    main()
