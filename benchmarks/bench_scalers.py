"""Benchmark: ``fit_transform`` of ``minmax`` / ``standard`` on a FeatureSet vs scikit-learn.

1M samples x 16 float32 features (one tensor key of shape (16,)), fitted on a 70 % split,
applied to all rows. The baseline is scikit-learn's own scaler on the same numpy arrays
(``fit(X[train]).transform(X)``). Prints the median of N runs for both and their ratio
(target: <= 1.5). A second table does the same for 16 scalar keys.

Run: ``.venv/bin/python benchmarks/bench_scalers.py [--n 1000000] [--repeats 7]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    import sklearn.preprocessing as skp

    import mml

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    rng = mml.random.numpy_rng(mml.random.key(0))
    x = rng.normal(size=(args.n, args.width)).astype(np.float32)
    train = np.sort(rng.permutation(args.n)[: int(0.7 * args.n)])

    fs_tensor = mml.FeatureSet.from_dict({"x": x}, features="x", label="bench").with_split("train", train)
    cols = {f"f{i}": np.ascontiguousarray(x[:, i]) for i in range(args.width)}
    fs_scalar = mml.FeatureSet.from_dict(cols, features=list(cols), label="bench").with_split("train", train)

    baselines = {"minmax": skp.MinMaxScaler, "standard": skp.StandardScaler}
    print(f"{args.n} x {args.width} float32, fit on {len(train)} rows (70 %), median of {args.repeats} runs")
    print(f"{'layout':<16}{'scaler':<10}{'mml [s]':>10}{'sklearn [s]':>13}{'ratio':>8}")
    for layout, fs in (("1 key (16,)", fs_tensor), ("16 scalar keys", fs_scalar)):
        for name, sk_cls in baselines.items():
            t_mml = median_time(lambda fs=fs, name=name: mml.scalers.fit_transform(fs, name), args.repeats)
            t_sk = median_time(lambda sk_cls=sk_cls: sk_cls().fit(x[train]).transform(x), args.repeats)
            print(f"{layout:<16}{name:<10}{t_mml:>10.4f}{t_sk:>13.4f}{t_mml / t_sk:>8.2f}")


if __name__ == "__main__":
    main()
