"""Batch schedules: zip/alternate x strict/cycle with two heads fed by streams of different lengths.

Head ``a`` reads the train split (90 samples, batches of 30: ``a0 a1 a2``), head ``b`` the val
split (30 samples, batches of 15: ``b0 b1``).
"""

from __future__ import annotations

import numpy as np
import pytest

import mml
from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef
from mml.models import SequentialMLP
from mml.training import AppliedLoss, Experiment, InputBinding, TrainPhase

from .conftest import make_featureset

torch = pytest.importorskip("torch")

EXPECTED = {
    "zip_strict": [("a0", "b0"), ("a1", "b1")],
    "zip_cycle": [("a0", "b0"), ("a1", "b1"), ("a2", "b0")],
    "alternate_strict": [("a0",), ("b0",), ("a1",), ("b1",)],
    "alternate_cycle": [("a0",), ("b0",), ("a1",), ("b1",), ("a2",), ("b0",)],
}


def towers() -> ModelGraph:
    return ModelGraph.of(
        *(
            ModelNode(h, SequentialMLP(hidden=(4,)), FeatureSetRef("toy"), optimizer=mml.optim.adam(1e-2))
            for h in ("a", "b")
        ),
        optimizer=mml.optim.adam(1e-2),
    )


def two_heads(
    schedule: str,
    *,
    shuffle: bool = False,
    n_epochs: int = 1,
    graph=None,
    losses=None,
    b_size: int = 15,
    **kw,
):
    fs = make_featureset(n=120)
    phase = TrainPhase(
        "fit",
        {
            "a": InputBinding("toy", "train", mml.SimpleSampler(30, shuffle=shuffle)),
            "b": InputBinding("toy", "val", mml.SimpleSampler(b_size, shuffle=shuffle)),
        },
        losses or [AppliedLoss("mse", "a"), AppliedLoss("mse", "b")],
        n_epochs=n_epochs,
        batch_schedule=schedule,
        **kw,
    )
    return fs, Experiment({"toy": fs}, graph or towers(), phase)


def batch_names(fs: mml.FeatureSet) -> dict[bytes, str]:
    """Sample-UUID bytes of each expected batch → its name (``a0`` ...)."""
    names = {}
    for head, split, size in (("a", "train", 30), ("b", "val", 15)):
        uuids = fs[split].sample_uuids
        for i in range(len(uuids) // size):
            names[uuids[i * size : (i + 1) * size].tobytes()] = f"{head}{i}"
    return names


def fed(ctx) -> dict[str, bytes]:
    return {h: np.asarray(sd.sample_uuids).tobytes() for h, sd in ctx.inputs["default"].items()}


@pytest.mark.parametrize("schedule", list(EXPECTED))
def test_steps_and_batches_per_schedule(schedule):
    fs, exp = two_heads(schedule)
    names = batch_names(fs)
    s0 = mml.init(exp, 0)
    got = []
    prev = s0
    for state, ctx in mml.steps(exp, exp.plan, s0):
        if ctx.event != "batch":
            continue
        feeds = fed(ctx)
        got.append(tuple(names[feeds[h]] for h in sorted(feeds)))
        assert sorted(feeds) == [n[0] for n in got[-1]]
        # the step's losses are those of the heads it fed
        assert set(ctx.losses) == {f"{n[0]}.mse" for n in got[-1]} | {"loss"}
        # stage-wise: a head not fed in the step keeps its params
        for h in ("a", "b"):
            moved = not all(
                torch.equal(v, prev.params(h).params[k]) for k, v in state.params(h).params.items()
            )
            assert moved == (h in feeds), (schedule, ctx.step, h)
        prev = state
    assert got == EXPECTED[schedule]
    assert prev.step == len(EXPECTED[schedule])


def test_epoch_means_average_each_loss_over_the_steps_that_computed_it():
    _, exp = two_heads("alternate_cycle")
    _, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "completed", h.error
    for name, n in (("a.mse", 3), ("b.mse", 3), ("loss", 6)):
        per_batch = h.batches().values(name)
        assert len(per_batch) == n
        assert h.epochs().values(name)[0] == pytest.approx(float(np.mean(per_batch)))


def test_cycle_restarts_the_same_epoch_stream_and_epochs_reshuffle():
    fs, exp = two_heads("zip_cycle", shuffle=True, n_epochs=2)
    ctxs = [c for _, c in mml.steps(exp, exp.plan, mml.init(exp, 0)) if c.event == "batch"]
    assert len(ctxs) == 6
    b = [fed(c)["b"] for c in ctxs]
    assert b[2] == b[0] and b[5] == b[3]  # the restarted stream gives the same batch again
    assert b[3] != b[0]  # a new epoch is a new order
    train = np.asarray(fs["train"].sample_uuids)
    for c in ctxs:  # head a only ever sees its own split
        assert np.isin(np.asarray(c.input("a").sample_uuids), train).all()


def test_graphwise_alternate_updates_through_one_optimizer():
    _, exp = two_heads("alternate_strict", mode="graphwise")
    s0 = mml.init(exp, 0)
    s1, h = mml.run(exp, s0)
    assert h.status == "completed", h.error
    assert s1.opt_steps[mml.training.GRAPH_OPTIMIZER] == 4
    for head in ("a", "b"):
        assert not all(torch.equal(v, s0.params(head).params[k]) for k, v in s1.params(head).params.items())


def test_alternate_with_a_loss_needing_both_heads_is_an_error():
    graph = ModelGraph.of(
        ModelNode("a", SequentialMLP(hidden=(4,), output_shape=(2,)), FeatureSetRef("toy")),
        ModelNode("b", SequentialMLP(hidden=(4,), output_shape=(2,)), FeatureSetRef("toy")),
        ConcatNode("cat", (NodeRef("a"), NodeRef("b"))),
        ModelNode("head", SequentialMLP(hidden=(4,)), NodeRef("cat")),
        optimizer=mml.optim.adam(),
    )
    _, exp = two_heads("alternate_cycle", graph=graph, losses=[AppliedLoss("mse", "head")], mode="graphwise")
    _, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "failed"
    assert isinstance(h.error, mml.TrainingError)
    assert "'head.mse' needs head(s) 'a', 'b'" in str(h.error) and "zip" in str(h.error)
    # the same graph under a zip schedule cycles the shorter stream (one batch of 30) and trains
    _, exp = two_heads(
        "zip_cycle", graph=graph, losses=[AppliedLoss("mse", "head")], mode="graphwise", b_size=30
    )
    _, h = mml.run(exp, mml.init(exp, 0))
    assert h.status == "completed", h.error
    assert h.phase_result("fit").n_steps == 3


def test_heads_on_one_binding_reading_different_columns_get_their_own_columns():
    import numpy as np

    import mml
    from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef
    from mml.models import SequentialMLP
    from mml.training import AppliedLoss, Experiment, TrainPhase

    rng = np.random.default_rng(0)
    fs = mml.FeatureSet.from_dict(
        {
            "a": rng.random((64, 3), dtype=np.float32),
            "b": rng.random((64, 2), dtype=np.float32),
            "y": rng.random(64, dtype=np.float32),
        },
        features=["a", "b"],
        targets="y",
        label="t",
    ).split(mml.RandomSplitter({"train": 1.0}, seed=0))
    g = ModelGraph.of(
        ModelNode("A", SequentialMLP(hidden=(4,), output_shape=(4,)), FeatureSetRef("t", features="a")),
        ModelNode("B", SequentialMLP(hidden=(4,), output_shape=(4,)), FeatureSetRef("t", features="b")),
        ConcatNode("j", (NodeRef("A"), NodeRef("B"))),
        ModelNode("h", SequentialMLP(hidden=(4,)), NodeRef("j")),
    ).with_optimizer(mml.optim.adam())
    phase = TrainPhase.simple(
        "fit",
        featureset="t",
        heads=["A", "B"],
        losses=AppliedLoss("mse", "h"),
        mode="graphwise",
        sampler=mml.SimpleSampler(16),
        record="all",
    )
    exp = Experiment({"t": fs}, g, phase)
    _, history = mml.run(exp, mml.init(exp, 0), progress=False)
    history.raise_for_status()
    ctx = history.phase_result("fit").contexts[0]
    a, b = ctx.inputs["default"]["A"], ctx.inputs["default"]["B"]
    assert a.features.shape[1] == 3 and b.features.shape[1] == 2
    # both heads saw the same samples, in the same order
    np.testing.assert_array_equal(a.sample_uuids, b.sample_uuids)
