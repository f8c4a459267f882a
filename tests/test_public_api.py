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
        "import time, sys; t = time.perf_counter(); import mml, mml.data, mml.scalers, mml.splitters, "
        "mml.samplers, mml.graph, mml.models, mml.backends, mml.optim; dt = time.perf_counter() - t; "
        "print(dt, 'torch' in sys.modules, 'tensorflow' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    seconds, torch_loaded, tf_loaded, sklearn_loaded = float(out[0]), out[1], out[2], out[3]
    assert torch_loaded == "False" and tf_loaded == "False" and sklearn_loaded == "False"
    assert seconds < 2.0  # well under 1 s on an idle machine; generous for a loaded CI box


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
