"""The shell's effects (progress display, metrics log) never change the numbers."""

import json

import pytest

import mml

from .conftest import simple_experiment

pytest.importorskip("torch")


def test_progress_and_log_are_effects_only(toy, tmp_path, capsys):
    exp = simple_experiment(toy, n_epochs=2)
    quiet_state, quiet = mml.run(exp, mml.init(exp, 0), progress=False)
    loud_state, loud = mml.run(exp, mml.init(exp, 0), progress=True, log=str(tmp_path / "m.jsonl"))
    assert loud_state == quiet_state and loud == quiet
    out = capsys.readouterr().out
    assert "ep 2/2" in out and "completed" in out
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert {"phase", "epoch", "name", "value"} <= set(rows[0]) and any(r["name"] == "loss" for r in rows)


def test_csv_log(toy, tmp_path):
    exp = simple_experiment(toy, n_epochs=1)
    mml.run(exp, mml.init(exp, 0), progress=False, log=str(tmp_path / "m.csv"))
    header = (tmp_path / "m.csv").read_text().splitlines()[0]
    assert header == "phase,event,epoch,batch,step,name,value"


def test_no_progress_in_ci(monkeypatch):
    from mml.training._shell import should_show_progress

    monkeypatch.setenv("CI", "true")
    assert should_show_progress() is False
