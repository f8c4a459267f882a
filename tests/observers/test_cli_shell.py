"""`mml run` prints reprs literally and a table with units; `mml plot` and `mml compare` work on run dirs."""

import json
import pathlib

import pytest

from mml.cli import main

pytest.importorskip("torch")
ROOT = pathlib.Path(__file__).resolve().parents[2]
FAST = ["featuresets.battery.n_samples=200", "plan.phases.0.n_epochs=3"]


def _run(out, *extra, quiet=True):
    args = [
        "run",
        str(ROOT / "examples" / "battery.yaml"),
        *(["--quiet"] if quiet else []),
        "--out",
        str(out),
    ]
    return main(args + [a for o in [*FAST, *extra] for a in ("--set", o)])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    assert _run(base / "a") == 0
    assert _run(base / "b", "graph.nodes.0.optimizer.lr=0.01") == 0
    return base / "a", base / "b"


def test_run_output_is_literal_and_has_units(tmp_path, capsys):
    assert _run(tmp_path / "r", quiet=False) == 0  # pytest's stdout is no terminal: no live line
    out = capsys.readouterr().out
    # square brackets in reprs are text, not rich markup
    assert "[battery] -> mlp" in out and "[raw+transformed]" in out and "SequentialMLP[torch]" in out
    assert "units" in out and "scaled" in out and "raw" in out and "loss (total)" in out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert ["test", "mlp r2", ""] == summary[[r[1] for r in summary].index("mlp r2")][:3]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["label"] == "battery-soh"


def test_plot_and_compare(two_runs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    a, b = two_runs
    assert main(["plot", str(a), "-o", str(tmp_path / "c.png"), "--eval", "test"]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "c-test.png").is_file()
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--plot", str(tmp_path / "cmp.png")]) == 0
    out = capsys.readouterr().out
    assert "graph.nodes[0].optimizer.lr" in out and "0.003" in out and "0.01" in out
    assert "wall time" in out and (tmp_path / "cmp.png").is_file()
    assert "mlp rmse [raw]" in out  # units shown literally


def test_compare_refuses_a_non_run_directory(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "not an mml run directory" in capsys.readouterr().err
