"""The manifest of a run directory: every file ``mml run`` wrote, hashed, checked before replay.

``mml run`` writes ``history.csv``, ``metrics.jsonl``, ``config.json`` and the
``experiment``/``initial_state``/``final_state`` artifacts, then ``run.json``: the SHA-256 and
size of every one of those files (at any depth). ``mml replay --verify`` calls
:func:`verify_run` before replaying, so an edited history, a corrupted final state or an
extra file is reported up front. ``replayed_state/`` (what replay itself writes) is not part
of the record.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "history.csv").write_text("epoch,loss\\n0,1.0\\n")
>>> sorted(write_run_manifest(d)["files"])
['history.csv']
>>> verify_run(d)
>>> _ = (d / "history.csv").write_text("epoch,loss\\n0,0.1\\n")
>>> verify_run(d)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
mml.errors.ArtifactError: the run directory ... does not match its record run.json: history.csv was modified
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mml.errors import ArtifactError
from mml.io._checks import check_name, read_json

__all__ = ["RUN_MANIFEST", "REPLAYED", "write_run_manifest", "verify_run"]

RUN_MANIFEST = "run.json"
REPLAYED = "replayed_state"
_FORMAT = "mml-run"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> list[str]:
    out = []
    for rel_dir, dirs, names in os.walk(root, followlinks=False):
        rel = Path(rel_dir).relative_to(root)
        if rel.parts[:1] == (REPLAYED,):
            continue
        for n in names + [d for d in dirs if (Path(rel_dir) / d).is_symlink()]:
            name = (rel / n).as_posix()
            if name != RUN_MANIFEST:
                out.append(name)
    return sorted(out)


def write_run_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Hash every file of ``run_dir`` into ``run_dir/run.json`` (written last, atomically)."""
    root = Path(run_dir)
    names = _files(root)
    for n in names:  # verify_run refuses links: refuse them here, before a record that never verifies
        if (root / n).is_symlink() or not (root / n).is_file():
            raise ArtifactError(
                f"{root / n} is a symlink or not a regular file; a run record holds only regular files "
                "(replace the link with a copy of what it points to, or remove it)"
            )
    record = {
        "format": _FORMAT,
        "format_version": 1,
        "files": {n: _digest(root / n) for n in names},
        "sizes": {n: (root / n).stat().st_size for n in names},
    }
    tmp = root / f".{RUN_MANIFEST}.tmp"
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, root / RUN_MANIFEST)
    return record


def verify_run(run_dir: str | os.PathLike[str]) -> None:
    """An :class:`~mml.ArtifactError` unless every file of the run matches ``run.json``."""
    root = Path(run_dir)
    mpath = root / RUN_MANIFEST
    if not root.is_dir():
        raise ArtifactError(f"{root} is not a run directory (it does not exist)")
    if mpath.is_symlink() or not mpath.is_file():
        raise ArtifactError(
            f"{root} has no {RUN_MANIFEST}: it was not written by `mml run` (or by an mml older than the "
            "run record), so its files cannot be verified; run it again with `mml run`"
        )
    record = read_json(mpath)
    files = record.get("files") if isinstance(record, dict) else None
    sizes = record.get("sizes") if isinstance(record, dict) else None
    if (
        not isinstance(record, dict)
        or record.get("format") != _FORMAT
        or record.get("format_version") != 1
        or not isinstance(files, dict)
        or not isinstance(sizes, dict)
        or set(sizes) != set(files)
    ):
        raise ArtifactError(f"{mpath} is not a valid run record; the run directory is corrupted")
    for name in files:
        check_name(name)
    present = set(_files(root))
    problems = [f"{n} is missing" for n in sorted(set(files) - present)]
    problems += [f"{n} is not part of the recorded run" for n in sorted(present - set(files))]
    for n in sorted(set(files) & present):
        p = root / n
        if p.is_symlink() or not p.is_file():
            problems.append(f"{n} is not a regular file")
        elif p.stat().st_size != sizes[n] or _digest(p) != files[n]:
            problems.append(f"{n} was modified")
    if problems:
        raise ArtifactError(
            f"the run directory {root} does not match its record {RUN_MANIFEST}: " + "; ".join(problems)
        )
