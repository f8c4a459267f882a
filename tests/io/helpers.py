"""Tampering helpers: edit an artifact the way an attacker would, hashes and sizes recomputed."""

import json
from pathlib import Path

from mml.io._store import digest_bytes


def rehash(root):
    """Recompute every hash and size of the manifest from the files as they are now."""
    root = Path(root)
    m = json.loads((root / "manifest.json").read_text())
    names = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"
    )
    m["files"] = {n: digest_bytes((root / n).read_bytes(), m.get("hash", "sha256")) for n in names}
    m["sizes"] = {n: (root / n).stat().st_size for n in names}
    (root / "manifest.json").write_text(json.dumps(m))
    return m


def edit_config(root, edit):
    """Apply ``edit(config_dict)`` (returning the new dict or None) to config.json, then rehash."""
    root = Path(root)
    cfg = json.loads((root / "config.json").read_text())
    new = edit(cfg)
    cfg = cfg if new is None else new
    (root / "config.json").write_text(json.dumps(cfg))
    m = json.loads((root / "manifest.json").read_text())
    if isinstance(cfg, dict) and "type" in cfg:
        m["type"] = cfg["type"]
        m["kind"] = cfg.get("kind")
        (root / "manifest.json").write_text(json.dumps(m))
    return rehash(root)
