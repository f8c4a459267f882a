"""How the items of an epoch (samples, or an NSampler's tuples) are cut into batches.

Shared by :class:`~mml.samplers.SimpleSampler` and :class:`~mml.samplers.NSampler`:
``batching_aux`` precomputes (once per phase) the groups and strata of the items from the
``group_by`` / ``stratify_by`` column values, and ``batch_order`` gives one epoch's item order
and batch boundaries. The unit of a batch is an item, or a whole group with ``group_by``
(``batch_size`` then counts groups).

Stratified batches (:func:`stratified_batches`) hold every class within one of its share in
every batch, and every unit once per epoch.

>>> order, bounds = stratified_batches(np.array([0, 0, 0, 0, 1, 1]), 3, None)
>>> [sorted(np.array([0, 0, 0, 0, 1, 1])[order[a:b]].tolist()) for a, b in zip(bounds, bounds[1:])]
[[0, 0, 1], [0, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mml._fields import freeze_new

__all__ = ["batch_order", "batching_aux", "count_units", "stratified_batches"]


def _codes(values: np.ndarray) -> np.ndarray:
    """Integer codes of a column's values, numbered in order of first appearance."""
    _, first, inv = np.unique(values, return_index=True, return_inverse=True)
    rename = np.empty(len(first), np.int64)
    rename[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rename[inv.ravel()]


def batching_aux(groups: np.ndarray | None, strata: np.ndarray | None, strict: bool) -> dict[str, Any]:
    """Epoch-independent batching structures from per-item group and stratum values.

    ``group_id`` (per item, numbered by first appearance) and ``group_sizes``; ``strata``:
    one stratum code per unit (per group: the stratum of its first item); ``units``: how many
    units an epoch batches (with ``strict``, every stratum trimmed to the smallest).

    >>> aux = batching_aux(np.array([5.0, 5.0, 7.0]), np.array([1.0, 1.0, 2.0]), False)
    >>> aux["group_sizes"].tolist(), aux["strata"].tolist(), aux["units"]
    ([2, 1], [0, 1], 2)
    """
    aux: dict[str, Any] = {}
    if groups is None and strata is None:
        return aux
    unit_strata = strata
    if groups is not None:
        gid = _codes(groups)
        aux["group_id"] = gid
        aux["group_sizes"] = np.bincount(gid, minlength=int(gid.max()) + 1 if gid.size else 0)
        if strata is not None:
            unit_strata = strata[np.unique(gid, return_index=True)[1]]  # each group's first item
        n_units = len(aux["group_sizes"])
    else:
        n_units = 0 if strata is None else len(strata)
    if unit_strata is not None:
        codes = np.unique(unit_strata, return_inverse=True)[1].ravel().astype(np.int64)
        aux["strata"] = codes
        counts = np.bincount(codes)
        if strict and len(counts):
            n_units = int(counts.min()) * len(counts)
        aux["strict"] = strict
    aux["units"] = n_units
    for v in aux.values():  # they live in PreparedData.aux, a frozen value
        if isinstance(v, np.ndarray):
            freeze_new(v)
    return aux


def count_units(aux: Mapping[str, Any], n_items: int) -> int:
    """Units one epoch batches: items, or groups, or strict-trimmed strata (from ``batching_aux``)."""
    return int(aux["units"]) if "units" in aux else n_items


def stratified_batches(
    labels: np.ndarray, batch_size: int, rng: np.random.Generator | None, *, strict: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(order, bounds)``: unit positions in epoch order, cut into stratified batches.

    Batch ``k`` (``b_k`` units) holds ``a_ck`` units of class ``c`` with
    ``|a_ck - b_k * n_c / n| <= 1`` (below 1 where that share is not whole), and every unit
    appears once (``sum_k a_ck = n_c``). Each full batch gives every class ``floor(share)``;
    the last batch rounds by largest remainder; the remaining ``+1`` s of each class are laid
    out round-robin over the full batches, so that no batch gets two of one class. With
    ``rng`` the units inside each class, the classes' turns and the full batches' order are
    random (``None``: view order, classes in sorted order).

    ``strict``: every class is first trimmed to the smallest class's count (a random subset
    with ``rng``), so each batch holds equal shares — exactly ``batch_size / C`` per class
    when ``batch_size`` is a multiple of the number of classes ``C``.

    >>> labels = np.array([0, 1, 1, 1, 1, 1, 2, 2])
    >>> order, bounds = stratified_batches(labels, 4, None, strict=True)
    >>> bounds.tolist(), sorted(labels[order].tolist())
    ([0, 3], [0, 1, 2])
    """
    n = int(labels.shape[0])
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(1, np.int64)
    lab = np.unique(labels, return_inverse=True)[1].ravel()
    n_classes = int(lab.max()) + 1
    p = rng.permutation(n) if rng is not None else np.arange(n)
    by_class = p[np.argsort(lab[p], kind="stable")]  # units grouped by class, shuffled inside
    counts = np.bincount(lab, minlength=n_classes).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if strict:
        m = int(counts.min())
        keep = (np.arange(n) - starts[lab[by_class]]) < m
        by_class = by_class[keep]
        counts = np.full(n_classes, m, np.int64)
        starts = np.arange(n_classes, dtype=np.int64) * m
        n = m * n_classes
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(1, np.int64)
    cls = lab[by_class]
    within = np.arange(n) - starts[cls]
    n_full, last = divmod(n, batch_size)
    floor_full = counts * batch_size // n  # every full batch's floor(share), per class
    a_last = np.zeros(n_classes, np.int64)
    if last:
        q = counts * last
        a_last = q // n
        remainder = q - a_last * n
        tie = rng.random(n_classes) if rng is not None else np.arange(n_classes)
        extra = np.lexsort((tie, -remainder))[: last - int(a_last.sum())]
        a_last[extra] += 1
    batch = np.full(n, n_full, np.int64)
    if n_full:
        # class c's +1s in the full batches: a cyclic run of `extras[c]` batches starting at `turn[c]`
        extras = counts - n_full * floor_full - a_last
        turns = rng.permutation(n_classes) if rng is not None else np.arange(n_classes)
        turn = np.empty(n_classes, np.int64)
        turn[turns] = np.concatenate([[0], np.cumsum(extras[turns])[:-1]]) % n_full
        full = within < counts[cls] - a_last[cls]
        c, i = cls[full], within[full]
        f, e = floor_full[c], extras[c]
        wide = e * (f + 1)
        k = np.where(i < wide, i // (f + 1), e + (i - wide) // np.maximum(f, 1))
        k = (k + turn[c]) % n_full
        if rng is not None:
            k = rng.permutation(n_full)[k]
        batch[full] = k
    tiebreak = rng.random(n) if rng is not None else by_class
    order = by_class[np.lexsort((tiebreak, batch))]
    bounds = np.minimum(np.arange(n_full + (1 if last else 0) + 1, dtype=np.int64) * batch_size, n)
    return order, bounds


def _plain_bounds(n_units: int, batch_size: int, drop_last: bool) -> np.ndarray:
    nb = n_units // batch_size if drop_last else -(-n_units // batch_size)
    return np.minimum(np.arange(nb + 1, dtype=np.int64) * batch_size, n_units)


def batch_order(
    aux: Mapping[str, Any],
    n_items: int,
    batch_size: int,
    drop_last: bool,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(items, bounds)``: item positions in epoch order and the batch boundaries in it.

    ``aux`` is :func:`batching_aux`'s result (empty: plain batches of items). Without
    groups or strata the order is ``rng.permutation(n_items)`` (or the items' own order).

    >>> order, bounds = batch_order({}, 5, 2, False, None)
    >>> order.tolist(), bounds.tolist()
    ([0, 1, 2, 3, 4], [0, 2, 4, 5])
    """
    strata = aux.get("strata")
    strict = bool(aux.get("strict", False))
    if "group_id" not in aux:
        if strata is None:
            rows = rng.permutation(n_items) if rng is not None else np.arange(n_items, dtype=np.int64)
            return rows, _plain_bounds(n_items, batch_size, drop_last)
        rows, bounds = stratified_batches(strata, batch_size, rng, strict=strict)
        return rows, _drop(bounds, batch_size, drop_last)
    gid = aux["group_id"]
    sizes_all = aux["group_sizes"]
    n_groups = len(sizes_all)
    if strata is not None:
        group_order, unit_bounds = stratified_batches(strata, batch_size, rng, strict=strict)
        unit_bounds = _drop(unit_bounds, batch_size, drop_last)
    else:
        group_order = rng.permutation(n_groups) if rng is not None else np.arange(n_groups)
        unit_bounds = _plain_bounds(n_groups, batch_size, drop_last)
    # Items sorted by group (random order inside a group when shuffling).
    by_group = np.lexsort((rng.random(n_items), gid)) if rng is not None else np.argsort(gid, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes_all)[:-1]])
    sizes = sizes_all[group_order]
    out_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    src = np.repeat(starts[group_order] - out_starts, sizes) + np.arange(int(sizes.sum()))
    row_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return by_group[src], row_offsets[unit_bounds]


def _drop(bounds: np.ndarray, batch_size: int, drop_last: bool) -> np.ndarray:
    if drop_last and len(bounds) > 1 and bounds[-1] - bounds[-2] < batch_size:
        return bounds[:-1]
    return bounds
