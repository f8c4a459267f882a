"""Executors run many independent :class:`~mml.strategies.Job` values and return their outcomes in order.

* :class:`LocalExecutor` — in this process, one after the other (the default);
* :class:`ProcessExecutor` — a pool of local worker processes;
* :class:`RayExecutor` — tasks on a Ray cluster (``pip install 'mml[ray]'``).

Executors are frozen values. The two remote ones send each job as a packed mml artifact
(:func:`~mml.strategies.pack_value`) to the same job function,
:func:`~mml.strategies.run_job_bytes`, and get a packed outcome back — no pickle of user
objects (or, with ``RayExecutor(shared_dir=...)``, the path of the job's artifact on storage
every node mounts). Every job carries its own key, so the outcomes do not depend on the
executor, the number of workers or the order in which jobs finish. A job that fails — in the
run, before it (``mml.init``), or because its worker died — comes back as a failed
:class:`~mml.strategies.RunOutcome` holding the error's
:class:`~mml.training.ErrorRecord`; the other jobs are not affected.

>>> LocalExecutor().map([])
()
>>> ProcessExecutor(max_workers=2).max_workers
2
"""

from __future__ import annotations

import abc
import multiprocessing
import os
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from mml.errors import BackendError, ConfigError
from mml.strategies._jobs import (
    Job,
    JobReply,
    RunOutcome,
    failed_outcome,
    outcome_from_reply,
    outcome_of,
    pack_value,
    run_job_bytes,
    run_job_guarded,
    run_job_path,
)

__all__ = ["AbstractExecutor", "LocalExecutor", "ProcessExecutor", "RayExecutor", "resolve_executor"]


class AbstractExecutor(abc.ABC):
    """Runs jobs; ``map(jobs)`` returns one :class:`~mml.strategies.RunOutcome` per job, in order.

    >>> issubclass(LocalExecutor, AbstractExecutor)
    True
    """

    _mml_union = True
    kind: ClassVar[str]

    @abc.abstractmethod
    def map(self, jobs: Sequence[Job]) -> tuple[RunOutcome, ...]:
        """Run every job; the outcomes in the order of ``jobs``."""

    def map_reporting(
        self, jobs: Sequence[Job], on_done: Callable[[int, RunOutcome], None]
    ) -> tuple[RunOutcome, ...]:
        """:meth:`map`, calling ``on_done(index, outcome)`` as each job finishes (here: all at the end).

        The built-in executors report each job as it finishes; the numbers are the same.

        >>> LocalExecutor().map_reporting([], print)
        ()
        """
        outcomes = self.map(jobs)
        for i, outcome in enumerate(outcomes):
            on_done(i, outcome)
        return outcomes


class _AbstractReportingExecutor(AbstractExecutor):
    """An executor with one loop, ``_run``, that reports each job as it finishes (the built-in ones)."""

    def map(self, jobs: Sequence[Job]) -> tuple[RunOutcome, ...]:
        return self._run(jobs, None)

    def map_reporting(
        self, jobs: Sequence[Job], on_done: Callable[[int, RunOutcome], None]
    ) -> tuple[RunOutcome, ...]:
        return self._run(jobs, on_done)

    @abc.abstractmethod
    def _run(
        self, jobs: Sequence[Job], on_done: Callable[[int, RunOutcome], None] | None
    ) -> tuple[RunOutcome, ...]:
        """Run ``jobs`` in order of the result, calling ``on_done(index, outcome)`` (if given) per job."""


@attrs.frozen
class LocalExecutor(_AbstractReportingExecutor):
    """Run jobs in this process, sequentially (no serialization on the way).

    >>> LocalExecutor() == LocalExecutor()
    True
    """

    kind: ClassVar[str] = "executor.local"

    def _run(
        self, jobs: Sequence[Job], on_done: Callable[[int, RunOutcome], None] | None
    ) -> tuple[RunOutcome, ...]:
        out = []
        for i, job in enumerate(jobs):
            out.append(run_job_guarded(job))
            if on_done is not None:
                on_done(i, out[-1])
        return tuple(out)


def _check_workers(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(
            f"{type(instance).__name__}.{attribute.name} must be an int >= 1 or None, got {value!r}"
        )


_CONTEXTS = ("spawn", "forkserver", "fork")


def _check_context(instance: Any, attribute: Any, value: Any) -> None:
    if value not in _CONTEXTS:
        raise ConfigError(
            f"ProcessExecutor.start_method must be one of {', '.join(_CONTEXTS)}, got {value!r}"
        )


@attrs.frozen
class ProcessExecutor(_AbstractReportingExecutor):
    """Run jobs in a pool of ``max_workers`` local processes (``None``: one per CPU).

    Jobs travel as packed artifacts, so everything in the experiment must be an mml value
    whose classes import in a fresh process. ``start_method="spawn"`` (default) is safe with
    torch's thread pools; scripts that use it need the usual
    ``if __name__ == "__main__":`` guard.

    >>> ProcessExecutor(2).start_method
    'spawn'
    """

    kind: ClassVar[str] = "executor.process"
    max_workers: int | None = attrs.field(default=None, validator=_check_workers)
    start_method: str = attrs.field(default="spawn", validator=_check_context)

    def _run(
        self, jobs: Sequence[Job], on_done: Callable[[int, RunOutcome], None] | None
    ) -> tuple[RunOutcome, ...]:
        from concurrent.futures import ProcessPoolExecutor

        if not jobs:
            return ()
        payloads = [pack_value(job) for job in jobs]
        workers = min(self.max_workers or multiprocessing.cpu_count(), len(payloads))
        ctx = multiprocessing.get_context(self.start_method)
        out = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for i, reply in enumerate(pool.map(run_job_bytes, payloads)):  # in job order, as they come
                out.append(outcome_from_reply(reply))
                if on_done is not None:
                    on_done(i, out[-1])
        return tuple(out)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BackendError(
            "RayExecutor needs Ray, which is not installed; install it with pip install 'mml[ray]' "
            "(or pip install ray), or use LocalExecutor() / ProcessExecutor() on one machine"
        ) from exc
    return ray


def _check_cpus(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"RayExecutor.num_cpus_per_trial must be a number > 0, got {value!r}")


def _check_retries(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"RayExecutor.max_retries must be an int >= 0, got {value!r}")


def _check_shared_dir(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"RayExecutor.shared_dir takes a directory path (str) or None, got {value!r}")


@attrs.frozen
class RayExecutor(_AbstractReportingExecutor):
    """Run jobs as Ray tasks (``address=None``: a running or a new local Ray instance; ``"auto"``; ``"ray://host:10001"``).

    Ray is imported only when jobs are run; without it :meth:`map` raises
    :class:`~mml.BackendError` (``pip install 'mml[ray]'``). Each task runs the same
    document-based job function as :class:`ProcessExecutor` with ``num_cpus_per_trial``
    CPUs; the cluster's workers need mml (and any user component modules) installed. If Ray
    is not initialised, ``ray.init(address=address)`` is called and Ray is left running for
    the next call; call ``ray.init`` yourself first for other options (``runtime_env=``).

    ``shared_dir`` (a directory every node mounts at the same path): each job is saved there
    as an artifact and only its path travels through Ray; the worker loads it, runs it and
    saves its reply beside it. Without it the packed artifact's bytes travel in the task.
    A task whose worker dies is retried ``max_retries`` times (Ray's default, 3); then it is a
    failed outcome holding the Ray error's record.

    >>> RayExecutor(num_cpus_per_trial=2).num_cpus_per_trial
    2
    """

    kind: ClassVar[str] = "executor.ray"
    address: str | None = None
    num_cpus_per_trial: float = attrs.field(default=1, validator=_check_cpus)
    shared_dir: str | None = attrs.field(default=None, validator=_check_shared_dir)
    max_retries: int = attrs.field(default=3, validator=_check_retries)

    def _run(
        self, jobs: Sequence[Job], on_done: Callable[[int, RunOutcome], None] | None
    ) -> tuple[RunOutcome, ...]:
        ray = _import_ray()
        if not jobs:
            return ()
        if not ray.is_initialized():
            ray.init(address=self.address, ignore_reinit_error=True)
        from mml.io import load, save

        with tempfile.TemporaryDirectory(prefix="mml-jobs-", dir=self._shared()) as tmp:
            if self.shared_dir is None:
                task = ray.remote(num_cpus=self.num_cpus_per_trial, max_retries=self.max_retries)(
                    run_job_bytes
                )
                refs = [task.remote(pack_value(job)) for job in jobs]
            else:
                run_id = uuid.uuid4().hex[:8]
                paths = [os.fspath(save(job, Path(tmp) / f"{run_id}-job-{i}")) for i, job in enumerate(jobs)]
                task = ray.remote(num_cpus=self.num_cpus_per_trial, max_retries=self.max_retries)(
                    run_job_path
                )
                refs = [task.remote(p) for p in paths]
            position = {ref: i for i, ref in enumerate(refs)}
            out: list[RunOutcome | None] = [None] * len(refs)
            pending = list(refs)
            while pending:  # in the order the tasks finish
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    i = position[ref]
                    try:
                        reply = ray.get(ref)
                        outcome = (
                            outcome_from_reply(reply)
                            if self.shared_dir is None
                            else outcome_of(load(reply, JobReply, trusted="*"))  # our own worker's reply
                        )
                    except ray.exceptions.RayError as exc:  # the worker died or the task was cancelled
                        outcome = failed_outcome(exc)
                    out[i] = outcome
                    if on_done is not None:
                        on_done(i, outcome)
            return tuple(o for o in out if o is not None)

    def _shared(self) -> str | None:
        if self.shared_dir is None:
            return None
        Path(self.shared_dir).mkdir(parents=True, exist_ok=True)
        return self.shared_dir


def resolve_executor(executor: AbstractExecutor | None) -> AbstractExecutor:
    """``None`` → :class:`LocalExecutor`; an executor as it is; anything else is a :class:`~mml.ConfigError`.

    >>> resolve_executor(None)
    LocalExecutor()
    """
    if executor is None:
        return LocalExecutor()
    if not isinstance(executor, AbstractExecutor):
        raise ConfigError(
            f"executor= takes LocalExecutor(), ProcessExecutor(...) or RayExecutor(...), got {executor!r}"
        )
    return executor
