"""NSampler: anchors with partners chosen by similarity conditions (pairs, triplets, ...).

For every anchor (every sample of the view) and every role (``"pair"``, ``"positive"``,
``"negative"``, ...) the sampler draws a partner that meets the role's conditions. The
batches have the role ``"anchor"`` plus one role per condition role, all aligned: row ``i``
of every role belongs to the same tuple.

>>> import mml, numpy as np
>>> from mml.samplers import similar
>>> fs = mml.FeatureSet.from_dict({"x": np.arange(6.0), "soh": [0.9, 0.91, 0.5, 0.52, 0.1, 0.12]},
...                               features="x", tags="soh", label="n")
>>> s = mml.PairedSampler({"soh": similar(0.05)}, batch_size=6, shuffle=False)
>>> b = next(s.iter(fs.view(), key=mml.random.key(0)))
>>> b.role("anchor").tags["soh"].tolist(), b.role("pair").tags["soh"].tolist()
([0.9, 0.91, 0.5, 0.52, 0.1, 0.12], [0.91, 0.9, 0.52, 0.5, 0.12, 0.1])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, final

import attrs
import numpy as np

from mml._fields import FrozenDict, freeze_new
from mml.data import Batch, FeatureSetView
from mml.errors import SamplerError
from mml.random import Key, fold_in, numpy_rng
from mml.samplers._base import (
    DEFAULT_STREAM,
    AbstractSampler,
    RoleRows,
    check_batch_size,
    check_strict_stratification,
    emit_batches,
    optional_column,
)
from mml.samplers._batching import batch_order, batching_aux, count_units
from mml.samplers._conditions import SimilarityCondition
from mml.samplers._prepared import PreparedData, check_columns, column_is_text

__all__ = ["ANCHOR_ROLE", "NSampler", "PairedSampler", "TripletSampler"]

ANCHOR_ROLE = "anchor"
_ANCHOR_CHUNK = 8192


def _freeze_conditions(value: Any) -> FrozenDict[str, FrozenDict[str, SimilarityCondition]]:
    if not isinstance(value, Mapping) or not value:
        raise SamplerError(
            "NSampler.conditions maps role → {column: SimilarityCondition}, e.g. "
            "{'pair': {'soh': mml.samplers.similar(0.05)}}; got " + repr(value)[:200]
        )
    out: dict[str, FrozenDict[str, SimilarityCondition]] = {}
    for role, conds in value.items():
        if not isinstance(role, str) or not role or role == ANCHOR_ROLE:
            raise SamplerError(
                f"role names are non-empty strings other than {ANCHOR_ROLE!r} (the anchors' own role), got {role!r}"
            )
        if not isinstance(conds, Mapping) or not conds:
            raise SamplerError(
                f"role {role!r} needs at least one condition: {{column: SimilarityCondition}}, got {conds!r:.200}"
            )
        for column, cond in conds.items():
            if not isinstance(column, str) or not column:
                raise SamplerError(f"condition columns of role {role!r} are column names, got {column!r}")
            if not isinstance(cond, SimilarityCondition):
                raise SamplerError(
                    f"condition on {column!r} of role {role!r} must be a SimilarityCondition "
                    f"(mml.samplers.similar(...) / dissimilar(...)), got {type(cond).__name__}"
                )
        out[role] = FrozenDict(conds)
    return FrozenDict(out)


def _positive_int(instance: Any, attribute: Any, value: int) -> None:
    check_batch_size(instance, attribute, value)


class _RoleIndex:
    """Epoch-independent search structure of one role (from its primary condition)."""

    __slots__ = ("conditions", "count", "exact", "hi", "lo", "order", "pos_self", "primary", "similar")

    def __init__(self, conditions: tuple[tuple[str, SimilarityCondition], ...], data: PreparedData) -> None:
        self.conditions = conditions
        n = len(data)
        # The primary condition defines an interval of the sorted column: prefer a "similar" one.
        # Callable metrics define no interval: with only those, every other sample is a candidate.
        ranged = [c for c in conditions if c[1].has_interval]
        self.primary = next((c for c in ranged if c[1].similar), ranged[0]) if ranged else None
        # one condition whose interval is exact: a uniform draw from it needs no rejection
        self.exact = len(conditions) == 1 and self.primary is not None
        if self.primary is None:
            self.order = np.arange(n, dtype=np.int64)
            self.pos_self = self.order
            self.lo = np.zeros(n, np.int64)
            self.hi = np.full(n, n, np.int64)
            self.similar = True
            self.count = np.full(n, max(n - 1, 0), np.int64)
            self._freeze()
            return
        column, cond = self.primary
        values = data.columns[column]
        self.order = np.argsort(values, kind="stable")
        self.pos_self = np.empty(n, np.int64)
        self.pos_self[self.order] = np.arange(n)
        sorted_values = values[self.order]
        low, high = cond.interval(values)
        self.lo = np.searchsorted(sorted_values, low, side="left").astype(np.int64)
        self.hi = np.searchsorted(sorted_values, high, side="right").astype(np.int64)
        self.similar = cond.similar
        # Candidates meeting the primary condition, the anchor itself excluded.
        self.count = np.maximum(self.hi - self.lo - 1, 0) if self.similar else self.lo + (n - self.hi)
        self._freeze()

    def _freeze(self) -> None:
        # the index lives in PreparedData.aux, a frozen value: its arrays are read-only
        for a in (self.order, self.pos_self, self.lo, self.hi, self.count):
            freeze_new(a)


@final
@attrs.frozen
class NSampler(AbstractSampler):
    """Anchors plus partners per role, chosen by :class:`SimilarityCondition` s on columns.

    ``conditions`` maps a role name to ``{column: SimilarityCondition}``; a partner must meet
    every condition of its role and is never the anchor itself. How partners are found:

    * The role's *primary* condition (its first ``similar`` one, else its first) makes the
      valid candidates an interval of the sorted column (or its complement): they are found
      for all anchors at once with ``searchsorted`` and drawn uniformly, exactly.
    * Further conditions of the role are met by rejection: ``max_tries`` draws per anchor
      (vectorised over all anchors), the first that meets every condition is kept. A
      condition with a callable metric (``metric="callable"``, ``fn=...``) is never primary:
      it is always met by rejection, and a role with only such conditions draws among all
      other samples.
    * ``choose_best_only``: instead of a uniform draw, the candidate with the highest
      closeness score (product of the conditions' scores) among the draws and the primary
      column's nearest (``similar``) or farthest (``dissimilar``) neighbours.

    Tuples per epoch: each anchor with at least one primary candidate in every role appears
    ``min(max_samples_per_anchor, fewest primary candidates over roles)`` times, and its
    partners in a role are *distinct* (drawn without replacement from the primary
    candidates). With ``repeat_partners=True`` an anchor with fewer candidates than
    ``max_samples_per_anchor`` still appears ``max_samples_per_anchor`` times: its first
    partners are distinct, the rest are drawn again from the same candidates. Anchors without
    candidates for a role are left out; if *no* anchor has a candidate for a role,
    :class:`~mml.errors.SamplerError` names the role. With ``allow_fallback=True`` every anchor
    appears (at least once) and, where no valid partner is found, gets the draw that meets the
    most conditions as a *fallback*.

    Batching: the tuples are cut into batches of ``batch_size`` (shuffled each epoch when
    ``shuffle``); ``group_by`` and ``stratify_by`` (scalar columns, read on the *anchor*) batch
    them as :class:`~mml.samplers.SimpleSampler` batches samples: ``group_by`` keeps all tuples
    of an anchor group in one batch and ``batch_size`` then counts groups; ``stratify_by``
    keeps every anchor class within one of its share in every batch
    (``strict_stratification`` trims every class to the smallest first).

    Weights and mask (per condition role; the anchor role has ``None`` = all 1, all valid):
    ``mask`` is True where the partner meets every condition of the role; its weight is then
    the product of the conditions' weights (see :mod:`mml.samplers._conditions`). A fallback
    partner (mask False; without ``allow_fallback`` only when ``max_tries`` draws all failed a
    secondary condition) has the product of the conditions' ``min_weight``.

    >>> import mml
    >>> from mml.samplers import similar, dissimilar
    >>> s = NSampler({"positive": {"cell": similar(metric="equal")},
    ...               "negative": {"cell": dissimilar(metric="equal")}}, batch_size=32)
    >>> s.roles
    ('anchor', 'positive', 'negative')
    >>> mml.io.roundtrip(s) == s
    True
    """

    kind: ClassVar[str] = "sampler.n"

    conditions: Mapping[str, Mapping[str, SimilarityCondition]] = attrs.field(converter=_freeze_conditions)
    batch_size: int = attrs.field(validator=check_batch_size)
    shuffle: bool = True
    drop_last: bool = False
    allow_fallback: bool = False
    max_samples_per_anchor: int = attrs.field(default=1, validator=_positive_int)
    choose_best_only: bool = False
    max_tries: int = attrs.field(default=16, validator=_positive_int)
    repeat_partners: bool = False
    group_by: str | None = attrs.field(default=None, validator=optional_column)
    stratify_by: str | None = attrs.field(default=None, validator=optional_column)
    strict_stratification: bool = False

    def __attrs_post_init__(self) -> None:
        check_strict_stratification(self, "the anchor classes")
        if self.choose_best_only and self.max_samples_per_anchor != 1:
            raise SamplerError(
                "choose_best_only picks one best partner per anchor; set max_samples_per_anchor=1 "
                f"(got {self.max_samples_per_anchor}) or choose_best_only=False"
            )

    @property
    def roles(self) -> tuple[str, ...]:
        """``("anchor", *condition roles)``: the roles of every batch."""
        return (ANCHOR_ROLE, *self.conditions)

    def batch_roles(self, stream: str | None = None) -> tuple[str, ...]:
        """The roles of every batch: :attr:`roles`.

        >>> from mml.samplers import similar
        >>> PairedSampler({"soh": similar(0.1)}, batch_size=4).batch_roles()
        ('anchor', 'pair')
        """
        self._stream(stream)
        return self.roles

    def required_columns(self) -> tuple[str, ...]:
        """Every condition column, then the group and stratum columns (when set).

        >>> from mml.samplers import similar
        >>> NSampler({"pair": {"soh": similar(0.1)}}, batch_size=4, group_by="cell").required_columns()
        ('soh', 'cell')
        """
        batching = (c for c in (self.group_by, self.stratify_by) if c is not None)
        return tuple(dict.fromkeys([*(c for conds in self.conditions.values() for c in conds), *batching]))

    def check_view(self, view: FeatureSetView) -> None:
        """Check the condition columns: known, scalar; text only with ``metric='equal'``."""
        named = [(f"condition (role {r!r})", c) for r, conds in self.conditions.items() for c in conds]
        named += [(w, c) for w, c in (("group_by", self.group_by), ("stratify_by", self.stratify_by)) if c]
        check_columns(view, named)
        for role, conds in self.conditions.items():
            for column, cond in conds.items():
                if cond.metric != "equal" and column_is_text(view, column):
                    raise SamplerError(
                        f"column {column!r} (role {role!r}) holds text; compare text with "
                        f"metric='equal', not {cond.metric!r}"
                    )
        if len(view) < 2:
            raise SamplerError(
                f"an NSampler needs at least 2 samples to pair, the view of {view.label!r} has {len(view)}"
            )

    def precompute(self, data: PreparedData) -> Mapping[str, Any]:
        """Per role: the sorted primary column and each anchor's candidate interval."""
        index = {role: _RoleIndex(tuple(conds.items()), data) for role, conds in self.conditions.items()}
        counts = np.stack([ix.count for ix in index.values()])
        fewest = counts.min(axis=0)
        if not self.allow_fallback:
            for role, ix in index.items():
                if not (ix.count > 0).any() and ix.primary is not None:
                    column, cond = ix.primary
                    raise SamplerError(
                        f"no anchor of {data.label!r} has a valid {role!r} candidate: no sample is "
                        f"{cond.relation} on {column!r} (tolerance {cond.tolerance}, metric {cond.metric!r}) to any "
                        "other; loosen the tolerance, check the column has the values you expect, or "
                        "set allow_fallback=True"
                    )
            if not (fewest > 0).any():
                raise SamplerError(
                    f"no anchor of {data.label!r} has valid candidates for all roles "
                    f"({', '.join(index)}) at once; loosen a condition or set allow_fallback=True"
                )
        k = self.max_samples_per_anchor
        reps = np.where(fewest > 0, k, 0) if self.repeat_partners else np.minimum(fewest, k)
        if self.allow_fallback:
            reps = np.maximum(reps, 1)
        anchors = np.repeat(np.arange(len(data), dtype=np.int64), reps)
        # the j-th tuple of its anchor (partners of one anchor are drawn without replacement)
        repeat = np.arange(anchors.shape[0]) - np.repeat(np.cumsum(reps) - reps, reps)
        cols = data.columns
        batching = batching_aux(
            None if self.group_by is None else cols[self.group_by][anchors],
            None if self.stratify_by is None else cols[self.stratify_by][anchors],
            self.strict_stratification,
        )
        return {
            "index": FrozenDict(index),
            "anchors": freeze_new(anchors),
            "repeat": freeze_new(repeat),
            "batching": FrozenDict(batching),
        }

    def count_batches(self, data: PreparedData, stream: str = DEFAULT_STREAM) -> int:
        """``ceil(units / batch_size)`` (``floor`` with ``drop_last``); units are tuples or anchor groups."""
        n = count_units(data.aux["batching"], int(data.aux["anchors"].shape[0]))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _draw(
        self,
        ix: _RoleIndex,
        data: PreparedData,
        a: np.ndarray,
        rng: np.random.Generator,
        prev: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Partners, weights, mask and primary ranks for anchors ``a`` (one chunk) in one role.

        ``prev`` (``(len(a), j)``): the ranks (positions among the anchor's primary candidates)
        of the partners already drawn for the same anchors; they are excluded where the anchor
        has more than ``j`` candidates (the draw is then uniform over the others).
        """
        n = len(data)
        tries = 1 if ix.exact and not self.choose_best_only else self.max_tries
        cnt = ix.count[a][:, None]
        lo, hi, me = ix.lo[a][:, None], ix.hi[a][:, None], ix.pos_self[a][:, None]
        u = rng.random((a.shape[0], tries))
        if prev is None or prev.shape[1] == 0:
            r = (u * np.maximum(cnt, 1)).astype(np.int64)
        else:
            use = cnt > prev.shape[1]
            left = np.where(use, cnt - prev.shape[1], cnt)
            r = (u * np.maximum(left, 1)).astype(np.int64)
            for taken in np.sort(prev, axis=1).T:  # skip the taken ranks, in ascending order
                r += (r >= taken[:, None]) & use
        if ix.similar:
            j = lo + r
            j += j >= me
        else:
            j = np.where(r < lo, r, hi + r - lo)
        # Anchors without primary candidates (fallback): draw among all other samples.
        none = (cnt == 0).ravel()
        if none.any():
            rr = (u[none] * (n - 1)).astype(np.int64)
            j[none] = rr + (rr >= me[none])
        if self.choose_best_only:
            if ix.similar:
                extra = np.clip(np.concatenate([me - 1, me + 1], axis=1), 0, n - 1)
            else:
                extra = np.broadcast_to(np.array([0, 1, n - 2, n - 1]), (a.shape[0], 4))
            j = np.concatenate([j, extra], axis=1)
        cand = ix.order[j]
        valid = cand != a[:, None]
        n_ok = np.zeros(cand.shape, np.int64)
        score = np.ones(cand.shape, np.float64)
        for column, cond in ix.conditions:
            values = data.columns[column]
            av, bv = values[a][:, None], values[cand]
            ok = cond.holds(av, bv)
            valid &= ok
            n_ok += ok
            score *= cond.score(av, bv)
        rows = np.arange(a.shape[0])
        if self.choose_best_only:
            pick = np.argmax(np.where(valid, score, -1.0), axis=1)
        else:
            pick = np.argmax(valid, axis=1)
        found = valid[rows, pick]
        if not found.all():
            lost = ~found
            partial = np.where(cand[lost] != a[lost][:, None], n_ok[lost], -1)
            pick[lost] = np.argmax(partial, axis=1)
        partner = cand[rows, pick]
        weights = np.ones(a.shape[0], np.float64)
        floor = 1.0
        for column, cond in ix.conditions:
            values = data.columns[column]
            weights *= cond.weight(values[a], values[partner])
            floor *= cond.min_weight
        weights[~found] = floor
        ranks = r[rows, np.minimum(pick, tries - 1)]
        return partner, weights, found, ranks

    def _role_partners(
        self, ix: _RoleIndex, data: PreparedData, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, weights, mask)`` of one role's partner for every tuple (in anchor order)."""
        anchors, repeat = data.aux["anchors"], data.aux["repeat"]
        nt = anchors.shape[0]
        if nt == 0:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
        n_rep = int(repeat.max()) + 1
        if n_rep == 1:
            parts = [
                self._draw(ix, data, anchors[s : s + _ANCHOR_CHUNK], rng) for s in range(0, nt, _ANCHOR_CHUNK)
            ]
            return tuple(np.concatenate(p) for p in list(zip(*parts))[:3])  # type: ignore[return-value]
        out = (np.empty(nt, np.int64), np.empty(nt, np.float64), np.empty(nt, bool), np.empty(nt, np.int64))
        # the j-th partners of all anchors at once, each excluding the anchor's earlier ones
        for j in range(n_rep):
            t = np.flatnonzero(repeat == j)
            prev = out[3][t[:, None] - np.arange(j, 0, -1)]
            for s in range(0, t.shape[0], _ANCHOR_CHUNK):
                ts = t[s : s + _ANCHOR_CHUNK]
                got = self._draw(ix, data, anchors[ts], rng, prev[s : s + _ANCHOR_CHUNK])
                for dst, src in zip(out, got):
                    dst[ts] = src
        return out[:3]

    def epoch_tuples(
        self, data: PreparedData, key: Key
    ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, ...]], np.ndarray]:
        """One epoch's tuples in batch order: anchor rows; per role ``(rows, weights, mask)``;
        and the batch boundaries. ``key`` is the epoch key (``fold_in(key, epoch)``).

        >>> import mml, numpy as np
        >>> from mml.samplers import similar
        >>> fs = mml.FeatureSet.from_dict({"x": np.arange(4.0), "t": [0, 0, 1, 1]}, features="x",
        ...                               tags="t", label="e")
        >>> s = PairedSampler({"t": similar(metric="equal")}, batch_size=3, shuffle=False)
        >>> anchors, partners, bounds = s.epoch_tuples(s.prepare(fs.view()), mml.random.key(0))
        >>> anchors.tolist(), partners["pair"][0].tolist(), bounds.tolist()
        ([0, 1, 2, 3], [1, 0, 3, 2], [0, 3, 4])
        """
        anchors = data.aux["anchors"]
        out: dict[str, tuple[np.ndarray, ...]] = {}
        for role, ix in data.aux["index"].items():
            out[role] = self._role_partners(ix, data, numpy_rng(fold_in(fold_in(key, "n.partners"), role)))
        rng = numpy_rng(fold_in(key, "n.order")) if self.shuffle else None
        batching = data.aux["batching"]
        order, bounds = batch_order(batching, len(anchors), self.batch_size, self.drop_last, rng)
        if rng is not None or batching:
            anchors = anchors[order]
            out = {role: tuple(x[order] for x in v) for role, v in out.items()}
        for v in out.values():
            for x in v:
                x.flags.writeable = False
        return anchors, out, bounds

    def epoch_batches(self, data: PreparedData, key: Key, stream: str) -> Iterator[Batch]:
        """One epoch of aligned batches (``key`` already folded with the epoch)."""
        anchors, partners, bounds = self.epoch_tuples(data, key)
        roles = [RoleRows(ANCHOR_ROLE, anchors)]
        roles += [RoleRows(role, rows, w, m) for role, (rows, w, m) in partners.items()]
        return emit_batches(data, roles, bounds, stream)


def PairedSampler(
    conditions: Mapping[str, SimilarityCondition], *, batch_size: int, **options: Any
) -> NSampler:
    """An :class:`NSampler` with one role, ``"pair"``: batches have roles ``anchor`` and ``pair``.

    ``options`` are the other NSampler fields (``shuffle``, ``allow_fallback``, ...).

    >>> from mml.samplers import similar
    >>> PairedSampler({"soh": similar(0.02)}, batch_size=64).roles
    ('anchor', 'pair')
    """
    return NSampler({"pair": conditions}, batch_size, **options)


def TripletSampler(
    positive: Mapping[str, SimilarityCondition],
    negative: Mapping[str, SimilarityCondition],
    *,
    batch_size: int,
    **options: Any,
) -> NSampler:
    """An :class:`NSampler` with roles ``"positive"`` and ``"negative"``.

    >>> from mml.samplers import similar, dissimilar
    >>> t = TripletSampler({"cell": similar(metric="equal")}, {"cell": dissimilar(metric="equal")},
    ...                    batch_size=32)
    >>> t.roles
    ('anchor', 'positive', 'negative')
    """
    return NSampler({"positive": positive, "negative": negative}, batch_size, **options)
