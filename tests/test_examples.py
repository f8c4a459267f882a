"""Every ``examples/*.py`` runs as a script (in a fresh interpreter, from a temporary directory).

The examples read ``MML_EXAMPLE_FAST=1`` to shrink their data and epochs. Each must exit
with status 0 and print its key line; examples that use TensorFlow/Keras are skipped when
it is not installed, the others when torch is not (and those printing pandas tables without pandas).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

_NUMBER = r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?"
# example stem -> a line its output must contain (regex, searched line by line)
KEY_LINES: dict[str, str] = {
    "quickstart": rf"^status: (completed|stopped); test MSE {_NUMBER} vs predicting the mean {_NUMBER}",
    "encoder_head": rf"^encoder_head: test RMSE {_NUMBER} SOH",
    "two_branches_concat": rf"^two_branches_concat: test RMSE {_NUMBER} SOH",
    "sklearn_to_torch": rf"^sklearn_to_torch: test RMSE {_NUMBER} SOH",
    "keras_head": rf"^keras_head: test RMSE {_NUMBER} SOH",
    "triplet_embedding": rf"^triplet_embedding: 5-NN test MAE {_NUMBER} SOH",
    "cross_validation": r"^pooled out-of-fold predictions: \d+ samples",
}
_TF = re.compile(r"\b(import|from) (tensorflow|keras)\b|KerasModel|backend=\"tensorflow\"")


def test_examples_are_found() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"quickstart", "encoder_head", "two_branches_concat", "sklearn_to_torch"} <= names


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["MML_EXAMPLE_FAST"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


# Known breakage in mml.training (since 50bdb17): heads bound to the same (FeatureSet, split,
# sampler) share one batch prepared from the *first* head's column selection, so a second head
# that reads other columns gets the wrong features. Strict: remove this entry once it is fixed.
KNOWN_FAILURES: dict[str, str] = {}


def _param(path: pathlib.Path) -> object:
    reason = KNOWN_FAILURES.get(path.stem)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, marks=marks, id=path.stem)


@pytest.mark.slow
@pytest.mark.parametrize("path", [_param(p) for p in EXAMPLES])
def test_example_runs(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    source = path.read_text()
    if _TF.search(source):
        pytest.importorskip("tensorflow")
        pytest.importorskip("keras")
    else:
        pytest.importorskip("torch")
    if "pandas" in source:  # .to_pandas() tables
        pytest.importorskip("pandas")
    proc = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"{path.name} exited with {proc.returncode}\n{report}"
    assert "Traceback" not in proc.stderr, report
    pattern = KEY_LINES.get(path.stem)
    if pattern is None:
        assert proc.stdout.strip(), f"{path.name} printed nothing\n{report}"
    else:
        assert re.search(pattern, proc.stdout, re.M), f"{path.name}: no line matching {pattern!r}\n{report}"
