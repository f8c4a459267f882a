"""The allow-list of import names, pinned value by value (mutation testing of ``mml/io/_trust.py``).

Fast unit tests: every pattern form and its boundaries, every built-in rule and what it
returns, each error message in full, and the JSON paths :func:`named_paths` reports.
"""

import collections
import re

import pytest

from mml.errors import ConfigError, UntrustedTypeError
from mml.io._trust import (
    NAMING_KEYS,
    TRUST_ALL,
    Trust,
    _builtin_rule,
    _public,
    _rule_holds,
    as_trust,
    check_trusted,
    import_path,
    is_trusted,
    named_paths,
    public_class_path,
    split_path,
    untrusted_names,
)

PATTERN_MESSAGE = "trusted pattern {!r} is not 'package.module:Name', 'package.module:*' or '*'"


# --- patterns ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern", ["*", "a:B", "pkg.mod:Net", "pkg.mod:*", "pkg.mod:Outer.Inner", "_p.m1:_x9"]
)
def test_well_formed_patterns_are_kept(pattern):
    assert Trust((pattern,)).patterns == (pattern,)


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "**",
        "pkg",
        "pkg.mod",
        "pkg.mod:",
        ":Net",
        "pkg.mod:*x",
        "pkg.*:Net",
        "pkg..mod:Net",
        "1pkg:Net",
        "pkg.mod:Net ",
        " *",
        "pkg.mod:Net.*",
        "pkg:mod:Net",
    ],
)
def test_malformed_patterns_are_refused_with_the_pattern_named(pattern):
    with pytest.raises(ConfigError) as info:
        Trust(("pkg.mod:*", pattern))
    assert str(info.value) == PATTERN_MESSAGE.format(pattern)


def test_a_non_string_pattern_is_refused():
    with pytest.raises(ConfigError) as info:
        Trust(["pkg.mod:*", 3])
    assert str(info.value) == PATTERN_MESSAGE.format(3)


def test_patterns_are_a_tuple_and_empty_by_default():
    assert Trust().patterns == ()
    assert Trust(["a:B", "c.d:*"]).patterns == ("a:B", "c.d:*")
    assert type(Trust(["a:B"]).patterns) is tuple
    assert Trust(p for p in ["a:B"]).patterns == ("a:B",)
    assert TRUST_ALL.patterns == ("*",)


@pytest.mark.parametrize(
    ("patterns", "path", "allowed"),
    [
        ((), "pkg.mod:Net", False),
        (("*",), "pkg.mod:Net", True),
        (("*",), "os:system", True),
        (("pkg.mod:Net",), "pkg.mod:Net", True),
        (("pkg.mod:Net",), "pkg.mod:Net2", False),
        (("pkg.mod:Net",), "pkg.mod:Ne", False),
        (("pkg.mod:Net",), "pkg.mod:Other", False),
        (("pkg.mod:*",), "pkg.mod:Net", True),
        (("pkg.mod:*",), "pkg.mod:Outer.Inner", True),
        (("pkg.mod:*",), "pkg.mod.sub:Net", False),
        (("pkg.mod:*",), "pkg:Net", False),
        (("pkg:*",), "pkg.mod:Net", False),
        (("pkg.mod:*",), "pkg.mo:Net", False),
        (("other:X", "pkg.mod:*"), "pkg.mod:Net", True),
        (("pkg.mod:Net", "other:*"), "pkg.mod:Net", True),
        (("other:X", "more:*"), "pkg.mod:Net", False),
    ],
)
def test_allows(patterns, path, allowed):
    assert Trust(patterns).allows(path) is allowed


def test_the_module_of_a_path_is_what_comes_before_the_first_colon():
    # a malformed path with two colons: its module is "a", never "a:b"
    assert Trust(("a:*",)).allows("a:b:c") is True
    assert Trust(("a.b:*",)).allows("a.b:c:d") is True


def test_as_trust_of_each_accepted_form():
    t = Trust(("a:B",))
    assert as_trust(t) is t
    assert as_trust(None) == Trust()
    assert as_trust(None).patterns == ()
    assert as_trust("pkg.mod:Net").patterns == ("pkg.mod:Net",)
    assert as_trust("*") == TRUST_ALL
    assert as_trust(["a:B", "c:*"]).patterns == ("a:B", "c:*")
    assert as_trust(iter(["a:B"])).patterns == ("a:B",)
    assert as_trust([]).patterns == ()
    with pytest.raises(ConfigError, match=re.escape(PATTERN_MESSAGE.format("nope"))):
        as_trust("nope")


# --- paths and built-in rules --------------------------------------------------------------


def test_split_path_returns_module_and_qualname():
    assert split_path("a.b.c:D.E") == ("a.b.c", "D.E")
    assert split_path("a:B", "loss") == ("a", "B")


@pytest.mark.parametrize("path", ["a.b", "a.b:", ":B", "a:B:C", "a b:C", 3, None, "a.b:C "])
def test_split_path_refuses_malformed_paths(path):
    with pytest.raises(ConfigError) as info:
        split_path(path)
    assert str(info.value) == f"a object path looks like 'package.module:Name', got {path!r}"
    with pytest.raises(ConfigError) as info:
        split_path(path, "factory")
    assert str(info.value) == f"a factory path looks like 'package.module:Name', got {path!r}"


def test_split_path_truncates_a_long_value_to_200_characters():
    path = "x" * 500
    with pytest.raises(ConfigError) as info:
        split_path(path)
    assert str(info.value) == "a object path looks like 'package.module:Name', got '" + "x" * 199


def test_public():
    assert _public(["sklearn", "linear_model"]) is True
    assert _public([]) is True
    assert _public(["sklearn", "_base"]) is False
    assert _public(["sklearn", "tests"]) is False
    assert _public(["sklearn", "utils", "tests"]) is False
    assert _public(["sklearn", "testsx"]) is True
    assert _public(["sklearn", "a_b"]) is True


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("mml.data:FeatureSet", "mml"),
        ("mml:FeatureSet", "mml"),
        ("mml.io._trust:Trust", "mml"),
        ("mml.data:Outer.Inner", "mml"),
        ("mml.data:_Private", "mml"),
        ("mml.__main__:X", None),
        ("mml.sub.__init__:X", None),
        ("mmlx.data:X", None),
        ("sklearn.linear_model:Ridge", "sklearn"),
        ("sklearn:clone", "sklearn"),
        ("sklearn.metrics:accuracy_score", "sklearn.metrics"),
        ("sklearn.metrics.pairwise:rbf_kernel", "sklearn.metrics"),
        ("sklearn.linear_model:_Ridge", None),
        ("sklearn.linear_model:Ridge.fit", None),
        ("sklearn._base:X", None),
        ("sklearn.tests:X", None),
        ("sklearn.metrics._x:f", None),
        ("sklearnx:X", None),
        ("metrics.sklearn:X", None),
        ("torch.nn:Linear", "torch.nn"),
        ("torch.nn:_Linear", None),
        ("torch.nn:Linear.forward", None),
        ("torch.nn.functional:relu", None),
        ("torch:nn", None),
        ("keras:Sequential", "keras"),
        ("keras.layers:Dense", "keras"),
        ("keras.models:Model", "keras"),
        ("keras.losses:MeanSquaredError", "keras"),
        ("keras.optimizers:Adam", None),
        ("keras.layers:_Dense", None),
        ("os:system", None),
        ("not a path", None),
        ("mml.data", None),
    ],
)
def test_builtin_rules(path, rule):
    assert _builtin_rule(path) == rule
    assert is_trusted(path, Trust()) is (rule is not None)


def test_is_trusted_falls_back_on_the_callers_patterns():
    assert is_trusted("os:system", Trust(("os:system",))) is True
    assert is_trusted("os:system", Trust(("os:*",))) is True
    assert is_trusted("os:system", TRUST_ALL) is True
    assert is_trusted("os:getcwd", Trust(("os:system",))) is False


def test_the_mml_rule_needs_an_attrs_class_of_mml():
    from mml.data import FeatureSet
    from mml.errors import ConfigError as CE

    assert _rule_holds("mml", FeatureSet) is True
    assert _rule_holds("mml", CE) is False  # a class of mml, not attrs
    assert _rule_holds("mml", _builtin_rule) is False  # a function
    assert _rule_holds("mml", collections.OrderedDict) is False


def test_the_sklearn_rules():
    from sklearn.linear_model import Ridge, ridge_regression
    from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score

    assert _rule_holds("sklearn", Ridge) is True
    assert _rule_holds("sklearn", ridge_regression) is False
    assert _rule_holds("sklearn", collections.OrderedDict) is False
    assert _rule_holds("sklearn.metrics", accuracy_score) is True
    assert _rule_holds("sklearn.metrics", ConfusionMatrixDisplay) is False  # a class
    assert _rule_holds("sklearn.metrics", ridge_regression) is False  # a function of another module
    assert _rule_holds("sklearn.metrics", "accuracy_score") is False  # not callable


def test_the_torch_rule():
    torch = pytest.importorskip("torch")
    assert _rule_holds("torch.nn", torch.nn.Linear) is True
    assert _rule_holds("torch.nn", torch.nn.Parameter) is False
    assert _rule_holds("torch.nn", torch.nn.functional.relu) is False


def test_the_keras_rule():
    keras = pytest.importorskip("keras")
    assert _rule_holds("keras", keras.layers.Dense) is True
    assert _rule_holds("keras", keras.losses.MeanSquaredError) is True
    assert _rule_holds("keras", keras.Sequential) is True
    assert _rule_holds("keras", keras.optimizers.Adam) is False
    assert _rule_holds("keras", keras.layers.Dense(1)) is False  # an instance


# --- import_path ---------------------------------------------------------------------------


def test_import_path_of_module_level_and_dotted_names():
    assert import_path("collections:OrderedDict") is collections.OrderedDict
    assert import_path("collections:OrderedDict.fromkeys") == collections.OrderedDict.fromkeys
    assert import_path("os.path:join") is __import__("os").path.join


def test_import_path_without_trust_imports_anything():
    import os

    assert import_path("os:getcwd") is os.getcwd


def test_import_path_with_trust_refuses_before_importing():
    with pytest.raises(UntrustedTypeError) as info:
        import_path("os:getcwd", trusted=Trust())
    assert info.value.untrusted == ("os:getcwd",)
    assert str(info.value) == (
        "the document names 1 untrusted type or callable (nothing was imported): 'os:getcwd'. "
        "If you trust it, pass trusted=['os:getcwd']"
    )


def test_import_path_of_a_trusted_name_skips_the_builtin_check():
    from sklearn.linear_model import ridge_regression

    # allowed by the sklearn rule from the string, but not a BaseEstimator: refused after import
    with pytest.raises(UntrustedTypeError) as info:
        import_path("sklearn.linear_model:ridge_regression", trusted=Trust())
    assert info.value.untrusted == ("sklearn.linear_model:ridge_regression",)
    # the caller trusts it: no rule check
    got = import_path("sklearn.linear_model:ridge_regression", trusted=Trust(("sklearn.linear_model:*",)))
    assert got is ridge_regression
    import os

    assert import_path("os:getcwd", trusted=Trust(("os:getcwd",))) is os.getcwd


def test_import_path_checks_builtin_rules_after_import():
    from sklearn.linear_model import Ridge

    assert import_path("sklearn.linear_model:Ridge", trusted=Trust()) is Ridge
    from mml.data import FeatureSet

    assert import_path("mml.data:FeatureSet", trusted=Trust()) is FeatureSet
    with pytest.raises(UntrustedTypeError):
        import_path("mml.errors:ConfigError", trusted=Trust())


def test_import_path_of_a_missing_module_says_what_to_check():
    with pytest.raises(ConfigError) as info:
        import_path("no_such_module_xyz.sub:Net", what="model factory")
    assert str(info.value) == (
        "cannot import module 'no_such_module_xyz.sub' of the model factory 'no_such_module_xyz.sub:Net' "
        "(ModuleNotFoundError: No module named 'no_such_module_xyz'); check the spelling, that the package "
        "is installed and on sys.path, and that it is importable by this name in a new process (a class or "
        "function defined in __main__ or a notebook is not)"
    )
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_import_path_of_a_missing_attribute_says_check_the_name():
    with pytest.raises(ConfigError) as info:
        import_path("collections:NoSuchThing.x")
    assert str(info.value) == (
        "module 'collections' has no attribute 'NoSuchThing.x' (the object 'collections:NoSuchThing.x'); "
        "check the name"
    )
    assert isinstance(info.value.__cause__, AttributeError)
    with pytest.raises(ConfigError) as info:
        import_path("collections:OrderedDict.nope", what="loss")
    assert str(info.value) == (
        "module 'collections' has no attribute 'OrderedDict.nope' (the loss 'collections:OrderedDict.nope'); "
        "check the name"
    )


def test_import_path_of_a_missing_main_attribute_explains_main():
    with pytest.raises(ConfigError) as info:
        import_path("__main__:surely_not_defined_here", what="factory")
    assert str(info.value) == (
        "module '__main__' has no attribute 'surely_not_defined_here' (the factory "
        "'__main__:surely_not_defined_here'); a class or function defined in a script run as __main__ "
        "(or a notebook) cannot be imported by another process: move it into a module and name it "
        "'mymodule:Name'"
    )


def test_import_path_refuses_a_module():
    with pytest.raises(ConfigError) as info:
        import_path("os:path", what="metric")
    assert (
        str(info.value)
        == "the metric 'os:path' names a module; name the object as 'package.module:Name' instead"
    )
    with pytest.raises(ConfigError) as info:
        import_path("os:path.sep")  # the walk would pass through a module
    assert (
        str(info.value)
        == "the object 'os:path.sep' names a module; name the object as 'package.module:Name' instead"
    )


def test_import_path_refuses_a_malformed_path_with_what():
    with pytest.raises(ConfigError) as info:
        import_path("os.system", what="loss")
    assert str(info.value) == "a loss path looks like 'package.module:Name', got 'os.system'"


# --- named_paths, untrusted_names, check_trusted --------------------------------------------


def test_naming_keys():
    assert NAMING_KEYS == ("fn", "factory", "estimator", "$estimator")


def test_named_paths_finds_every_kind_of_name_with_its_json_path():
    doc = {
        "kind": "experiment",
        "type": "a.b:Exp",
        "model": {"kind": "model.torch_module", "factory": "pkg.m:f", "type": "a.b:Model"},
        "loss": {"fn": "pkg.l:focal", "weight": 1.0},
        "estimator": "sk.x:E",
        "boxed": {"$estimator": "sk.y:F"},
        "state": {"type": "opt.s:State", "value": {"lr": "0.1:x"}},
        "untyped": {"type": "not.a:Name", "other": 1},
        "nodes": [{"kind": "k", "type": "n.o:Node"}, [{"fn": "deep.er:g"}]],
        "metrics": ["accuracy", "pkg.met:f1", 3, "x:y"],
        "plain": "has:colon",
        "fn": "nocolon",
    }
    assert named_paths(doc) == [
        ("$.boxed.$estimator", "sk.y:F"),
        ("$.estimator", "sk.x:E"),
        ("$.loss.fn", "pkg.l:focal"),
        ("$.metrics[1]", "pkg.met:f1"),
        ("$.metrics[3]", "x:y"),
        ("$.model.factory", "pkg.m:f"),
        ("$.model.type", "a.b:Model"),
        ("$.nodes[0].type", "n.o:Node"),
        ("$.nodes[1][0].fn", "deep.er:g"),
        ("$.state.type", "opt.s:State"),
        ("$.type", "a.b:Exp"),
    ]


def test_named_paths_root_and_non_lists_of_metrics():
    assert named_paths({"fn": "a:b"}, root="config") == [("config.fn", "a:b")]
    assert named_paths([{"fn": "a:b"}, {"fn": "c:d"}]) == [("$[0].fn", "a:b"), ("$[1].fn", "c:d")]
    # a metrics mapping is walked like any other value
    assert named_paths({"metrics": {"m": {"fn": "a:b"}}}) == [("$.metrics.m.fn", "a:b")]
    assert named_paths({"metrics": "a:b"}) == []
    assert named_paths({"type": "a:b"}) == []
    assert named_paths({"type": "a:b", "value": 1}) == [("$.type", "a:b")]
    assert named_paths({"type": "a:b", "value": 1, "x": 2}) == []
    assert named_paths({"kind": None, "type": "a:b"}) == [("$.type", "a:b")]
    assert named_paths({"kind": "k", "type": 3}) == []
    assert named_paths("a:b") == []
    assert named_paths(None) == []


def test_untrusted_names_keeps_only_what_trust_does_not_cover():
    doc = {"kind": "k", "type": "mml.data:FeatureSet", "fn": "pkg.l:focal", "factory": "pkg.m:f"}
    assert untrusted_names(doc, Trust()) == [("$.factory", "pkg.m:f"), ("$.fn", "pkg.l:focal")]
    assert untrusted_names(doc, Trust(("pkg.l:*",))) == [("$.factory", "pkg.m:f")]
    assert untrusted_names(doc, TRUST_ALL) == []


def test_check_trusted_names_every_untrusted_path_and_where():
    doc = {"kind": "k", "fn": "pkg.l:focal", "nodes": [{"factory": "pkg.m:f"}, {"fn": "pkg.l:focal"}]}
    with pytest.raises(UntrustedTypeError) as info:
        check_trusted(doc, None, source="the artifact /x")
    assert info.value.untrusted == ("pkg.l:focal", "pkg.m:f")
    assert str(info.value) == (
        "the artifact /x names 2 untrusted types or callables (at $.fn, $.nodes[0].factory, $.nodes[1].fn) "
        "(nothing was imported): 'pkg.l:focal', 'pkg.m:f'. If you trust them, pass trusted=['pkg.l:focal', 'pkg.m:f']"
    )
    with pytest.raises(UntrustedTypeError) as info:
        check_trusted(doc, ["pkg.l:*"])
    assert str(info.value) == (
        "the document names 1 untrusted type or callable (at $.nodes[0].factory) "
        "(nothing was imported): 'pkg.m:f'. If you trust it, pass trusted=['pkg.m:f']"
    )


def test_check_trusted_returns_the_trust():
    doc = {"kind": "k", "fn": "pkg.l:focal"}
    t = Trust(("pkg.l:focal",))
    assert check_trusted(doc, t) is t
    assert check_trusted(doc, "pkg.l:*") == Trust(("pkg.l:*",))
    assert check_trusted({"a": 1}, None) == Trust()


def test_check_trusted_imports_builtin_names_and_checks_them():
    doc = {
        "kind": "k",
        "estimator": "sklearn.linear_model:ridge_regression",
        "fn": "sklearn.metrics:accuracy_score",
    }
    with pytest.raises(UntrustedTypeError) as info:
        check_trusted(doc, None)
    assert info.value.untrusted == ("sklearn.linear_model:ridge_regression",)
    assert "(at $.estimator)" in str(info.value)
    # a name the caller trusts is not checked against the rule
    assert check_trusted(doc, ["sklearn.linear_model:ridge_regression"]).patterns == (
        "sklearn.linear_model:ridge_regression",
    )
    assert check_trusted({"kind": "k", "estimator": "sklearn.linear_model:Ridge"}, None) == Trust()


def test_check_trusted_does_not_import_when_a_name_is_untrusted(monkeypatch):
    import mml.io._trust as trust_module

    calls = []
    monkeypatch.setattr(trust_module, "import_path", lambda *a, **k: calls.append(a))
    doc = {"kind": "k", "estimator": "sklearn.linear_model:Ridge", "fn": "evil:f"}
    with pytest.raises(UntrustedTypeError) as info:
        check_trusted(doc, None)
    assert calls == []
    assert info.value.untrusted == ("evil:f",)


def test_check_trusted_passes_the_json_path_and_an_empty_trust_to_import_path(monkeypatch):
    import mml.io._trust as trust_module

    calls = []
    monkeypatch.setattr(trust_module, "import_path", lambda p, **k: calls.append((p, k)))
    check_trusted({"kind": "k", "estimator": "sklearn.linear_model:Ridge", "fn": "mine:f"}, ["mine:f"])
    assert calls == [("sklearn.linear_model:Ridge", {"what": "name at $.estimator", "trusted": Trust()})]


# --- public_class_path ---------------------------------------------------------------------


class _Outer:
    class Inner:
        pass


def test_public_class_path_is_the_shortest_importable_path():
    from sklearn.decomposition import PCA

    assert public_class_path(PCA) == "sklearn.decomposition:PCA"
    assert public_class_path(collections.OrderedDict) == "collections:OrderedDict"
    from mml.data import FeatureSet

    assert FeatureSet.__module__ != "mml"
    assert public_class_path(FeatureSet) == "mml:FeatureSet"
    assert public_class_path(_Outer.Inner) == f"{__name__}:_Outer.Inner"


def test_public_class_path_falls_back_on_the_defining_module():
    def local():
        class Local:
            pass

        return Local

    cls = local()
    assert public_class_path(cls) == f"{__name__}:{cls.__qualname__}"
    assert cls.__qualname__.endswith("<locals>.Local")
