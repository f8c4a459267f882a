from __future__ import annotations

from collections.abc import Mapping

import attrs
import pytest
from hypothesis import given, settings, strategies as st

import mml
from mml._fields import FrozenDict, frozen_dict
from mml.strategies import get_path, set_path


@attrs.frozen
class Leaf:
    label: str
    value: int


@attrs.frozen
class Tree:
    items: tuple[Leaf, ...] = attrs.field(converter=tuple)
    meta: Mapping[str, int] = attrs.field(converter=frozen_dict)


labels = st.text("abcdefgh", min_size=1, max_size=4)


@st.composite
def trees(draw):
    names = draw(st.lists(labels, min_size=1, max_size=4, unique=True))
    items = tuple(Leaf(n, draw(st.integers(-5, 5))) for n in names)
    meta = draw(st.dictionaries(labels, st.integers(-5, 5), min_size=1, max_size=3))
    return Tree(items, meta)


@st.composite
def tree_and_path(draw):
    tree = draw(trees())
    i = draw(st.integers(0, len(tree.items) - 1))
    kind = draw(st.sampled_from(["index", "negative", "label", "meta"]))
    if kind == "index":
        return tree, f"items.{i}.value"
    if kind == "negative":
        return tree, f"items.{i - len(tree.items)}.value"
    if kind == "label":
        return tree, f"items.{tree.items[i].label}.value"
    return tree, f"meta.{draw(st.sampled_from(sorted(tree.meta)))}"


@settings(max_examples=60)
@given(tree_and_path(), st.integers(100, 200))
def test_set_then_get_gives_the_new_value_and_the_input_is_unchanged(tp, new):
    tree, path = tp
    before = attrs.evolve(tree)
    out = set_path(tree, path, new)
    assert get_path(out, path) == new
    assert tree == before  # the input is never changed
    assert isinstance(out.meta, FrozenDict)


@settings(max_examples=40)
@given(tree_and_path())
def test_setting_the_current_value_is_the_identity(tp):
    tree, path = tp
    assert set_path(tree, path, get_path(tree, path)) == tree


@settings(max_examples=40)
@given(trees(), st.integers(100, 200))
def test_index_and_label_address_the_same_element(tree, new):
    i = len(tree.items) - 1
    by_index = set_path(tree, f"items.{i}.value", new)
    by_label = set_path(tree, f"items.{tree.items[i].label}.value", new)
    assert by_index == by_label
    # other elements keep their values
    assert by_index.items[:i] == tree.items[:i]


def test_paths_into_an_experiment(exp):
    out = set_path(exp, "plan.phases.fit.n_epochs", 3)
    assert out.phase("fit").n_epochs == 3 and exp.phase("fit").n_epochs == 1
    assert get_path(out, "plan.phases.0.n_epochs") == 3
    wider = set_path(exp, "graph.nodes.mlp.model.hidden", (16, 8))
    assert wider.graph["mlp"].model.hidden == (16, 8)
    assert exp.graph["mlp"].model.hidden == (4,)
    assert get_path(exp, "featuresets.toy") is exp.featuresets["toy"]
    assert get_path(exp, "plan.phases.val.inputs.mlp.split") == "val"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("plan.phases.fit.n_epoch", "has no field 'n_epoch'; fields: label, inputs"),
        ("plan.phases.7", "index 7 is out of range at 'plan.phases', which has 3 elements"),
        ("plan.phases.fitt", "no element has label 'fitt'; use an index 0..2 or one of the labels 'fit'"),
        ("plan.phases.fit.n_epochs.x", "cannot step into int"),
        ("featuresets.other", "has no key 'other'; keys: toy"),
        ("plan..phases", "empty segment"),
    ],
)
def test_bad_paths_name_the_problem(exp, path, message):
    with pytest.raises(
        mml.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        set_path(exp, path, 1)


def test_invalid_replacements_are_rejected_by_the_component(exp):
    with pytest.raises(mml.ConfigError, match="n_epochs must be an int >= 1"):
        set_path(exp, "plan.phases.fit.n_epochs", 0)


def test_duplicate_labels_are_ambiguous():
    tree = Tree((Leaf("a", 1), Leaf("a", 2)), {})
    with pytest.raises(mml.ConfigError, match="several elements have label 'a'"):
        get_path(tree, "items.a")
