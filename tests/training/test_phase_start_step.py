"""A phase's start hook sees the steps the run has taken so far, as its end hook does."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

import mml
from mml.callbacks import AbstractCallback, CallbackResult
from mml.training import AppliedLoss, Experiment, PhaseGroup, TrainPhase

from .conftest import make_featureset, mlp_graph


@attrs.frozen
class StepsSeen(AbstractCallback):
    """Keeps ``(hook, event.step)`` of its phase's start and end hooks."""

    kind: ClassVar[str] = "callback.test_steps_seen"

    def init(self) -> Any:
        return ()

    def on_phase_start(self, event: Any, state: Any) -> CallbackResult:
        return CallbackResult((*state, ("start", event.step)))

    def on_phase_end(self, event: Any, state: Any) -> CallbackResult:
        return CallbackResult((*state, ("end", event.step)))


def _phase(label: str) -> TrainPhase:
    return TrainPhase.simple(
        label,
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss("mse", "mlp"),
        n_epochs=1,
        sampler=mml.SimpleSampler(30),  # 90 training rows: 3 steps a phase
        callbacks=[StepsSeen()],
    )


def test_the_second_phase_starts_at_the_steps_of_the_first() -> None:
    exp = Experiment({"toy": make_featureset()}, mlp_graph(), PhaseGroup("plan", [_phase("a"), _phase("b")]))
    state, history = mml.run(exp, mml.init(exp, 0))
    assert history.status == "completed"
    assert state.callback_state("a/0") == (("start", 0), ("end", 3))
    assert state.callback_state("b/0") == (("start", 3), ("end", 6))
