"""A run directory's record (run.json): every file hashed, checked before replaying."""

import json
import sys

import pytest

import mml
from mml.cli import main
from tests.io.helpers import edit_config
from tests.io.test_strict_config import CONFIG

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cfg = root / "c.json"
    cfg.write_text(json.dumps(CONFIG))
    assert main(["run", str(cfg), "--quiet", "--out", str(root / "run")]) == 0
    return root / "run"


def _copy(run_dir, tmp_path):
    import shutil

    return shutil.copytree(run_dir, tmp_path / "run")


def test_every_file_is_recorded(run_dir):
    record = json.loads((run_dir / "run.json").read_text())
    names = set(record["files"])
    assert {"history.csv", "metrics.jsonl", "config.json", "final_state/manifest.json"} <= names
    assert any(n.startswith("experiment/") for n in names) and any(
        n.startswith("initial_state/") for n in names
    )
    mml.io.verify_run(run_dir)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("history.csv", "history.csv was modified"),
        ("metrics.jsonl", "metrics.jsonl was modified"),
        ("config.json", "config.json was modified"),
        ("delete_final", "final_state/config.json is missing"),
        ("extra", "notes.txt is not part of the recorded run"),
        ("no_record", "has no run.json"),
    ],
)
def test_verify_checks_the_record_before_replaying(run_dir, tmp_path, capsys, monkeypatch, damage, message):
    run = _copy(run_dir, tmp_path)
    if damage == "delete_final":
        (run / "final_state" / "config.json").unlink()
    elif damage == "extra":
        (run / "notes.txt").write_text("hi")
    elif damage == "no_record":
        (run / "run.json").unlink()
    else:
        with open(run / damage, "a") as f:
            f.write("\n")

    def no_replay(*a, **k):
        raise AssertionError("replayed before verifying")

    monkeypatch.setattr(mml, "run", no_replay)
    assert main(["replay", str(run), "--verify"]) == 2
    assert message in capsys.readouterr().err


def test_a_corrupt_final_state_is_reported_up_front(run_dir, tmp_path, capsys, monkeypatch):
    """Even with the run record rewritten to match, the final state is checked before replaying."""
    run = _copy(run_dir, tmp_path)
    edit_config(run / "final_state", lambda cfg: cfg["value"].update(step="many"))
    mml.io.write_run_manifest(run)
    monkeypatch.setattr(mml, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("replayed")))
    assert main(["replay", str(run), "--verify"]) == 2
    assert "final_state" in capsys.readouterr().err


def test_replay_refuses_untrusted_callables(run_dir, tmp_path, capsys):
    run = _copy(run_dir, tmp_path)
    marker = tmp_path / "marker"

    def edit(cfg):
        loss = cfg["value"]["plan"]["phases"][0]["losses"][0]["loss"]
        loss["fn"] = "subprocess:Popen"
        loss["kwargs"] = {"args": ["touch", str(marker)]}

    edit_config(run / "experiment", edit)
    mml.io.write_run_manifest(run)
    for args in (["--verify"], []):
        assert main(["replay", str(run), *args]) == 2
        err = capsys.readouterr().err
        assert "untrusted" in err and "subprocess:Popen" in err and "--trust subprocess:Popen" in err
    assert not marker.exists()


def test_inspect_lists_names_without_importing(run_dir, tmp_path, capsys, monkeypatch):
    run = _copy(run_dir, tmp_path)
    pkg = tmp_path / "site"
    pkg.mkdir()
    marker = tmp_path / "marker"
    (pkg / "inspect_evil.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n")
    monkeypatch.syspath_prepend(str(pkg))
    edit_config(
        run / "experiment",
        lambda cfg: cfg["value"]["graph"]["nodes"][0]["model"].update(type="inspect_evil:Net"),
    )
    assert main(["inspect", str(run / "experiment")]) == 0
    out = capsys.readouterr().out
    assert "inspect_evil:Net" in out and "UNTRUSTED" in out and "--trust inspect_evil:Net" in out
    assert not marker.exists() and "inspect_evil" not in sys.modules
    # a clean artifact shows its value
    assert main(["inspect", str(run_dir / "final_state")]) == 0
    assert "TrainState(" in capsys.readouterr().out


def test_run_reads_artifact_sources_through_the_allow_list(tmp_path, capsys):
    fs = mml.datasets.load_battery(40, seed=0)
    p = mml.save(fs, tmp_path / "data")
    cfg = json.loads(json.dumps(CONFIG))
    cfg["featuresets"]["battery"] = {"artifact": str(p), "split": CONFIG["featuresets"]["battery"]["split"]}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    args = ["run", str(tmp_path / "c.json"), "--quiet", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    capsys.readouterr()
    edit_config(p, lambda c: c.update(type="os:system", kind=None))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "untrusted" in err and "os:system" in err
