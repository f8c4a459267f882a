"""Artifacts on disk: a directory with a manifest, a JSON document, arrays and tables.

Layout::

    ARTIFACT/
      manifest.json        format, version, kind, mml version, SHA-256 of every file (written last)
      config.json          the cattrs document, with arrays/tables replaced by references
      arrays.safetensors   numeric arrays and tensors (only if there are any)
      tables/tN.arrow      Arrow IPC files (only if there are any)

Writes go to a temporary sibling directory which is renamed into place, so a crash never
leaves something that loads as valid (and since every file's hash is checked on load, even a
torn write that reached the disk out of order is rejected rather than loaded). Loading checks every hash and the format version and
never executes code: no pickle, no eval, no exec.

>>> import mml, tempfile, os
>>> k = mml.random.key(7)
>>> d = tempfile.mkdtemp()
>>> _ = mml.save(k, os.path.join(d, "key"))
>>> mml.load(os.path.join(d, "key")) == k
True
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
from returns.result import Failure, Result, Success

from mml.errors import ArtifactError, ConfigError, MMLError
from mml.io._converter import import_type, structure, type_path, unstructure

__all__ = [
    "save",
    "load",
    "try_load",
    "read_manifest",
    "to_document",
    "from_document",
    "FORMAT",
    "FORMAT_VERSION",
]

FORMAT = "mml-artifact"
FORMAT_VERSION = 1
_ARRAYS = "arrays.safetensors"


def _version() -> str:
    from mml import __version__

    return __version__


# -- leaves out of / into the document ---------------------------------------------------


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _is_tf(x: Any) -> bool:
    return type(x).__module__.startswith(("tensorflow", "keras")) and hasattr(x, "numpy")


def to_document(obj: Any) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, pa.Table]]:
    """Split an mml value into a JSON-able document, its arrays and its tables."""
    arrays: dict[str, np.ndarray] = {}
    tables: dict[str, pa.Table] = {}

    def walk(x: Any, path: str) -> Any:
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, dict):
            out = {}
            for k, v in x.items():
                if not isinstance(k, str):
                    raise ArtifactError(f"cannot save a mapping with non-string key {k!r} at {path}")
                out[k] = walk(v, f"{path}.{k}")
            return out
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(x)]
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
                raise ArtifactError(f"cannot save an array of dtype {x.dtype} at {path}")
            name = f"a{len(arrays)}"
            arrays[name] = np.ascontiguousarray(x).reshape(x.shape)
            ref: dict[str, Any] = {"$array": name}
            if framework:
                ref["framework"] = framework
            return ref
        raise ArtifactError(
            f"cannot save an object of type {type(x).__module__}.{type(x).__qualname__} at {path}; "
            "only attrs values, arrays, tables, tensors and plain data can be saved"
        )

    doc = walk(unstructure(obj), "$")
    return doc, arrays, tables


def _torch_available() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken or deliberately blocked installation
        return False


def from_document(doc: Any, arrays: dict[str, np.ndarray], tables: dict[str, pa.Table], cls: Any) -> Any:
    """Inverse of :func:`to_document`."""

    def walk(x: Any) -> Any:
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
                return arr
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

    return structure(walk(doc), cls)


def roundtrip(obj: Any) -> Any:
    """Document round-trip in memory (what ``save`` then ``load`` does, without files).

    >>> import mml
    >>> roundtrip(mml.random.key(2)) == mml.random.key(2)
    True
    """
    doc, arrays, tables = to_document(obj)
    return from_document(json.loads(json.dumps(doc)), arrays, tables, type(obj))


# -- files --------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    if path.stat().st_size > 1 << 20:  # large files: hash the memory map, no copy into Python buffers
        with pa.memory_map(str(path)) as mm:
            return hashlib.sha256(memoryview(mm.read_buffer())).hexdigest()
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):  # Python >= 3.11
            return hashlib.file_digest(f, "sha256").hexdigest()
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
        return h.hexdigest()


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    import pyarrow.ipc as ipc

    # Measure first, then serialize into one buffer of the exact size (no re-allocation copies).
    mock = pa.MockOutputStream()
    with ipc.new_file(mock, table.schema) as writer:
        writer.write_table(table)
    buf = pa.allocate_buffer(mock.size())
    with ipc.new_file(pa.FixedSizeBufferWriter(buf), table.schema) as writer:
        writer.write_table(table)
    return buf


def _write_hashed(path: Path, data: pa.Buffer) -> str:
    """Write ``data`` to ``path`` while hashing it on another core (hashlib releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    view = memoryview(data)
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(lambda: hashlib.sha256(view).hexdigest())
        with open(path, "wb") as f:
            f.write(view)
        return digest.result()


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=False, allow_nan=True)


def save(obj: Any, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Save any mml value as an artifact directory at ``path`` (atomically).

    Returns the path. With ``overwrite=False`` an existing path is an error.
    """
    if not attrs.has(type(obj)):
        raise ArtifactError(f"mml.save takes an mml value (an attrs class), got {type(obj).__name__}")
    target = Path(path)
    if target.exists() and not overwrite:
        raise ArtifactError(f"{target} exists; pass overwrite=True or choose another path")
    doc, arrays, tables = to_document(obj)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        files: dict[str, str] = {}
        kind = type(obj).__dict__.get("kind")
        _write_json(tmp / "config.json", {"type": type_path(type(obj)), "kind": kind, "value": doc})
        if arrays:
            from safetensors.numpy import save_file

            save_file(arrays, str(tmp / _ARRAYS))
        if tables:
            (tmp / "tables").mkdir()
            for name, table in tables.items():
                rel = f"tables/{name}.arrow"
                files[rel] = _write_hashed(tmp / rel, _ipc_bytes(table))
        for p in sorted(tmp.rglob("*")):
            rel = p.relative_to(tmp).as_posix()
            if p.is_file() and rel not in files:
                files[rel] = _sha256(p)
        _write_json(
            tmp / "manifest.json",
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "type": type_path(type(obj)),
                "kind": kind,
                "mml_version": _version(),
                "files": files,
            },
        )
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, trash / "old")
            os.rename(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an artifact, checked for format and version (hashes are not checked)."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"{root} is not an mml artifact directory (it does not exist or is a file)")
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise ArtifactError(
            f"{mpath} is missing: {root} is not a complete mml artifact (an interrupted save, or not saved by mml)"
        )
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{mpath} is not valid JSON ({exc}); the artifact is corrupted") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{mpath} is not an mml manifest (format is not {FORMAT!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{root} has format version {version!r}, this mml reads up to {FORMAT_VERSION}; upgrade mml"
        )
    if not isinstance(manifest.get("files"), dict):
        raise ArtifactError(f"{mpath} has no file list; the artifact is corrupted")
    return manifest


def load(path: str | os.PathLike[str], cls: type | None = None) -> Any:
    """Load an artifact saved by :func:`save`. Checks hashes; never executes stored code.

    ``cls`` (optional) is the type you expect; a different stored type is an
    :class:`~mml.ArtifactError`.
    """
    root = Path(path)
    manifest = read_manifest(root)
    for name, digest in manifest["files"].items():
        fpath = root / name
        if ".." in Path(name).parts or not fpath.is_file():
            raise ArtifactError(f"{fpath} is listed in the manifest but missing; the artifact is incomplete")
        if _sha256(fpath) != digest:
            raise ArtifactError(
                f"{fpath} does not match its SHA-256 in the manifest: the file is corrupted or was modified"
            )
    for p in root.rglob("*"):
        if (
            p.is_file()
            and p.relative_to(root).as_posix() not in manifest["files"]
            and p.name != "manifest.json"
        ):
            raise ArtifactError(f"{p} is not listed in the manifest; the artifact was tampered with")
    try:
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{root / 'config.json'} cannot be read: {exc}") from exc
    try:
        stored_cls = import_type(config["type"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise ArtifactError(f"{root / 'config.json'} names no loadable type: {exc}") from exc
    if cls is not None and not issubclass(stored_cls, cls):
        raise ArtifactError(f"{root} holds a {stored_cls.__name__}, not a {cls.__name__}")
    arrays: dict[str, np.ndarray] = {}
    if (root / _ARRAYS).is_file():
        from safetensors.numpy import load_file

        try:
            arrays = load_file(str(root / _ARRAYS))
        except Exception as exc:  # safetensors raises its own error types
            raise ArtifactError(f"{root / _ARRAYS} cannot be read: {exc}") from exc
    tables: dict[str, pa.Table] = {}
    if (root / "tables").is_dir():
        import pyarrow.ipc as ipc

        for p in sorted((root / "tables").glob("*.arrow")):
            try:
                tables[p.stem] = ipc.open_file(pa.memory_map(str(p))).read_all()
            except pa.ArrowException as exc:
                raise ArtifactError(f"{p} is not a valid Arrow IPC file: {exc}") from exc
    try:
        return from_document(config["value"], arrays, tables, stored_cls)
    except ArtifactError:
        raise
    except (MMLError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{root} cannot be rebuilt as a {stored_cls.__name__}: {exc}") from exc


def try_load(path: str | os.PathLike[str], cls: type | None = None) -> Result[Any, ArtifactError]:
    """Like :func:`load` but returns ``Success(value)`` or ``Failure(ArtifactError)``.

    >>> from returns.result import Failure
    >>> isinstance(try_load("/nonexistent/artifact"), Failure)
    True
    """
    try:
        return Success(load(path, cls))
    except ArtifactError as exc:
        return Failure(exc)
