"""Model-based search: Optuna's TPE proposes the points, a median rule prunes trials by their epochs.

:func:`search` asks an Optuna study (``TPESampler`` seeded from the key) for each trial's
values, runs the trial as a plain mml job (any executor), and tells the study the result. The
pruning is a pure mml callback, :class:`MedianPruning`, that the trial's training phase carries:
its per-epoch thresholds are the medians of the monitored value over the trials finished
before (Optuna's ``MedianPruner`` rule), and it stops the phase — from the fold's own
epoch-end events — when the trial is worse. A trial is therefore replayable from its key:
``mml.run(apply_params(experiment, trial.params), mml.init(..., key))`` (a pruned trial's run
is the prefix of that run up to the epoch where it stopped).

With ``directory=`` every finished trial is saved there (``trial-0003``, ``mml.save``) and a
search started again with the same arguments loads them instead of running them — the
sampler replays their proposals, so the continued search equals an uninterrupted one.

>>> MedianPruning(thresholds=(1.0, float("nan"))).thresholds
(1.0, None)
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs
import numpy as np

from mml.callbacks import AbstractCallback, CallbackResult, Event
from mml.errors import BackendError, ConfigError
from mml.random import Key, as_key, fold_in, seed_int
from mml.strategies._distributions import Choice, IntUniform, LogUniform, Uniform, as_distribution
from mml.strategies._executors import AbstractExecutor, resolve_executor
from mml.strategies._jobs import Job, run_trust
from mml.strategies._observe import check_observers, close_all, feed, resume_policy
from mml.strategies._paths import get_path, set_path
from mml.strategies._sweep import (
    SweepResult,
    Trial,
    _check_grid,
    _check_mode,
    apply_params,
    finish_trial,
    load_trial,
    resumable_trial,
    trial_label,
)
from mml.training import Experiment

__all__ = ["search", "MedianPruning", "MedianPruningState", "trial_metric_by_epoch"]


def _thresholds(value: Any) -> tuple[float | None, ...]:
    # None (not NaN) marks an epoch without a threshold: NaN would make the value unequal to itself
    return tuple(None if v is None or math.isnan(float(v)) else float(v) for v in value)


@attrs.frozen
class MedianPruningState:
    """The epoch at which the trial was pruned (``-1``: not pruned)."""

    pruned_epoch: int = -1


@attrs.frozen
class MedianPruning(AbstractCallback):
    """Stop the phase at epoch ``e`` when ``monitor`` is worse than ``thresholds[e]`` (``None``: no threshold).

    The thresholds are data (the medians of the trials before this one, filled in by
    :func:`search`), so the callback is a value like any other: it saves, travels to Ray
    workers, and gives the same decision on every run. It logs ``pruned = 1`` when it stops.

    >>> cb = MedianPruning(thresholds=(0.5,))
    >>> ev = Event("on_epoch_end", phase="fit", epoch=0, metrics={"val_loss": 0.7})
    >>> res = cb.on_epoch_end(ev, cb.init())
    >>> res.stop, res.state.pruned_epoch, dict(res.metrics)
    (True, 0, {'pruned': 1.0})
    """

    kind: ClassVar[str] = "callback.median_pruning"

    monitor: str = "val_loss"
    mode: str = "min"
    thresholds: tuple[float | None, ...] = attrs.field(default=(), converter=_thresholds)

    def init(self) -> MedianPruningState:
        """Not pruned."""
        return MedianPruningState()

    def on_epoch_end(self, event: Event, state: MedianPruningState) -> CallbackResult | None:
        """Compare this epoch's ``monitor`` with its threshold; stop when it is worse."""
        if self.monitor not in event.metrics:
            raise ConfigError(
                f"MedianPruning monitors {self.monitor!r}, which phase {event.phase!r} does not log at epoch end; "
                f"logged: {', '.join(event.metrics) or '(none)'} (add an Evaluation callback before it)"
            )
        e = event.epoch
        limit = self.thresholds[e] if e < len(self.thresholds) else None
        value = float(event.metrics[self.monitor])
        if limit is None:
            return None
        worse = value > limit if self.mode == "min" else value < limit
        if not worse and not math.isnan(value):
            return None
        return CallbackResult(state=MedianPruningState(e), metrics={"pruned": 1.0}, stop=True)


def trial_metric_by_epoch(trial: Trial, phase: str, name: str) -> dict[int, float]:
    """The epoch-level values of ``phase/name`` in a trial's History, by epoch.

    >>> from mml.strategies import RunOutcome
    >>> from mml.training import History
    >>> t = Trial(0, {}, RunOutcome(History.from_rows([("fit", 0, -1, 3, "val_loss", 0.5)]), "completed"))
    >>> trial_metric_by_epoch(t, "fit", "val_loss")
    {0: 0.5}
    """
    h = trial.outcome.history.where(phase=phase, name=name).epochs()
    return {int(e): float(v) for e, v in zip(h.epoch, h.value)}


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise BackendError(
            "search() needs Optuna, which is not installed; install it with pip install 'mml[optuna]' "
            "(or use sweep(..., n_trials=) for random search)"
        ) from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _suggest(trial: Any, path: str, dist: Any) -> Any:
    if isinstance(dist, Uniform):
        return trial.suggest_float(path, dist.low, dist.high)
    if isinstance(dist, LogUniform):
        return trial.suggest_float(path, dist.low, dist.high, log=True)
    if isinstance(dist, IntUniform):
        return trial.suggest_int(path, dist.low, dist.high)
    if isinstance(dist, Choice):
        return dist.options[trial.suggest_categorical(path, list(range(len(dist.options))))]
    raise ConfigError(f"search: no Optuna suggestion for {type(dist).__name__} at {path!r}")


def _medians(done: list[dict[int, float]], n_startup: int, n_warmup: int) -> tuple[float | None, ...]:
    if len(done) < n_startup or not done:
        return ()
    epochs = max((max(d) for d in done if d), default=-1) + 1
    out: list[float | None] = []
    for e in range(epochs):
        vals = [d[e] for d in done if e in d and not math.isnan(d[e])]
        out.append(float(np.median(vals)) if vals and e >= n_warmup else None)
    return tuple(out)


def _score(trial: Trial, metric: str) -> float:
    return trial.metric(metric) if trial.status != "failed" else math.nan


def search(
    experiment: Experiment,
    space: Mapping[str, Any],
    *,
    n_trials: int,
    key: Key | int,
    metric: str,
    mode: str = "min",
    prune_phase: str | None = None,
    monitor: str = "val_loss",
    n_startup_trials: int = 3,
    n_warmup_epochs: int = 0,
    shared_key: bool = True,
    executor: AbstractExecutor | None = None,
    directory: str | os.PathLike[str] | None = None,
    progress: bool = False,
    keep_states: bool = False,
    checkpoint: Any = None,
    observers: Sequence[Any] = (),
) -> SweepResult:
    """``n_trials`` trials proposed by Optuna's TPE sampler (seeded from ``key``), best by ``metric``.

    ``space`` maps paths to distributions as for random search (:class:`Uniform`,
    :class:`LogUniform`, :class:`IntUniform`, :class:`Choice`; a list is a Choice). With
    ``prune_phase`` (a path to a :class:`~mml.training.TrainPhase`, e.g.
    ``"plan.phases.fit"``, whose epochs log ``monitor``) each trial after the first
    ``n_startup_trials`` carries a :class:`MedianPruning` callback: it stops at an epoch
    (from ``n_warmup_epochs`` on) where the trial is worse than the median of the finished
    trials; such a trial is told to Optuna as pruned, its status is ``stopped`` and its
    History logs ``pruned``. Trial ``t`` trains from ``key`` (``shared_key``) or
    ``fold_in(key, t)``. With ``directory`` finished trials are saved and not rerun on the
    next call, and an interrupted trial continues from its newest checkpoint
    (``checkpoint=``, as for :func:`sweep`). ``observers`` get each trial as a sub-run
    ``trial-<i>`` (as for :func:`sweep`). ``progress`` prints one line per trial with the best value so far and an ETA.
    Same key, same result. See ``docs/strategies.md`` for a full example.

    >>> search("not an experiment", {"a": [1]}, n_trials=1, key=0, metric="val/loss")
    Traceback (most recent call last):
    ...
    mml.errors.ConfigError: search takes an Experiment, got str
    """
    if not isinstance(experiment, Experiment):
        raise ConfigError(f"search takes an Experiment, got {type(experiment).__name__}")
    optuna = _import_optuna()
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"n_trials must be an int >= 1, got {n_trials!r}")
    _check_mode(mode)
    space = _check_grid(space)
    dists = {p: as_distribution(p, v) for p, v in space.items()}
    key = as_key(key)
    run_with = resolve_executor(executor)
    phase_label = None
    if prune_phase is not None:
        phase_label = get_path(experiment, prune_phase).label
    sampler = optuna.samplers.TPESampler(seed=seed_int(fold_in(key, "optuna")) % 2**32)
    study = optuna.create_study(direction="minimize" if mode == "min" else "maximize", sampler=sampler)
    observers = check_observers(observers, "search")
    policy = resume_policy(checkpoint, directory, "search")
    status: str | None = None
    try:
        trials: list[Trial] = []
        curves: list[dict[int, float]] = []
        t0 = time.perf_counter()
        ran = 0
        for t in range(n_trials):
            ot = study.ask()
            params = {p: _suggest(ot, p, d) for p, d in dists.items()}
            exp_t = apply_params(experiment, params)
            thresholds = _medians(curves, n_startup_trials, n_warmup_epochs)
            if prune_phase is not None and thresholds:
                cbs = get_path(exp_t, prune_phase).callbacks
                pruner = MedianPruning(monitor, mode, thresholds)
                exp_t = set_path(exp_t, f"{prune_phase}.callbacks", (*cbs, pruner))
            job = Job(exp_t, key if shared_key else fold_in(key, t), keep_state=keep_states)
            trial = None
            if directory is not None:
                trial = load_trial(directory, t, trusted=run_trust(exp_t))
                if trial is not None and keep_states and trial.outcome.state is None:
                    trial = None
            if trial is not None and dict(trial.params) != dict(Trial(t, params, trial.outcome).params):
                raise ConfigError(
                    f"search directory {os.fspath(directory)!r} holds a trial {t} with other values than this "  # type: ignore[arg-type]
                    "search proposes; resume with the same experiment, space and key, or use a new directory"
                )
            if directory is not None:
                job = resumable_trial(job, directory, t, policy)  # after the values check: its message first
            if trial is None:
                trial = Trial(t, params, run_with.map([job])[0])
                ran += 1
                finish_trial(directory, trial)
            feed(observers, trial_label(t), params, exp_t, trial.outcome.history)
            curve = trial_metric_by_epoch(trial, phase_label, monitor) if phase_label is not None else {}
            for e, v in curve.items():
                ot.report(v, e)
            pruned = phase_label is not None and bool(trial_metric_by_epoch(trial, phase_label, "pruned"))
            value = _score(trial, metric)
            if pruned:
                study.tell(ot, state=optuna.trial.TrialState.PRUNED)
            elif math.isnan(value):
                study.tell(ot, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(ot, value)
                curves.append(curve)
            trials.append(trial)
            if progress:
                _report(trials, metric, mode, n_trials, ran, time.perf_counter() - t0, pruned)
        result = SweepResult(tuple(space), tuple(trials))
        status = result.status
        return result
    finally:
        close_all(observers, status)


def _report(
    trials: list[Trial], metric: str, mode: str, n: int, ran: int, elapsed: float, pruned: bool
) -> None:
    last = trials[-1]
    scores = [(_score(t, metric), t.index) for t in trials]
    scores = [(v, i) for v, i in scores if not math.isnan(v)]
    best = (min if mode == "min" else max)(scores) if scores else None
    per = elapsed / ran if ran else 0.0
    eta = per * (n - len(trials))
    state = "pruned" if pruned else last.status
    best_text = f"best {best[0]:.6g} (trial {best[1]})" if best else "no best yet"
    print(
        f"[search] trial {last.index + 1}/{n} {state}: {metric}={_score(last, metric):.6g}, {best_text}; "
        f"ETA {eta:.1f} s",
        file=sys.stderr,
    )
