"""Shared timing helpers for the benchmarks: medians of repeated runs, ratios, peak memory."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def median_time(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time (seconds) of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(
    fns: dict[str, Callable[[], Any]],
    *,
    repeats: int = 5,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median times of several functions, run interleaved so machine noise hits all of them alike.

    ``clock`` is wall time by default; ``time.process_time`` gives CPU seconds of all threads.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_alloc(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated through Python/numpy allocators while running ``fn()``."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def report(title: str, mml_s: float, base_s: float, target: float | None = None, unit: str = "s") -> str:
    ratio = mml_s / base_s if base_s else float("inf")
    verdict = "" if target is None else ("  OK" if ratio <= target else f"  ABOVE TARGET {target}")
    line = f"{title:<58} mml {mml_s * 1e3:9.2f} ms   baseline {base_s * 1e3:9.2f} ms   ratio {ratio:5.2f}{verdict}"
    print(line, flush=True)
    return line
