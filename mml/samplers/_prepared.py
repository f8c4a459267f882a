"""PreparedData: a view's arrays, materialized once per phase for a sampler.

A training loop calls ``sampler.prepare(view)`` once and then ``sampler.batches(prepared,
key=..., epoch=...)`` every epoch. Preparing reads the view's features, targets, visible tags
and UUIDs into contiguous, read-only numpy arrays, and the columns the sampler itself needs
(``group_by``, ``stratify_by``, similarity conditions) into float64 arrays (text as integer
codes). Nothing is read from Arrow again during the epochs.

:func:`to_device` turns the numeric features, targets and tags into torch tensors on a
device (once per phase): batches are then gathered on that device, and only each chunk's
row indices cross from the host (UUIDs, text tags and the sampler's columns stay numpy).

>>> import mml, numpy as np
>>> fs = mml.FeatureSet.from_dict({"x": np.arange(4.0), "y": np.ones(4), "g": ["a", "b", "a", "b"]},
...                               features="x", targets="y", tags="g", label="p")
>>> data = mml.SimpleSampler(batch_size=2, group_by="g").prepare(fs.view())
>>> len(data), data.features.shape, data.columns["g"].tolist()
(4, (4, 1), [0.0, 1.0, 0.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict, freeze_new, frozen_dict, readonly_array
from mml.data import DATA_DOMAINS, FeatureSetView
from mml.errors import SamplerError

__all__ = ["PreparedData", "materialize", "check_columns", "to_device", "cast_floats"]


def _readonly(arr: np.ndarray) -> np.ndarray:
    # contiguous and owned: a writable input (or a read-only view of one) is copied
    return readonly_array(np.ascontiguousarray(arr))


@attrs.frozen(eq=False)
class PreparedData:
    """A view's arrays for one sampler: contiguous, read-only, one row per sample.

    ``features``, ``targets`` and numeric ``tags`` are numpy arrays, or torch tensors after
    :func:`to_device`; ``sample_uuids`` and ``columns`` are always numpy.

    ``columns`` holds the scalar columns the sampler reads (float64; text as codes), keyed
    by the name used in the sampler spec. ``aux`` holds what the sampler precomputed from
    them (sort orders, group codes); ``sampler`` is the spec that prepared it, so that
    arrays prepared for one sampler are not fed to another by mistake.

    >>> import numpy as np
    >>> d = PreparedData(sampler=None, features=np.zeros((3, 2)), sample_uuids=np.zeros(3, "S16"))
    >>> len(d), d.targets is None
    (3, True)
    """

    sampler: Any
    features: Any
    sample_uuids: np.ndarray
    targets: Any = None
    tags: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=frozen_dict)
    columns: Mapping[str, np.ndarray] = attrs.field(factory=FrozenDict, converter=frozen_dict)
    aux: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=frozen_dict)
    label: str = ""

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def row_bytes(self) -> int:
        """Bytes gathered per sample for one role (features, targets, UUIDs, tags)."""
        n = self.features[0].nbytes if len(self) else 0
        if self.targets is not None and len(self):
            n += self.targets[0].nbytes
        return int(n + 16 + 8 * len(self.tags))


def _available(view: FeatureSetView) -> str:
    parts = []
    for domain in DATA_DOMAINS:
        keys = view.parent.keys(domain)
        parts.append(f"{domain}: {', '.join(keys) or '-'}")
    return "; ".join(parts)


def _resolve(view: FeatureSetView, name: str) -> tuple[str, str]:
    parts = name.split(".")
    parent = view.parent
    if len(parts) in (2, 3) and parts[0] in DATA_DOMAINS:
        domain, key = parts[0], parts[1]
        if key in parent.keys(domain):
            return domain, key
    elif len(parts) == 1:
        for domain in DATA_DOMAINS:
            if name in parent.keys(domain):
                return domain, name
    raise SamplerError("")


def check_columns(view: FeatureSetView, names: Iterable[tuple[str, str]]) -> None:
    """Raise a :class:`SamplerError` naming every unknown or non-scalar column.

    ``names`` are ``(what, column)`` pairs, e.g. ``("group_by", "cell")``.
    """
    problems = []
    for what, name in names:
        try:
            domain, key = _resolve(view, name)
        except SamplerError:
            problems.append(f"{what} column {name!r} is not in FeatureSet {view.label!r}")
            continue
        shape = view.parent.key_shape(domain, key)
        if shape != ():
            problems.append(
                f"{what} column {name!r} holds per-sample arrays of shape {shape}; samplers compare "
                "scalar columns (add a scalar tag, e.g. a cell id or a binned value)"
            )
    if problems:
        raise SamplerError(
            "; ".join(problems) + f". Available columns — {_available(view)}. Use a key name, "
            "'domain.key' or 'domain.key.rep'."
        )


def _column_values(view: FeatureSetView, name: str) -> np.ndarray:
    raw = np.asarray(view.resolve_column_array(name))
    if raw.dtype.kind in "biuf":
        out = raw.astype(np.float64)
        if np.isnan(out).any():
            raise SamplerError(
                f"column {name!r} of {view.label!r} has NaN values; a sampler cannot compare them — "
                "filter those rows out first (view.filter(mml.col(...) == ...)) or fill them"
            )
        return freeze_new(out)  # a fresh copy (astype)
    # Text (or other non-numeric values): integer codes in sorted order of the values.
    values = np.asarray(raw, dtype=object)
    if any(v is None for v in values):
        raise SamplerError(f"column {name!r} of {view.label!r} has missing values; filter or fill them first")
    _, codes = np.unique(values.astype(str), return_inverse=True)
    return freeze_new(codes.astype(np.float64))


def column_is_text(view: FeatureSetView, name: str) -> bool:
    """Whether a (checked) column holds text rather than numbers."""
    domain, key = _resolve(view, name)
    return view.parent.key_dtype(domain, key).kind == "O"


def materialize(view: FeatureSetView, sampler: Any, columns: Iterable[str]) -> PreparedData:
    """Read a view once: features, targets, visible tags, UUIDs and the named columns.

    >>> import mml
    >>> fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0]}, features="x", label="m")
    >>> materialize(fs.view(), None, ()).features.tolist()
    [[1.0], [2.0]]
    """
    if not view.keys("features"):
        raise SamplerError(
            f"the view of {view.label!r} has no feature keys selected; select some with view.select(features=...)"
        )
    features = _readonly(view.to_numpy("features"))
    targets = _readonly(view.to_numpy("targets")) if view.keys("targets") else None
    tags = {k: _readonly(view.column_array("tags", k)) for k in view.keys("tags")}
    cols = {name: _column_values(view, name) for name in dict.fromkeys(columns)}
    return PreparedData(
        sampler=sampler,
        features=features,
        targets=targets,
        tags=tags,
        sample_uuids=_readonly(view.sample_uuids),
        columns=cols,
        label=view.label,
    )


def _tensor(a: np.ndarray, device: Any, float_dtype: Any) -> Any:
    """One numeric array as a fresh torch tensor on ``device`` (other arrays unchanged)."""
    import torch

    from mml.errors import DeviceError

    kind = a.dtype.kind
    if kind == "f" and float_dtype is not None:
        t = torch.from_numpy(np.array(a, dtype=float_dtype))
    elif kind in "biuf":
        t = torch.from_numpy(np.array(a))
    else:
        return a
    try:
        return t.to(device)
    except (RuntimeError, AssertionError) as exc:
        raise DeviceError(
            f"cannot move the prepared data of {a.shape} rows to device {device!r}: {exc}"
        ) from exc


def to_device(data: PreparedData, device: Any, *, float_dtype: Any = None) -> PreparedData:
    """``data`` with its numeric features, targets and tags as torch tensors on ``device``.

    Call it once per phase: the sampler then gathers each chunk of batches on the device
    with ``torch.index_select`` and the batches hold tensors (the same rows, in the same
    order, as from the numpy arrays). Floating features and targets are cast to the numpy
    dtype ``float_dtype`` when given (e.g. ``np.float32``); tags keep their dtype. UUIDs, text arrays, the sampler's
    columns and what it precomputed stay numpy on the host. Tensors are left as they are.

    >>> import mml, numpy as np, torch
    >>> fs = mml.FeatureSet.from_dict({"x": np.arange(3.0), "g": ["a", "b", "a"]},
    ...                               features="x", tags="g", label="d")
    >>> d = to_device(materialize(fs.view(), None, ()), torch.device("cpu"), float_dtype=np.float32)
    >>> d.features.dtype, type(d.sample_uuids).__name__, type(d.tags["g"]).__name__
    (torch.float32, 'ndarray', 'ndarray')
    """
    if not isinstance(data, PreparedData):
        raise SamplerError(
            f"to_device() takes the result of sampler.prepare(view), got {type(data).__name__}"
        )

    def conv(a: Any, cast: Any) -> Any:
        return _tensor(a, device, cast) if isinstance(a, np.ndarray) else a

    return attrs.evolve(
        data,
        features=conv(data.features, float_dtype),
        targets=None if data.targets is None else conv(data.targets, float_dtype),
        tags={k: conv(v, None) for k, v in data.tags.items()},
    )


def cast_floats(data: PreparedData, dtype: Any) -> PreparedData:
    """``data`` with its floating numpy features and targets cast to ``dtype``, once.

    A training phase calls it once for heads whose model computes in float32, so that no
    batch is converted again (each batch is then a view of the cast arrays). Arrays already
    of that dtype, tags, UUIDs, tensors and the sampler's columns are left as they are.

    >>> import mml, numpy as np
    >>> fs = mml.FeatureSet.from_dict({"x": np.arange(3.0), "y": [0, 1, 1]}, features="x",
    ...                               targets="y", label="c")
    >>> d = cast_floats(materialize(fs.view(), None, ()), np.float32)
    >>> d.features.dtype, d.targets.dtype, d.features.flags.writeable
    (dtype('float32'), dtype('int64'), False)
    """

    def cast(a: Any) -> Any:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.dtype != dtype:
            return _readonly(a.astype(dtype))
        return a

    features, targets = cast(data.features), cast(data.targets)
    if features is data.features and targets is data.targets:
        return data
    return attrs.evolve(data, features=features, targets=targets)
