"""k-fold cross-validation of an experiment: :func:`cross_validate` and its :class:`CVResult`.

For each fold the FeatureSet gets the fold's rows as its ``train_split`` / ``val_split``,
its recorded scalers are re-fitted on the fold's training rows only (no statistics leak
from the validation fold), and the experiment runs from ``mml.init(exp_i, fold_in(key, i))``.
The eval phases on ``val_split`` are pooled into one out-of-fold prediction per sample.

>>> import mml, numpy as np
>>> fs = mml.scalers.fit_transform(mml.FeatureSet.from_dict({"x": np.arange(8.0), "y": np.arange(8.0)}, features="x", targets="y",
...                               label="toy"), "minmax", fit_on=None)
>>> train, val = np.arange(0, 6), np.arange(6, 8)
>>> f0 = fold_featureset(fs, train, val, key=mml.random.key(0))
>>> sorted(f0.split_indices), float(f0.column_array("features", "x")[train].max())
(['train', 'val'], 1.0)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mml._fields import FrozenDict, arrays_equal, frozen_dict, readonly_array
from mml.data import FeatureSet
from mml.errors import ConfigError, SplitError, TrainingError
from mml.random import Key, as_key, fold_in
from mml.scalers import ScalerRecord, fit_transform, undo_all_transforms
from mml.splitters import KFoldSplitter
from mml.strategies._executors import AbstractExecutor, resolve_executor
from mml.strategies._jobs import Job, RunOutcome, prediction_metrics, resumable, run_trust
from mml.strategies._observe import check_observers, close_all, feed, resume_policy
from mml.strategies._predictions import Predictions, uuid_bytes
from mml.strategies._progress import JobProgress
from mml.strategies._vectorized import VectorizedExecutor
from mml.training import EvalPhase, Experiment, History, TrainState

__all__ = [
    "cross_validate",
    "CVResult",
    "FoldResult",
    "fold_featureset",
    "pool_predictions",
    "save_fold",
    "load_fold",
]


def fold_featureset(
    fs: FeatureSet,
    train: Any,
    val: Any,
    *,
    train_split: str = "train",
    val_split: str = "val",
    refit_scalers: bool = True,
    key: Key | int,
) -> FeatureSet:
    """``fs`` with splits ``train_split`` = ``train`` and ``val_split`` = ``val`` (absolute row indices).

    With ``refit_scalers`` every recorded scaler is undone and re-fitted, in order, with the
    same spec, domain and keys but ``fit_on=train_split`` — so the params depend on the
    fold's training rows only. Other splits are kept; ``fs`` is unchanged. ``key`` seeds
    stochastic (scikit-learn) scalers.
    """
    if train_split == val_split:
        raise SplitError(f"train_split and val_split must differ, both are {train_split!r}")
    key = as_key(key)
    records = [r for r in fs.records if isinstance(r, ScalerRecord)]
    base = undo_all_transforms(fs) if refit_scalers and records else fs
    drop = [s for s in (train_split, val_split) if s in base.split_indices]
    if drop:
        base = base.without_splits(*drop)
    # the folds are drawn from the rows of `on`; the splits kept beside them (a `test` that
    # the same rows also cover, say) are the caller's choice, not an accidental overlap
    out = base.with_split(train_split, np.asarray(train, np.int64), overlap="allow").with_split(
        val_split, np.asarray(val, np.int64), overlap="allow"
    )
    if refit_scalers:
        for j, rec in enumerate(records):
            out = fit_transform(
                out, rec.scaler, domain=rec.domain, keys=rec.keys, fit_on=train_split, key=fold_in(key, j)
            )
    return out


def _n_rows(rows: np.ndarray) -> str:
    return f"<{len(rows)} rows>"


def _folds(value: Iterable[FoldResult]) -> tuple[FoldResult, ...]:
    return tuple(value)


@attrs.frozen
class FoldResult:
    """One fold: its index, training and validation rows (absolute) and the run's outcome.

    >>> import numpy as np
    >>> f = FoldResult(0, np.arange(3), np.arange(3, 4), RunOutcome(History(), "completed"))
    >>> f.status, len(f.val_rows)
    ('completed', 1)
    """

    fold: int
    train_rows: np.ndarray = attrs.field(
        converter=readonly_array, eq=attrs.cmp_using(eq=arrays_equal), hash=False, repr=_n_rows
    )
    val_rows: np.ndarray = attrs.field(
        converter=readonly_array, eq=attrs.cmp_using(eq=arrays_equal), hash=False, repr=_n_rows
    )
    outcome: RunOutcome

    @property
    def history(self) -> History:
        """The fold's metrics (see :class:`~mml.strategies.RunOutcome`)."""
        return self.outcome.history

    @property
    def state(self) -> TrainState | None:
        """The final state (``None`` unless ``keep_states=True``)."""
        return self.outcome.state

    @property
    def status(self) -> str:
        """``completed``, ``stopped`` or ``failed``."""
        return self.outcome.status

    @property
    def predictions(self) -> Mapping[str, Predictions]:
        """Eval phase label → this fold's :class:`Predictions`."""
        return self.outcome.predictions

    def metrics(self) -> dict[str, float]:
        """History metrics (``phase/name``) plus ``phase/node/mse|mae|r2`` of every eval phase's predictions."""
        return self.outcome.metrics()


@attrs.frozen
class CVResult:
    """Per-fold results of :func:`cross_validate` and the pooled out-of-fold predictions.

    ``pooled[phase]`` holds, for each eval phase on the validation split, every folded
    sample exactly once (in row order of the folded rows) with the fold that predicted it.
    ``to_pandas()`` is the tidy table ``(fold, metric, value)``; ``summary()`` its mean and
    standard deviation per metric, with the pooled value beside prediction metrics.

    >>> r = CVResult("toy", "train", "val", ())
    >>> r.n_folds, r.status
    (0, 'completed')
    """

    featureset: str
    train_split: str
    val_split: str
    folds: tuple[FoldResult, ...] = attrs.field(converter=_folds)
    pooled: Mapping[str, Predictions] = attrs.field(factory=FrozenDict, converter=frozen_dict)

    @property
    def n_folds(self) -> int:
        """The number of folds."""
        return len(self.folds)

    @property
    def histories(self) -> tuple[History, ...]:
        """Each fold's History."""
        return tuple(f.history for f in self.folds)

    @property
    def states(self) -> tuple[TrainState | None, ...]:
        """Each fold's final state (``None`` entries unless ``keep_states=True``)."""
        return tuple(f.state for f in self.folds)

    @property
    def status(self) -> str:
        """The worst fold status (``failed`` > ``stopped`` > ``completed``)."""
        rank = {"completed": 0, "stopped": 1, "failed": 2}
        return max((f.status for f in self.folds), key=rank.__getitem__, default="completed")

    def _repr_html_(self) -> str:
        from mml.views import cv_html

        return cv_html(self)

    def raise_for_status(self) -> CVResult:
        """Raise a :class:`~mml.TrainingError` naming the failed folds, else return ``self``."""
        failed = [f for f in self.folds if f.status == "failed"]
        if failed:
            raise TrainingError(
                "cross-validation folds failed: "
                + "; ".join(f"fold {f.fold}: {f.outcome.error}" for f in failed)
            )
        return self

    def to_pandas(self) -> Any:
        """Tidy per-fold metrics: columns ``fold``, ``metric``, ``value``."""
        import pandas as pd

        rows = [(f.fold, m, v) for f in self.folds for m, v in f.metrics().items()]
        return pd.DataFrame(rows, columns=["fold", "metric", "value"])

    def pooled_metrics(self) -> dict[str, float]:
        """``phase/node/mse|mae|r2`` on the pooled out-of-fold predictions."""
        out: dict[str, float] = {}
        for label, preds in self.pooled.items():
            out.update(prediction_metrics(label, preds))
        return out

    def summary(self) -> Any:
        """Per metric: ``mean`` and ``std`` (ddof=1) over folds, ``n`` folds, and ``pooled`` (NaN where none)."""
        df = self.to_pandas()
        stats = df.groupby("metric", sort=False)["value"].agg(["mean", "std", "count"])
        stats = stats.rename(columns={"count": "n"})
        pooled = self.pooled_metrics()
        stats["pooled"] = [pooled.get(m, float("nan")) for m in stats.index]
        return stats


def pool_predictions(
    label: str, per_fold: Sequence[Predictions], uuids: np.ndarray, *, folds: Sequence[int] | None = None
) -> Predictions:
    """Stack per-fold predictions into one row per sample of ``uuids`` (``S16``), in that order.

    Every UUID must be predicted by exactly one fold; anything else raises
    :class:`~mml.TrainingError` naming the phase.
    """
    uuids = np.asarray(uuids)
    keys = uuid_bytes(uuids).view("S16").reshape(-1)  # 16 bytes each: sorting and matching are exact
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    n = len(keys)
    folds = list(range(len(per_fold))) if folds is None else list(folds)
    fold_of = np.full(n, -1, np.int64)
    nodes = set.intersection(*(set(p.nodes) for p in per_fold)) if per_fold else set()
    slots: list[np.ndarray] = []
    for fi, preds in zip(folds, per_fold):
        got = uuid_bytes(preds.sample_uuids).view("S16").reshape(-1)
        at = np.minimum(np.searchsorted(ordered, got), max(n - 1, 0))
        if n == 0 or not np.array_equal(ordered[at], got):
            if len(got):
                raise TrainingError(
                    f"eval phase {label!r} of fold {fi} predicted a sample outside the folded rows; pooled "
                    "predictions need an EvalPhase on the validation split (see pooled_eval=)"
                )
        p = order[at] if len(got) else np.zeros(0, np.int64)
        if (fold_of[p] >= 0).any() or len(np.unique(p)) != len(p):
            raise TrainingError(f"eval phase {label!r} predicted a sample in more than one fold")
        fold_of[p] = fi
        slots.append(p)
    if (fold_of < 0).any():
        raise TrainingError(
            f"pooled predictions of eval phase {label!r} miss {int((fold_of < 0).sum())} of {n} samples; the "
            "phase must evaluate the whole validation split of every fold"
        )
    return _placed(label, per_fold, nodes, slots, n, uuids, fold_of)


def _pooled_phases(exp: Experiment, featureset: str, val_split: str, pooled_eval: Any) -> tuple[str, ...]:
    evals = {p.label: p for p in exp.phases if isinstance(p, EvalPhase)}
    if pooled_eval is None:
        return tuple(
            label
            for label, p in evals.items()
            if any(b.featureset == featureset and b.split == val_split for b in p.inputs.values())
        )
    labels = (pooled_eval,) if isinstance(pooled_eval, str) else tuple(pooled_eval)
    for label in labels:
        if label not in evals:
            raise ConfigError(
                f"pooled_eval={label!r} is not an EvalPhase of experiment {exp.label!r}; eval phases: "
                f"{', '.join(evals) or '(none)'}"
            )
    return labels


def cross_validate(
    experiment: Experiment,
    *,
    featureset: str,
    splitter: KFoldSplitter,
    on: str | None = None,
    train_split: str = "train",
    val_split: str = "val",
    refit_scalers: bool = True,
    key: Key | int,
    executor: AbstractExecutor | None = None,
    keep_states: bool = False,
    pooled_eval: str | Sequence[str] | None = None,
    vectorize: bool = False,
    progress: bool = False,
    directory: str | os.PathLike[str] | None = None,
    checkpoint: Any = None,
    observers: Sequence[Any] = (),
) -> CVResult:
    """Run ``experiment`` once per fold of ``splitter`` over FeatureSet ``featureset``.

    * The folds cover the rows of split ``on`` (all rows if ``None``) and are drawn from the
      splitter's own seed (``group_by``/``stratify_by`` apply). For fold ``i`` the
      FeatureSet's ``train_split``/``val_split`` become the fold's rows; other splits (say
      an untouched ``test``) are kept. The experiment's plan binds these split names as usual.
    * ``refit_scalers=True`` re-fits every recorded scaler on the fold's training rows
      (:func:`fold_featureset`), so no statistics of the validation fold leak.
    * Fold ``i`` runs from ``mml.init(exp_i, fold_in(key, i))`` through ``executor``
      (default :class:`LocalExecutor`). Same key, same result, on every executor.
    * ``vectorize=True`` trains the folds together, K models in one stacked step
      (:class:`~mml.strategies.VectorizedExecutor`, falling back to ``executor`` with a
      :class:`~mml.strategies.NotVectorizedWarning` where the experiment cannot be stacked);
      the results equal the sequential ones to float tolerance.
    * The EvalPhases on ``val_split`` (or the ``pooled_eval`` labels) are pooled into
      :attr:`CVResult.pooled`. Use ``EvalPhase(..., inverse_transform=True)`` to pool in raw
      units when targets are scaled (each fold's scaler differs).

    * With ``directory`` the CV resumes: each finished fold is saved as ``fold-<i>/result``
      (:func:`save_fold`, atomic) and a later call with the same experiment, splitter and key
      loads it instead of running it again; a fold that was interrupted continues from its
      newest checkpoint in ``fold-<i>/checkpoints`` (``checkpoint``: every 100 steps by default,
      an int ``N`` for every ``N`` steps, or a :class:`~mml.callbacks.Checkpointing`). The
      resumed result equals an uninterrupted one. A directory written by another CV (other
      experiment, data, splitter or key) is a :class:`~mml.ConfigError`; a failed fold is
      not saved (it runs again). With ``vectorize=True`` the stacked run is not
      checkpointed: finished folds are saved, a killed stacked run starts again.
    * ``observers`` (:mod:`mml.observers`) get every phase's events of every fold, each fold
      as its own sub-run ``fold-<i>`` (:meth:`~mml.observers.AbstractObserver.subrun`: a
      TensorBoard run directory, a nested MLflow run, a sibling log file), fed in this
      process from the fold's History when it finishes (or is loaded); they are closed at
      the end.

    ``progress`` prints a line per finished fold with an ETA. ``experiment`` is not changed.
    See ``docs/strategies.md`` for a full example.
    """
    if not isinstance(experiment, Experiment):
        raise ConfigError(f"cross_validate takes an Experiment, got {type(experiment).__name__}")
    if featureset not in experiment.featuresets:
        raise ConfigError(
            f"cross_validate: experiment {experiment.label!r} has no FeatureSet {featureset!r}; FeatureSets: "
            f"{', '.join(experiment.featuresets)}"
        )
    if not isinstance(splitter, KFoldSplitter):
        raise ConfigError(f"cross_validate takes splitter=KFoldSplitter(...), got {splitter!r}")
    if train_split == val_split:
        raise SplitError(f"train_split and val_split must differ, both are {train_split!r}")
    key = as_key(key)
    run_with = resolve_executor(executor)
    if vectorize:
        run_with = VectorizedExecutor(fallback=run_with)
    fs = experiment.featuresets[featureset]
    view = fs.view() if on is None else fs[on]
    pooled_labels = _pooled_phases(experiment, featureset, val_split, pooled_eval)
    pairs = splitter.folds(view)
    jobs = []
    for i, (train, val) in enumerate(pairs):
        fs_i = fold_featureset(
            fs,
            train,
            val,
            train_split=train_split,
            val_split=val_split,
            refit_scalers=refit_scalers,
            key=fold_in(fold_in(key, "scalers"), i),
        )
        exp_i = attrs.evolve(experiment, featuresets={**experiment.featuresets, featureset: fs_i})
        jobs.append(Job(exp_i, fold_in(key, i), keep_state=keep_states))
    folds = _run_folds(
        jobs,
        pairs,
        run_with,
        directory,
        resume_policy(checkpoint, directory, "cross_validate"),
        check_observers(observers, "cross_validate"),
        progress=progress,
        keep_states=keep_states,
    )
    pooled = {}
    indices = np.asarray(view.indices)
    folded_uuids = fs.sample_uuids[indices]
    where = np.full(len(fs), -1, np.int64)
    where[indices] = np.arange(len(indices))
    positions = [where[np.asarray(val, np.int64)] for _, val in pairs]
    for label in pooled_labels:
        if all(label in f.predictions for f in folds):
            per_fold = [f.predictions[label] for f in folds]
            pooled[label] = _pool_at(label, per_fold, folded_uuids, positions) or pool_predictions(
                label, per_fold, folded_uuids
            )
    return CVResult(featureset, train_split, val_split, folds, pooled)


def _pool_at(
    label: str, per_fold: Sequence[Predictions], uuids: np.ndarray, positions: Sequence[np.ndarray]
) -> Predictions | None:
    """:func:`pool_predictions` where fold ``i`` predicted exactly ``uuids[positions[i]]`` (its validation
    rows, in order) and the folds cover every row once: the same result without sorting the UUIDs.
    ``None`` when that is not so (``pool_predictions`` then matches the UUIDs, or says what is wrong)."""
    n = len(uuids)
    keys = uuid_bytes(np.asarray(uuids)).view("S16").reshape(-1)
    if len(per_fold) != len(positions) or any((p < 0).any() for p in positions):
        return None
    fold_of = np.full(n, -1, np.int64)
    for fi, (preds, p) in enumerate(zip(per_fold, positions)):
        if (fold_of[p] >= 0).any() or not np.array_equal(preds.uuids, keys[p]):
            return None
        fold_of[p] = fi
    # equal UUIDs would match the first of them: leave those to pool_predictions
    if (fold_of < 0).any():
        return None
    first = np.sort(keys.view(np.uint64)[::2])  # UUIDs whose first 8 bytes differ are all different
    if (first[1:] == first[:-1]).any():
        return None
    nodes = set.intersection(*(set(pr.nodes) for pr in per_fold)) if per_fold else set()
    return _placed(label, per_fold, nodes, positions, n, uuids, fold_of)


def _placed(
    label: str, per_fold: Sequence[Any], nodes: Any, rows: Sequence[Any], n: int, uuids: Any, fold_of: Any
) -> Predictions:
    """The folds' outputs and targets of ``nodes`` placed at their ``rows`` of ``n`` pooled samples."""
    outputs: dict[str, np.ndarray] = {}
    targets: dict[str, np.ndarray] = {}
    for node in sorted(nodes):
        for src, dst in (("outputs", outputs), ("targets", targets)):
            parts = [np.asarray(getattr(pr, src)[node]) for pr in per_fold]
            arr = np.empty((n, *parts[0].shape[1:]), dtype=np.result_type(*parts))
            for p, part in zip(rows, parts):
                arr[p] = part
            dst[node] = arr
    return Predictions(label, outputs, targets, uuids, fold=fold_of)


def save_fold(directory: str | os.PathLike[str], fold: FoldResult) -> Path:
    """Save ``fold`` as ``directory/fold-<i>/result`` (``mml.save``: atomic)."""
    from mml.io import save

    return save(fold, Path(directory) / f"fold-{fold.fold}" / "result")  # type: ignore[no-any-return]


def load_fold(directory: str | os.PathLike[str], index: int, *, trusted: Any = None) -> FoldResult | None:
    """The fold saved by :func:`save_fold`, or ``None`` if there is none (``trusted``: as for ``mml.load``)."""
    from mml.io import load

    path = Path(directory) / f"fold-{index}" / "result"
    return load(os.fspath(path), FoldResult, trusted=trusted) if path.exists() else None  # type: ignore[no-any-return]


def _run_folds(
    jobs: list[Job],
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    run_with: AbstractExecutor,
    directory: str | os.PathLike[str] | None,
    policy: Any,
    observers: tuple[Any, ...],
    *,
    progress: bool,
    keep_states: bool,
) -> tuple[FoldResult, ...]:
    """Run the folds not saved in ``directory`` (resuming interrupted ones), save and observe each as it ends."""
    done: dict[int, FoldResult] = {}
    status: str | None = None
    try:
        if directory is not None:
            for i, job in enumerate(jobs):
                jobs[i] = resumable(job, Path(directory) / f"fold-{i}", policy, what=f"fold {i}")
                saved = load_fold(directory, i, trusted=run_trust(job.experiment))
                if saved is None or (keep_states and saved.state is None):
                    continue
                train, val = pairs[i]
                if not (arrays_equal(saved.train_rows, train) and arrays_equal(saved.val_rows, val)):
                    raise ConfigError(
                        f"cross_validate directory {os.fspath(directory)!r} holds a fold {i} with other rows "
                        "than this splitter's; resume with the same experiment, splitter and key, or use a new directory"
                    )
                done[i] = saved
        for i in sorted(done):
            feed(observers, f"fold-{i}", {"fold": i}, jobs[i].experiment, done[i].history)
        todo = [i for i in range(len(jobs)) if i not in done]
        report = JobProgress("cv", "fold", len(jobs), already=len(done)) if progress else None

        def finished(j: int, outcome: RunOutcome) -> None:
            i = todo[j]
            fold = FoldResult(i, pairs[i][0], pairs[i][1], outcome)
            if directory is not None and outcome.ok:
                save_fold(directory, fold)
                shutil.rmtree(Path(directory) / f"fold-{i}" / "checkpoints", ignore_errors=True)
            done[i] = fold
            feed(observers, f"fold-{i}", {"fold": i}, jobs[i].experiment, outcome.history)
            if report is not None:
                report(i, outcome)

        run_with.map_reporting([jobs[i] for i in todo], finished)
        folds = tuple(done[i] for i in range(len(jobs)))
        rank = {"completed": 0, "stopped": 1, "failed": 2}
        status = max((f.status for f in folds), key=rank.__getitem__, default="completed")
        return folds
    finally:
        close_all(observers, status)
