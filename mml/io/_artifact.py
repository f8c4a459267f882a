"""Artifacts on disk: a directory with a manifest, a JSON document, arrays and tables.

Layout::

    ARTIFACT/
      manifest.json        format, version, kind, mml version, hash algorithm and the
                           BLAKE3 digest of every file (written last)
      config.json          the cattrs document, with arrays/tables replaced by references
      arrays.safetensors   numeric arrays and tensors (only if there are any)
      tables/tN.arrow      Arrow IPC files (only if there are any)

A save fills a locked staging directory beside the path and swaps it into place in one step
(:mod:`mml.io._store`); a reader sees the old artifact or the new one, whole, and a crashed
writer's leftovers are removed by the next save to the path. Loading reads every file once into
memory, checks its hash on those bytes, checks the format version, and parses those bytes; it
never executes code: no pickle, no eval, no exec. Before any content is read, every manifest
field, file name, size and link is checked (:mod:`mml.io._checks`); before anything is imported,
every import path the document names is checked against the caller's trust
(:mod:`mml.io._trust`). Artifacts of format 1 (SHA-256, before the manifest named its algorithm,
and before it recorded sizes) still load.

>>> import mml, tempfile, os
>>> k = mml.random.key(7)
>>> d = tempfile.mkdtemp()
>>> _ = mml.save(k, os.path.join(d, "key"))
>>> mml.load(os.path.join(d, "key")) == k
True
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
from returns.result import Failure, Result, Success

from mml.errors import ArtifactError, ConfigError, MMLError
from mml.io._checks import check_manifest, check_tree, parse_json
from mml.io._converter import import_type, structure, type_path, unstructure
from mml.io._snapshot import read_snapshot
from mml.io._store import HASH, HASHES, HashingSink, publish, staging
from mml.io._trust import TRUST_ALL, check_trusted

__all__ = [
    "save",
    "load",
    "try_load",
    "read_manifest",
    "read_document",
    "to_document",
    "from_document",
    "FORMAT",
    "FORMAT_VERSION",
]

FORMAT = "mml-artifact"
FORMAT_VERSION = 2  # 2: the manifest names its hash algorithm (1: SHA-256, unnamed)
_ARRAYS = "arrays.safetensors"


def _version() -> str:
    from mml import __version__

    return __version__


# -- leaves out of / into the document ---------------------------------------------------


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _is_tf(x: Any) -> bool:
    return type(x).__module__.startswith(("tensorflow", "keras")) and hasattr(x, "numpy")


# The walks are module functions, not closures: a closure that calls itself is a reference
# cycle, and it would keep the tables it saw (80 MB per million rows) alive until the garbage
# collector ran.


_PLAIN = (type(None), bool, int, float, str)  # leaves kept as they are (exact types: the fast path)
# A leaf's JSON path, built only for an error message: ``None`` is the root ``$``; otherwise
# ``(parent, key)`` with a ``str`` key (``.key``) or an ``int`` index (``[i]``).
_Path = tuple[Any, "str | int"] | None


def _path_str(path: _Path) -> str:
    steps: list[str] = []
    while path is not None:
        path, step = path
        steps.append(f".{step}" if isinstance(step, str) else f"[{step}]")
    return "$" + "".join(reversed(steps))


def _leaves_out(x: Any, path: _Path, arrays: dict[str, np.ndarray], tables: dict[str, pa.Table]) -> Any:
    if type(x) in _PLAIN or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if not isinstance(k, str):
                raise ArtifactError(f"cannot save a mapping with non-string key {k!r} at {_path_str(path)}")
            out[k] = v if type(v) in _PLAIN else _leaves_out(v, (path, k), arrays, tables)
        return out
    if isinstance(x, (list, tuple)):
        return [
            v if type(v) in _PLAIN else _leaves_out(v, (path, i), arrays, tables) for i, v in enumerate(x)
        ]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, pa.Table):
        name = f"t{len(tables)}"
        tables[name] = x
        return {"$table": name}
    framework = None
    if _is_torch(x):
        framework = "torch"
        x = x.detach().cpu().numpy()
    elif _is_tf(x):
        framework = "tensorflow"
        x = np.asarray(x.numpy())
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "SV":  # fixed-width bytes (e.g. UUIDs): stored as uint8 rows
            name = f"a{len(arrays)}"
            width = x.dtype.itemsize
            arrays[name] = np.ascontiguousarray(x).view(np.uint8).reshape(*x.shape, width)
            return {"$array": name, "bytes": width, "dtype": x.dtype.str}
        if x.dtype.kind in "OU":
            return {"$strings": x.astype(str).tolist(), "shape": list(x.shape)}
        if x.dtype.kind not in "biuf" and x.dtype != np.bool_:
            raise ArtifactError(f"cannot save an array of dtype {x.dtype} at {_path_str(path)}")
        name = f"a{len(arrays)}"
        arrays[name] = np.ascontiguousarray(x).reshape(x.shape)
        ref: dict[str, Any] = {"$array": name}
        if framework:
            ref["framework"] = framework
        return ref
    raise ArtifactError(
        f"cannot save an object of type {type(x).__module__}.{type(x).__qualname__} at {_path_str(path)}; "
        "only attrs values, arrays, tables, tensors and plain data can be saved"
    )


def to_document(obj: Any) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, pa.Table]]:
    """Split an mml value into a JSON-able document, its arrays and its tables."""
    arrays: dict[str, np.ndarray] = {}
    tables: dict[str, pa.Table] = {}
    doc = _leaves_out(unstructure(obj), None, arrays, tables)
    return doc, arrays, tables


def _torch_available() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken or deliberately blocked installation
        return False


def _leaves_in(x: Any, arrays: dict[str, np.ndarray], tables: dict[str, pa.Table]) -> Any:
    walk = functools.partial(_leaves_in, arrays=arrays, tables=tables)
    if isinstance(x, dict):
        if "$array" in x:
            name = x["$array"]
            if name not in arrays:
                raise ArtifactError(f"the document refers to array {name!r} which is not in {_ARRAYS}")
            arr = arrays[name]
            if "bytes" in x:
                return arr.reshape(*arr.shape[:-1], -1).view(np.dtype(x.get("dtype", f"S{x['bytes']}")))[
                    ..., 0
                ]
            if x.get("framework") == "torch" and _torch_available():
                import torch

                return torch.from_numpy(np.array(arr, copy=True))
            arr.flags.writeable = False  # a fresh array of this load: values hold read-only arrays,
            return arr  # in ``Any`` fields too (typed fields copy nothing more when it is read-only)
        if "$table" in x:
            name = x["$table"]
            if name not in tables:
                raise ArtifactError(f"the document refers to table {name!r} which is missing")
            return tables[name]
        if "$strings" in x:
            return np.asarray(x["$strings"], dtype=str).reshape(x["shape"])
        return {k: walk(v) for k, v in x.items()}
    if isinstance(x, list):
        return [walk(v) for v in x]
    return x


def from_document(
    doc: Any, arrays: dict[str, np.ndarray], tables: dict[str, pa.Table], cls: Any, *, trusted: Any = None
) -> Any:
    """Inverse of :func:`to_document` (``trusted=`` as in :func:`mml.io.structure`)."""
    trust = check_trusted(doc, trusted)
    return structure(_leaves_in(doc, arrays, tables), cls, trusted=trust, path="$.value")


def roundtrip(obj: Any) -> Any:
    """Document round-trip in memory (what ``save`` then ``load`` does, without files).

    ``obj`` is the caller's own value, so the classes it names are trusted.

    >>> import mml
    >>> roundtrip(mml.random.key(2)) == mml.random.key(2)
    True
    """
    doc, arrays, tables = to_document(obj)
    return from_document(json.loads(json.dumps(doc)), arrays, tables, type(obj), trusted=TRUST_ALL)


# -- files --------------------------------------------------------------------------------


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _write_file(path: Path, data: Any) -> str:
    """Write bytes-like ``data`` to a new file and return its digest (hashed while written)."""
    with HashingSink(os.open(path, _NEW_FILE, 0o644), size_hint=len(data)) as sink:
        sink.write(data)
    return sink.hexdigest()


def _write_table(path: Path, table: pa.Table) -> str:
    """Write ``table`` as an Arrow IPC file straight from its buffers (no serialized copy), hashing them."""
    import pyarrow.ipc as ipc

    with HashingSink(os.open(path, _NEW_FILE, 0o644), size_hint=table.nbytes) as sink:
        with pa.PythonFile(sink, mode="w") as stream, ipc.new_file(stream, table.schema) as writer:
            writer.write_table(table)
    return sink.hexdigest()


def _json_bytes(data: Any, compact: bool = False) -> bytes:
    if compact:  # json's C encoder: 5-6x faster than the indented (pure-Python) one
        return json.dumps(data, separators=(",", ":"), allow_nan=True).encode("utf-8")
    return json.dumps(data, indent=1, sort_keys=False, allow_nan=True).encode("utf-8")


def _check_replaceable(target: Path, overwrite: bool) -> None:
    if not os.path.lexists(target):
        return
    if not overwrite:
        raise ArtifactError(f"{target} exists; pass overwrite=True or choose another path")
    if target.is_dir() and not target.is_symlink():
        try:
            if (target / "manifest.json").is_file() or not any(target.iterdir()):
                return
        except FileNotFoundError:  # replaced by a concurrent save just now: nothing to protect
            return
        except OSError as exc:
            raise ArtifactError(f"cannot check what is at {target} before replacing it: {exc}") from exc
        raise ArtifactError(
            f"{target} is a directory that is not an mml artifact (it has no manifest.json); "
            "mml.save replaces only artifacts — choose another path or remove it yourself"
        )
    if target.is_symlink():
        raise ArtifactError(
            f"{target} is a symlink; mml.save replaces only artifact directories — save to the path "
            f"it points to ({os.path.realpath(target)}) or remove the link yourself"
        )
    raise ArtifactError(f"{target} exists and is not a directory; choose another path or remove it yourself")


def save(obj: Any, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Save any mml value as an artifact directory at ``path``, replacing it atomically.

    A concurrent reader sees the old artifact or the new one, whole; of concurrent saves to one
    path the last to finish wins (see ``docs/security.md``, "Atomicity"). Returns the path.
    With ``overwrite=False`` an existing path is an error; an existing path that is not an mml
    artifact is never replaced.
    """
    return prepare_save(obj, path, overwrite=overwrite)()


def prepare_save(
    obj: Any,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    snapshot: bool = False,
    compact: bool = False,
) -> Callable[[], Path]:
    """:func:`save` in two parts: split ``obj`` into its document now, write the files later.

    The returned function writes the artifact (everything :func:`save` guarantees) and returns
    its path; it touches no state of the caller's, so it may run on another thread. With
    ``snapshot=True`` the arrays that could still change (writable ones: a torch tensor's
    memory, say) are copied now, so the files hold ``obj`` as it is at this call.
    ``compact=True`` writes the JSON files without indentation (what checkpoints use: they
    are written often and read by :func:`load`; ``mml inspect`` summarises any artifact).
    """
    if not attrs.has(type(obj)):
        raise ArtifactError(f"mml.save takes an mml value (an attrs class), got {type(obj).__name__}")
    target = Path(path)
    doc, arrays, tables = to_document(obj)
    if snapshot:
        arrays = {k: v.copy() if v.flags.writeable else v for k, v in arrays.items()}
    kind = type(obj).__dict__.get("kind")
    tpath = type_path(type(obj))

    def write() -> Path:
        _check_replaceable(target, overwrite)
        _write_artifact(target, tpath, kind, doc, arrays, tables, overwrite, compact)
        return target

    return write


def _write_artifact(
    target: Path,
    tpath: str,
    kind: Any,
    doc: Any,
    arrays: dict[str, np.ndarray],
    tables: dict[str, pa.Table],
    overwrite: bool,
    compact: bool = False,
) -> None:
    with staging(target) as stage:
        tmp = stage.path
        try:
            files: dict[str, str] = {}
            config = {"type": tpath, "kind": kind, "value": doc}
            files["config.json"] = _write_file(tmp / "config.json", _json_bytes(config, compact))
            if arrays:
                from safetensors.numpy import save as to_safetensors

                files[_ARRAYS] = _write_file(tmp / _ARRAYS, to_safetensors(arrays))
            if tables:
                (tmp / "tables").mkdir()
                for name, table in tables.items():
                    rel = f"tables/{name}.arrow"
                    files[rel] = _write_table(tmp / rel, table)
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "type": tpath,
                "kind": kind,
                "mml_version": _version(),
                "hash": HASH,
                "files": files,
                "sizes": {name: os.stat(tmp / name).st_size for name in files},
            }
            _write_file(tmp / "manifest.json", _json_bytes(manifest, compact))
        except OSError as exc:
            raise ArtifactError(f"cannot write the artifact {target}: {exc}") from exc
        publish(stage, target, overwrite=overwrite)


def _parse_manifest(raw: bytes, root: Path) -> dict[str, Any]:
    mpath = root / "manifest.json"
    manifest = check_manifest(parse_json(raw, mpath), mpath, format_name=FORMAT, max_version=FORMAT_VERSION)
    # Format 1 hashed with SHA-256 and did not say so; format 2 names the algorithm.
    alg = manifest.setdefault("hash", "sha256") if manifest["format_version"] < 2 else manifest.get("hash")
    if alg not in HASHES:
        raise ArtifactError(
            f"{mpath} names hash {alg!r:.60}; this mml verifies {', '.join(HASHES)}; upgrade mml"
        )
    return manifest


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an artifact, every field checked (hashes are not checked)."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"{root} is not an mml artifact directory (it does not exist or is a file)")
    mpath = root / "manifest.json"
    try:
        raw = mpath.read_bytes()
    except OSError:
        raise ArtifactError(
            f"{mpath} is missing: {root} is not a complete mml artifact (an interrupted save, or not saved by mml)"
        ) from None
    return _parse_manifest(raw, root)


def _read_checked(root: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, pa.Buffer]]:
    """``(manifest, config document, file bytes)``: names, links, sizes and hashes checked first."""
    snap = read_snapshot(root, _parse_manifest, check_tree)
    manifest, files = snap.manifest, snap.files
    alg = manifest["hash"]
    for name, digest in manifest["files"].items():
        if snap.digests[name] != digest:
            raise ArtifactError(
                f"{root / name} does not match its {alg.upper()} hash in the manifest: "
                "the file is corrupted or was modified"
            )
    if "config.json" not in files:
        raise ArtifactError(f"{root / 'manifest.json'} does not list config.json; the artifact is incomplete")
    config = parse_json(files["config.json"].to_pybytes(), root / "config.json")
    if not isinstance(config, dict) or set(config) != {"type", "kind", "value"}:
        raise ArtifactError(f"{root / 'config.json'} must hold exactly 'type', 'kind' and 'value'")
    if config["type"] != manifest["type"] or config["kind"] != manifest.get("kind"):
        raise ArtifactError(
            f"{root}: config.json names {config['type']!r:.100} (kind {config['kind']!r:.60}) but the manifest "
            f"names {manifest['type']!r} (kind {manifest.get('kind')!r}); the artifact was tampered with"
        )
    return manifest, config, files


def read_document(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(manifest, config document)`` of an artifact, every file checked; nothing imported."""
    manifest, config, _ = _read_checked(Path(path))
    return manifest, config


def load(path: str | os.PathLike[str], cls: type | None = None, *, trusted: Any = None) -> Any:
    """Load an artifact saved by :func:`save`. Checks files and hashes; never executes stored code.

    Every file is read once, into memory, through one handle on the artifact directory; its
    hash is checked on those bytes and those bytes are parsed (nothing is reopened by path).
    ``cls`` (optional) is the type you expect; a different stored type is an
    :class:`~mml.ArtifactError`. ``trusted``: import paths of your own classes and functions
    the artifact may name (``["mypkg.models:MyNet", "mypkg.losses:*"]``); anything else that is
    not mml's, scikit-learn's or a torch/Keras building block is an :class:`~mml.UntrustedTypeError`
    listing every such name, raised before anything is imported (see ``docs/security.md``).
    """
    root = Path(path)
    _, config, files = _read_checked(root)
    trust = check_trusted(config, trusted, source=str(root / "config.json"))
    try:
        stored_cls = import_type(config["type"], trust)
    except ConfigError as exc:
        raise ArtifactError(f"{root / 'config.json'} names no loadable type: {exc}") from exc
    if cls is not None and not issubclass(stored_cls, cls):
        raise ArtifactError(f"{root} holds a {stored_cls.__name__}, not a {cls.__name__}")
    arrays: dict[str, np.ndarray] = {}
    if _ARRAYS in files:
        from safetensors.numpy import load as from_safetensors

        try:
            arrays = from_safetensors(files[_ARRAYS].to_pybytes())
        except Exception as exc:  # safetensors raises its own error types
            raise ArtifactError(f"{root / _ARRAYS} cannot be read: {exc}") from exc
    tables: dict[str, pa.Table] = {}
    for rel in sorted(files):
        if rel.startswith("tables/") and rel.endswith(".arrow"):
            import pyarrow.ipc as ipc

            try:
                tables[rel[len("tables/") : -len(".arrow")]] = ipc.open_file(
                    pa.py_buffer(files[rel])
                ).read_all()
            except pa.ArrowException as exc:
                raise ArtifactError(f"{root / rel} is not a valid Arrow IPC file: {exc}") from exc
    try:
        return from_document(config["value"], arrays, tables, stored_cls, trusted=trust)
    except ArtifactError:
        raise
    except (MMLError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{root} cannot be rebuilt as a {stored_cls.__name__}: {exc}") from exc


def try_load(
    path: str | os.PathLike[str], cls: type | None = None, *, trusted: Any = None
) -> Result[Any, ArtifactError]:
    """Like :func:`load` but returns ``Success(value)`` or ``Failure(ArtifactError)``.

    >>> from returns.result import Failure
    >>> isinstance(try_load("/nonexistent/artifact"), Failure)
    True
    """
    try:
        return Success(load(path, cls, trusted=trusted))
    except ArtifactError as exc:
        return Failure(exc)
