"""The curated public API: every advertised name resolves; importing mml stays light."""

import subprocess
import sys

import mml


def test_every_public_name_resolves():
    for name in mml.__all__:
        assert getattr(mml, name) is not None, name
    assert set(mml._LAZY) <= set(dir(mml))


def test_import_is_fast_and_lazy():
    code = (
        # CPU time of the process, not wall time: a loaded box (CI, other jobs) stretches the wall
        # clock of an import by 10x while the work it does stays the same.
        "import time, sys; t = time.process_time(); import mml, mml.data, mml.scalers, mml.splitters, "
        "mml.samplers, mml.graph, mml.models, mml.backends, mml.optim; dt = time.process_time() - t; "
        "print(dt, 'torch' in sys.modules, 'tensorflow' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    seconds, torch_loaded, tf_loaded, sklearn_loaded = float(out[0]), out[1], out[2], out[3]
    assert torch_loaded == "False" and tf_loaded == "False" and sklearn_loaded == "False"
    assert seconds < 2.0  # ~0.1 s of CPU on an idle machine (benchmarks/RESULTS.md); generous


def test_errors_form_one_hierarchy():
    errors = [getattr(mml, n) for n in mml.__all__ if n.endswith("Error")]
    assert errors and all(issubclass(e, mml.MMLError) for e in errors)


def test_declared_python_is_the_tested_python():
    # regression: pyproject declared >=3.10 while only 3.11 was ever tested (tox, CI)
    import configparser
    import pathlib
    import re
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    minimum = re.fullmatch(r">=3\.(\d+)", project["project"]["requires-python"])
    assert minimum, project["project"]["requires-python"]
    tox = configparser.ConfigParser()
    tox.read(root / "tox.ini")
    tested = sorted(int(m) for m in re.findall(r"py3(\d+)", tox["tox"]["envlist"]))
    assert tested and int(minimum.group(1)) == tested[0]  # the lowest declared version is tested
    assert project["tool"]["ruff"]["target-version"] == f"py3{tested[0]}"
    assert sys.version_info >= (3, tested[0])


def _type_checking_exports() -> dict[str, str]:
    """Name -> module of every re-export in mml/__init__.py's ``if TYPE_CHECKING:`` block."""
    import ast
    import pathlib

    tree = ast.parse(pathlib.Path(mml.__file__).read_text())
    blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    ]
    assert len(blocks) == 1, "mml/__init__.py should have exactly one `if TYPE_CHECKING:` block"
    exports: dict[str, str] = {}
    for stmt in blocks[0].body:
        assert isinstance(stmt, ast.ImportFrom) and stmt.module, ast.unparse(stmt)
        for alias in stmt.names:
            # `from m import X as X` is an explicit re-export; a bare `X` or `as Y` is not one
            assert alias.asname == alias.name, f"write `{alias.name} as {alias.name}` in {stmt.module}"
            assert alias.name not in exports, f"{alias.name} re-exported twice"
            exports[alias.name] = f"mml.{alias.name}" if stmt.module == "mml" else stmt.module
    return exports


def test_type_checking_block_matches_lazy_names():
    # regression: mypy typed mml.FeatureSet, mml.run, ... as Any (names only resolved by
    # __getattr__); the TYPE_CHECKING re-exports must name exactly _LAZY's names and modules
    exports = _type_checking_exports()
    missing = sorted(set(mml._LAZY) - set(exports))
    extra = sorted(set(exports) - set(mml._LAZY))
    assert not missing, f"add to the TYPE_CHECKING block of mml/__init__.py: {missing}"
    assert not extra, f"add to mml._LAZY (or drop from the TYPE_CHECKING block): {extra}"
    moved = {n: (exports[n], m) for n, m in mml._LAZY.items() if exports[n] != m}
    assert not moved, f"TYPE_CHECKING block and _LAZY disagree on the module (block, _LAZY): {moved}"


def test_user_script_type_checks(monkeypatch):
    # mypy sees real types through `import mml` (tests/typing/user_script.py asserts them)
    import pathlib

    import pytest

    api = pytest.importorskip("mypy.api")
    root = pathlib.Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # mypy finds this checkout's mml (and pyproject's config) from here
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(root / "pyproject.toml"),
            "--follow-imports=silent",  # errors in mml itself are `tox -e type`'s (mypy mml)
            "--no-error-summary",
            "--cache-dir",
            str(root / ".mypy_cache"),
            str(root / "tests" / "typing" / "user_script.py"),
        ]
    )
    assert status == 0, stdout + stderr
