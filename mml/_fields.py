"""Field helpers that freeze the payload, not just the shell.

``frozen=True`` stops ``obj.x = 1`` but not ``obj.arr[0] = 5``. Array fields are made
read-only, mappings become :class:`FrozenDict`, and equality of arrays is by value.

>>> import numpy as np, attrs
>>> @attrs.frozen
... class P:
...     a: np.ndarray = array_field()
>>> p = P([1.0, 2.0])
>>> p.a.flags.writeable
False
>>> P([1.0, 2.0]) == P([1.0, 2.0])
True
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import Any, TypeVar

import attrs
import numpy as np

__all__ = [
    "FrozenDict",
    "frozen_dict",
    "frozen_tuple",
    "readonly_array",
    "freeze_new",
    "array_field",
    "arrays_equal",
    "optional_array_field",
]

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(Mapping[K, V]):
    """An immutable, hashable, insertion-ordered mapping.

    >>> d = FrozenDict({"a": 1})
    >>> d["a"], len(d), dict(d)
    (1, 1, {'a': 1})
    >>> d == {"a": 1}
    True
    """

    __slots__ = ("_data", "_hash")
    _data: dict[K, V]
    _hash: int | None

    def __init__(self, data: Mapping[K, V] | Any = (), /) -> None:
        object.__setattr__(self, "_data", dict(data))
        object.__setattr__(self, "_hash", None)

    @classmethod
    def wrap(cls, d: dict[K, V], /) -> FrozenDict[K, V]:
        """A FrozenDict that takes ownership of ``d`` without copying it.

        For hot paths that build a fresh dict only to freeze it. The caller hands ``d``
        over and must not keep a reference it mutates afterwards: the FrozenDict reads
        ``d`` directly and caches its hash, so a later change would silently break
        immutability and hashing. When in doubt, use ``FrozenDict(d)`` (one copy).

        >>> d = {"a": 1}
        >>> fd = FrozenDict.wrap(d)
        >>> fd, fd == FrozenDict({"a": 1})
        (FrozenDict({'a': 1}), True)
        >>> FrozenDict.wrap([("a", 1)])
        Traceback (most recent call last):
        ...
        TypeError: FrozenDict.wrap takes a dict, got list; use FrozenDict(...) to copy other mappings
        """
        if type(d) is not dict:
            raise TypeError(
                f"FrozenDict.wrap takes a dict, got {type(d).__name__}; "
                "use FrozenDict(...) to copy other mappings"
            )
        fd = cls.__new__(cls)
        object.__setattr__(fd, "_data", d)
        object.__setattr__(fd, "_hash", None)
        return fd

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    # Fast paths: the Mapping mixins would go through __iter__/__getitem__ one key at a time.
    def keys(self) -> KeysView[K]:
        return self._data.keys()

    def values(self) -> ValuesView[V]:
        return self._data.values()

    def items(self) -> ItemsView[K, V]:
        return self._data.items()

    def get(self, key: K, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __setattr__(self, name: str, value: Any) -> None:
        raise attrs.exceptions.FrozenInstanceError()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            if set(self._data) != set(other.keys()):
                return False
            return all(_values_equal(v, other[k]) for k, v in self._data.items())
        return NotImplemented

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash(frozenset((k, _hashable(v)) for k, v in self._data.items()))
            object.__setattr__(self, "_hash", h)
        return h

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def set(self, key: K, value: V) -> FrozenDict[K, V]:
        """A new mapping with ``key`` set to ``value``.

        >>> FrozenDict({"a": 1}).set("b", 2)
        FrozenDict({'a': 1, 'b': 2})
        """
        d = dict(self._data)
        d[key] = value
        return FrozenDict(d)

    def delete(self, key: K) -> FrozenDict[K, V]:
        """A new mapping without ``key``."""
        d = dict(self._data)
        del d[key]
        return FrozenDict(d)

    def __reduce__(self) -> Any:  # copy/deepcopy support; mml never pickles
        return (FrozenDict, (self._data,))


def _hashable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return (v.shape, str(v.dtype), v.tobytes()[:64])
    try:
        hash(v)
    except TypeError:
        return id(type(v))
    return v


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return arrays_equal(a, b)
    if type(a).__module__.startswith("torch") or type(b).__module__.startswith("torch"):
        import torch

        return bool(
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and torch.equal(a.cpu(), b.cpu())
        )
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN is one value of a record (e.g. OrdinalEncoder's encoded_missing_value)
    r = a == b
    if isinstance(r, (bool, np.bool_)):
        return bool(r)
    return bool(np.all(r))


def frozen_dict(value: Mapping[Any, Any] | None) -> FrozenDict[Any, Any]:
    """attrs converter: any mapping (or ``None``) to a :class:`FrozenDict`."""
    if isinstance(value, FrozenDict):
        return value
    return FrozenDict(value or {})


def frozen_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    """attrs converter: any iterable to a tuple (use instead of ``converter=tuple``).

    Same result as ``tuple``; a named, annotated function lets mypy's attrs plugin type the
    ``__init__`` parameter (``converter=tuple`` leaves it as an unsolvable ``Iterable[_T_co]``).

    >>> frozen_tuple(["a", "b"])
    ('a', 'b')
    """
    return tuple(value)


def readonly_array(value: Any) -> np.ndarray:
    """attrs converter: a read-only array that owns its data, so nobody can change it later.

    A frozen value must not share a buffer the caller can still write: a writable input is
    copied (the caller's array and its flags stay as they were). An array that is already
    read-only all the way down (its own flag and every array it views) or that views
    immutable memory (an Arrow buffer, ``bytes``) is kept as it is, without a copy — so
    zero-copy reads from Arrow stay zero-copy. A read-only *view* of a writable array is
    copied: its owner could still be written. (Flipping ``flags.writeable`` back on an
    array one owns is deliberate sabotage, not a law mml can keep.)

    >>> a = np.zeros(3)
    >>> b = readonly_array(a)
    >>> a.flags.writeable, b.flags.writeable, np.shares_memory(a, b)
    (True, False, False)
    >>> a[0] = 9.0
    >>> b.tolist()
    [0.0, 0.0, 0.0]
    >>> readonly_array(b) is b
    True
    """
    arr = np.asarray(value)
    if arr.flags.writeable or not _owns_immutable(arr):
        arr = arr.copy()
        arr.flags.writeable = False
    return arr


def freeze_new(arr: np.ndarray) -> np.ndarray:
    """Make an array the caller has just created (and shares with no one) read-only, in place.

    The no-copy counterpart of :func:`readonly_array` for hot paths that build a fresh array
    (a gather, a concatenation, a buffer read from Arrow) only to freeze it. Like
    :meth:`FrozenDict.wrap`, the caller hands ``arr`` over: it must not keep a writable
    view of it. When in doubt, use :func:`readonly_array`.

    >>> out = freeze_new(np.arange(3) * 2)
    >>> out.flags.writeable, out.tolist()
    (False, [0, 2, 4])
    >>> part = freeze_new(np.arange(4.0)[1:])    # a view of a fresh array: both frozen
    >>> readonly_array(part) is part
    True
    """
    # the arrays it views were made with it (a buffer read, a reshape): freeze them too, so
    # that readonly_array later sees read-only memory all the way down and does not copy
    base: Any = arr
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            base.flags.writeable = False
        base = base.base
    return arr


def _owns_immutable(arr: np.ndarray) -> bool:
    # read-only itself; every array it views read-only too; the memory at the bottom owned
    # by an array or by an immutable object (Arrow buffers and arrays, bytes)
    base = arr.base
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        base = base.base
    return base is None or isinstance(base, bytes) or type(base).__module__.startswith("pyarrow")


def _host(x: Any) -> Any:
    """A torch tensor detached and on the CPU (``np.asarray`` refuses one that requires grad)."""
    detach = getattr(x, "detach", None)  # torch only: this module imports no framework
    return detach().cpu() if callable(detach) and hasattr(x, "requires_grad") else x


def arrays_equal(a: Any, b: Any) -> bool:
    """Value equality for arrays: same shape, dtype kind and elements (NaN equal to NaN).

    A torch tensor is compared by its values, whether it requires grad or sits on a device.
    """
    a = np.asarray(_host(a))
    b = np.asarray(_host(b))
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def array_field(**kwargs: Any) -> Any:
    """An attrs field holding a read-only numpy array it owns, compared by value, not hashed.

    The converter is :func:`readonly_array`: a writable input is copied, so the caller's
    later writes never reach the value. Public as :func:`mml.fields.array_field`.
    """
    return attrs.field(
        converter=readonly_array,
        eq=attrs.cmp_using(eq=arrays_equal),
        hash=False,
        **kwargs,
    )


def _optional_readonly(value: Any) -> np.ndarray | None:
    return None if value is None else readonly_array(value)


def _optional_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return arrays_equal(a, b)


def optional_array_field(**kwargs: Any) -> Any:
    """Like :func:`array_field` but ``None`` is allowed (and is the default)."""
    kwargs.setdefault("default", None)
    return attrs.field(
        converter=_optional_readonly,
        eq=attrs.cmp_using(eq=_optional_equal),
        hash=False,
        **kwargs,
    )
