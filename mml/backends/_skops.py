"""Fitted scikit-learn estimators with nested objects (tree ensembles, ...) as skops bytes.

Most estimators keep their fitted state as arrays and numbers, which the sklearn backend
stores as plain data. Tree ensembles (``RandomForestRegressor``, ``GradientBoostingRegressor``,
``HistGradientBoosting*``, ...) hold nested estimators and Cython trees. Those are written with
`skops.io <https://skops.readthedocs.io>`_ — a format that, unlike pickle, names every type it
would build and builds nothing until those types are trusted. The bytes are made canonical (no
memory addresses, no timestamps), so the same fit gives the same bytes and states compare equal.

Loading trusts **only scikit-learn and numpy types**: the list of types the document asks
for is computed with ``skops.io.get_untrusted_types`` before anything is built, and any type
from another package is refused (a :class:`~mml.ArtifactError` naming it).

>>> import numpy as np
>>> from sklearn.ensemble import RandomForestRegressor
>>> x = np.arange(20.0).reshape(10, 2)
>>> est = RandomForestRegressor(n_estimators=2, random_state=0).fit(x, x[:, 0])
>>> data = encode(est)
>>> data.dtype, data.flags.writeable, np.array_equal(data, encode(est))
(dtype('uint8'), False, True)
>>> decode(data).predict(x[:2]).tolist() == est.predict(x[:2]).tolist()
True
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from mml._fields import readonly_array
from mml.errors import ArtifactError, BackendError

__all__ = ["SKOPS_KEY", "TRUSTED_PREFIXES", "available", "decode", "encode", "trusted_types"]

#: the key of :attr:`SklearnFitted.attributes` that holds skops bytes (not a Python identifier,
#: so it never clashes with an estimator attribute)
SKOPS_KEY = "skops.io"
#: the only packages whose types a skops document may ask for
TRUSTED_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def available() -> bool:
    """Whether skops is installed (the ``mml[sklearn]`` extra).

    >>> isinstance(available(), bool)
    True
    """
    try:
        import skops.io  # noqa: F401
    except ImportError:
        return False
    return True


def _require(what: str) -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:
        raise BackendError(
            f"{what} needs skops to be stored without pickle: pip install 'mml[sklearn]' (or skops)"
        ) from exc
    return sio


def trusted_types(data: bytes, what: str = "a skops document") -> list[str]:
    """The types a skops document asks to build beyond skops' defaults, if all are sklearn/numpy.

    Anything else is an :class:`~mml.ArtifactError` naming the types, raised before any is
    imported or built.
    """
    sio = _require(what)
    try:
        wanted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a corrupted or foreign document
        raise ArtifactError(f"{what} is not a readable skops document: {exc}") from exc
    bad = [t for t in wanted if not t.startswith(TRUSTED_PREFIXES)]
    if bad:
        raise ArtifactError(
            f"{what} asks to build types outside scikit-learn and numpy ({', '.join(bad)}); mml loads only "
            "scikit-learn and numpy types from a fitted estimator, so this one is refused"
        )
    return list(wanted)


def _canonical(raw: bytes) -> bytes:
    """The same skops document with object ids and file names numbered in order, and fixed timestamps."""
    src = zipfile.ZipFile(io.BytesIO(raw))
    schema = json.loads(src.read("schema.json"))
    ids: dict[int, int] = {}
    files: dict[str, str] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for k, v in node.items():
                if k == "__id__" and isinstance(v, int):
                    out[k] = ids.setdefault(v, len(ids))
                elif k == "file" and isinstance(v, str) and v in names:
                    out[k] = files.setdefault(v, f"{len(files)}.npy")
                else:
                    out[k] = walk(v)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    names = {i.filename for i in src.infolist() if i.filename != "schema.json"}
    schema = walk(schema)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as dst:
        dst.writestr(zipfile.ZipInfo("schema.json", _FIXED_TIME), json.dumps(schema, indent=2))
        for old, new in sorted(files.items(), key=lambda kv: int(kv[1].split(".")[0])):
            dst.writestr(zipfile.ZipInfo(new, _FIXED_TIME), src.read(old))
    return buf.getvalue()


def encode(estimator: Any) -> np.ndarray:
    """A fitted estimator as canonical skops bytes (a read-only ``uint8`` array).

    An estimator that holds anything but scikit-learn and numpy objects (a user function in a
    ``FunctionTransformer``, ...) is a :class:`~mml.BackendError`: it could not be loaded back.
    """
    name = type(estimator).__name__
    sio = _require(f"the fitted {name}")
    data = _canonical(sio.dumps(estimator))
    try:
        trusted_types(data, f"the fitted {name}")
    except ArtifactError as exc:
        raise BackendError(f"{exc}; use an estimator built from scikit-learn parts only") from exc
    return readonly_array(np.frombuffer(data, dtype=np.uint8).copy())


def decode(data: Any, what: str = "a fitted estimator") -> Any:
    """The estimator of :func:`encode`'s bytes, building only scikit-learn and numpy types."""
    raw = np.asarray(data, dtype=np.uint8).tobytes()
    trusted = trusted_types(raw, what)
    sio = _require(what)
    return sio.loads(raw, trusted=trusted)
