"""The layer rule of docs/conventions.md holds: import-linter's contracts in pyproject.toml are kept."""

import pathlib
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FRAMEWORKS = {"torch", "tensorflow", "keras", "sklearn"}
ORCHESTRATION = {"mml.training", "mml.callbacks", "mml.observers", "mml.views"}


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["name"]: c for c in config["contracts"]}


def test_layers_point_only_downward():
    pytest.importorskip("importlinter")
    code = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout
    for name in _contracts():
        assert f"{name} KEPT" in " ".join(proc.stdout.split()), name


def test_the_contracts_say_what_docs_conventions_says():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert config["include_external_packages"] is True  # frameworks are nodes of the graph
    by_type: dict[str, list[dict]] = {}
    for c in config["contracts"]:
        by_type.setdefault(c["type"], []).append(c)
    assert len(by_type["layers"]) == 1
    forbidden = {frozenset(c["forbidden_modules"]): c for c in by_type["forbidden"]}
    no_framework = forbidden[frozenset(FRAMEWORKS)]
    public_only = forbidden[frozenset({"mml.backends.*"})]
    for c in (no_framework, public_only):
        assert set(c["source_modules"]) == ORCHESTRATION
        assert not c.get("ignore_imports")  # no exceptions: a new one is a design change
    # every submodule of mml.backends is private, so `mml.backends.*` forbids exactly those
    subs = [p for p in (ROOT / "mml" / "backends").iterdir() if p.name != "__init__.py" and p.suffix == ".py"]
    assert subs and all(p.name.startswith("_") for p in subs)
