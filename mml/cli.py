"""The ``mml`` command line.

``mml run CONFIG``      train and evaluate an experiment described by a YAML/TOML/JSON file
``mml replay RUN_DIR``  run a saved run again from its initial state (``--verify``: check the run's
                        record first, then bit-identical?)
``mml inspect PATH``    summarise any saved artifact (never imports or executes code from it)
``mml predict ARTIFACT INPUT -o OUTPUT``  predictions of a saved Predictor for a Parquet/CSV file
``mml demo-data OUT``   write the bundled battery demo FeatureSet as an artifact
``mml --version``

A config file is the user's own code; artifacts (``artifact:`` sources, run directories) are
untrusted input: the classes and functions they name must be mml's, scikit-learn's or
trusted with ``--trust PATTERN`` (``pkg.mod:Name`` or ``pkg.mod:*``; see docs/security.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def inspect_artifact(path: str | Path, trusted: list[str] | None = None) -> str:
    """A human-readable summary of an artifact: manifest, files, the import paths it names and,
    when all of those are trusted, the value's repr. Nothing untrusted is ever imported."""
    import mml
    from mml.io import as_trust, is_trusted, named_paths

    root = Path(path)
    manifest, config = mml.io.read_document(root)
    trust = as_trust(trusted)
    lines = [
        f"artifact: {root}",
        f"type:     {manifest.get('type')}" + (f" (kind {manifest['kind']})" if manifest.get("kind") else ""),
        f"format:   {manifest['format']} v{manifest['format_version']}, written by mml {manifest.get('mml_version')}",
        "files:",
    ]
    for name in manifest["files"]:
        p = root / name
        size = _human(p.stat().st_size) if p.is_file() else "MISSING"
        lines.append(f"  {name:<28} {size}")
    names = [("$", config["type"]), *named_paths(config["value"], "$.value")]
    untrusted = sorted({p for _, p in names if not is_trusted(p, trust)})
    lines.append("names (import paths in the document; none imported to list them):")
    for where, name in names:
        lines.append(f"  {name:<40} {'UNTRUSTED' if name in untrusted else 'trusted':<9} at {where}")
    lines.append("")
    if untrusted:
        flags = " ".join(f"--trust {u}" for u in untrusted)
        lines.append(f"value not loaded: {len(untrusted)} untrusted name(s); if you trust them, add {flags}")
    else:
        lines.append(repr(mml.load(root, trusted=trust)))
    return "\n".join(lines)


def _cmd_inspect(args: argparse.Namespace) -> int:
    print(inspect_artifact(args.path, args.trust))
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    import mml
    from mml.datasets import load_battery

    fs = load_battery(n_samples=args.n_samples, seed=args.seed)
    out = mml.save(fs, args.out)
    print(f"wrote {out} ({len(fs)} samples)")
    return 0


def _metrics_table(history: Any, experiment: Any = None) -> Any:
    """The final metrics as a rich table: one row per metric, with its phase and units."""
    from rich.table import Table
    from rich.text import Text

    from mml.views import summary_rows

    table = Table(title="final metrics (of the returned model)", title_justify="left")
    for col in ("phase", "metric", "units", "value"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for phase, name, units, value in summary_rows(history, experiment):
        table.add_row(Text(phase), Text(name), Text(units), f"{value:.6g}")  # text, not markup
    return table


#: ``mml run`` checkpoints every this many training steps unless ``--checkpoint-every`` says otherwise
CHECKPOINT_STEPS = 100


def run_config_file(
    config: str,
    *,
    out: str | None,
    quiet: bool,
    overrides: list[str],
    checkpoint_every: int = CHECKPOINT_STEPS,
    trusted: list[str] | None = None,
) -> int:
    """``mml run``: build the experiment a config file describes, run it, report and save.

    The config is the user's own code; ``trusted`` is what the artifacts it reads may name.
    """
    import json
    import time

    from rich.console import Console

    import mml
    from mml.config import apply_overrides, experiment_from_config, load_config

    console = Console()
    path = Path(config)
    cfg = apply_overrides(load_config(path), overrides)
    t0 = time.perf_counter()
    experiment, seed = experiment_from_config(cfg, base=path.parent, trusted=trusted)
    state = mml.init(experiment, seed)
    if not quiet:
        for fs in experiment.featuresets.values():
            console.print(repr(fs), highlight=False, markup=False)  # reprs are text, not markup
        console.print(repr(experiment.graph), highlight=False, markup=False)
    out_dir = Path(out) if out else Path("runs") / experiment.label
    out_dir.mkdir(parents=True, exist_ok=True)
    # what `mml run --resume` needs, before the first step
    mml.save(experiment, out_dir / "experiment")
    mml.save(state, out_dir / "initial_state")
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2, default=str) + "\n", encoding="utf-8")
    return _execute(out_dir, experiment, state, cfg, quiet=quiet, every=checkpoint_every, t0=t0)


def resume_run(
    run_dir: str, *, quiet: bool, checkpoint_every: int = CHECKPOINT_STEPS, trusted: list[str] | None = None
) -> int:
    """``mml run --resume RUN_DIR``: continue a killed run from its newest checkpoint.

    The run's artifacts are loaded under the trust rules: ``trusted`` names what they may name
    beyond mml's own components (the ``--trust`` patterns the run was started with).
    """
    import json
    import time

    from rich.console import Console

    import mml
    from mml.training import latest_checkpoint

    console = Console()
    root = Path(run_dir)
    t0 = time.perf_counter()
    if (root / "final_state").exists():
        console.print(f"{root} finished already (final_state/ is there); nothing to resume", highlight=False)
        return 0
    experiment = mml.load(root / "experiment", trusted=trusted)
    cfg = json.loads((root / "config.json").read_text(encoding="utf-8"))
    ckpt = latest_checkpoint(root / "checkpoints")
    if ckpt is None:
        state = mml.load(root / "initial_state", trusted=trusted)
        console.print(f"{root}: no checkpoint yet, starting from the initial state", highlight=False)
    else:
        state = mml.load(ckpt, trusted=trusted)
        p = state.position
        where = f"phase {p.phase!r} ({p.stage}), epoch {p.epoch}, batch {p.batch}" if p is not None else "?"
        console.print(f"resuming {root} from {ckpt.name}: {where}, step {state.step}", highlight=False)
    return _execute(root, experiment, state, cfg, quiet=quiet, every=checkpoint_every, t0=t0)


def _execute(
    out_dir: Path, experiment: Any, state: Any, cfg: Any, *, quiet: bool, every: int, t0: float
) -> int:
    """Run (checkpointing into ``out_dir/checkpoints``), then save the final state, History and summary."""
    import time

    from rich.console import Console

    import mml
    from mml.callbacks import Checkpointing
    from mml.io import write_run_manifest

    console = Console()
    policy = None
    if every > 0:
        ckpt_dir = out_dir / "checkpoints"
        policy = Checkpointing(every_steps=every, keep=2, mode="disk", directory=str(ckpt_dir))
        console.print(
            f"checkpointing every {every} steps and at each phase end into {ckpt_dir} "
            f"(continue a killed run with: mml run --resume {out_dir})",
            highlight=False,
        )
    final, history = mml.run(
        experiment,
        state,
        progress=None if not quiet else False,
        log=str(out_dir / "metrics.jsonl"),
        checkpoint=policy,
    )
    elapsed = time.perf_counter() - t0
    console.print(_metrics_table(history, experiment))
    try:
        mml.save(mml.export(experiment, final), out_dir / "predictor")
    except mml.MMLError as exc:  # a run whose graph cannot predict (e.g. no head reads features)
        console.print(f"no predictor saved: {exc}", highlight=False)
    history.to_pandas().to_csv(out_dir / "history.csv", index=False)
    _write_summary(out_dir, cfg, history, experiment)
    mml.save(final, out_dir / "final_state")  # last but the manifest: its presence says the run finished
    write_run_manifest(out_dir)
    status = "completed (stopped early by a callback)" if history.status == "stopped" else history.status
    console.print(f"status: {status} in {elapsed:.1f} s; run saved to {out_dir}", highlight=False)
    if history.status == "failed":
        console.print("error:", str(history.error), style="red", markup=False, highlight=False)
        return 1
    return 0


def _write_summary(out_dir: Path, cfg: Any, history: Any, experiment: Any) -> None:
    """Beside the states: the History artifact, the resolved config and the final metrics (for `mml compare`)."""
    import json

    import mml
    from mml.views import summary_rows

    mml.save(history, out_dir / "history")
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2, default=str) + "\n", encoding="utf-8")
    rows = [list(r) for r in summary_rows(history, experiment)]
    (out_dir / "summary.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def _cmd_plot(args: argparse.Namespace) -> int:
    import mml
    from mml.errors import ArtifactError
    from mml.views import plot_eval, plot_history

    run = Path(args.run_dir)
    if not (run / "history").exists():
        raise ArtifactError(f"{run}: no 'history' artifact; is this an `mml run --out` directory?")
    history = mml.load(run / "history")
    plot_history(history, args.out)
    print(f"wrote {args.out}")
    if args.eval:
        plot_eval(
            history.eval_result(args.eval),
            args.eval_out or f"{Path(args.out).with_suffix('')}-{args.eval}.png",
        )
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from mml.views import compare_runs, plot_runs

    comparison, histories = compare_runs(args.run_dirs)
    rows = comparison.rows()
    table = Table(title="runs compared", title_justify="left")
    for i, col in enumerate(rows[0]):
        table.add_column(col, justify="right" if i >= 2 else "left")
    for r in rows[1:]:
        table.add_row(*(Text(c) for c in r))  # cells are text: "[scaled]" is not markup
    Console().print(table)
    if args.plot:
        plot_runs(histories, args.plot, metric=args.metric)
        print(f"wrote {args.plot}")
    return 0


def _differences(a: Any, b: Any) -> list[str]:
    """Where two TrainStates differ: node/tensor names, step, epoch."""
    out = []
    for field in ("step", "epoch"):
        if getattr(a, field, None) != getattr(b, field, None):
            out.append(f"{field}: {getattr(a, field, None)} != {getattr(b, field, None)}")
    pa, pb = a.graph.params, b.graph.params
    for label in sorted(set(pa) | set(pb)):
        if pa.get(label) != pb.get(label):
            out.append(f"node {label!r}: params differ")
    if not out and a != b:
        out.append("optimizer or callback state differs")
    return out


def replay_run(run_dir: str, *, verify: bool, trusted: list[str] | None = None) -> int:
    """``mml replay``: run a saved experiment again from its saved initial state.

    With ``verify`` the run's record (``run.json``: every file hashed) and the recorded final
    state are checked *before* replaying. ``trusted``: what the run's artifacts may name.
    """
    from rich.console import Console

    import mml
    from mml.io import REPLAYED, verify_run

    console = Console()
    root = Path(run_dir)
    recorded = None
    if verify:
        verify_run(root)
        recorded = mml.load(root / "final_state", trusted=trusted)
    experiment = mml.load(root / "experiment", trusted=trusted)
    initial = mml.load(root / "initial_state", trusted=trusted)
    final, history = mml.run(experiment, initial, progress=False)
    mml.save(final, root / REPLAYED)
    console.print(_metrics_table(history, experiment))
    if not verify:
        console.print(f"replayed; state saved to {root / 'replayed_state'}", highlight=False)
        return 0
    diffs = _differences(final, recorded)
    if diffs:
        console.print("[red]replay differs from the recorded final state:[/red]")
        for d in diffs:
            console.print(f"  {d}", highlight=False)
        return 1
    console.print("replay verified: final state is bit-identical to the recorded one", highlight=False)
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    return replay_run(args.run_dir, verify=args.verify, trusted=args.trust)


def _cmd_predict(args: argparse.Namespace) -> int:
    import mml
    from mml.inference import Predictor, predict_file

    predictor = mml.load(args.artifact, Predictor, trusted=args.trust)
    rows = predict_file(
        predictor,
        args.input,
        args.output,
        batch_size=args.batch_size,
        group_by=args.group_by,
        sort_by=args.sort_by,
        keep=args.keep,
        proba=args.proba,
    )
    print(f"wrote {rows} predictions to {args.output}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        if args.config is not None or args.set:
            raise SystemExit(
                "mml run --resume RUN_DIR takes no CONFIG or --set: the run directory holds them"
            )
        return resume_run(
            args.resume, quiet=args.quiet, checkpoint_every=args.checkpoint_every, trusted=args.trust
        )
    if args.config is None:
        raise SystemExit("mml run needs a CONFIG file (or --resume RUN_DIR)")
    return run_config_file(
        args.config,
        out=args.out,
        quiet=args.quiet,
        overrides=args.set or [],
        checkpoint_every=args.checkpoint_every,
        trusted=args.trust,
    )


_TRUST_HELP = (
    "trust an import path an artifact names: 'pkg.mod:Name' or 'pkg.mod:*' (repeatable; "
    "mml's, scikit-learn's and torch/Keras layers need no trust)"
)


def _parser() -> argparse.ArgumentParser:
    from mml import __version__

    p = argparse.ArgumentParser(
        prog="mml", description="mml: machine-learning pipelines from immutable parts"
    )
    p.add_argument("--version", action="version", version=f"mml {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and evaluate the experiment described by a config file")
    r.add_argument(
        "config",
        nargs="?",
        default=None,
        help="YAML, TOML or JSON experiment config (see examples/battery.yaml)",
    )
    r.add_argument(
        "--resume", default=None, metavar="RUN_DIR", help="continue a killed run from its newest checkpoint"
    )
    r.add_argument(
        "--checkpoint-every",
        type=int,
        default=CHECKPOINT_STEPS,
        metavar="N",
        help=f"checkpoint every N steps into RUN_DIR/checkpoints (default {CHECKPOINT_STEPS}; 0: never)",
    )
    r.add_argument("--out", default=None, help="directory for the run (state, history, metrics)")
    r.add_argument("--quiet", action="store_true", help="no progress display")
    r.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value (dotted key; phase/node labels)",
    )
    r.add_argument(
        "--trust", action="append", metavar="PATTERN", help=_TRUST_HELP + " (for artifact: sources)"
    )
    r.set_defaults(func=_cmd_run)
    rp = sub.add_parser("replay", help="run a saved run again from its initial state (mml run --out DIR)")
    rp.add_argument("run_dir")
    rp.add_argument(
        "--verify", action="store_true", help="check the run's record first, then fail unless bit-identical"
    )
    rp.add_argument("--trust", action="append", metavar="PATTERN", help=_TRUST_HELP)
    rp.set_defaults(func=_cmd_replay)
    i = sub.add_parser("inspect", help="summarise a saved artifact")
    i.add_argument("path")
    i.add_argument("--trust", action="append", metavar="PATTERN", help=_TRUST_HELP + " (to show the value)")
    i.set_defaults(func=_cmd_inspect)
    pl = sub.add_parser("plot", help="draw a run's learning curves (and an eval phase's predictions) as PNG")
    pl.add_argument("run_dir")
    pl.add_argument("-o", "--out", default="curves.png", help="PNG file for the learning curves")
    pl.add_argument("--eval", default=None, metavar="PHASE", help="also plot this eval phase's predictions")
    pl.add_argument("--eval-out", default=None, help="PNG file for the eval plot")
    pl.set_defaults(func=_cmd_plot)
    c = sub.add_parser("compare", help="one table of several runs: config differences, final metrics, time")
    c.add_argument("run_dirs", nargs="+")
    c.add_argument("--plot", default=None, metavar="PNG", help="also draw one curve per run")
    c.add_argument("--metric", default="val_loss", help="the epoch-level metric --plot draws")
    c.set_defaults(func=_cmd_compare)
    pr = sub.add_parser("predict", help="predict with a saved Predictor (mml run writes RUN_DIR/predictor)")
    pr.add_argument("artifact", help="a Predictor artifact (mml.save(mml.export(...)) or RUN_DIR/predictor)")
    pr.add_argument("input", help="a Parquet or CSV file of new raw data, columns named by key")
    pr.add_argument("-o", "--output", required=True, help="where to write the predictions (.parquet or .csv)")
    pr.add_argument("--batch-size", type=int, default=None, help="rows per batch (bounds memory)")
    pr.add_argument(
        "--group-by", default=None, help="long form: rows sharing this column's value form a sample"
    )
    pr.add_argument("--sort-by", default=None, help="long form: order of the rows within a sample")
    pr.add_argument("--keep", action="append", default=None, metavar="COLUMN", help="id column to copy over")
    pr.add_argument("--proba", action="store_true", help="class probabilities of classification heads")
    pr.add_argument("--trust", action="append", metavar="PATTERN", help=_TRUST_HELP)
    pr.set_defaults(func=_cmd_predict)
    d = sub.add_parser("demo-data", help="write the bundled battery demo FeatureSet as an artifact")
    d.add_argument("out")
    d.add_argument("--n-samples", type=int, default=1000)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_demo_data)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mml`` console script."""
    from mml.errors import MMLError, UntrustedTypeError

    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MMLError as exc:
        hint = ""
        if isinstance(exc, UntrustedTypeError):
            hint = " (on the command line: " + " ".join(f"--trust {u}" for u in exc.untrusted) + ")"
        print(f"mml: error: {exc}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
