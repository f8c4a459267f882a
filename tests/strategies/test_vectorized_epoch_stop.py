"""A callback that stops a phase at an epoch's start: no step of that epoch runs, vectorised or not."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import pytest

import mml
from mml.callbacks import AbstractCallback, CallbackResult
from mml.strategies import Job, LocalExecutor, VectorizedExecutor, vectorize_problem

from .conftest import make_experiment, make_featureset

torch = pytest.importorskip("torch")


@attrs.frozen
class StopAtEpochStart(AbstractCallback):
    """Stops the phase in ``on_epoch_start`` of epoch ``epoch``."""

    kind: ClassVar[str] = "callback.test_stop_at_epoch_start"
    epoch: int = 1

    def on_epoch_start(self, event: Any, state: Any) -> CallbackResult | None:
        return CallbackResult(state, stop=True) if event.epoch == self.epoch else None


def _jobs(stop_epoch: int) -> list[Job]:
    exp = make_experiment(make_featureset(40), n_epochs=4)
    exp = mml.strategies.set_path(exp, "plan.phases.fit.callbacks", (StopAtEpochStart(stop_epoch),))
    return [Job(exp, mml.random.fold_in(mml.random.key(0), i), keep_state=True) for i in range(2)]


@pytest.mark.parametrize("stop_epoch", [0, 2])
def test_a_stop_at_an_epochs_start_runs_no_step_of_it_in_both_loops(stop_epoch: int) -> None:
    jobs = _jobs(stop_epoch)
    assert vectorize_problem(jobs) is None
    for seq, vec in zip(LocalExecutor().map(jobs), VectorizedExecutor().map(jobs)):
        for h in (seq.history, vec.history):
            assert h.status == "stopped"
            steps = (h.phase == "fit") & (h.batch >= 0)
            assert set(h.epoch[steps].tolist()) == set(range(stop_epoch))  # steps only before the stop
        a, b = seq.history, vec.history
        for col in ("phase", "epoch", "batch", "step", "name"):
            assert getattr(a, col).tolist() == getattr(b, col).tolist(), col
        assert seq.state.epoch == vec.state.epoch == stop_epoch + 1  # the stopped epoch's end ran
        assert seq.state.step == vec.state.step
