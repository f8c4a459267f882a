"""ConcatNode and MergeNode: shapes, combine against numpy/torch, targets, tags, messages (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

from mml.errors import GraphError, ShapeError
from mml.graph import ConcatNode, FeatureSetRef, MergeNode, NodeRef

A, B, C = NodeRef("a"), NodeRef("b"), NodeRef("c")
FS = FeatureSetRef("fs")


def _raises(exc: type[Exception], fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_construction_checks_in_full() -> None:
    assert _raises(GraphError, ConcatNode, "c", (A, 3)) == (
        "ConcatNode 'c': every upstream must be a FeatureSetRef or a NodeRef, got 3"
    )
    for ups in ((A,), A, FS):
        assert _raises(GraphError, ConcatNode, "c", ups) == (
            "ConcatNode 'c' joins two or more upstreams, got 1; a single input needs no ConcatNode (connect it directly)"
        )
    assert _raises(GraphError, MergeNode, "m", (B,)) == (
        "MergeNode 'm' joins two or more upstreams, got 1; a single input needs no MergeNode (connect it directly)"
    )
    assert _raises(GraphError, ConcatNode, "c", (A, FS), targets=C) == (
        "ConcatNode 'c': targets=NodeRef(label='c') must name one of its upstreams ('a', FeatureSet 'fs')"
    )
    assert _raises(GraphError, ConcatNode, "c", (A, B), targets="sum") == (
        "ConcatNode 'c': targets must be one of 'concat', 'first', 'last', 'mean' or a NodeRef to one of its "
        "upstreams, got 'sum'"
    )
    assert _raises(GraphError, MergeNode, "m", (A, B), tags="concat") == (
        "MergeNode 'm': tags must be one of 'merge', 'first', 'last' or a NodeRef to one of its upstreams, got 'concat'"
    )
    assert _raises(GraphError, MergeNode, "m", (A, B), strategy="max") == (
        "MergeNode 'm': strategy must be one of 'sum', 'mean', 'stack', got 'max'"
    )
    for t in ("concat", "first", "last", "mean", B):
        assert ConcatNode("c", (A, B), targets=t).targets == t
    for t in ("merge", "first", "last", A):
        assert MergeNode("m", (A, B), tags=t).tags == t
    assert ConcatNode("c", (A, B), targets={"label": "b"}).targets == B  # from a document
    assert ConcatNode("c", [A, B, C]).upstreams == (A, B, C)
    n = ConcatNode("c", (A, B))
    assert (n.axis, n.pad, n.pad_value, n.targets, n.tags) == (-1, False, 0.0, "concat", "merge")
    m = MergeNode("m", (A, B))
    assert (m.strategy, m.targets, m.tags) == ("sum", "first", "merge")
    assert n.trainable is False and m.trainable is False
    assert n.upstream_refs == (A, B)
    assert (n.min_upstreams, n.max_upstreams, m.min_upstreams, m.max_upstreams) == (2, None, 2, None)
    assert (n.kind, m.kind) == ("node.concat", "node.merge")


def test_concat_output_shapes() -> None:
    assert ConcatNode("c", (A, B)).output_shape([(1, 8), (1, 16)]) == (1, 24)
    assert ConcatNode("c", (A, B, C), axis=0).output_shape([(1, 4), (2, 4), (3, 4)]) == (6, 4)
    assert ConcatNode("c", (A, B), axis=-2).output_shape([(1, 4), (2, 4)]) == (3, 4)
    assert ConcatNode("c", (A, B), axis=1).output_shape([(2, 3, 4), (2, 5, 4)]) == (2, 8, 4)
    assert ConcatNode("c", (A, B)).output_shape([(3,), (4,)]) == (7,)
    assert ConcatNode("c", (A, B), axis=0, pad=True).output_shape([(1, 10), (1, 5)]) == (2, 10)
    assert ConcatNode("c", (A, B), axis=0, pad=True).output_shape([(1, 5, 2), (1, 10, 3)]) == (2, 10, 3)
    assert ConcatNode("c", (A, B), axis=2).output_shape([[1, 2, 3], [1, 2, np.int64(4)]]) == (1, 2, 7)  # type: ignore[list-item]


def test_concat_shape_errors_in_full() -> None:
    n = ConcatNode("c", (A, B))
    assert (
        _raises(ShapeError, n.output_shape, [(1,)]) == "ConcatNode 'c' has 2 upstreams but got 1 input shapes"
    )
    assert _raises(ShapeError, ConcatNode("c", (A, FS, B)).output_shape, [(1, 2), (1, 2), (3,)]) == (
        "ConcatNode 'c': upstream 'a' has per-sample shape (1, 2) (2 axes) but upstream 'b' has (3,) (1 axes); "
        "reshape one of them (e.g. flatten) so the ranks agree"
    )
    for axis in (2, -3):
        assert _raises(ShapeError, ConcatNode("c", (A, B), axis=axis).output_shape, [(1, 2), (1, 3)]) == (
            f"ConcatNode 'c': axis {axis} is out of range for per-sample shapes with 2 axes ((1, 2), (1, 3)); "
            "use an axis in [-2, 1] (axis 0 is the first non-batch axis)"
        )
    assert _raises(
        ShapeError, ConcatNode("c", (A, B, C), axis=0).output_shape, [(1, 10), (1, 10), (1, 5)]
    ) == (
        "ConcatNode 'c' cannot concatenate along axis 0: upstream 'a' has per-sample shape (1, 10) but upstream "
        "'c' has (1, 5), which differ on axis 1; pass pad=True to pad to the larger size, or reshape the inputs"
    )


def test_concat_combine_against_numpy() -> None:
    rng = np.random.default_rng(0)
    x, y, z = rng.random((4, 2, 3)), rng.random((4, 2, 5)), rng.random((4, 1, 3))
    np.testing.assert_array_equal(ConcatNode("c", (A, B)).combine([x, y]), np.concatenate([x, y], axis=2))
    np.testing.assert_array_equal(
        ConcatNode("c", (A, B), axis=0).combine([x, z]), np.concatenate([x, z], axis=1)
    )
    np.testing.assert_array_equal(
        ConcatNode("c", (A, B), axis=-2).combine([x, z]), np.concatenate([x, z], axis=1)
    )
    padded = ConcatNode("c", (A, B), axis=0, pad=True, pad_value=-1.0).combine([x, y])
    expected = np.concatenate([np.pad(x, [(0, 0), (0, 0), (0, 2)], constant_values=-1.0), y], axis=1)
    np.testing.assert_array_equal(padded, expected)
    assert padded.shape == (4, 4, 5)
    assert ConcatNode("c", (A, B), pad=True).combine([x, x]).shape == (4, 2, 6)
    x0 = x.copy()
    ConcatNode("c", (A, B), axis=0, pad=True).combine([x, y])
    np.testing.assert_array_equal(x, x0)


def test_combine_errors_in_full() -> None:
    n = ConcatNode("c", (A, B))
    assert (
        _raises(ShapeError, n.combine, [np.zeros((2, 1))])
        == "ConcatNode 'c' has 2 upstreams but got 1 arrays"
    )
    assert _raises(ShapeError, n.combine, [np.zeros((2, 1)), np.zeros((3, 1))]) == (
        "ConcatNode 'c': upstream 'b' has batch shape (3, 1) but upstream 'a' has (2, 1); batches must have the "
        "same number of samples"
    )
    assert _raises(ShapeError, MergeNode("m", (A, B)).combine, [np.zeros((2,)), np.zeros(())]) == (
        "MergeNode 'm': upstream 'b' has batch shape () but upstream 'a' has (2,); batches must have the same "
        "number of samples"
    )


def test_merge_shapes_and_combine_against_numpy() -> None:
    rng = np.random.default_rng(1)
    x, y, z = rng.random((3, 4)), rng.random((3, 4)), rng.random((3, 4))
    assert MergeNode("m", (A, B)).output_shape([(4,), (4,)]) == (4,)
    assert MergeNode("m", (A, B, C), strategy="stack").output_shape([(4,), (4,), (4,)]) == (3, 4)
    assert MergeNode("m", (A, B), strategy="mean").output_shape([[2, 2], [2, 2]]) == (2, 2)
    np.testing.assert_allclose(MergeNode("m", (A, B, C)).combine([x, y, z]), x + y + z)
    np.testing.assert_allclose(MergeNode("m", (A, B, C), strategy="mean").combine([x, y, z]), (x + y + z) / 3)
    np.testing.assert_array_equal(
        MergeNode("m", (A, B, C), strategy="stack").combine([x, y, z]), np.stack([x, y, z], 1)
    )
    assert _raises(
        ShapeError, MergeNode("m", (A, FS, B), strategy="mean").output_shape, [(2,), (2,), (3,)]
    ) == (
        "MergeNode 'm' (mean) needs inputs of one shape: upstream 'a' has per-sample shape (2,) but upstream 'b' "
        "has (3,); use a ConcatNode (with pad=True) or reshape the inputs"
    )
    assert _raises(ShapeError, MergeNode("m", (A, B)).combine, [x, rng.random((3, 5))]) == (
        "MergeNode 'm' (sum) needs inputs of one shape: upstream 'a' has per-sample shape (4,) but upstream 'b' "
        "has (5,); use a ConcatNode (with pad=True) or reshape the inputs"
    )
    assert (
        _raises(ShapeError, MergeNode("m", (A, B)).output_shape, [(4,)])
        == "MergeNode 'm' has 2 upstreams but got 1 input shapes"
    )


def test_combine_with_torch_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, y = rng.random((4, 2, 3)), rng.random((4, 1, 5))
    node = ConcatNode("c", (A, B), axis=0, pad=True, pad_value=7.0)
    got = node.combine([torch.from_numpy(x), torch.from_numpy(y)])
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), node.combine([x, y]))
    expected = np.concatenate(
        [np.pad(x, [(0, 0), (0, 0), (0, 2)], constant_values=7.0), np.pad(y, [(0, 0), (0, 0), (0, 0)])],
        axis=1,
    )
    np.testing.assert_array_equal(got.numpy(), expected)
    tall = ConcatNode("c", (A, B), axis=1, pad=True, pad_value=-2.0)
    got = tall.combine([torch.from_numpy(x), torch.from_numpy(y)]).numpy()
    np.testing.assert_array_equal(
        got, np.concatenate([x, np.pad(y, [(0, 0), (0, 1), (0, 0)], constant_values=-2.0)], axis=2)
    )
    s = MergeNode("m", (A, B), strategy="stack").combine([torch.ones(2, 3), torch.zeros(2, 3)])
    assert isinstance(s, torch.Tensor)
    np.testing.assert_array_equal(s.numpy(), np.stack([np.ones((2, 3)), np.zeros((2, 3))], 1))
    t = ConcatNode("c", (A, B)).combine_targets([torch.ones(2), torch.zeros(2, 2)])
    assert isinstance(t, torch.Tensor) and t.tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]


def test_combine_targets_by_strategy() -> None:
    p, q, r = np.array([1.0, 2.0]), np.array([[3.0, 4.0], [5.0, 6.0]]), np.array([7.0, 8.0])
    ups = (A, B, C)
    assert ConcatNode("c", ups).combine_targets([p, q, r]).tolist() == [
        [1.0, 3.0, 4.0, 7.0],
        [2.0, 5.0, 6.0, 8.0],
    ]
    assert ConcatNode("c", ups).combine_targets([None, q, None]).tolist() == q.tolist()
    assert ConcatNode("c", ups).combine_targets([None, None, None]) is None
    assert ConcatNode("c", ups, targets="first").combine_targets([p, q, r]) is p
    assert ConcatNode("c", ups, targets="first").combine_targets([None, q, r]) is None
    assert ConcatNode("c", ups, targets="last").combine_targets([p, q, r]) is r
    assert ConcatNode("c", ups, targets=B).combine_targets([p, q, r]) is q
    assert ConcatNode("c", ups, targets=C).combine_targets([p, q, r]) is r
    assert MergeNode("m", ups, targets="mean").combine_targets([p, None, r]).tolist() == [4.0, 5.0]
    assert MergeNode("m", ups, targets="mean").combine_targets([p, q[0], r]).tolist() == [11 / 3, 14 / 3]
    assert MergeNode("m", ups).combine_targets([p, q, r]) is p
    assert _raises(GraphError, MergeNode("m", ups).combine_targets, [p, q]) == (
        "MergeNode 'm' has 3 upstreams but got 2 target values"
    )


def test_combine_tags_by_strategy() -> None:
    t1, t2, t3 = {"id": 1}, {"id": 2, "site": 3}, {"x": 4, "site": 5}
    ups = (A, B, C)
    assert ConcatNode("c", ups).combine_tags([t1, t2, t3]) == {"id": 1, "site": 3, "x": 4}
    assert list(ConcatNode("c", ups).combine_tags([t3, t1, t2])) == ["x", "site", "id"]
    assert ConcatNode("c", ups, tags="first").combine_tags([t1, t2, t3]) is t1
    assert ConcatNode("c", ups, tags="last").combine_tags([t1, t2, t3]) is t3
    assert MergeNode("m", ups, tags=B).combine_tags([t1, t2, t3]) is t2


def test_reroute_and_with_upstreams() -> None:
    d = NodeRef("d")
    n = ConcatNode("c", (A, B, A), targets=B, tags=A)
    assert n.reroute("x", [d]) is n
    r = n.reroute("a", [d])
    assert (r.upstreams, r.targets, r.tags) == ((d, B, d), B, d)
    r = n.reroute("b", [d])
    assert (r.upstreams, r.targets, r.tags) == ((A, d, A), d, A)
    assert ConcatNode("c", (A, B)).reroute("a", [C, d]).upstreams == (C, d, B)
    assert _raises(GraphError, ConcatNode("c", (A, B), targets=A).reroute, "a", [C, d]) == (
        "ConcatNode 'c' takes its targets from 'a', which would be replaced by 'c', 'd'; set targets= to another "
        "strategy (e.g. 'first') first"
    )
    assert _raises(GraphError, MergeNode("m", (A, B), tags=B).reroute, "b", [FS]) == (
        "MergeNode 'm' takes its tags from 'b', which would be replaced by FeatureSet 'fs'; set tags= to another "
        "strategy (e.g. 'first') first"
    )
    m = MergeNode("m", (A, B), strategy="mean").with_upstreams([C, d])
    assert (m.upstreams, m.strategy) == ((C, d), "mean")


def test_ops_are_chosen_by_the_array_type() -> None:
    from mml.graph._join import _Ops

    assert _Ops(np.zeros(1)).name == "numpy"
    assert _Ops([1.0]).name == "numpy"
    torch = pytest.importorskip("torch")
    assert _Ops(torch.zeros(1)).name == "torch"


def test_combine_with_tensorflow_matches_numpy() -> None:
    tf = pytest.importorskip("tensorflow")
    from mml.graph._join import _Ops

    rng = np.random.default_rng(3)
    x, y = rng.random((3, 2, 3)).astype(np.float32), rng.random((3, 1, 5)).astype(np.float32)
    assert _Ops(tf.constant(x)).name == "tensorflow"
    keras = pytest.importorskip("keras")
    v = keras.Variable(x)
    assert _Ops(v).name == "tensorflow"
    np.testing.assert_array_equal(_Ops(v).concat([v, v], 1).numpy(), np.concatenate([x, x], 1))
    node = ConcatNode("c", (A, B), axis=0, pad=True, pad_value=7.0)
    got = node.combine([tf.constant(x), tf.constant(y)])
    assert isinstance(got, tf.Tensor)
    np.testing.assert_array_equal(got.numpy(), node.combine([x, y]))
    expected = np.concatenate([np.pad(x, [(0, 0), (0, 0), (0, 2)], constant_values=7.0), y], axis=1)
    np.testing.assert_array_equal(got.numpy(), expected)
    s = MergeNode("m", (A, B), strategy="stack").combine([tf.constant(x), tf.constant(x + 1)])
    np.testing.assert_array_equal(s.numpy(), np.stack([x, x + 1], 1))
    t = ConcatNode("c", (A, B)).combine_targets([tf.constant([1.0, 2.0]), tf.constant([[3.0], [4.0]])])
    np.testing.assert_array_equal(t.numpy(), [[1.0, 3.0], [2.0, 4.0]])


def test_targets_with_more_axes_concatenate_on_the_last() -> None:
    p, q = np.zeros((2, 2, 1)), np.ones((2, 2, 3))
    out = ConcatNode("c", (A, B)).combine_targets([p, q])
    np.testing.assert_array_equal(out, np.concatenate([p, q], axis=-1))


def test_every_other_axis_is_checked_and_padded() -> None:
    # the first other axis agrees, the second does not
    assert _raises(ShapeError, ConcatNode("c", (A, B)).output_shape, [(2, 3, 4), (2, 5, 4)]) == (
        "ConcatNode 'c' cannot concatenate along axis -1: upstream 'a' has per-sample shape (2, 3, 4) but "
        "upstream 'b' has (2, 5, 4), which differ on axis 1; pass pad=True to pad to the larger size, or reshape "
        "the inputs"
    )
    assert ConcatNode("c", (A, B), pad=True).output_shape([(2, 3, 4), (2, 5, 4)]) == (2, 5, 8)
    assert ConcatNode("c", (A, B), axis=0, pad=True).output_shape([(1, 2, 3), (1, 5, 3)]) == (2, 5, 3)
