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

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

from mml._fields import FrozenDict, frozen_dict
from mml.callbacks import Checkpointing
from mml.errors import ArtifactError, ConfigError, MMLError, TrainingError
from mml.random import Key, as_key
from mml.strategies._predictions import Predictions
from mml.training import ErrorRecord, EvalPhase, Experiment, History, TrainState

__all__ = [
    "Job",
    "RunOutcome",
    "JobReply",
    "run_job",
    "run_job_bytes",
    "run_job_path",
    "run_job_guarded",
    "failed_outcome",
    "pack_value",
    "unpack_value",
    "outcome_from_reply",
    "outcome_of",
    "job_fingerprint",
    "run_trust",
    "resumable",
    "start_state",
    "history_metrics",
    "prediction_metrics",
]


def _key(value: Any) -> Key:
    return as_key(value)


def _check_policy(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, Checkpointing) or value.mode != "disk"):
        raise ConfigError(
            f"Job.checkpoint takes Checkpointing(mode='disk', directory=...) or None, got {value!r}"
        )


@attrs.frozen
class Job:
    """Run ``experiment`` from ``mml.init(experiment, key)``; keep the final state if ``keep_state``.

    With ``checkpoint`` (a :class:`~mml.callbacks.Checkpointing` with ``mode="disk"``) the run
    writes resumable checkpoints into its directory, and a job whose directory already holds
    one continues from the newest (:func:`start_state`) instead of starting again.

    >>> import mml
    >>> Job.__name__, attrs.fields(Job).keep_state.default, attrs.fields(Job).checkpoint.default
    ('Job', False, None)
    """

    experiment: Experiment
    key: Key = attrs.field(converter=_key)
    keep_state: bool = False
    checkpoint: Checkpointing | None = attrs.field(default=None, validator=_check_policy)


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
    results (raw eval results do not serialize); a failed run's History keeps its
    :class:`~mml.training.ErrorRecord` (:attr:`failure`: type, message, phase, epoch,
    batch). The eval phases' stacked outputs are in ``predictions`` (phase label →
    :class:`Predictions`).

    >>> RunOutcome(History(), "completed").ok
    True
    >>> bad = failed_outcome(ErrorRecord("mml.errors:TrainingError", "loss is nan", "fit"))
    >>> bad.status, bad.error, bad.failure.phase
    ('failed', 'TrainingError: loss is nan', 'fit')
    """

    history: History = attrs.field(repr=lambda h: f"<History: {len(h)} rows>")
    status: str
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

    @property
    def failure(self) -> ErrorRecord | None:
        """Why the job failed (``None`` unless it did): the History's :class:`~mml.training.ErrorRecord`."""
        return self.history.failure

    @property
    def error(self) -> str | None:
        """The failure as ``"ErrorType: message"`` (``None`` unless the job failed)."""
        rec = self.history.failure
        return None if rec is None else f"{rec.type.rpartition(':')[2]}: {rec.message}"

    def metrics(self) -> dict[str, float]:
        """:func:`history_metrics` (``phase/name``) plus :func:`prediction_metrics` of every eval phase.

        >>> RunOutcome(History.from_rows([("fit", 0, -1, 1, "loss", 0.5)]), "completed").metrics()
        {'fit/loss': 0.5}
        """
        out = history_metrics(self.history)
        for label, preds in self.predictions.items():
            out.update(prediction_metrics(label, preds))
        return out


def failed_outcome(error: BaseException | ErrorRecord) -> RunOutcome:
    """The outcome of a job that could not run (or whose worker died): status ``failed``, no metrics.

    >>> failed_outcome(ValueError("bad")).failure.type
    'builtins:ValueError'
    """
    rec = error if isinstance(error, ErrorRecord) else ErrorRecord.from_exception(error)
    return RunOutcome(History(status="failed", error=rec), "failed")


@attrs.frozen
class JobReply:
    """A worker's answer: the outcome, or the record of the error that stopped the job before it ran.

    >>> JobReply(failure=ErrorRecord("mml.errors:ConfigError", "bad")).failure.message
    'bad'
    """

    outcome: RunOutcome | None = None
    failure: ErrorRecord | None = None


def run_trust(experiment: Experiment) -> Any:
    """The trust for loading what a run of ``experiment`` wrote: exactly the import paths the experiment names.

    A checkpoint (or a saved fold or trial) of the run may name the types the run itself used
    — mml's own, the built-in library rules, and the user classes and functions named in
    ``experiment`` — and nothing else (see ``docs/security.md``).

    >>> run_trust.__name__
    'run_trust'
    """
    from mml.io import Trust, named_paths, to_document

    doc, _, _ = to_document(experiment)
    names = sorted({p for _, p in named_paths(doc)})
    return Trust(names)  # type: ignore[arg-type]  # (the converter makes it a tuple)


def start_state(job: Job) -> TrainState:
    """Where ``job`` starts: the newest checkpoint in ``job.checkpoint.directory``, else ``mml.init``.

    The checkpoint is loaded under :func:`run_trust` of the job's experiment and must belong
    to its plan (:func:`~mml.training.plan_fingerprint`); one from another plan is a
    :class:`~mml.ConfigError` (a resumed job never silently starts over from foreign weights).
    """
    from mml.io import load
    from mml.training import init, latest_checkpoint, plan_fingerprint

    exp = job.experiment
    found = None if job.checkpoint is None else latest_checkpoint(str(job.checkpoint.directory))
    if found is None:
        return init(exp, job.key)
    state = load(os.fspath(found), TrainState, trusted=run_trust(exp))
    if state.position is None or state.position.plan != plan_fingerprint(exp):
        raise ConfigError(
            f"checkpoint {os.fspath(found)!r} belongs to another plan than experiment {exp.label!r}'s; "
            "resume with the same experiment, or delete that checkpoint directory to start again"
        )
    return state  # type: ignore[no-any-return]


def run_job(job: Job) -> RunOutcome:
    """Run one job in this process: ``mml.init(job.experiment, job.key)``, then ``mml.run``.

    With ``job.checkpoint`` the run checkpoints into its directory and continues from the
    newest checkpoint there (:func:`start_state`); the outcome equals an uninterrupted run's.
    Errors before the run (``mml.init`` failing on a shape mismatch) raise (executors catch
    them: :func:`run_job_guarded`); a run that fails gives ``status == "failed"`` and its
    :class:`~mml.training.ErrorRecord` in ``failure``, as ``mml.run`` does.
    """
    from mml.training import run

    exp = job.experiment
    state, history = run(exp, start_state(job), progress=False, checkpoint=job.checkpoint)
    preds: dict[str, Predictions] = {}
    for phase in exp.phases:
        if isinstance(phase, EvalPhase):
            try:
                result = history.eval_result(phase.label)
            except TrainingError:  # the run failed before this phase
                continue
            preds[phase.label] = Predictions.from_eval(result)
    return RunOutcome(
        history=attrs.evolve(history, phases=()),
        status=history.status,
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
        # directory, elsewhere the directory is left for the OS to clean up. A job (and its
        # reply) is the caller's own value, packed by its own process for its own worker:
        # the user classes it names are the caller's, so they are trusted.
        return load(os.fspath(root), cls, trusted="*")


def run_job_guarded(job: Job) -> RunOutcome:
    """:func:`run_job`, with an error that stops the job (say ``mml.init`` on a shape mismatch) as a failed outcome.

    What every executor runs: one bad trial is a failed trial, not a crashed sweep.
    """
    try:
        return run_job(job)
    except Exception as exc:  # recorded in the outcome (type path, message, phase)
        return failed_outcome(exc)


def run_job_bytes(payload: bytes) -> bytes:
    """The worker side: a packed :class:`Job` in, a packed :class:`JobReply` out.

    Shared by :class:`~mml.strategies.ProcessExecutor` and
    :class:`~mml.strategies.RayExecutor`; only bytes cross the boundary. A payload that
    does not load comes back as a reply holding the error's record.
    """
    try:
        reply = JobReply(outcome=run_job_guarded(unpack_value(payload, Job)))
    except Exception as exc:  # an unreadable payload: reported, never raised in the worker
        reply = JobReply(failure=ErrorRecord.from_exception(exc))
    return pack_value(reply)


def run_job_path(path: str) -> str:
    """The worker side for shared storage: the :class:`Job` artifact at ``path`` in, its reply's path out.

    The reply is saved beside the job as ``path + ".reply"`` (``mml.save`` layout); only
    the two path strings cross the boundary.
    """
    from mml.io import load, save

    try:
        reply = JobReply(outcome=run_job_guarded(load(path, Job, trusted="*")))  # the caller's own job
    except Exception as exc:  # an unreadable artifact: reported in the reply
        reply = JobReply(failure=ErrorRecord.from_exception(exc))
    return os.fspath(save(reply, f"{path}.reply"))


def outcome_from_reply(data: bytes) -> RunOutcome:
    """Unpack a worker's reply: the job's outcome, or a failed outcome holding the worker's error record."""
    try:
        reply = unpack_value(data, JobReply)
    except MMLError as exc:
        return failed_outcome(exc)
    return outcome_of(reply)


def outcome_of(reply: JobReply) -> RunOutcome:
    """The outcome in a worker's reply, or a failed outcome holding the worker's error record."""
    if reply.outcome is not None:
        return reply.outcome
    if reply.failure is None:
        return failed_outcome(ArtifactError("a worker replied with neither an outcome nor an error"))
    return failed_outcome(reply.failure)


# -- resumable jobs in a directory -------------------------------------------------------

_JOB_FILE = "job.json"


def job_fingerprint(job: Job) -> str:
    """A digest of what a job computes: its experiment (document, arrays and tables) and its key.

    ``keep_state`` and ``checkpoint`` are left out: they change what is kept, not the numbers.

    >>> import mml
    >>> from mml.training import Experiment
    >>> job_fingerprint.__name__
    'job_fingerprint'
    """
    from mml.io import to_document

    doc, arrays, tables = to_document((job.experiment, job.key))
    h = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode("utf-8"))
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    for name in sorted(tables):
        h.update(f"{name}:{tables[name].schema}".encode())
        for batch in tables[name].combine_chunks().to_batches():
            h.update(batch.serialize())
    return h.hexdigest()[:32]


def resumable(job: Job, directory: str | os.PathLike[str], policy: Checkpointing, *, what: str) -> Job:
    """``job`` checkpointing into ``directory/checkpoints`` under ``policy``; its fingerprint kept in ``directory/job.json``.

    The first call writes the fingerprint (:func:`job_fingerprint`); a later one with another
    job (other experiment, data, splitter or key) is a :class:`~mml.ConfigError` naming
    ``what`` (``"fold 2"``, ``"trial 3"``), so a checkpoint is only ever continued by the job
    that wrote it.
    """
    root = Path(directory)
    fp = job_fingerprint(job)
    path = root / _JOB_FILE
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if recorded is not None and recorded != fp:
        raise ConfigError(
            f"{os.fspath(root)!r} holds {what} of another run (other experiment, data, splitter or key); "
            "resume with the same arguments, or use a new directory"
        )
    if recorded is None:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{_JOB_FILE}.tmp"
        tmp.write_text(json.dumps({"fingerprint": fp}), encoding="utf-8")
        os.replace(tmp, path)
    ckpt = attrs.evolve(policy, directory=os.fspath(root / "checkpoints"))
    return attrs.evolve(job, checkpoint=ckpt)


def recorded_fingerprint(directory: str | os.PathLike[str]) -> str | None:
    """The fingerprint :func:`resumable` recorded in ``directory`` (``None`` if none)."""
    try:
        value = json.loads((Path(directory) / _JOB_FILE).read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
