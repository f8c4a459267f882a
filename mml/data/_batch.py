"""Batches: what one step of a model sees.

A :class:`Batch` maps role names to :class:`SampleData` (features, targets, tags, UUIDs,
per-sample weights and a validity mask for one role). With a single role (named
``"default"``) the role can be left out: ``batch.features``.

>>> import numpy as np
>>> b = Batch.single(SampleData(features=np.zeros((2, 3)), targets=np.ones((2, 1))))
>>> b.features.shape, b.targets.shape, len(b)
((2, 3), (2, 1), 2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict, _values_equal, frozen_dict
from mml.errors import DataError, DeviceError

__all__ = ["SampleData", "Batch", "DEFAULT_ROLE", "to_torch", "to_tf"]

DEFAULT_ROLE = "default"


def _map_arrays(x: Any, fn: Callable[[Any], Any]) -> Any:
    return None if x is None else fn(x)


def to_torch(x: Any, device: Any = None, dtype: Any = None) -> Any:
    """A numpy array (or tensor) as a torch tensor, sharing memory where possible."""
    return _to_torch(x, device, dtype)


def torch_view(arr: np.ndarray) -> Any:
    """A torch tensor sharing ``arr``'s memory, also when ``arr`` is read-only.

    ``torch.from_numpy`` warns on read-only arrays (torch has no read-only tensors); DLPack
    carries the read-only flag and shares the memory silently. mml never writes to a tensor
    in place (every step makes new tensors), so sharing is safe. Arrays DLPack cannot carry
    are copied, and so are arrays with negative strides (``a[::-1]``): torch has no negative
    strides, ``from_numpy`` refuses them and ``from_dlpack`` of one aborts the process.
    """
    import torch

    if any(s < 0 for s in arr.strides):
        return torch.from_numpy(np.ascontiguousarray(arr))
    if arr.flags.writeable:
        return torch.from_numpy(arr)
    try:
        return torch.from_dlpack(arr)
    except (BufferError, RuntimeError, TypeError, ValueError):
        return torch.from_numpy(np.array(arr, copy=True))


def _to_torch(x: Any, device: Any = None, dtype: Any = None) -> Any:
    import torch

    if isinstance(x, torch.Tensor):
        t = x
    else:
        arr = np.asarray(x)
        if arr.dtype.kind in "OUS":
            return arr
        t = torch_view(arr)
    if dtype is not None and t.dtype != dtype and t.is_floating_point():
        t = t.to(dtype)
    if device is not None and str(t.device) != str(device):
        try:
            t = t.to(device)
        except (RuntimeError, AssertionError) as exc:
            raise DeviceError(f"cannot move data to device {device!r}: {exc}") from exc
    return t


def to_tf(x: Any) -> Any:
    """A numpy array (or tensor) as a TensorFlow tensor."""
    import tensorflow as tf

    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind in "OUS":
        return arr
    return tf.convert_to_tensor(arr)


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        return np.asarray(x.numpy())
    return np.asarray(x)


def _optional_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return _values_equal(a, b)


_ARRAY_EQ = attrs.cmp_using(eq=_optional_equal)


@attrs.frozen
class SampleData:
    """The data of one role in one batch: arrays with the samples on the first axis.

    ``features`` / ``targets`` are laid out as :meth:`mml.FeatureSet.to_numpy` does;
    ``tags`` maps tag keys to arrays; ``weights`` (per-sample, default all 1) and ``mask``
    (per-sample validity, default all valid) are honoured by losses.
    """

    features: Any = attrs.field(eq=_ARRAY_EQ, hash=False)
    targets: Any = attrs.field(default=None, eq=_ARRAY_EQ, hash=False)
    tags: Mapping[str, Any] = attrs.field(factory=FrozenDict, converter=frozen_dict)
    sample_uuids: Any = attrs.field(default=None, eq=_ARRAY_EQ, hash=False)
    weights: Any = attrs.field(default=None, eq=_ARRAY_EQ, hash=False)
    mask: Any = attrs.field(default=None, eq=_ARRAY_EQ, hash=False)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def map(self, fn: Callable[[Any], Any], *, tags: bool = False) -> SampleData:
        """Apply ``fn`` to every numeric array (tags too when ``tags=True``)."""
        return SampleData(
            features=fn(self.features),
            targets=_map_arrays(self.targets, fn),
            tags={k: fn(v) for k, v in self.tags.items()} if tags else self.tags,
            sample_uuids=self.sample_uuids,
            weights=_map_arrays(self.weights, fn),
            mask=_map_arrays(self.mask, fn),
        )

    def to_numpy(self) -> SampleData:
        """All arrays as numpy."""
        return self.map(_to_numpy, tags=True)

    def to_torch(self, device: Any = None, dtype: Any = None) -> SampleData:
        """Numeric arrays as torch tensors (on ``device``; floats cast to ``dtype`` if given)."""
        return self.map(lambda x: _to_torch(x, device, dtype))

    def to_tf(self) -> SampleData:
        """Numeric arrays as TensorFlow tensors."""
        return self.map(to_tf)

    def get(self, domain: str) -> Any:
        """``features``, ``targets``, ``weights``, ``mask`` or ``tags.<key>``."""
        if domain.startswith("tags."):
            key = domain[5:]
            if key not in self.tags:
                raise DataError(f"the batch has no tag {key!r}; tags: {', '.join(self.tags) or '(none)'}")
            return self.tags[key]
        if domain not in ("features", "targets", "weights", "mask", "sample_uuids"):
            raise DataError(
                f"unknown batch field {domain!r}; use features, targets, weights, mask or tags.<key>"
            )
        value = getattr(self, domain)
        if value is None:
            raise DataError(f"the batch has no {domain}; bind a FeatureSet with {domain} to this input")
        return value


def _check_roles(instance: Any, attribute: Any, value: Mapping[str, SampleData]) -> None:
    if not value:
        raise DataError("a Batch needs at least one role")
    n = {len(v) for v in value.values()}
    if len(n) > 1:
        raise DataError(f"roles of a batch must be aligned (same size), got sizes {sorted(n)}")


@attrs.frozen
class Batch:
    """One unit of model execution: role name → :class:`SampleData`."""

    roles: Mapping[str, SampleData] = attrs.field(converter=frozen_dict, validator=_check_roles)
    stream: str = "default"

    @classmethod
    def single(cls, data: SampleData, stream: str = "default") -> Batch:
        """A batch with one role (``"default"``)."""
        return cls({DEFAULT_ROLE: data}, stream)

    def __len__(self) -> int:
        return len(next(iter(self.roles.values())))

    def role(self, name: str) -> SampleData:
        """The data of one role."""
        try:
            return self.roles[name]
        except KeyError:
            raise DataError(f"the batch has no role {name!r}; roles: {', '.join(self.roles)}") from None

    @property
    def _only(self) -> SampleData:
        if len(self.roles) != 1:
            raise DataError(
                f"this batch has roles {', '.join(self.roles)}; name one: batch.role('anchor').features"
            )
        return next(iter(self.roles.values()))

    @property
    def features(self) -> Any:
        """Features of the single role."""
        return self._only.features

    @property
    def targets(self) -> Any:
        """Targets of the single role."""
        return self._only.targets

    @property
    def tags(self) -> Mapping[str, Any]:
        """Tags of the single role."""
        return self._only.tags

    @property
    def sample_uuids(self) -> Any:
        """UUIDs of the single role."""
        return self._only.sample_uuids

    def map(self, fn: Callable[[SampleData], SampleData]) -> Batch:
        """Apply ``fn`` to every role's data."""
        return Batch({r: fn(d) for r, d in self.roles.items()}, self.stream)

    def to_numpy(self) -> Batch:
        """All arrays as numpy."""
        return self.map(SampleData.to_numpy)

    def to_torch(self, device: Any = None, dtype: Any = None) -> Batch:
        """Numeric arrays as torch tensors."""
        return self.map(lambda d: d.map(lambda x: _to_torch(x, device, dtype)))

    def to_tf(self) -> Batch:
        """Numeric arrays as TensorFlow tensors."""
        return self.map(SampleData.to_tf)
