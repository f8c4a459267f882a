"""References and nodes: validation, value semantics, shape inference, combining arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mml.io
from mml.errors import GraphError, ShapeError
from mml.graph import (
    ConcatNode,
    FeatureSetRef,
    MergeNode,
    ModelNode,
    NodeRef,
    resolve_featureset,
    resolve_keys,
)

from .strategies import StubModel, StubOptimizer

A, B, C = NodeRef("a"), NodeRef("b"), NodeRef("c")


# -- references -----------------------------------------------------------------------------


def test_featureset_ref_keys_are_tuples_and_a_single_string_is_one_key() -> None:
    ref = FeatureSetRef("fs", features="voltage", targets=["soh"], tags=("cell",))
    assert ref.features == ("voltage",) and ref.targets == ("soh",) and ref.tags == ("cell",)
    assert ref == FeatureSetRef("fs", features=("voltage",), targets=("soh",), tags=["cell"])
    assert hash(ref) == hash(FeatureSetRef("fs", "voltage", "soh", "cell"))


@pytest.mark.parametrize("rep", ["raw", "transformed", None])
def test_featureset_ref_rep_values(rep: str | None) -> None:
    assert FeatureSetRef("fs", rep=rep).rep == rep


def test_featureset_ref_rejects_bad_rep_and_label() -> None:
    with pytest.raises(GraphError, match="'scaled'"):
        FeatureSetRef("fs", rep="scaled")
    with pytest.raises(GraphError, match="FeatureSet"):
        FeatureSetRef("")


def test_resolve_featureset_names_missing_and_lists_available() -> None:
    env = {"train": "T", "holdout": "H"}
    assert resolve_featureset(FeatureSetRef("holdout"), env) == "H"
    with pytest.raises(GraphError) as info:
        resolve_featureset(FeatureSetRef("trian"), env)
    msg = str(info.value)
    assert "'trian'" in msg and "'train'" in msg and "'holdout'" in msg and "did you mean 'train'" in msg


class _FS:
    def keys(self, domain: str) -> tuple[str, ...]:
        return {"features": ("a", "b"), "targets": ("y",), "tags": ()}[domain]


def test_resolve_keys_all_named_and_missing() -> None:
    assert resolve_keys(FeatureSetRef("fs"), _FS(), "features") == ("a", "b")
    assert resolve_keys(FeatureSetRef("fs", features=("b",)), _FS(), "features") == ("b",)
    with pytest.raises(GraphError, match=r"'c'.*'a', 'b'"):
        resolve_keys(FeatureSetRef("fs", features=("c",)), _FS(), "features")


@pytest.mark.parametrize("label", ["", "a.b", "a/b", "a b", "a:b", "tab\there", " x"])
def test_reserved_labels_are_rejected_with_the_label_named(label: str) -> None:
    with pytest.raises(GraphError) as info:
        ModelNode(label, StubModel(), FeatureSetRef("fs"))
    assert repr(label) in str(info.value) or "empty" in str(info.value)
    with pytest.raises(GraphError):
        NodeRef(label)


# -- nodes ----------------------------------------------------------------------------------


def test_node_kinds_are_stable() -> None:
    assert (ModelNode.kind, ConcatNode.kind, MergeNode.kind) == ("node.model", "node.concat", "node.merge")


def test_model_node_takes_exactly_one_upstream() -> None:
    with pytest.raises(GraphError) as info:
        ModelNode("head", StubModel(), (A, FeatureSetRef("fs")))  # type: ignore[arg-type]
    msg = str(info.value)
    assert "'head'" in msg and "exactly one" in msg and "'a'" in msg and "FeatureSet 'fs'" in msg
    with pytest.raises(GraphError, match="'head'"):
        ModelNode("head", StubModel(), "a")  # type: ignore[arg-type]
    with pytest.raises(GraphError, match="model spec"):
        ModelNode("head", None, A)


def test_joining_nodes_need_two_upstreams_and_strategy_refs_among_them() -> None:
    with pytest.raises(GraphError, match=r"'cat'.*two or more"):
        ConcatNode("cat", (A,))
    with pytest.raises(GraphError, match=r"'m'.*two or more"):
        MergeNode("m", A)  # type: ignore[arg-type]
    with pytest.raises(GraphError, match=r"targets=NodeRef\(label='c'\)"):
        ConcatNode("cat", (A, B), targets=C)
    with pytest.raises(GraphError, match="'median'"):
        MergeNode("m", (A, B), strategy="median")
    with pytest.raises(GraphError, match="'sum'"):
        ConcatNode("cat", (A, B), targets="sum")


node_values = st.one_of(
    st.builds(
        ModelNode,
        label=st.sampled_from(["a", "b"]),
        model=st.builds(StubModel, width=st.integers(1, 3), backend=st.sampled_from(["torch", "sklearn"])),
        upstream=st.sampled_from([A, FeatureSetRef("fs", features=("x",), rep="raw")]),
        optimizer=st.sampled_from([None, StubOptimizer(0.5)]),
        frozen=st.booleans(),
        device=st.sampled_from([None, "cpu"]),
    ),
    st.builds(
        ConcatNode,
        label=st.just("cat"),
        upstreams=st.sampled_from([(A, B), (A, FeatureSetRef("fs"), C)]),
        axis=st.integers(-2, 1),
        pad=st.booleans(),
        pad_value=st.sampled_from([0.0, -1.0]),
        targets=st.sampled_from(["concat", "first", "last", "mean", A]),
        tags=st.sampled_from(["merge", "first", A]),
    ),
    st.builds(
        MergeNode,
        label=st.just("m"),
        upstreams=st.just((A, B)),
        strategy=st.sampled_from(["sum", "mean", "stack"]),
        targets=st.sampled_from(["first", B]),
    ),
)


@settings(max_examples=40)
@given(node_values)
def test_nodes_round_trip_and_compare_by_value(node: ModelNode | ConcatNode | MergeNode) -> None:
    back = mml.io.roundtrip(node)
    assert back == node and hash(back) == hash(node)
    assert type(back) is type(node)


# -- shape inference ------------------------------------------------------------------------


def test_concat_shapes_match_hand_computed_ones() -> None:
    assert ConcatNode("c", (A, B), axis=0, pad=True).output_shape([(1, 10), (1, 5)]) == (2, 10)
    assert ConcatNode("c", (A, B), axis=-1).output_shape([(1, 8), (1, 16)]) == (1, 24)
    assert ConcatNode("c", (A, B), axis=1).output_shape([(1, 8), (1, 16)]) == (1, 24)
    assert ConcatNode("c", (A, B, C)).output_shape([(3,), (4,), (5,)]) == (12,)
    assert ConcatNode("c", (A, B), axis=-2, pad=True).output_shape([(2, 3, 4), (1, 5, 2)]) == (2, 8, 4)


def test_concat_mismatch_without_pad_names_both_upstreams_and_shapes() -> None:
    with pytest.raises(ShapeError) as info:
        ConcatNode("c", (A, FeatureSetRef("fs")), axis=0).output_shape([(1, 10), (1, 5)])
    msg = str(info.value)
    assert "'a'" in msg and "FeatureSet 'fs'" in msg and "(1, 10)" in msg and "(1, 5)" in msg
    assert "pad=True" in msg


def test_concat_rank_and_axis_errors() -> None:
    with pytest.raises(ShapeError, match=r"'a'.*\(3,\).*'b'.*\(3, 1\)"):
        ConcatNode("c", (A, B)).output_shape([(3,), (3, 1)])
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        ConcatNode("c", (A, B), axis=2).output_shape([(3, 1), (3, 1)])
    with pytest.raises(ShapeError, match="2 upstreams but got 3"):
        ConcatNode("c", (A, B)).output_shape([(3,), (3,), (3,)])


def test_merge_shapes() -> None:
    assert MergeNode("m", (A, B)).output_shape([(4, 2), (4, 2)]) == (4, 2)
    assert MergeNode("m", (A, B, C), strategy="stack").output_shape([(4,), (4,), (4,)]) == (3, 4)
    with pytest.raises(ShapeError, match=r"'a'.*\(4,\).*'b'.*\(5,\)"):
        MergeNode("m", (A, B)).output_shape([(4,), (5,)])


per_sample_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@settings(max_examples=40)
@given(
    st.lists(per_sample_shapes, min_size=2, max_size=3).filter(lambda ss: len({len(s) for s in ss}) == 1),
    st.integers(-3, 2),
    st.integers(1, 3),
)
def test_concat_combine_agrees_with_output_shape_and_never_writes_inputs(
    shapes: list[tuple[int, ...]], axis: int, batch: int
) -> None:
    rank = len(shapes[0])
    axis = axis % rank
    refs = tuple(NodeRef(f"u{i}") for i in range(len(shapes)))
    node = ConcatNode("c", refs, axis=axis, pad=True, pad_value=-7.0)
    arrays = [np.full((batch, *s), float(i + 1)) for i, s in enumerate(shapes)]
    for a in arrays:
        a.flags.writeable = False
    copies = [a.copy() for a in arrays]
    out = node.combine(arrays)
    assert out.shape == (batch, *node.output_shape(shapes))
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)
    # every input's values appear in its slot; the rest of the slot is padding
    offset = 0
    for i, s in enumerate(shapes):
        index = [slice(None)] + [slice(0, d) for d in s]
        index[axis + 1] = slice(offset, offset + s[axis])
        assert np.all(out[tuple(index)] == i + 1)
        offset += s[axis]
    assert np.count_nonzero(out == -7.0) == out.size - sum(batch * int(np.prod(s)) for s in shapes)


def test_concat_combine_worked_example() -> None:
    node = ConcatNode("c", (A, B), axis=0, pad=True, pad_value=0.0)
    x = np.arange(10.0).reshape(1, 1, 10)
    y = np.ones((1, 1, 5))
    out = node.combine([x, y])
    assert out.shape == (1, 2, 10)
    np.testing.assert_array_equal(out[0, 0], np.arange(10.0))
    np.testing.assert_array_equal(out[0, 1], [1.0] * 5 + [0.0] * 5)


def test_combine_rejects_different_batch_sizes() -> None:
    with pytest.raises(ShapeError, match="same number of samples"):
        ConcatNode("c", (A, B)).combine([np.zeros((2, 3)), np.zeros((3, 3))])


def test_merge_combine() -> None:
    x, y = np.full((2, 3), 1.0), np.full((2, 3), 3.0)
    np.testing.assert_array_equal(MergeNode("m", (A, B)).combine([x, y]), np.full((2, 3), 4.0))
    np.testing.assert_array_equal(
        MergeNode("m", (A, B), strategy="mean").combine([x, y]), np.full((2, 3), 2.0)
    )
    stacked = MergeNode("m", (A, B), strategy="stack").combine([x, y])
    assert stacked.shape == (2, 2, 3)
    np.testing.assert_array_equal(stacked[:, 1], y)


def test_combine_with_torch_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    xs = [np.arange(6.0).reshape(2, 1, 3), np.arange(4.0).reshape(2, 2, 1)]
    for node in (
        ConcatNode("c", (A, B), axis=0, pad=True, pad_value=-1.0),
        ConcatNode("c", (A, B), axis=1, pad=True),
    ):
        expected = node.combine(xs)
        got = node.combine([torch.from_numpy(x) for x in xs])
        assert isinstance(got, torch.Tensor)
        np.testing.assert_array_equal(got.numpy(), expected)
    ys = [np.ones((2, 3)), np.full((2, 3), 2.0)]
    for strategy in ("sum", "mean", "stack"):
        node = MergeNode("m", (A, B), strategy=strategy)
        got = node.combine([torch.from_numpy(y) for y in ys])
        np.testing.assert_array_equal(got.numpy(), node.combine(ys))


def test_target_and_tag_strategies() -> None:
    t1, t2 = np.zeros(2), np.ones((2, 2))
    assert ConcatNode("c", (A, B)).combine_targets([t1, t2]).shape == (2, 3)
    assert ConcatNode("c", (A, B), targets="first").combine_targets([t1, t2]) is t1
    assert ConcatNode("c", (A, B), targets="last").combine_targets([t1, t2]) is t2
    assert ConcatNode("c", (A, B), targets=B).combine_targets([t1, t2]) is t2
    assert ConcatNode("c", (A, B)).combine_targets([None, None]) is None
    np.testing.assert_array_equal(
        ConcatNode("c", (A, B), targets="mean").combine_targets([np.zeros(2), np.full(2, 4.0)]), [2.0, 2.0]
    )
    assert MergeNode("m", (A, B)).combine_tags([{"k": 1}, {"k": 2, "j": 3}]) == {"k": 1, "j": 3}
    assert MergeNode("m", (A, B), tags=B).combine_tags([{"k": 1}, {"k": 2}]) == {"k": 2}


def test_a_reference_from_a_featureset_checks_its_keys() -> None:
    # issue 11.16: FeatureSetRef.of(fs, features=...) instead of spelling the label and keys again
    # (issue 12: fs.ref was removed, the data layer imports no graph)
    fs = mml.FeatureSet.from_dict(
        {"v": np.zeros((4, 3)), "t": np.zeros(4), "y": np.zeros(4), "g": np.arange(4)},
        features=["v", "t"],
        targets="y",
        tags="g",
        label="cells",
    )
    assert FeatureSetRef.of(fs, features="v", targets="y") == FeatureSetRef(
        "cells", features=("v",), targets=("y",)
    )
    assert FeatureSetRef.of(fs, tags=["g"], rep="raw") == FeatureSetRef("cells", tags=("g",), rep="raw")
    assert FeatureSetRef.of(fs) == FeatureSetRef("cells")
    with pytest.raises(GraphError, match=r"no targets key\(s\) 'soh'.*'y'"):
        FeatureSetRef.of(fs, targets="soh")
    with pytest.raises(GraphError, match="takes a FeatureSet"):
        FeatureSetRef.of("cells")
