"""The ``mml`` command line: run, inspect, demo-data, errors."""

import json
import pathlib
import subprocess
import sys

import pytest

import mml
from mml.cli import main

pytest.importorskip("torch")
ROOT = pathlib.Path(__file__).resolve().parents[1]
FAST = ["featuresets.battery.n_samples=200", "plan.phases.0.n_epochs=2"]


def _run(tmp_path, *extra):
    return main(
        ["run", str(ROOT / "examples" / "battery.yaml"), "--quiet", "--out", str(tmp_path / "run")]
        + [a for o in [*FAST, *extra] for a in ("--set", o)]
    )


def test_run_saves_a_complete_run(tmp_path, capsys):
    assert _run(tmp_path) == 0
    out = capsys.readouterr().out
    assert "final metrics" in out and "mlp r2" in out and "status:" in out
    run = tmp_path / "run"
    for name in ("experiment", "initial_state", "final_state"):
        assert (run / name / "manifest.json").is_file()
    exp = mml.load(run / "experiment")
    assert exp.label == "battery-soh" and len(exp.featuresets["battery"]) == 200
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert lines and "value" in json.loads(lines[0])
    assert (run / "history.csv").read_text().startswith("phase,")


def test_run_is_deterministic(tmp_path):
    assert _run(tmp_path / "a") == 0
    assert _run(tmp_path / "b") == 0
    a = mml.load(tmp_path / "a" / "run" / "final_state")
    b = mml.load(tmp_path / "b" / "run" / "final_state")
    assert a == b


def test_inspect_and_demo_data(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / "demo"), "--n-samples", "50"]) == 0
    assert main(["inspect", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "FeatureSet('battery', 50 samples)" in out and "manifest" not in out and "config.json" in out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("graph.nodes.0.model.kind=model.mpl", "did you mean model.mlp"),
        ("featuresets.battery.dataset=iris", "unknown dataset"),
        ("plan.phases.0.losses.0.node=nope", "nope"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, capsys, override, message):
    assert _run(tmp_path, override) == 2
    assert message in capsys.readouterr().err


def test_missing_file_and_bad_override(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert _run(tmp_path, "noequals") == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_console_script_version():
    out = subprocess.run(
        [sys.executable, "-m", "mml.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"mml {mml.__version__}"


def test_replay_verifies_bit_for_bit(tmp_path, capsys):
    assert _run(tmp_path) == 0
    assert main(["replay", str(tmp_path / "run"), "--verify"]) == 0
    assert "bit-identical" in capsys.readouterr().out
    # tamper with the recorded result: the run's record catches it before replaying
    final = mml.load(tmp_path / "run" / "initial_state")
    mml.save(final, tmp_path / "run" / "final_state")
    assert main(["replay", str(tmp_path / "run"), "--verify"]) == 2
    assert "final_state/" in capsys.readouterr().err
    # ... and with the record rewritten too, the replay itself differs and says where
    mml.io.write_run_manifest(tmp_path / "run")
    assert main(["replay", str(tmp_path / "run"), "--verify"]) == 1
    assert "differs" in capsys.readouterr().out


def test_json_and_toml_configs_load_the_same(tmp_path):
    import yaml

    from mml.config import load_config

    cfg = yaml.safe_load((ROOT / "examples" / "battery.yaml").read_text())
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    assert load_config(tmp_path / "c.json") == cfg
    (tmp_path / "c.toml").write_text('label = "x"\nseed = 3\n[featuresets.battery]\ndataset = "battery"\n')
    assert load_config(tmp_path / "c.toml") == {
        "label": "x",
        "seed": 3,
        "featuresets": {"battery": {"dataset": "battery"}},
    }
    (tmp_path / "c.txt").write_text("label: x")
    with pytest.raises(mml.ConfigError, match="must end in"):
        load_config(tmp_path / "c.txt")
    (tmp_path / "bad.yaml").write_text("a: [1, 2")
    with pytest.raises(mml.ConfigError, match="cannot be parsed"):
        load_config(tmp_path / "bad.yaml")


def test_run_writes_a_predictor_and_predict_writes_parquet_and_csv(tmp_path, capsys):
    import numpy as np
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    assert _run(tmp_path) == 0
    run = tmp_path / "run"
    predictor = mml.load(run / "predictor")
    exp = mml.load(run / "experiment")
    history_test = mml.load(run / "final_state")  # the run's final state: predictions come from it
    fs = exp.featuresets["battery"]
    rows = fs.split_indices["test"]
    new = mml.scalers.undo_all_transforms(fs)
    sub = mml.FeatureSet(label="battery", table=new.table.take(rows))
    sub.to_parquet(tmp_path / "new.parquet")
    expected = mml.export(exp, history_test).predict(sub)
    assert (
        main(
            [
                "predict",
                str(run / "predictor"),
                str(tmp_path / "new.parquet"),
                "-o",
                str(tmp_path / "p.parquet"),
            ]
        )
        == 0
    )
    assert f"wrote {len(rows)} predictions" in capsys.readouterr().out
    out = pq.read_table(tmp_path / "p.parquet")
    assert out.column_names[-1] == "mlp" and "sample_uuids" in out.column_names
    assert np.array_equal(out.column("mlp").to_numpy(), expected.ravel())
    assert out.column("sample_uuids").to_pylist() == sub.uuid_strings()
    assert predictor.outputs[0].inverse  # raw SOH units
    # CSV out, with only the id columns asked for
    assert (
        main(
            [
                "predict",
                str(run / "predictor"),
                str(tmp_path / "new.parquet"),
                "-o",
                str(tmp_path / "p.csv"),
                "--keep",
                "tags.cell_id.raw",
            ]
        )
        == 0
    )
    csv = pcsv.read_csv(tmp_path / "p.csv")
    assert csv.column_names == ["tags.cell_id.raw", "sample_uuids", "mlp"]
    assert np.allclose(csv.column("mlp").to_numpy(), expected.ravel(), rtol=1e-6)


def test_predict_errors_name_the_problem(tmp_path, capsys):
    assert _run(tmp_path) == 0
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"other": [1.0]}), tmp_path / "bad.parquet")
    code = main(
        [
            "predict",
            str(tmp_path / "run" / "predictor"),
            str(tmp_path / "bad.parquet"),
            "-o",
            str(tmp_path / "o.parquet"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "'voltage'" in err and "other" in err
    assert not (tmp_path / "o.parquet").exists()
    assert (
        main(
            [
                "predict",
                str(tmp_path / "run" / "experiment"),
                str(tmp_path / "bad.parquet"),
                "-o",
                "x.parquet",
            ]
        )
        == 2
    )
    assert "not a Predictor" in capsys.readouterr().err
