"""Scalers on FeatureSets: ``fit_transform``, ``undo_last_transform``, ``undo_all_transforms``,
``inverse_transform``, and the :class:`ScalerRecord` they leave behind.

``fit_transform`` fits the scaler on the ``fit_on`` rows only (no leakage from the other rows),
applies it to every row and writes the result to ``domain.key.transformed`` beside the
untouched ``raw`` column. Its input is the key's current representation (``transformed`` if it
exists, else ``raw``), so scalers chain. Each key gets its own, independent params.

Undo never needs an inverse: the earlier ``transformed`` column is recomputed from ``raw``
through the remaining records (bit-identical, since every step is a pure function of stored
values and params), or dropped when no record for that key remains.

>>> import numpy as np, mml
>>> fs = mml.FeatureSet.from_dict({"x": np.arange(10.0), "y": np.arange(10.0) * 2},
...                               features="x", targets="y", label="toy").with_split("train", range(5))
>>> fs2 = mml.scalers.fit_transform(fs, "minmax", domain="targets")
>>> fs2.column_array("targets", "y").max()      # fitted on rows 0..4, where y <= 8
np.float64(2.25)
>>> mml.scalers.inverse_transform(fs2, np.array([[0.0], [1.0]])).ravel().tolist()
[0.0, 8.0]
>>> mml.scalers.undo_last_transform(fs2) == fs
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, final

import attrs
import numpy as np
import pyarrow as pa

from mml._fields import frozen_tuple
from mml.data import AbstractRecord, FeatureSet, column_name
from mml.errors import NotInvertibleError, ScalerError, SchemaError, SplitError
from mml.scalers._base import AbstractScaler, AbstractScalerParams, finite_samples
from mml.scalers._lookup import get_scaler

if TYPE_CHECKING:  # pragma: no cover
    from mml.random import Key

__all__ = ["ScalerRecord", "fit_transform", "undo_last_transform", "undo_all_transforms", "inverse_transform"]


@final
@attrs.frozen
class ScalerRecord(AbstractRecord):
    """What one ``fit_transform`` did: the spec, the fitted params per key, where it was fitted.

    ``input_reps[i]`` is the representation key ``keys[i]`` was read from (``"raw"`` or
    ``"transformed"`` when it chained onto an earlier scaler); ``n_fit`` counts the fitted rows.

    >>> import mml
    >>> from mml.scalers import MinMax, NoParams
    >>> r = ScalerRecord(scaler=mml.scalers.Negate(), params=(NoParams(),), domain="features",
    ...                  keys=("x",), fit_on=None, input_reps=("raw",), n_fit=3)
    >>> r.describe()
    'scaler negate on features x (fit on all rows)'
    """

    kind: ClassVar[str] = "record.scaler"
    scaler: AbstractScaler
    params: tuple[AbstractScalerParams, ...] = attrs.field(converter=frozen_tuple)
    domain: str
    keys: tuple[str, ...] = attrs.field(converter=frozen_tuple)
    fit_on: str | None
    input_reps: tuple[str, ...] = attrs.field(converter=frozen_tuple)
    n_fit: int

    def describe(self) -> str:
        """One line for ``repr(FeatureSet)``."""
        where = "all rows" if self.fit_on is None else f"split {self.fit_on!r}"
        return f"scaler {self.scaler.name} on {self.domain} {', '.join(self.keys)} (fit on {where})"

    def params_of(self, key: str) -> AbstractScalerParams:
        """The fitted params of one key.

        >>> from mml.scalers import NoParams, Negate
        >>> ScalerRecord(scaler=Negate(), params=(NoParams(),), domain="features", keys=("x",),
        ...              fit_on=None, input_reps=("raw",), n_fit=1).params_of("x")
        NoParams()
        """
        try:
            return self.params[self.keys.index(key)]
        except ValueError:
            raise SchemaError(f"this scaler record covers keys {list(self.keys)}, not {key!r}") from None


# -- helpers ------------------------------------------------------------------------------


def _key_list(fs: FeatureSet, domain: str, keys: str | Sequence[str] | None) -> tuple[str, ...]:
    available = fs.keys(domain)  # raises SchemaError for an unknown domain
    if keys is None:
        out = available
    elif isinstance(keys, str):
        out = (keys,)
    else:
        out = tuple(keys)
    if not out:
        raise SchemaError(f"FeatureSet {fs.label!r} has no {domain} keys to scale")
    for k in out:
        if not isinstance(k, str) or k not in available:
            raise SchemaError(
                f"FeatureSet {fs.label!r} has no {domain} key {k!r}; {domain} keys: {', '.join(available) or '(none)'}"
            )
    if len(set(out)) != len(out):
        raise SchemaError(f"keys= lists a key twice: {list(out)}")
    return out


def _to_column(domain: str, key: str, values: np.ndarray) -> tuple[pa.Array, pa.Field]:
    """The ``transformed`` Arrow column of ``values`` (zero-copy for contiguous numeric arrays)."""
    from mml.data import shape_metadata, to_arrow_column

    col, _ = to_arrow_column(domain, key, values)
    meta = shape_metadata(values.shape[1:]) if values.ndim > 1 else None
    return col, pa.field(column_name(domain, key, "transformed"), col.type, metadata=meta)


def _stored(domain: str, key: str, values: np.ndarray) -> np.ndarray:
    """``values`` as they read back after being stored (float16 becomes float32, ...)."""
    from mml.data import column_to_numpy

    col, _ = _to_column(domain, key, values)
    return column_to_numpy(col, values.shape[1:])


def _set_transformed(table: pa.Table, domain: str, key: str, values: np.ndarray | None) -> pa.Table:
    """Write (or, for ``None``, drop) the transformed column, keeping column order stable."""
    name = column_name(domain, key, "transformed")
    names = table.column_names
    if values is None:
        return table.remove_column(names.index(name)) if name in names else table
    col, field = _to_column(domain, key, values)
    if name in names:
        return table.set_column(names.index(name), field, col)
    return table.add_column(names.index(column_name(domain, key, "raw")) + 1, field, col)


def _fit_rows(fs: FeatureSet, fit_on: str | None) -> np.ndarray | None:
    if fit_on is None:
        return None
    if not isinstance(fit_on, str) or fit_on not in fs.split_indices:
        known = ", ".join(fs.split_indices) or "(none: split the FeatureSet first, or pass fit_on=None)"
        raise SplitError(f"fit_on={fit_on!r} names no split of FeatureSet {fs.label!r}; splits: {known}")
    return fs.split_indices[fit_on]


# -- public functions ---------------------------------------------------------------------


def fit_transform(
    fs: FeatureSet,
    scaler: Any,
    *,
    domain: str = "features",
    keys: str | Sequence[str] | None = None,
    fit_on: str | None = "train",
    key: Key | None = None,
) -> FeatureSet:
    """Fit ``scaler`` on the ``fit_on`` rows of each key and write ``transformed`` columns.

    ``scaler`` is a name (``"minmax"``, ``"StandardScaler"``), a spec, or a scikit-learn
    transformer class or instance. ``keys=None`` scales every key of ``domain``; ``fit_on=None``
    fits on all rows. ``key`` seeds stochastic scikit-learn transformers. Returns a new FeatureSet
    with a :class:`ScalerRecord` appended; ``fs`` is unchanged.

    >>> import mml
    >>> fs = mml.FeatureSet.from_dict({"x": [0.0, 5.0, 10.0]}, features="x", label="f")
    >>> fit_transform(fs, "minmax", fit_on=None).column_array("features", "x").tolist()
    [0.0, 0.5, 1.0]
    """
    spec = get_scaler(scaler)
    key_list = _key_list(fs, domain, keys)
    for k in key_list:
        if fs.key_dtype(domain, k) == np.dtype(object):
            raise ScalerError(
                f"{domain} key {k!r} of FeatureSet {fs.label!r} is not numeric and cannot be scaled; "
                "leave it out with keys=[...]"
            )
    rows = _fit_rows(fs, fit_on)
    table = fs.table
    params: list[AbstractScalerParams] = []
    reps: list[str] = []
    for k in key_list:
        rep = fs.resolve_rep(domain, k)
        x_all = fs.column_array(domain, k, rep)
        # every row is transformed, so every row must be finite (named by its row number)
        finite_samples(x_all, f"scaling {domain} key {k!r} of FeatureSet {fs.label!r}", rows="row")
        x_fit = x_all if rows is None else np.take(x_all, rows, axis=0)  # faster than x[rows]
        sub_key = None
        if key is not None:
            from mml.random import fold_in

            sub_key = fold_in(key, f"{domain}.{k}")
        try:
            p = spec.fit(x_fit, key=sub_key)
            y = spec.apply(p, x_all)
        except ScalerError as exc:
            raise type(exc)(f"scaling {domain} key {k!r}: {exc}") from exc
        if y.shape != x_all.shape:
            raise ScalerError(
                f"scaler {spec.name} changes the per-sample shape of {domain} key {k!r} from "
                f"{x_all.shape[1:]} to {y.shape[1:]}; transformed columns keep the shape of the raw ones"
            )
        params.append(p)
        reps.append(rep)
        table = _set_transformed(table, domain, k, y)
    record = ScalerRecord(
        scaler=spec,
        params=tuple(params),
        domain=domain,
        keys=key_list,
        fit_on=fit_on,
        input_reps=tuple(reps),
        n_fit=len(fs) if rows is None else len(rows),
    )
    return fs.replace_table(table).with_record(record)


def _recompute(
    fs: FeatureSet, removed: Sequence[ScalerRecord], remaining: tuple[AbstractRecord, ...]
) -> FeatureSet:
    """Rebuild the transformed columns of the keys the removed records touched."""
    touched: dict[tuple[str, str], None] = {}
    for rec in removed:
        for k in rec.keys:
            touched[(rec.domain, k)] = None
    table = fs.table
    for domain, k in touched:
        chain = [r for r in remaining if isinstance(r, ScalerRecord) and r.domain == domain and k in r.keys]
        first = next(
            r for r in fs.records if isinstance(r, ScalerRecord) and r.domain == domain and k in r.keys
        )
        if first.input_reps[first.keys.index(k)] != "raw":
            raise ScalerError(
                f"cannot undo the scaling of {domain} key {k!r}: its transformed column existed before any "
                "recorded scaler, so its earlier values are unknown"
            )
        if not chain:
            table = _set_transformed(table, domain, k, None)
            continue
        x = fs.column_array(domain, k, "raw")
        for r in chain:
            x = _stored(domain, k, r.scaler.apply(r.params_of(k), x))
        table = _set_transformed(table, domain, k, x)
    return attrs.evolve(fs.replace_table(table), records=remaining)


def undo_last_transform(fs: FeatureSet) -> FeatureSet:
    """The FeatureSet before the last ``fit_transform`` (equal to it when nothing came after).

    >>> import mml
    >>> fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="u")
    >>> undo_last_transform(fit_transform(fs, "standard", fit_on=None)) == fs
    True
    """
    positions = [i for i, r in enumerate(fs.records) if isinstance(r, ScalerRecord)]
    if not positions:
        raise ScalerError(f"FeatureSet {fs.label!r} has no scaler records; there is no transform to undo")
    last = positions[-1]
    rec = fs.records[last]
    assert isinstance(rec, ScalerRecord)
    remaining = fs.records[:last] + fs.records[last + 1 :]
    return _recompute(fs, [rec], remaining)


def undo_all_transforms(fs: FeatureSet) -> FeatureSet:
    """The FeatureSet without any scaler records and their ``transformed`` columns.

    >>> import mml
    >>> fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="u")
    >>> twice = fit_transform(fit_transform(fs, "standard", fit_on=None), "minmax", fit_on=None)
    >>> undo_all_transforms(twice) == fs
    True
    """
    removed = [r for r in fs.records if isinstance(r, ScalerRecord)]
    if not removed:
        return fs
    remaining = tuple(r for r in fs.records if not isinstance(r, ScalerRecord))
    return _recompute(fs, removed, remaining)


def inverse_transform(
    fs: FeatureSet, array: Any, *, domain: str = "targets", keys: str | Sequence[str] | None = None
) -> np.ndarray:
    """Map values in the transformed space (model outputs) back to raw units.

    ``array`` has the layout of ``fs.to_numpy(domain, keys)`` (scalar keys as one column each,
    keys concatenated along the last axis) for any number of rows. Each key goes back through
    its recorded scalers in reverse; keys without records pass through unchanged. Raises
    :class:`mml.NotInvertibleError` when a scaler in the chain has no inverse.

    >>> import mml, numpy as np
    >>> fs = mml.FeatureSet.from_dict({"x": [0.0, 1.0], "y": [2.0, 4.0]}, features="x", targets="y",
    ...                               label="i")
    >>> fs = fit_transform(fs, "negate", domain="targets", fit_on=None)
    >>> inverse_transform(fs, np.array([[-3.0]])).tolist()
    [[3.0]]
    """
    key_list = _key_list(fs, domain, keys)
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise ScalerError(f"inverse_transform takes a numeric array, got dtype {arr.dtype}")
    squeeze = False
    if len(key_list) == 1 and fs.key_shape(domain, key_list[0]) == () and arr.ndim == 1:
        arr = arr.reshape(-1, 1)
        squeeze = True
    expected = fs.domain_shape(domain, key_list)
    if arr.ndim == 0 or arr.shape[1:] != expected:
        raise ScalerError(
            f"inverse_transform expected an array of shape (n, {', '.join(map(str, expected))}) for {domain} "
            f"keys {list(key_list)} (the layout of fs.to_numpy), got {arr.shape}"
        )
    n = arr.shape[0]
    parts = []
    off = 0
    for k in key_list:
        shape = fs.key_shape(domain, k)
        width = shape[-1] if shape else 1
        part = arr[..., off : off + width].reshape(n, *shape) if shape else arr[..., off]
        off += width
        chain = [r for r in fs.records if isinstance(r, ScalerRecord) and r.domain == domain and k in r.keys]
        for r in reversed(chain):
            try:
                part = r.scaler.inverse(r.params_of(k), part)
            except NotInvertibleError as exc:
                raise NotInvertibleError(f"cannot map {domain} key {k!r} back to raw units: {exc}") from exc
        parts.append(part.reshape(n, *expected[:-1], width))
    out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
    if out is arr or np.shares_memory(out, np.asarray(array)):
        out = out.copy()
    return out.reshape(n) if squeeze else out
