"""Forward pass through a one-node ModelGraph (``mml.forward``) vs the same ``torch.nn.Sequential``.

16 -> 64 -> 64 -> 1 SequentialMLP, batches of 256 and 32, same weights and input tensors, in
one process, interleaved; medians of repeated runs of many iterations. Targets: ratio <= 1.15
at batch 256, <= 1.5 at batch 32. Run: ``python benchmarks/bench_graph_forward.py``.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import mml
from mml.graph import FeatureSetRef, ModelGraph, ModelNode, build, forward
from mml.models import SequentialMLP


def _time(fn, iters: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def bench(batch: int, *, repeats: int = 7, iters: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    fs = mml.FeatureSet.from_dict(
        {"x": rng.random((batch, 16), dtype=np.float32), "y": rng.random(batch, dtype=np.float32)},
        features="x",
        targets="y",
        label="bench",
    )
    graph = ModelGraph.of(ModelNode("mlp", SequentialMLP(hidden=(64, 64)), FeatureSetRef("bench")))
    state = build(graph, {"bench": fs}, key=mml.random.key(0))
    p = state["mlp"].params
    seq = torch.nn.Sequential(
        torch.nn.Linear(16, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    with torch.no_grad():
        for i, layer in enumerate([seq[0], seq[2], seq[4]]):
            layer.weight.copy_(p[f"layers.{i}.weight"])
            layer.bias.copy_(p[f"layers.{i}.bias"])
    x = torch.from_numpy(fs.to_numpy().copy())
    inputs = mml.SampleData(features=x)
    torch.testing.assert_close(forward(graph, state, inputs).outputs["mlp"], seq(x))

    def plain() -> object:
        return seq(x)

    def ours() -> object:
        return forward(graph, state, inputs).outputs["mlp"]

    mml_t, plain_t = [], []
    with torch.no_grad():
        for _ in range(repeats):
            plain_t.append(_time(plain, iters))
            mml_t.append(_time(ours, iters))
    return statistics.median(mml_t), statistics.median(plain_t)


def main() -> None:
    torch.set_num_threads(1)  # as the other forward benchmark: no thread-pool noise at these sizes
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} thread")
    for batch, target in ((256, 1.15), (32, 1.5)):
        m, b = bench(batch)
        verdict = "OK" if m / b <= target else f"ABOVE TARGET {target}"
        print(
            f"graph forward, batch {batch:>3}: mml {m * 1e6:8.1f} us  nn.Sequential {b * 1e6:8.1f} us  "
            f"ratio {m / b:5.2f}  {verdict}"
        )


if __name__ == "__main__":
    main()
