"""The exception hierarchy of mml.

Every error mml raises on purpose is a subclass of :class:`MMLError`. Messages name the
offending column, node, shape or file and say how to fix it.

>>> import mml
>>> issubclass(mml.SchemaError, mml.MMLError)
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NoReturn

__all__ = [
    "MMLError",
    "DataError",
    "SchemaError",
    "SplitError",
    "ScalerError",
    "NotInvertibleError",
    "SamplerError",
    "GraphError",
    "ShapeError",
    "BackendError",
    "ConfigError",
    "ArtifactError",
    "UntrustedTypeError",
    "TrainingError",
    "DeviceError",
    "CallbackError",
    "RemovedNameError",
]


class MMLError(Exception):
    """Base class of every error raised by mml."""


class DataError(MMLError, ValueError):
    """Bad data: wrong lengths, NaN where forbidden, non-numeric values, empty input."""


class SchemaError(DataError):
    """A bad column or key name, an unknown key, a key in two domains."""


class SplitError(DataError):
    """A splitter got bad ratios, an unknown split name, or produced an invalid split."""


class ScalerError(DataError):
    """A scaler could not be found, fitted or applied."""


class NotInvertibleError(ScalerError):
    """The inverse of a transform was asked for but the transform has none."""


class SamplerError(DataError):
    """A sampler is misconfigured or cannot produce batches from the data it was given."""


class GraphError(MMLError, ValueError):
    """An invalid model graph: a cycle, a dangling reference, a duplicate label, ..."""


class ShapeError(GraphError):
    """Shapes of two connected stages do not agree."""


class BackendError(MMLError):
    """A backend (torch, tensorflow, scikit-learn) is missing or was misused."""


class ConfigError(MMLError, ValueError):
    """A configuration value (name, option, file) is invalid."""


class ArtifactError(MMLError):
    """A saved artifact is missing, corrupted, tampered with or of the wrong kind."""


class UntrustedTypeError(ArtifactError):
    """A document names classes or callables the caller did not trust; nothing was imported.

    ``untrusted`` lists every such name; ``trusted_argument`` is the ``trusted=`` value that
    would accept them (pass it only if you trust the code they name).

    >>> UntrustedTypeError(["os:system"]).trusted_argument
    ['os:system']
    """

    def __init__(self, untrusted: list[str], *, where: list[str] | None = None, source: str = "the document"):
        self.untrusted = tuple(untrusted)
        self.trusted_argument = list(self.untrusted)
        n = len(self.untrusted)
        places = f" (at {', '.join(where[:10])}{', ...' if len(where) > 10 else ''})" if where else ""
        super().__init__(
            f"{source} names {n} untrusted type{' or callable' if n == 1 else 's or callables'}{places} "
            f"(nothing was imported): {', '.join(repr(u) for u in self.untrusted)}. "
            f"If you trust {'it' if n == 1 else 'them'}, pass trusted={self.trusted_argument!r}"
        )


class TrainingError(MMLError):
    """Training failed: a NaN loss, a loss bound to an unknown node, a missing split."""


class DeviceError(MMLError):
    """A requested device (``"cuda"``, ``"mps"``) is not available."""


class CallbackError(TrainingError):
    """A user callback raised; the run is marked failed and the state is kept."""


class RemovedNameError(MMLError, AttributeError):
    """A name that an earlier mml version had and this one removed; the message names its replacement.

    An ``AttributeError``, so ``hasattr`` answers ``False`` for the removed name.

    >>> import mml
    >>> fs = mml.FeatureSet.from_dict({"x": [0.0, 1.0]}, features="x", label="f")
    >>> hasattr(fs, "fit_transform")
    False
    """


def removed_names(module: str, removed: Mapping[str, str]) -> Callable[[str], NoReturn]:
    """A module ``__getattr__`` that answers each removed name with a :class:`RemovedNameError`
    naming its replacement (``removed``: name -> the call to write instead), and any other unknown
    name with the plain ``AttributeError``.

    >>> getattr_ = removed_names("pkg", {"old": "pkg.new(x)"})
    >>> getattr_("old")
    Traceback (most recent call last):
    ...
    mml.errors.RemovedNameError: pkg.old was removed in mml 0.2; call pkg.new(x) instead
    """

    def __getattr__(name: str) -> NoReturn:
        check_removed(module, name, removed)
        raise AttributeError(f"module {module!r} has no attribute {name!r}", name=name)

    return __getattr__


def check_removed(owner: str, name: str, removed: Mapping[str, str], why: str = "") -> None:
    """Raise the :class:`RemovedNameError` of ``owner.name`` if ``removed`` lists it (``why``: the reason).

    The one message of every removed name, for modules (:func:`removed_names`) and classes (a
    class's ``__getattr__`` calls it before its plain ``AttributeError``).

    >>> check_removed("pkg", "kept", {"old": "pkg.new(x)"})  # not removed: returns
    >>> check_removed("pkg.Cls", "old", {"old": "pkg.new(x)"}, why="it moved")
    Traceback (most recent call last):
    ...
    mml.errors.RemovedNameError: pkg.Cls.old was removed in mml 0.2: it moved; call pkg.new(x) instead
    """
    instead = removed.get(name)
    if instead is not None:
        reason = f": {why}" if why else ""
        raise RemovedNameError(f"{owner}.{name} was removed in mml 0.2{reason}; call {instead} instead")
