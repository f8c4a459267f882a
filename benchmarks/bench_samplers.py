"""Benchmark: mml samplers against a hand-written numpy/torch loop and torch's DataLoader.

Run: ``.venv/bin/python benchmarks/bench_samplers.py [--repeats 5]``. Prints the median of the
runs (seconds) and ratios against the hand-written loop.

1. One epoch of ``SimpleSampler(batch_size=256, shuffle=True)`` over 700,000 samples x 16
   float32 features (+1 target), every batch turned into torch tensors, for a FeatureSet with
   16 scalar feature keys and one with a single (16,)-shaped key; with and without the one-off
   ``prepare``; ``torch.from_numpy`` per array and ``batch.to_torch()``.
2. ``PairedSampler`` with one similarity condition on 100,000 samples: time and peak memory.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable

import numpy as np

import mml
from mml.samplers import PairedSampler, SimpleSampler, similar

N, D, BATCH = 700_000, 16, 256


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def simple_benchmark(repeats: int) -> None:
    import torch

    # Batch arrays are fresh, read-only chunks nobody writes to; torch warns about read-only memory.
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    rng = np.random.default_rng(0)
    x = rng.random((N, D), dtype=np.float32)
    y = rng.random(N, dtype=np.float32)
    scalar_fs = mml.FeatureSet.from_dict(
        {**{f"f{i}": x[:, i] for i in range(D)}, "y": y},
        features=[f"f{i}" for i in range(D)],
        targets="y",
        label="s",
    )
    tensor_fs = mml.FeatureSet.from_dict({"x": x, "y": y}, features="x", targets="y", label="t")
    xs, ys = np.ascontiguousarray(x), np.ascontiguousarray(y.reshape(-1, 1))
    key = mml.random.key(0)

    def hand() -> None:
        perm = np.random.default_rng(1).permutation(N)
        for i in range(0, N, BATCH):
            idx = perm[i : i + BATCH]
            torch.from_numpy(xs[idx]), torch.from_numpy(ys[idx])

    def dataloader() -> None:
        ds = torch.utils.data.TensorDataset(torch.from_numpy(xs), torch.from_numpy(ys))
        gen = torch.Generator().manual_seed(0)
        for _ in torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, generator=gen):
            pass

    t_hand = median_time(hand, repeats)
    print(f"hand-written loop (permutation + fancy index + from_numpy): {t_hand:.4f} s")
    rows = []
    for name, fs in (("16 scalar keys", scalar_fs), ("one (16,) key", tensor_fs)):
        sampler = SimpleSampler(BATCH, shuffle=True)
        t_prep = median_time(lambda fs=fs, sampler=sampler: sampler.prepare(fs.view()), repeats)
        data = sampler.prepare(fs.view())
        assert data.features.shape == (N, D)

        def epoch_from_numpy(sampler: SimpleSampler = sampler, data: object = data) -> None:
            for b in sampler.batches(data, key=key, epoch=1):  # type: ignore[arg-type]
                torch.from_numpy(b.features), torch.from_numpy(b.targets)

        def epoch_to_torch(sampler: SimpleSampler = sampler, data: object = data) -> None:
            for b in sampler.batches(data, key=key, epoch=1):  # type: ignore[arg-type]
                b.to_torch()

        t_np = median_time(epoch_from_numpy, repeats)
        t_tt = median_time(epoch_to_torch, repeats)
        rows.append((f"{name}: prepare (once per phase)", t_prep))
        rows.append((f"{name}: epoch, torch.from_numpy per batch", t_np))
        rows.append((f"{name}: epoch, batch.to_torch()", t_tt))
        rows.append((f"{name}: prepare + epoch, torch.from_numpy", t_prep + t_np))
        rows.append((f"{name}: prepare + epoch, batch.to_torch()", t_prep + t_tt))
    t_dl = median_time(dataloader, max(1, min(repeats, 3)))
    rows.append(("torch DataLoader(TensorDataset, batch_size=256, shuffle=True)", t_dl))
    for label, t in rows:
        print(f"{label:<66} {t:8.4f} s   ratio vs hand {t / t_hand:5.2f}")


def paired_benchmark(repeats: int) -> None:
    n = 100_000
    rng = np.random.default_rng(0)
    fs = mml.FeatureSet.from_dict(
        {"x": rng.random((n, D), dtype=np.float32), "soh": rng.random(n)}, features="x", tags="soh", label="p"
    )
    sampler = PairedSampler({"soh": similar(0.01, weight_mode="linear")}, batch_size=BATCH)
    key = mml.random.key(0)
    t_prep = median_time(lambda: sampler.prepare(fs.view()), repeats)
    data = sampler.prepare(fs.view())

    def epoch() -> None:
        for _ in sampler.batches(data, key=key, epoch=0):
            pass

    t_epoch = median_time(epoch, repeats)
    tracemalloc.start()
    data2 = sampler.prepare(fs.view())
    for _ in sampler.batches(data2, key=key, epoch=0):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    feature_mb = n * D * 4 / 2**20
    print(
        f"PairedSampler, 100,000 anchors, one condition: prepare {t_prep:.4f} s, epoch {t_epoch:.4f} s, "
        f"peak traced memory {peak / 2**20:.1f} MiB (features alone {feature_mb:.1f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    simple_benchmark(args.repeats)
    paired_benchmark(args.repeats)


if __name__ == "__main__":
    main()
