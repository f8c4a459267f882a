"""Load-time checks of an artifact directory, done before any content is parsed.

* the manifest: a regular file of bounded size; every field validated (``format``,
  ``format_version`` an int in the supported range, ``type`` a well-formed import path,
  ``kind`` a string or null, ``mml_version`` a string, ``files`` and optional ``sizes``);
* the files: each listed name relative, normalised and inside the artifact; no symlinks
  anywhere; nothing unlisted at any depth (a nested ``manifest.json`` included); each file's
  size equal to the one the manifest records (manifests written before sizes were recorded
  still load) — all checked from the directory listing and ``fstat`` before a byte of content
  is read;
* JSON documents: bounded size and nesting depth (an :class:`~mml.ArtifactError`, never a
  ``RecursionError``).

>>> check_name("tables/t0.arrow")
'tables/t0.arrow'
>>> check_name("../secret")
Traceback (most recent call last):
...
mml.errors.ArtifactError: the manifest lists '../secret': a file name must be a relative, normalised path inside the artifact
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any, TypeGuard

from mml.errors import ArtifactError

__all__ = ["MAX_DEPTH", "check_name", "check_manifest", "check_tree", "parse_json", "read_json", "json_depth"]

#: deepest nesting of lists and mappings a document may have
MAX_DEPTH = 200
_PATH = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
)
_NAME_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def check_name(name: Any) -> str:
    """A manifest file name, if it is a relative, normalised POSIX path inside the artifact."""
    ok = (
        isinstance(name, str)
        and name != "manifest.json"
        and not name.startswith("/")
        and "\\" not in name
        and posixpath.normpath(name) == name
        and all(_NAME_PART.fullmatch(part) and part not in (".", "..") for part in name.split("/"))
    )
    if not ok:
        raise ArtifactError(
            f"the manifest lists {name!r:.200}: a file name must be a relative, normalised path inside the artifact"
        )
    return name  # type: ignore[no-any-return]


def json_depth(doc: Any) -> int:
    """Nesting depth of lists and mappings (computed without recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, (dict, list)):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in (x.values() if isinstance(x, dict) else x))
    return deepest


def parse_json(raw: bytes, path: Path) -> Any:
    """Parse the bytes of a JSON file of an artifact (its size already checked); bounded depth."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except RecursionError as exc:
        raise ArtifactError(
            f"{path} is nested more than {MAX_DEPTH} levels deep; the artifact is corrupted"
        ) from exc
    except ValueError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); the artifact is corrupted") from exc
    if json_depth(doc) > MAX_DEPTH:
        raise ArtifactError(f"{path} is nested more than {MAX_DEPTH} levels deep; the artifact is corrupted")
    return doc


def read_json(path: Path) -> Any:
    """:func:`parse_json` of a file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc
    return parse_json(raw, path)


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def check_manifest(manifest: Any, mpath: Path, *, format_name: str, max_version: int) -> dict[str, Any]:
    """Validate every field of a parsed manifest; return it."""
    if not isinstance(manifest, dict) or manifest.get("format") != format_name:
        raise ArtifactError(f"{mpath} is not an mml manifest (format is not {format_name!r})")
    version = manifest.get("format_version")
    if _is_int(version) and version > max_version:
        raise ArtifactError(
            f"{mpath} has format version {version}, this mml reads up to {max_version}; upgrade mml"
        )
    if not _is_int(version) or version < 1:
        raise ArtifactError(
            f"{mpath} has format version {version!r:.60}, not an int from 1; the manifest is corrupted"
        )
    problems = []
    if not (isinstance(manifest.get("type"), str) and _PATH.fullmatch(manifest["type"])):
        problems.append(f"type {manifest.get('type')!r:.100} is not 'package.module:Name'")
    if manifest.get("kind") is not None and not isinstance(manifest.get("kind"), str):
        problems.append(f"kind {manifest.get('kind')!r:.100} is not a string")
    if "mml_version" in manifest and not isinstance(manifest["mml_version"], str):
        problems.append(f"mml_version {manifest['mml_version']!r:.100} is not a string")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        problems.append("files is not a mapping of file name to hash")
    sizes = manifest.get("sizes")
    if sizes is not None and not (
        isinstance(sizes, dict)
        and isinstance(files, dict)
        and set(sizes) == set(files)
        and all(_is_int(v) and v >= 0 for v in sizes.values())
    ):
        problems.append("sizes is not a mapping of every listed file to its size in bytes")
    if problems:
        raise ArtifactError(f"{mpath} is corrupted: {'; '.join(problems)}")
    for name in files:  # type: ignore[union-attr]
        check_name(name)
    return manifest


def check_tree(found: dict[str, str], manifest: dict[str, Any], root: Path) -> None:
    """What a directory holds (``{relative path: "file" | "dir" | "symlink" | "other"}``, as
    listed without opening anything): no links, nothing the manifest does not list."""
    files = manifest["files"]
    dirs: set[str] = set()
    for name in files:
        parts = name.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    for rel, what in sorted(found.items()):
        if what == "symlink":
            raise ArtifactError(
                f"{root / rel} is a symbolic link; artifacts never contain links (tampered with)"
            )
        if what == "dir":
            if rel not in dirs:
                raise ArtifactError(f"{root / rel} is a directory the manifest does not list; tampered with")
        elif rel != "manifest.json" and rel not in files:
            raise ArtifactError(f"{root / rel} is not listed in the manifest; the artifact was tampered with")
        elif what != "file":
            raise ArtifactError(f"{root / rel} is not a regular file; the artifact is corrupted")
