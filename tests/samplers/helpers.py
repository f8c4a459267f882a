"""Shared helpers of the sampler tests."""

from __future__ import annotations

import numpy as np

import mml


def make_fs(n: int, *, n_groups: int = 5, n_classes: int = 3, seed: int = 0) -> mml.FeatureSet:
    rng = np.random.default_rng(seed)
    return mml.FeatureSet.from_dict(
        {
            "x": rng.random((n, 3)).astype(np.float32),
            "y": rng.random(n),
            "cell": rng.integers(0, max(n_groups, 1), n),
            "label": np.array(["a", "b", "c", "d"])[rng.integers(0, n_classes, n)],
            "soh": np.round(rng.random(n), 3),
        },
        features="x",
        targets="y",
        tags=["cell", "label", "soh"],
        label="toy",
    )


def _same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def batches_equal(xs: list[mml.Batch], ys: list[mml.Batch]) -> bool:
    """Value equality of batch lists (SampleData's generated __eq__ cannot compare arrays)."""
    if len(xs) != len(ys):
        return False
    for x, y in zip(xs, ys):
        if x.stream != y.stream or list(x.roles) != list(y.roles):
            return False
        for role, dx in x.roles.items():
            dy = y.roles[role]
            fields = ("features", "targets", "sample_uuids", "weights", "mask")
            if not all(_same(getattr(dx, f), getattr(dy, f)) for f in fields):
                return False
            if set(dx.tags) != set(dy.tags) or not all(_same(dx.tags[k], dy.tags[k]) for k in dx.tags):
                return False
    return True
