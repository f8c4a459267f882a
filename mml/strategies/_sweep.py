"""Hyperparameter sweeps: a grid or a random search over dotted paths into an experiment.

``grid`` maps a path (see :mod:`mml.strategies._paths`: ``"plan.phases.fit.n_epochs"``,
``"graph.nodes.mlp.model.hidden"``) to candidate values (a list, or a :class:`Choice`)
or, for random search (``n_trials=``), to a distribution (:class:`Uniform`,
:class:`LogUniform`, :class:`IntUniform`, :class:`Choice`; a list means a Choice). Each
trial is the experiment with those values set (:func:`apply_params`), run through an
executor; :class:`SweepResult` ranks the trials by a metric.

>>> grid_trials({"a": [1, 2], "b": ["x", "y"]})
({'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 2, 'b': 'x'}, {'a': 2, 'b': 'y'})
>>> import mml
>>> from mml.strategies import LogUniform
>>> random_trials({"lr": LogUniform(1e-4, 1e-1)}, 2, key=mml.random.key(0)) == random_trials(
...     {"lr": LogUniform(1e-4, 1e-1)}, 2, key=mml.random.key(0))
True
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from mml._fields import FrozenDict
from mml.errors import ConfigError, TrainingError
from mml.random import Key, as_key, fold_in
from mml.strategies._distributions import as_distribution
from mml.strategies._executors import AbstractExecutor, resolve_executor
from mml.strategies._jobs import Job, RunOutcome, resumable, run_trust
from mml.strategies._observe import check_observers, close_all, feed, resume_policy
from mml.strategies._paths import parse_path, set_path
from mml.strategies._progress import JobProgress
from mml.strategies._vectorized import VectorizedExecutor
from mml.training import Experiment

__all__ = [
    "sweep",
    "SweepResult",
    "Trial",
    "grid_trials",
    "random_trials",
    "apply_params",
    "save_trial",
    "load_trial",
    "trial_label",
]


def _frozen(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _params(value: Any) -> FrozenDict[str, Any]:
    return FrozenDict({str(k): _frozen(v) for k, v in dict(value).items()})


def _check_grid(grid: Any) -> dict[str, Any]:
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigError(
            "a sweep grid is a non-empty mapping of path to values, e.g. {'plan.phases.fit.n_epochs': [1, 2]}"
        )
    for path in grid:
        parse_path(path)
    return dict(grid)


def grid_trials(grid: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """Every combination of the candidate values (the last path varies fastest).

    Lists and :class:`Choice` enumerate their values, :class:`IntUniform` its range;
    continuous distributions raise :class:`~mml.ConfigError` (use ``n_trials=``).
    """
    grid = _check_grid(grid)
    options = [as_distribution(p, v).grid() for p, v in grid.items()]
    return tuple(dict(zip(grid, combo)) for combo in itertools.product(*options))


def random_trials(space: Mapping[str, Any], n_trials: int, *, key: Key | int) -> tuple[dict[str, Any], ...]:
    """``n_trials`` draws from the distributions of ``space``; draw ``i`` of path ``p`` uses ``fold_in(fold_in(key, i), p)``.

    Adding a path to ``space`` does not change the values drawn for the others.
    """
    space = _check_grid(space)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"n_trials must be an int >= 1, got {n_trials!r}")
    dists = {p: as_distribution(p, v) for p, v in space.items()}
    key = as_key(key)
    out = []
    for i in range(n_trials):
        k = fold_in(key, i)
        out.append({p: d.sample(fold_in(k, p)) for p, d in dists.items()})
    return tuple(out)


def apply_params(experiment: Experiment, params: Mapping[str, Any]) -> Experiment:
    """``experiment`` with each path of ``params`` set to its value (validated again; input unchanged).

    >>> apply_params.__name__
    'apply_params'
    """
    out = experiment
    for path, value in params.items():
        out = set_path(out, path, value)
    return out


@attrs.frozen
class Trial:
    """One sweep trial: its index, the values set at each path, and the run's outcome.

    >>> from mml.training import History
    >>> t = Trial(0, {"plan.n_epochs": [2]}, RunOutcome(History.from_rows([("fit", 0, -1, 1, "loss", .5)]), "completed"))
    >>> t.params["plan.n_epochs"], t.metric("loss")
    ((2,), 0.5)
    """

    index: int
    params: Mapping[str, Any] = attrs.field(converter=_params)
    outcome: RunOutcome

    @property
    def status(self) -> str:
        """``completed``, ``stopped`` or ``failed``."""
        return self.outcome.status

    def metric(self, name: str) -> float:
        """A metric of :meth:`RunOutcome.metrics`: ``"phase/name"``, or a bare name that occurs in one phase.

        ``NaN`` when the trial did not log it.
        """
        metrics = self.outcome.metrics()
        if name in metrics:
            return metrics[name]
        matches = [k for k in metrics if k.split("/", 1)[1] == name]
        if len(matches) > 1:
            raise ConfigError(
                f"metric {name!r} is logged by several phases ({', '.join(matches)}); qualify it as 'phase/{name}'"
            )
        return metrics[matches[0]] if matches else math.nan


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _trials(value: Iterable[Trial]) -> tuple[Trial, ...]:
    return tuple(value)


def _check_mode(mode: str) -> None:
    if mode not in ("min", "max"):
        raise ConfigError(f"mode must be 'min' or 'max', got {mode!r}")


@attrs.frozen
class SweepResult:
    """The trials of a sweep, in order. Rank them with :meth:`ranked` / :meth:`best`.

    >>> SweepResult(("a",), ()).to_pandas().columns.tolist()
    ['trial', 'status', 'a']
    """

    paths: tuple[str, ...] = attrs.field(converter=_strings)
    trials: tuple[Trial, ...] = attrs.field(converter=_trials)

    def ranked(self, metric: str, mode: str = "min") -> tuple[Trial, ...]:
        """Trials that logged ``metric`` and did not fail, best first (ties keep trial order)."""
        _check_mode(mode)
        scored = [(t.metric(metric), t) for t in self.trials if t.status != "failed"]
        scored = [(v, t) for v, t in scored if not math.isnan(v)]
        sign = 1.0 if mode == "min" else -1.0
        return tuple(t for _, t in sorted(scored, key=lambda vt: (sign * vt[0], vt[1].index)))

    def best(self, metric: str, mode: str = "min") -> Trial:
        """The trial with the lowest (``mode="min"``) or highest (``"max"``) ``metric``."""
        ranked = self.ranked(metric, mode)
        if not ranked:
            logged = sorted({m for t in self.trials for m in t.outcome.metrics()})
            raise TrainingError(
                f"no successful trial logged metric {metric!r}; metrics logged: {', '.join(logged) or '(none)'}"
            )
        return ranked[0]

    @property
    def status(self) -> str:
        """The worst trial status (``failed`` > ``stopped`` > ``completed``)."""
        rank = {"completed": 0, "stopped": 1, "failed": 2}
        return max((t.status for t in self.trials), key=rank.__getitem__, default="completed")

    def _repr_html_(self) -> str:
        from mml.views import sweep_html

        return sweep_html(self)

    def raise_for_status(self) -> SweepResult:
        """Raise a :class:`~mml.TrainingError` naming the failed trials and their errors, else return ``self``.

        >>> SweepResult(("a",), ()).raise_for_status().status
        'completed'
        """
        failed = [t for t in self.trials if t.status == "failed"]
        if failed:
            raise TrainingError(
                f"{len(failed)} of {len(self.trials)} sweep trials failed: "
                + "; ".join(f"trial {t.index}: {t.outcome.error}" for t in failed)
            )
        return self

    def to_pandas(self) -> Any:
        """One row per trial: ``trial``, ``status``, one column per path, then every metric (``phase/name``)."""
        import pandas as pd

        rows = []
        for t in self.trials:
            row: dict[str, Any] = {"trial": t.index, "status": t.status}
            row.update({p: t.params.get(p) for p in self.paths})
            row.update(t.outcome.metrics())
            rows.append(row)
        return pd.DataFrame(rows, columns=None if rows else ["trial", "status", *self.paths])


def save_trial(directory: str | os.PathLike[str], trial: Trial) -> Path:
    """Save ``trial`` as ``directory/trial-<index>`` (``mml.save``)."""
    from mml.io import save

    return save(trial, Path(directory) / f"trial-{trial.index:04d}")  # type: ignore[no-any-return]


def load_trial(directory: str | os.PathLike[str], index: int, *, trusted: Any = None) -> Trial | None:
    """The trial saved by :func:`save_trial`, or ``None`` if there is none (``trusted``: as for ``mml.load``)."""
    from mml.io import load

    path = Path(directory) / f"trial-{index:04d}"
    return load(os.fspath(path), Trial, trusted=trusted) if path.exists() else None


def trial_label(index: int) -> str:
    """The name of trial ``index``'s files and observer sub-run.

    >>> trial_label(3)
    'trial-0003'
    """
    return f"trial-{index:04d}"


def resumable_trial(job: Job, directory: str | os.PathLike[str], index: int, policy: Any) -> Job:
    """``job`` checkpointing into ``directory/trial-<i>.run/checkpoints`` (its fingerprint beside them)."""
    return resumable(job, Path(directory) / f"{trial_label(index)}.run", policy, what=f"trial {index}")


def finish_trial(directory: str | os.PathLike[str] | None, trial: Trial) -> None:
    """Save a trial that did not fail (:func:`save_trial`) and drop its checkpoints; a failed one runs again next time."""
    if directory is None or trial.status == "failed":
        return
    save_trial(directory, trial)
    shutil.rmtree(Path(directory) / f"{trial_label(trial.index)}.run" / "checkpoints", ignore_errors=True)


def sweep(
    experiment: Experiment,
    grid: Mapping[str, Any],
    *,
    key: Key | int,
    executor: AbstractExecutor | None = None,
    n_trials: int | None = None,
    shared_key: bool = True,
    keep_states: bool = False,
    vectorize: bool = False,
    directory: str | os.PathLike[str] | None = None,
    progress: bool = False,
    checkpoint: Any = None,
    observers: Sequence[Any] = (),
) -> SweepResult:
    """Run ``experiment`` once per point of ``grid`` (or ``n_trials`` random draws from it).

    Without ``n_trials`` every combination of the candidates runs (:func:`grid_trials`);
    with it, ``n_trials`` points are drawn from the distributions, seeded by
    ``fold_in(key, "sample")`` (:func:`random_trials`). Every trial's experiment is built
    first, so a bad path or value fails before anything runs. With ``shared_key`` (default)
    every trial starts from ``mml.init(exp_t, key)`` — the same initialisation, so trials
    differ only by their hyperparameters; otherwise trial ``t`` uses ``fold_in(key, t)``.
    ``experiment`` is not changed; same key, same result, on every executor.
    ``vectorize=True`` trains the trials together in one stacked step when they differ only in
    shape-preserving values (learning rate, weight decay, dropout, loss weights, epochs; see
    :class:`~mml.strategies.VectorizedExecutor`), else runs them on ``executor`` with a
    :class:`~mml.strategies.NotVectorizedWarning`. With ``directory`` each finished trial is
    saved there (:func:`save_trial`) and a later call with the same arguments loads it instead
    of running it again (a trial saved with other values, or of another experiment or key,
    is a :class:`~mml.ConfigError`); a trial that was interrupted continues from its newest
    checkpoint in ``trial-<i>.run/checkpoints`` (``checkpoint``: every 100 steps by default, an
    int ``N`` for every ``N`` steps, or a :class:`~mml.callbacks.Checkpointing`), so the
    resumed sweep equals an uninterrupted one. A failed trial is not saved (it runs again);
    a vectorised run is not checkpointed (its trials are saved when it ends). ``observers``
    get every phase's events of every trial, each trial as its own sub-run ``trial-<i>``
    (:meth:`~mml.observers.AbstractObserver.subrun`, with the trial's values as params), fed
    in this process from the trial's History when it finishes (or is loaded), closed at the
    end. ``progress`` prints a line per finished trial with an ETA (:class:`JobProgress`).
    """
    if not isinstance(experiment, Experiment):
        raise ConfigError(f"sweep takes an Experiment, got {type(experiment).__name__}")
    key = as_key(key)
    grid = _check_grid(grid)
    points = (
        grid_trials(grid) if n_trials is None else random_trials(grid, n_trials, key=fold_in(key, "sample"))
    )
    jobs = [
        Job(apply_params(experiment, p), key if shared_key else fold_in(key, t), keep_state=keep_states)
        for t, p in enumerate(points)
    ]
    run_with = resolve_executor(executor)
    if vectorize:
        run_with = VectorizedExecutor(fallback=run_with)
    observers = check_observers(observers, "sweep")
    policy = resume_policy(checkpoint, directory, "sweep")
    done: dict[int, Trial] = {}
    status: str | None = None
    try:
        if directory is not None:
            for t, p in enumerate(points):
                saved = load_trial(directory, t, trusted=run_trust(jobs[t].experiment))
                if saved is not None and dict(saved.params) != dict(Trial(t, p, saved.outcome).params):
                    raise ConfigError(
                        f"sweep directory {os.fspath(directory)!r} holds a trial {t} with other values than this "
                        "sweep's; resume with the same experiment, grid and key, or use a new directory"
                    )
                jobs[t] = resumable_trial(
                    jobs[t], directory, t, policy
                )  # another experiment or key: an error
                if saved is not None and not (keep_states and saved.outcome.state is None):
                    done[t] = saved
        for t in sorted(done):
            feed(observers, trial_label(t), points[t], jobs[t].experiment, done[t].outcome.history)
        todo = [t for t in range(len(points)) if t not in done]
        report = JobProgress("sweep", "trial", len(points), already=len(done)) if progress else None

        def finished(j: int, outcome: RunOutcome) -> None:
            t = todo[j]
            done[t] = Trial(t, points[t], outcome)
            finish_trial(directory, done[t])
            feed(observers, trial_label(t), points[t], jobs[t].experiment, outcome.history)
            if report is not None:
                report(t, outcome)

        run_with.map_reporting([jobs[t] for t in todo], finished)  # each trial saved as it ends
        result = SweepResult(tuple(grid), tuple(done[t] for t in range(len(points))))
        status = result.status
        return result
    finally:
        close_all(observers, status)
