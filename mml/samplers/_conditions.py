"""SimilarityCondition: when a candidate counts as similar (or dissimilar) to an anchor.

A condition compares one scalar column of the anchor (value ``a``) and a candidate (``b``).
Every metric defines an interval of values *similar* to ``a``:

* ``"absolute"``: ``a - tolerance <= b <= a + tolerance``, distance ``|a - b|``;
* ``"relative"``: ``a - tolerance*|a| <= b <= a + tolerance*|a|``, distance ``|a - b| / |a|``;
* ``"equal"``: ``b == a`` (text columns compare as text; ``tolerance`` must be 0);
* ``"callable"``: your distance function, named by import path in ``fn``
  (``similar(0.1, metric="mypkg.metrics:log_ratio")`` sets both): ``fn(a, b)`` takes two
  broadcastable float64 arrays and returns the non-negative distances ``d`` elementwise;
  similar means ``d <= tolerance``. Its candidates are no interval, so samplers meet it by
  rejection (see :class:`~mml.samplers.NSampler`).

``relation="similar"`` keeps candidates inside the interval, ``"dissimilar"`` those outside.
For the three built-in metrics the valid candidates of an anchor are an interval (or its
complement) of the sorted column, so samplers find them with ``searchsorted``, never pair by
pair.

Weights. A kept candidate gets a closeness score ``s`` in ``[0, 1]``: for ``similar``,
``s = 1 - d / tolerance`` (``1`` when ``tolerance == 0``); for ``dissimilar``,
``s = 1 - tolerance / d`` (``1`` when ``tolerance == 0``). The weight is

* ``"binary"``: ``max_weight``;
* ``"linear"``: ``min_weight + (max_weight - min_weight) * s``;
* ``"exponential"``: ``min_weight * (max_weight / min_weight) ** s`` (needs ``min_weight > 0``).

>>> import numpy as np
>>> c = SimilarityCondition(tolerance=0.1, weight_mode="linear")
>>> c.holds(np.array([1.0, 1.0]), np.array([1.05, 1.2])).tolist()
[True, False]
>>> c.weight(np.array([1.0]), np.array([1.05])).round(3).tolist()
[0.5]
"""

from __future__ import annotations

from typing import Any, final

import attrs
import numpy as np

from mml.errors import SamplerError

__all__ = ["SimilarityCondition", "similar", "dissimilar", "RELATIONS", "METRICS", "WEIGHT_MODES"]

RELATIONS = ("similar", "dissimilar")
METRICS = ("absolute", "relative", "equal", "callable")
WEIGHT_MODES = ("binary", "linear", "exponential")


def _one_of(options: tuple[str, ...]) -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if value not in options:
            raise SamplerError(
                f"SimilarityCondition.{attribute.name} must be one of {', '.join(options)}, got {value!r}"
            )

    return check


def _metric_fn(path: str) -> Any:
    """The distance function a condition names (imported by path; a ConfigError if it is not one)."""
    from mml.io import import_path  # the one import-by-path helper (trust rules)

    fn = import_path(path, what="similarity metric")
    if not callable(fn) or isinstance(fn, type):
        raise SamplerError(
            f"similarity metric {path!r} is not a function; name a function fn(a, b) -> distances"
        )
    return fn


def _check_fn(instance: Any, attribute: Any, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or ":" not in value:
        raise SamplerError(
            "SimilarityCondition.fn names a distance function by import path 'package.module:name' "
            f"(a function object cannot be saved), got {value!r:.200}"
        )
    _metric_fn(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SamplerError(f"SimilarityCondition.{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _tolerance(value: Any) -> float:
    return _number("tolerance", value)


def _min_weight(value: Any) -> float:
    return _number("min_weight", value)


def _max_weight(value: Any) -> float:
    return _number("max_weight", value)


def _non_negative(instance: Any, attribute: Any, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise SamplerError(
            f"SimilarityCondition.{attribute.name} must be a finite number >= 0, got {value!r}"
        )


@final
@attrs.frozen
class SimilarityCondition:
    """One column's condition for a role of an :class:`~mml.samplers.NSampler` (see module doc).

    >>> SimilarityCondition("dissimilar", metric="equal").holds(np.array([1.0]), np.array([2.0])).tolist()
    [True]
    """

    relation: str = attrs.field(default="similar", validator=_one_of(RELATIONS))
    tolerance: float = attrs.field(default=0.0, converter=_tolerance, validator=_non_negative)
    metric: str = attrs.field(default="absolute", validator=_one_of(METRICS))
    weight_mode: str = attrs.field(default="binary", validator=_one_of(WEIGHT_MODES))
    min_weight: float = attrs.field(default=0.0, converter=_min_weight, validator=_non_negative)
    max_weight: float = attrs.field(default=1.0, converter=_max_weight, validator=_non_negative)
    fn: str | None = attrs.field(default=None, validator=_check_fn)

    def __attrs_post_init__(self) -> None:
        if (self.metric == "callable") != (self.fn is not None):
            raise SamplerError(
                "a distance function is given as metric='callable' with fn='package.module:name' (or "
                f"similar(tol, metric='package.module:name')); got metric={self.metric!r}, fn={self.fn!r}"
            )
        if self.min_weight > self.max_weight:
            raise SamplerError(
                f"SimilarityCondition min_weight {self.min_weight} is above max_weight {self.max_weight}; swap them"
            )
        if self.weight_mode == "exponential" and self.min_weight <= 0:
            raise SamplerError(
                "weight_mode='exponential' interpolates geometrically from min_weight to max_weight; "
                f"min_weight must be > 0, got {self.min_weight} (e.g. min_weight=0.01)"
            )
        if self.metric == "equal" and self.tolerance != 0:
            raise SamplerError(
                f"metric='equal' takes no tolerance, got {self.tolerance}; use metric='absolute' for a tolerance"
            )

    @property
    def similar(self) -> bool:
        """Whether candidates must lie inside the interval."""
        return self.relation == "similar"

    @property
    def has_interval(self) -> bool:
        """Whether the similar values form an interval (every metric but ``"callable"``)."""
        return self.metric != "callable"

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The metric's distances ``d`` between anchor values ``a`` and candidate values ``b``."""
        if self.metric == "callable":
            return self._call(a, b)
        d = np.abs(a - b)
        if self.metric == "relative":
            with np.errstate(divide="ignore", invalid="ignore"):
                d = np.where(d == 0, 0.0, d / np.abs(a))
        elif self.metric == "equal":
            d = (d != 0).astype(np.float64)
        return d

    def _call(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        fn = _metric_fn(str(self.fn))
        shape = np.broadcast_shapes(np.shape(a), np.shape(b))
        try:
            d = np.asarray(fn(a, b), dtype=np.float64)
        except Exception as exc:
            raise SamplerError(f"similarity metric {self.fn!r} raised {type(exc).__name__}: {exc}") from exc
        if d.shape != shape:
            raise SamplerError(
                f"similarity metric {self.fn!r} returned shape {d.shape} for inputs broadcasting to {shape}; "
                "it must compute the distances elementwise (numpy broadcasting)"
            )
        if not (np.isfinite(d) & (d >= 0)).all():
            raise SamplerError(f"similarity metric {self.fn!r} returned negative or non-finite distances")
        return d

    def interval(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` values similar to each anchor value (inclusive; built-in metrics only)."""
        if self.metric == "absolute":
            return a - self.tolerance, a + self.tolerance
        if self.metric == "relative":
            r = self.tolerance * np.abs(a)
            return a - r, a + r
        return a, a

    def holds(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether each candidate value ``b`` meets the condition for anchor value ``a``."""
        if self.metric == "callable":
            inside = self._call(a, b) <= self.tolerance
        else:
            lo, hi = self.interval(a)
            inside = (b >= lo) & (b <= hi)
        return inside if self.similar else ~inside

    def score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Closeness ``s`` in ``[0, 1]`` (meaningful where :meth:`holds`)."""
        d = self.distance(a, b)
        tol = self.tolerance
        if tol == 0:
            return np.ones_like(d, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = 1.0 - d / tol if self.similar else 1.0 - tol / d
        return np.clip(np.nan_to_num(s, nan=0.0), 0.0, 1.0)

    def weight_of_score(self, s: np.ndarray) -> np.ndarray:
        """The weight for closeness scores ``s``."""
        lo, hi = self.min_weight, self.max_weight
        if self.weight_mode == "binary":
            return np.full_like(s, hi, dtype=np.float64)
        if self.weight_mode == "linear":
            return lo + (hi - lo) * s
        return lo * (hi / lo) ** s

    def weight(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The weight of candidates ``b`` that meet the condition for anchors ``a``."""
        return self.weight_of_score(self.score(a, b))


def similar(
    tolerance: float = 0.0,
    *,
    metric: str = "absolute",
    weight_mode: str = "binary",
    min_weight: float = 0.0,
    max_weight: float = 1.0,
) -> SimilarityCondition:
    """A ``relation="similar"`` condition (``metric="equal"`` for exact matches; an import path
    ``"package.module:name"`` for your own distance function).

    >>> similar(0.05).relation
    'similar'
    >>> similar(0.5, metric="numpy:logaddexp").fn
    'numpy:logaddexp'
    """
    return _condition("similar", tolerance, metric, weight_mode, min_weight, max_weight)


def dissimilar(
    tolerance: float = 0.0,
    *,
    metric: str = "absolute",
    weight_mode: str = "binary",
    min_weight: float = 0.0,
    max_weight: float = 1.0,
) -> SimilarityCondition:
    """A ``relation="dissimilar"`` condition: candidates outside the tolerance.

    >>> dissimilar(metric="equal").holds(np.array([1.0]), np.array([1.0])).tolist()
    [False]
    """
    return _condition("dissimilar", tolerance, metric, weight_mode, min_weight, max_weight)


def _condition(
    relation: str, tolerance: float, metric: str, weight_mode: str, min_weight: float, max_weight: float
) -> SimilarityCondition:
    fn = None
    if isinstance(metric, str) and ":" in metric:
        metric, fn = "callable", metric
    return SimilarityCondition(relation, tolerance, metric, weight_mode, min_weight, max_weight, fn)
