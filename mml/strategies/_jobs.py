"""One unit of work for an executor: a :class:`Job` (experiment + key) and its :class:`RunOutcome`.

:func:`run_job` is the in-process job function: ``mml.init`` from the key, then ``mml.run``.
Executors that cross a process or machine boundary never pickle user objects: they send the
job as an mml **artifact** packed into bytes (:func:`pack_value` — ``mml.save`` to a
temporary directory, zipped), and the worker (:func:`run_job_bytes`) loads it with
``mml.load`` (hash-checked, no code executed), runs it, and answers the same way. User
classes in the experiment must therefore be importable under the same module path in the
worker.

>>> import mml
>>> payload = pack_value(mml.random.key(4))
>>> unpack_value(payload, mml.random.Key) == mml.random.key(4)
True
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

from mml._fields import FrozenDict, frozen_dict
from mml.errors import ArtifactError, MMLError, TrainingError
from mml.random import Key, as_key
from mml.strategies._predictions import Predictions
from mml.training import EvalPhase, Experiment, History, TrainState

__all__ = [
    "Job",
    "RunOutcome",
    "JobReply",
    "run_job",
    "run_job_bytes",
    "pack_value",
    "unpack_value",
    "outcome_from_reply",
    "history_metrics",
    "prediction_metrics",
]


def _key(value: Any) -> Key:
    return as_key(value)


@attrs.frozen
class Job:
    """Run ``experiment`` from ``mml.init(experiment, key)``; keep the final state if ``keep_state``.

    >>> import mml
    >>> Job.__name__, attrs.fields(Job).keep_state.default
    ('Job', False)
    """

    experiment: Experiment
    key: Key = attrs.field(converter=_key)
    keep_state: bool = False


def history_metrics(history: History) -> dict[str, float]:
    """The last epoch-level value of every ``(phase, name)`` of a History, as ``"phase/name"``.

    >>> h = History.from_rows([("fit", 0, -1, 1, "loss", 2.0), ("fit", 1, -1, 2, "loss", 1.0),
    ...                        ("fit", 1, 0, 2, "loss", 9.0)])
    >>> history_metrics(h)
    {'fit/loss': 1.0}
    """
    out: dict[str, float] = {}
    for phase, _, _, _, name, value in history.epochs().rows():
        out[f"{phase}/{name}"] = value
    return out


def prediction_metrics(label: str, preds: Predictions) -> dict[str, float]:
    """``"phase/node/mse"``, ``.../mae``, ``.../r2`` for every node of an eval phase's predictions.

    >>> import numpy as np
    >>> p = Predictions("val", {"m": np.ones((2, 1))}, {"m": np.ones((2, 1))}, np.zeros((2, 16), np.uint8))
    >>> prediction_metrics("val", p)
    {'val/m/mse': 0.0, 'val/m/mae': 0.0, 'val/m/r2': 1.0}
    """
    out = {}
    for node in preds.nodes:
        for m, v in preds.metrics(node).items():
            out[f"{label}/{node}/{m}"] = v
    return out


@attrs.frozen
class RunOutcome:
    """What a job gives back: metrics, status, predictions of every eval phase, and optionally the state.

    ``history`` is the run's :class:`~mml.training.History` without its in-memory phase
    results (exceptions and raw eval results do not serialize); the eval phases' stacked
    outputs are in ``predictions`` (phase label → :class:`Predictions`) and a failure's
    message is in ``error``.

    >>> RunOutcome(History(), "completed").ok
    True
    """

    history: History = attrs.field(repr=lambda h: f"<History: {len(h)} rows>")
    status: str
    error: str | None = None
    predictions: Mapping[str, Predictions] = attrs.field(
        factory=FrozenDict, converter=frozen_dict, repr=lambda p: f"<phases {', '.join(p) or '(none)'}>"
    )
    state: TrainState | None = attrs.field(
        default=None, repr=lambda s: "None" if s is None else f"<TrainState step={s.step}>"
    )

    @property
    def ok(self) -> bool:
        """Whether the run did not fail."""
        return self.status != "failed"

    def metrics(self) -> dict[str, float]:
        """:func:`history_metrics` (``phase/name``) plus :func:`prediction_metrics` of every eval phase.

        >>> RunOutcome(History.from_rows([("fit", 0, -1, 1, "loss", 0.5)]), "completed").metrics()
        {'fit/loss': 0.5}
        """
        out = history_metrics(self.history)
        for label, preds in self.predictions.items():
            out.update(prediction_metrics(label, preds))
        return out


@attrs.frozen
class JobReply:
    """A worker's answer: the outcome, or the class name and message of the error that stopped the job.

    >>> JobReply(error_type="ConfigError", error_message="bad").error_type
    'ConfigError'
    """

    outcome: RunOutcome | None = None
    error_type: str | None = None
    error_message: str | None = None


def _error_text(exc: BaseException | None) -> str | None:
    return None if exc is None else f"{type(exc).__name__}: {exc}"


def run_job(job: Job) -> RunOutcome:
    """Run one job in this process: ``mml.init(job.experiment, job.key)``, then ``mml.run``.

    Errors before the run (``mml.init`` failing on a shape mismatch) raise; a run that fails
    gives ``status == "failed"`` and the message in ``error``, as ``mml.run`` does.
    """
    from mml.training import init, run

    exp = job.experiment
    state, history = run(exp, init(exp, job.key), progress=False)
    preds: dict[str, Predictions] = {}
    for phase in exp.phases:
        if isinstance(phase, EvalPhase):
            try:
                result = history.eval_result(phase.label)
            except TrainingError:  # the run failed before this phase
                continue
            preds[phase.label] = Predictions.from_eval(result)
    return RunOutcome(
        history=attrs.evolve(history, phases=(), error=None),
        status=history.status,
        error=_error_text(history.error),
        predictions=preds,
        state=state if job.keep_state else None,
    )


# -- artifacts as bytes ------------------------------------------------------------------


def pack_value(value: Any) -> bytes:
    """An mml value as the bytes of a zipped artifact (``mml.save`` layout, hashes included)."""
    from mml.io import save

    with tempfile.TemporaryDirectory(prefix="mml-job-") as tmp:
        root = save(value, Path(tmp) / "artifact")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    zf.write(p, p.relative_to(root).as_posix())
        return buf.getvalue()


def unpack_value(data: bytes, cls: type | None = None) -> Any:
    """The value in bytes made by :func:`pack_value` (loaded with ``mml.load``: hashes checked, no code run)."""
    from mml.io import load

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ArtifactError(f"a packed artifact is bytes, got {type(data).__name__}")
    with tempfile.TemporaryDirectory(prefix="mml-job-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp) / "artifact"
        try:
            with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
                for name in zf.namelist():
                    parts = PurePosixPath(name).parts
                    if name.startswith("/") or ".." in parts or not parts:
                        raise ArtifactError(f"packed artifact holds an unsafe path {name!r}")
                    target = root.joinpath(*parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(name))
        except zipfile.BadZipFile as exc:
            raise ArtifactError(f"bytes are not a packed mml artifact: {exc}") from exc
        # Arrow tables are memory-mapped from the files; on POSIX the mapping outlives the
        # directory, elsewhere the directory is left for the OS to clean up.
        return load(os.fspath(root), cls)


def run_job_bytes(payload: bytes) -> bytes:
    """The worker side: a packed :class:`Job` in, a packed :class:`JobReply` out.

    Shared by :class:`~mml.strategies.ProcessExecutor` and
    :class:`~mml.strategies.RayExecutor`; only bytes cross the boundary.
    """
    try:
        reply = JobReply(outcome=run_job(unpack_value(payload, Job)))
    except Exception as exc:  # reported to the caller, which re-raises it as an mml error
        reply = JobReply(error_type=type(exc).__name__, error_message=str(exc))
    return pack_value(reply)


def outcome_from_reply(data: bytes, index: int) -> RunOutcome:
    """Unpack a worker's reply; an error in the worker is raised here as the same mml error class."""
    import mml.errors as errors

    reply = unpack_value(data, JobReply)
    if reply.outcome is not None:
        return reply.outcome
    cls = getattr(errors, reply.error_type or "", None)
    if not (isinstance(cls, type) and issubclass(cls, MMLError)):
        cls = TrainingError
    raise cls(f"job {index} failed in a worker with {reply.error_type}: {reply.error_message}")
