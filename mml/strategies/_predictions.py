"""Stacked predictions of an eval phase as a serializable value, and regression metrics on them.

:class:`Predictions` is what strategies keep of a ``History.eval_result(label)``: outputs and
targets per node and the sample UUIDs of the rows, in order. UUIDs are stored as ``(n, 16)``
``uint8`` so the value saves as plain arrays; :attr:`Predictions.uuids` gives them back as
``S16`` (the dtype of ``FeatureSet.sample_uuids``). Pooled out-of-fold predictions of a
cross-validation are a :class:`Predictions` with a ``fold`` per row.

>>> import numpy as np
>>> p = Predictions("val", {"mlp": np.array([[1.0], [3.0]])}, {"mlp": np.array([[1.0], [2.0]])},
...                 np.zeros((2, 16), np.uint8))
>>> p.metrics()
{'mse': 0.5, 'mae': 0.5, 'r2': -1.0}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict, arrays_equal, frozen_dict, optional_array_field, readonly_array
from mml.callbacks import regression_metrics
from mml.errors import ConfigError, TrainingError

__all__ = ["Predictions", "regression_metrics", "uuid_bytes"]

METRICS: tuple[str, ...] = ("mse", "mae", "r2")


def uuid_bytes(uuids: Any) -> np.ndarray:
    """``S16`` UUIDs (or an ``(n, 16)`` uint8 array) as a contiguous ``(n, 16)`` uint8 array.

    >>> uuid_bytes(np.array([b"a" * 16], dtype="S16")).shape
    (1, 16)
    """
    arr = np.asarray(uuids)
    if arr.dtype == np.uint8 and arr.ndim == 2 and arr.shape[1] == 16:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == "S" and arr.dtype.itemsize <= 16:
        arr = np.ascontiguousarray(arr.reshape(-1).astype("S16"))
        return arr.view(np.uint8).reshape(-1, 16)
    raise ConfigError(f"sample UUIDs are S16 bytes or (n, 16) uint8, got dtype {arr.dtype} shape {arr.shape}")


def _shapes(value: Mapping[str, np.ndarray]) -> str:
    return "{" + ", ".join(f"{k!r}: <array {v.shape} {v.dtype}>" for k, v in value.items()) + "}"


def _uuid_field(value: Any) -> np.ndarray:
    return readonly_array(uuid_bytes(value))


def _float_map(value: Any) -> FrozenDict[str, float]:
    return frozen_dict({str(k): float(v) for k, v in dict(value or {}).items()})


def _array_map(value: Any) -> FrozenDict[str, np.ndarray]:
    out = {}
    for k, v in dict(value or {}).items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        out[str(k)] = readonly_array(v)
    return FrozenDict(out)


@attrs.frozen
class Predictions:
    """Outputs and targets per node of one eval phase, with the UUID (and fold) of every row.

    ``outputs[node]`` and ``targets[node]`` have one row per sample, in the order of
    ``sample_uuids``. ``fold`` (pooled cross-validation predictions only) says which fold's
    model predicted each row.
    """

    phase: str
    outputs: Mapping[str, np.ndarray] = attrs.field(converter=_array_map)
    targets: Mapping[str, np.ndarray] = attrs.field(converter=_array_map)
    sample_uuids: np.ndarray = attrs.field(
        converter=_uuid_field, eq=attrs.cmp_using(eq=arrays_equal), hash=False
    )
    fold: np.ndarray | None = optional_array_field()  # noqa: RUF009 - an attrs field
    losses: Mapping[str, float] = attrs.field(factory=FrozenDict, converter=_float_map)

    @classmethod
    def from_eval(cls, result: Any) -> Predictions:
        """From a :class:`mml.training.EvalResult` (``History.eval_result(label)``).

        >>> import numpy as np
        >>> from mml.training import EvalResult
        >>> r = EvalResult("test", {"loss": 1.0}, {"m": np.zeros((1, 1))}, {"m": np.ones((1, 1))},
        ...                {"default": np.array([b"0123456789abcdef"], dtype="S16")})
        >>> Predictions.from_eval(r).uuids.tolist()
        [b'0123456789abcdef']
        """
        ids = result.sample_uuids
        uuids = ids.get("default") if "default" in ids else next(iter(ids.values()), None)
        n = next((len(v) for v in result.outputs.values()), 0)
        if uuids is None:
            if n:
                raise TrainingError(
                    f"eval phase {result.phase!r} returned no sample UUIDs; predictions cannot be matched to rows"
                )
            uuids = np.zeros((0, 16), np.uint8)
        return cls(result.phase, result.outputs, result.targets, uuids, losses=result.losses)

    def __len__(self) -> int:
        return int(self.sample_uuids.shape[0])

    @property
    def uuids(self) -> np.ndarray:
        """The sample UUIDs as an ``S16`` array (compare with ``FeatureSet.sample_uuids``)."""
        return np.ascontiguousarray(self.sample_uuids).view("S16").reshape(-1)

    @property
    def nodes(self) -> tuple[str, ...]:
        """The nodes that have both outputs and targets."""
        return tuple(n for n in self.outputs if n in self.targets)

    def _node(self, node: str | None) -> str:
        nodes = self.nodes
        if node is None:
            if len(nodes) != 1:
                raise ConfigError(
                    f"predictions of phase {self.phase!r} cover nodes {', '.join(nodes) or '(none)'}; "
                    "pass node= to choose one"
                )
            return nodes[0]
        if node not in nodes:
            raise ConfigError(
                f"phase {self.phase!r} has no outputs and targets for node {node!r}; nodes: "
                f"{', '.join(nodes) or '(none)'}"
            )
        return node

    def metrics(self, node: str | None = None) -> dict[str, float]:
        """``mse``, ``mae``, ``r2`` of one node's outputs against its targets."""
        n = self._node(node)
        return regression_metrics(self.targets[n], self.outputs[n])

    def to_pandas(self, node: str | None = None) -> Any:
        """One row per sample: ``uuid`` (hex), ``fold`` (if any), ``target``/``output`` columns.

        Multi-column outputs get ``target_<j>``/``output_<j>`` columns.
        """
        import pandas as pd

        n = self._node(node)
        data: dict[str, Any] = {"uuid": [bytes(u).hex() for u in self.uuids]}
        if self.fold is not None:
            data["fold"] = self.fold
        for name, arr in (("target", self.targets[n]), ("output", self.outputs[n])):
            flat = np.asarray(arr).reshape(len(self), -1)
            if flat.shape[1] == 1:
                data[name] = flat[:, 0]
            else:
                for j in range(flat.shape[1]):
                    data[f"{name}_{j}"] = flat[:, j]
        return pd.DataFrame(data)
