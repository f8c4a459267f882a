"""How many samples each split gets, and which ones: the numeric core of the splitters.

Everything here is vectorised numpy on small integer label arrays; no column data is touched.

>>> import numpy as np
>>> allocate(10, np.array([0.7, 0.15, 0.15])).tolist()
[7, 2, 1]
"""

from __future__ import annotations

import numpy as np

__all__ = ["allocate", "assign_labels", "labels_to_indices"]


def allocate(n: int, ratios: np.ndarray) -> np.ndarray:
    """Split sizes for ``n`` items by largest remainder; they sum to ``n`` exactly.

    Each size is ``floor(r * n)`` or one more; ties between equal remainders go to the split
    named first. When ``n`` is at least the number of splits with a positive ratio, every
    such split gets at least one item (taken from the split with the largest surplus).

    >>> allocate(3, np.array([0.7, 0.15, 0.15])).tolist()
    [1, 1, 1]
    >>> allocate(5, np.array([0.5, 0.5, 0.0])).tolist()
    [3, 2, 0]

    Ratios are checked to sum to 1 within 1e-6; on many items that slack can leave more
    items over than there are splits, or too many — they are handed out (or taken back) in
    turn among the splits with a positive ratio, so the sizes still sum to ``n``:

    >>> allocate(10**7, np.array([0.7, 0.15, 0.1499995])).tolist()
    [7000002, 1500002, 1499996]
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    exact = ratios * n
    sizes = np.floor(exact).astype(np.int64)
    rem = n - int(sizes.sum())
    frac = np.where(ratios > 0, exact - sizes, -1.0)
    order = np.argsort(-frac, kind="stable")
    pos = order[: int((ratios > 0).sum())]  # the splits with a positive ratio, largest remainder first
    if 0 <= rem <= len(pos):
        sizes[pos[:rem]] += 1
    elif rem > 0:  # ratios summing to just under 1 on many items: more left over than splits
        np.add.at(sizes, pos[np.arange(rem) % len(pos)], 1)
    else:  # ratios summing to just over 1: take the excess back, smallest remainder first
        np.add.at(sizes, pos[::-1][np.arange(-rem) % len(pos)], -1)
    return _at_least_one(sizes, exact, ratios > 0)


def _at_least_one(sizes: np.ndarray, exact: np.ndarray, positive: np.ndarray) -> np.ndarray:
    if sizes.sum() < positive.sum():
        return sizes
    for s in np.flatnonzero(positive & (sizes == 0)):
        surplus = np.where(sizes > 1, sizes - exact, -np.inf)
        donor = int(np.argmax(surplus))
        sizes[donor] -= 1
        sizes[s] += 1
    return sizes


def _label_dtype(k: int) -> type[np.integer]:
    return np.uint8 if k < 2**8 else np.int32


def assign_labels(
    n: int, ratios: np.ndarray, rng: np.random.Generator, strata: np.ndarray | None = None
) -> np.ndarray:
    """A random split label (0..k-1) for each of ``n`` items, sizes by :func:`allocate`.

    With ``strata`` (an int code per item), each stratum is split by the ratios on its own:
    every split gets ``floor(r * n_stratum)`` or one more of each stratum, the extra items
    going to splits at random, weighted by their remainders (so small strata do not all
    round towards the same split). Every split with a positive ratio still gets an item when
    there are enough items.

    >>> import mml
    >>> rng = mml.random.numpy_rng(mml.random.key(0))
    >>> np.bincount(assign_labels(10, np.array([0.5, 0.5]), rng)).tolist()
    [5, 5]
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    k = ratios.shape[0]
    dtype = _label_dtype(k)
    if strata is None:
        return _exact_labels(allocate(n, ratios), ratios, rng, dtype)
    strata = np.asarray(strata)
    counts = np.bincount(strata) if n else np.zeros(0, dtype=np.int64)
    sizes = _stratum_sizes(counts, ratios, rng)
    # Rows grouped by stratum, in random order within each stratum ...
    order = rng.permutation(n)
    small = strata.astype(np.uint16 if counts.shape[0] <= 2**16 else np.int64)
    order = order[np.argsort(small[order], kind="stable")]  # radix sort for small codes
    # ... receive the per-stratum label blocks laid end to end.
    seq = np.repeat(np.tile(np.arange(k, dtype=dtype), counts.shape[0]), sizes.ravel())
    labels = np.empty(n, dtype=dtype)
    labels[order] = seq
    return labels


def _exact_labels(
    sizes: np.ndarray, ratios: np.ndarray, rng: np.random.Generator, dtype: type[np.integer]
) -> np.ndarray:
    """Uniformly random labels with exactly ``sizes[s]`` items labelled ``s``.

    Draw i.i.d. labels, then move uniformly chosen surplus items to the splits that are
    short. Every step treats rows symmetrically, so all labellings with these sizes are
    equally likely -- like shuffling ``repeat(arange(k), sizes)``, at a fraction of the cost
    (a permutation of a million items takes tens of milliseconds; this takes a few).
    """
    n = int(sizes.sum())
    cum = np.cumsum(ratios[:-1] / max(ratios.sum(), 1e-300)).astype(np.float32)
    u = rng.random(n, dtype=np.float32)
    labels = np.zeros(n, dtype=dtype)
    at_least = [n]  # how many items have a label >= s
    for c in cum:
        above = u >= c
        at_least.append(int(np.count_nonzero(above)))
        labels += above
    at_least.append(0)
    counts = -np.diff(np.array(at_least, dtype=np.int64))
    if np.array_equal(counts, sizes):
        return labels
    moved = [
        rng.choice(np.flatnonzero(labels == s), int(counts[s] - sizes[s]), replace=False)
        for s in np.flatnonzero(counts > sizes)
    ]
    pool = np.concatenate(moved)
    rng.shuffle(pool)
    short = np.flatnonzero(counts < sizes)
    deficit = np.asarray(sizes - counts, dtype=np.int64)[short]
    labels[pool] = np.repeat(short.astype(dtype), deficit)
    return labels


def _stratum_sizes(counts: np.ndarray, ratios: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-stratum sizes ``(n_strata, k)``: floors plus remainder seats drawn by weight."""
    exact = counts[:, None] * ratios[None, :]
    sizes = np.floor(exact).astype(np.int64)
    rem = counts - sizes.sum(axis=1)
    frac = exact - sizes
    # Weighted sampling without replacement (Efraimidis-Spirakis): the largest u ** (1 / w).
    u = rng.random(frac.shape)
    with np.errstate(divide="ignore"):
        score = np.where((frac > 0) & (ratios[None, :] > 0), np.log(u) / frac, -np.inf)
    ranked = np.argsort(-score, axis=1, kind="stable")
    take = np.arange(ratios.shape[0])[None, :] < rem[:, None]
    rows = np.broadcast_to(np.arange(counts.shape[0])[:, None], ranked.shape)
    sizes[rows[take], ranked[take]] += 1
    # Every positive split gets one item overall when there are enough items.
    positive = ratios > 0
    totals = sizes.sum(axis=0)
    if counts.sum() >= positive.sum():
        for s in np.flatnonzero(positive & (totals == 0)):
            surplus = np.where((sizes > 0) & (totals[None, :] > 1), sizes - exact, -np.inf)
            j, d = np.unravel_index(int(np.argmax(surplus)), surplus.shape)
            sizes[j, d] -= 1
            sizes[j, s] += 1
            totals = sizes.sum(axis=0)
    return sizes


def labels_to_indices(labels: np.ndarray, k: int, rows: np.ndarray | None) -> list[np.ndarray]:
    """For each label ``0..k-1`` the ascending positions holding it, mapped through ``rows``.

    >>> [a.tolist() for a in labels_to_indices(np.array([1, 0, 1]), 2, None)]
    [[1], [0, 2]]
    >>> [a.tolist() for a in labels_to_indices(np.array([1, 0, 1]), 2, np.array([10, 20, 30]))]
    [[20], [10, 30]]
    """
    out = []
    for s in range(k):
        pos = np.flatnonzero(labels == s)
        out.append(pos if rows is None else rows[pos])
    return out
