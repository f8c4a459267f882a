"""Writing resumable checkpoints: an effect of the run, never an input to its numbers.

A checkpoint is the :class:`~mml.training.TrainState` the fold yielded at a step, epoch end or
phase end — it records its :class:`~mml.training.Position` — with the run's History up to
there boxed into the position, saved with :func:`mml.save` (atomic). Loading it and handing
it to :func:`mml.run` continues the run exactly (see ``docs/training.md``, "Resume").

A run-level policy (``mml.run(..., checkpoint=Checkpointing(...))``, what ``mml run`` uses)
also keeps an index, ``checkpoints.json`` (names, newest last), so that the newest is found
without loading any other and keep-last-k holds across a killed and resumed process.

>>> latest_checkpoint("/nonexistent") is None
True
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mml._fields import array_field, frozen_tuple
from mml.errors import ArtifactError, MMLError
from mml.training._results import ErrorRecord, History, PhaseResult
from mml.training._state import ExecutionContext, TrainState, box

__all__ = ["CheckpointHistory", "CheckpointWriter", "checkpoint_history", "latest_checkpoint", "with_history"]

INDEX = "checkpoints.json"
# the names a run-level policy gives its checkpoints (``plan.fit-step-120``, ``…-epoch-3``, ``…-end-step-240``)
_POLICY_NAME = re.compile(r"[^/]+-(?:step|epoch|end-step)-[0-9]+")

_Row = tuple[str, int, int, int, str, float]


def _codes(column: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    labels, codes = np.unique(column, return_inverse=True)
    return tuple(str(v) for v in labels.tolist()), codes.astype(np.int32).reshape(-1)


def _labels(labels: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
    if not len(codes):
        return np.zeros(0, dtype="<U1")
    return np.asarray(labels, dtype=str)[codes]


@attrs.frozen
class CheckpointHistory:
    """A :class:`~mml.training.History` as a checkpoint stores it: every column a binary array.

    The ``phase`` and ``name`` columns are codes into ``phase_labels``/``name_labels``, so a
    checkpoint's document holds a few labels rather than one JSON string per row (what made a
    checkpoint's cost grow with the run). :meth:`to_history` gives the History back, row for
    row and dtype for dtype.

    >>> h = History.from_rows([("fit", 0, 0, 1, "loss", 0.5), ("fit", 0, -1, 1, "val_loss", 0.25)])
    >>> c = CheckpointHistory.of(h)
    >>> c.name_labels, c.to_history() == h
    (('loss', 'val_loss'), True)
    """

    phase_labels: tuple[str, ...] = attrs.field(converter=frozen_tuple)
    name_labels: tuple[str, ...] = attrs.field(converter=frozen_tuple)
    phase: np.ndarray = array_field()  # noqa: RUF009 - an attrs field
    name: np.ndarray = array_field()  # noqa: RUF009 - an attrs field
    epoch: np.ndarray = array_field()  # noqa: RUF009 - an attrs field
    batch: np.ndarray = array_field()  # noqa: RUF009 - an attrs field
    step: np.ndarray = array_field()  # noqa: RUF009 - an attrs field
    value: np.ndarray = array_field()  # noqa: RUF009 - an attrs field
    status: str = "completed"
    phases: tuple[PhaseResult, ...] = attrs.field(default=(), converter=frozen_tuple, eq=False)
    failure: ErrorRecord | None = None

    def __attrs_post_init__(self) -> None:
        n = len(self.value)
        for f in ("phase", "name", "epoch", "batch", "step"):
            if len(getattr(self, f)) != n:
                raise ArtifactError(
                    f"CheckpointHistory: column {f!r} has {len(getattr(self, f))} rows, 'value' has {n}; "
                    "the checkpoint is damaged — resume from another one"
                )
        for f, labels in (("phase", self.phase_labels), ("name", self.name_labels)):
            codes = getattr(self, f)
            if n and (codes.min() < 0 or codes.max() >= len(labels)):
                raise ArtifactError(
                    f"CheckpointHistory: column {f!r} has codes outside its {len(labels)} labels; "
                    "the checkpoint is damaged — resume from another one"
                )

    @classmethod
    def of(cls, history: History) -> CheckpointHistory:
        """Encode ``history`` (its phases' recorded step contexts left out)."""
        phase_labels, phase = _codes(history.phase)
        name_labels, name = _codes(history.name)
        return cls(
            phase_labels,
            name_labels,
            phase,
            name,
            history.epoch,
            history.batch,
            history.step,
            history.value,
            history.status,
            tuple(attrs.evolve(p, contexts=()) for p in history.phases),
            history.failure,
        )

    def to_history(self) -> History:
        """The History this record encodes."""
        return History(
            _labels(self.phase_labels, self.phase),
            self.epoch,
            self.batch,
            self.step,
            _labels(self.name_labels, self.name),
            self.value,
            status=self.status,
            phases=self.phases,
            error=self.failure,
        )


def checkpoint_history(state: TrainState) -> History | None:
    """The History a checkpoint's position carries (``None`` if it carries none).

    Reads both the current encoding (:class:`CheckpointHistory`) and checkpoints that boxed a
    :class:`~mml.training.History` itself.
    """
    pos = state.position
    if pos is None or pos.history is None:
        return None
    value = pos.history.value
    if isinstance(value, CheckpointHistory):
        return value.to_history()
    if isinstance(value, History):
        return value
    raise ArtifactError(
        f"the checkpoint's position carries a {type(value).__name__} as its history, not a History; "
        "it was not written by mml.run — start from mml.init or another checkpoint"
    )


def with_history(state: TrainState, history: History | CheckpointHistory) -> TrainState:
    """``state`` with ``history`` (recorded step contexts left out) boxed into its position.

    >>> import mml
    >>> from mml.training import Position
    >>> s = TrainState(graph=None, key=mml.random.key(0), position=Position("p", "plan/fit"))
    >>> checkpoint_history(with_history(s, History())).status
    'completed'
    """
    if state.position is None:
        return state
    record = history if isinstance(history, CheckpointHistory) else CheckpointHistory.of(history)
    return attrs.evolve(state, position=attrs.evolve(state.position, history=box(record)))


class _Encoder:
    """The run's History so far, encoded incrementally: each row once, not at every checkpoint.

    ``before`` (the History of the phases that ran) is encoded when a phase starts; the phase's
    own rows (a list the fold appends to) are encoded from where the last checkpoint stopped.
    """

    def __init__(self) -> None:
        self._before: History | None = None
        self._rows: list[_Row] | None = None
        self._done = 0
        self._vocab: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self._cols: list[np.ndarray] = []
        self._phases: tuple[PhaseResult, ...] = ()

    def _start(self, before: History, rows: list[_Row]) -> None:
        self._before, self._rows, self._done = before, rows, 0
        self._vocab = ({}, {})
        self._cols = []
        enc = CheckpointHistory.of(before)
        for vocab, labels in zip(self._vocab, (enc.phase_labels, enc.name_labels)):
            vocab.update((v, i) for i, v in enumerate(labels))
        self._cols = [enc.phase, enc.name, enc.epoch, enc.batch, enc.step, enc.value]
        self._phases = enc.phases

    def encode(self, before: History, rows: list[_Row]) -> CheckpointHistory:
        if before is not self._before or rows is not self._rows:
            self._start(before, rows)
        new = rows[self._done :]
        if new:
            pv, nv = self._vocab
            p, e, b, s, n, v = zip(*new)
            chunk = (
                np.fromiter((pv.setdefault(x, len(pv)) for x in p), np.int32, len(new)),
                np.fromiter((nv.setdefault(x, len(nv)) for x in n), np.int32, len(new)),
                np.asarray(e, np.int64),
                np.asarray(b, np.int64),
                np.asarray(s, np.int64),
                np.asarray(v, np.float64),
            )
            self._cols = [np.concatenate([old, c]) for old, c in zip(self._cols, chunk)]
            self._done = len(rows)
        pv, nv = self._vocab
        ph, nm, ep, ba, st, va = self._cols
        return CheckpointHistory(
            tuple(pv), tuple(nv), ph, nm, ep, ba, st, va, before.status, self._phases, before.failure
        )


def _safe(path: str) -> str:
    return path.replace("/", ".")


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint a run-level policy wrote into ``directory`` (``None`` if none)."""
    index = Path(directory) / INDEX
    try:
        names = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for name in reversed(names):
        if (Path(directory) / name).is_dir():
            return Path(directory) / name
    return None


class CheckpointWriter:
    """Writes the checkpoints of one run: callbacks' requests and an optional run-level policy.

    Not a value: the shell's handle on the files. ``policy`` is a
    :class:`~mml.callbacks.Checkpointing` (``mode="disk"``); ``every_steps`` (or
    ``on="batch"``/``every_n``) sets the step interval, ``on="epoch"`` the epoch interval, and a
    checkpoint is written at the end of every phase.

    With ``background=True`` (what :func:`mml.run` uses) the run only takes a snapshot at the
    step — the state's document, its arrays copied where they could still change — and one
    writer thread serializes, writes and publishes it while the following steps are computed
    (file I/O releases the GIL: on a disk whose renames and deletes wait for the device, the
    wait is off the run's path). At most one write is in flight: the next checkpoint, and the
    end of the run (:meth:`close`), wait for it, and its error is raised there. Each write is
    :func:`mml.save`'s and the index is replaced only after it: a process killed at any moment
    leaves the complete checkpoints the index names, the newest of them resumable.
    """

    def __init__(self, policy: Any = None, *, background: bool = True) -> None:
        self.policy = policy
        self.names: list[str] = []
        self._encoder = _Encoder()
        self._background = background
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        if policy is not None:
            self.root = Path(str(policy.directory))
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                self.names = list(json.loads((self.root / INDEX).read_text(encoding="utf-8")))
            except (OSError, ValueError):
                self.names = []
            _remove(self._strays())

    def _strays(self) -> tuple[Path, ...]:
        """Checkpoints of a killed run that its index does not name (written but not yet listed,
        or listed no more but not yet deleted): removed when a run checkpoints here again, so
        ``keep`` holds across a kill. Only directories named and built as checkpoints are."""
        listed = set(self.names)
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return ()
        return tuple(
            Path(e.path)
            for e in entries
            if e.name not in listed
            and _POLICY_NAME.fullmatch(e.name)
            and e.is_dir(follow_symlinks=False)
            and os.path.isfile(os.path.join(e.path, "manifest.json"))
        )

    def after(
        self, state: TrainState, ctx: ExecutionContext, before: History, rows: list[_Row], path: str
    ) -> None:
        """After the run recorded ``ctx``: write what callbacks asked for and what the policy says is due.

        The History so far is ``before`` (the phases that ran) then ``rows`` (this phase's,
        appended to by the fold); it is encoded only when a checkpoint is written.
        """
        for req in ctx.checkpoints:
            drop = tuple(Path(old) for old in req.drop)
            self._submit(Path(req.path), state, before, rows, functools.partial(_remove, drop))
        p = self.policy
        if p is None:
            return
        name = None
        if ctx.event == "batch":
            every = p.every_steps or (p.every_n if p.on == "batch" else None)
            if every and state.step % every == 0:
                name = f"{_safe(path)}-step-{state.step}"
        elif ctx.event == "epoch_end" and p.on == "epoch" and not p.every_steps:
            if state.epoch % p.every_n == 0:
                name = f"{_safe(path)}-epoch-{state.epoch}"
        if name is not None:
            self._policy_save(name, state, before, rows)

    def phase_end(self, state: TrainState, before: History, rows: list[_Row], path: str) -> None:
        """After a phase ended (its position at ``stage="ended"``): the policy's checkpoint.

        Written while the next phase starts, as a step's is; :meth:`close` waits for the last.
        """
        if self.policy is not None and state.position is not None:
            self._policy_save(f"{_safe(path)}-end-step-{state.step}", state, before, rows)

    def close(self, *, raise_error: bool = True) -> None:
        """Wait for the write in flight and stop the writer thread; raise that write's error.

        ``raise_error=False`` (while another error is on its way out) only waits.
        """
        try:
            self._wait(raise_error)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _wait(self, raise_error: bool = True) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        exc = pending.exception()
        if exc is not None and raise_error:
            raise exc

    def _submit(
        self,
        target: Path,
        state: TrainState,
        before: History,
        rows: list[_Row],
        then: Callable[[], None],
    ) -> None:
        from mml.io import prepare_save

        self._wait()  # the previous write's error surfaces here, before the next is taken
        write = prepare_save(
            with_history(state, self._encoder.encode(before, rows)),
            target,
            snapshot=self._background,
            compact=True,
        )

        def job() -> None:
            try:
                write()
                then()
            except MMLError:
                raise
            except Exception as exc:
                raise ArtifactError(f"could not write the checkpoint {target}: {exc}") from exc

        if not self._background:
            job()
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mml-checkpoint")
        self._pending = self._pool.submit(job)

    def _policy_save(self, name: str, state: TrainState, before: History, rows: list[_Row]) -> None:
        self._submit(
            self.root / name,
            state,
            before,
            rows,
            then=lambda: self._publish_index(name),
        )

    def _split(self, name: str) -> tuple[list[str], list[str]]:
        names = [n for n in self.names if n != name] + [name]
        return names[-self.policy.keep :], names[: -self.policy.keep]

    def _write_index(self, names: list[str]) -> None:
        tmp = self.root / f".{INDEX}.tmp"
        tmp.write_text(json.dumps(names), encoding="utf-8")
        os.replace(tmp, self.root / INDEX)  # the index names only complete checkpoints
        self.names = names

    def _publish_index(self, name: str) -> None:
        """After checkpoint ``name`` is in place: the index names it, then the dropped ones go.

        One index write per checkpoint: while a checkpoint is written, ``keep + 1`` may exist
        on disk (the new one not yet listed), as with Lightning's ``save_top_k``.
        """
        keep, drop = self._split(name)
        self._write_index(keep)
        _remove(tuple(self.root / old for old in drop))


def _remove(paths: tuple[Path, ...]) -> None:
    for old in paths:
        shutil.rmtree(old, ignore_errors=True)
