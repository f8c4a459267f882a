"""Malicious artifacts: loading never imports or calls what the caller did not trust.

Every attack edits a saved artifact as an attacker would (hashes and sizes recomputed) and
asserts both the error and that the side effect did not happen (a marker file, sys.modules).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mml
from tests.io.helpers import edit_config, rehash

torch = pytest.importorskip("torch")

EVIL = """
import pathlib, attrs
pathlib.Path({marker!r}).write_text("imported")

@attrs.frozen
class Evil:
    x: int = 0
    def __attrs_post_init__(self):
        pathlib.Path({marker!r}).write_text("constructed")

def factory(**kw):
    pathlib.Path({marker!r}).write_text("called")
    import torch
    return torch.nn.Linear(3, 1)
"""


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A module on sys.path whose import, construction and call each write a marker file."""
    marker = tmp_path / "marker"
    pkg = tmp_path / "site"
    pkg.mkdir()
    name = f"evil_mod_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    (pkg / f"{name}.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(pkg))
    yield name, marker
    sys.modules.pop(name, None)


def _fs(n=24):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    fs = mml.FeatureSet.from_dict(
        {"x": x, "y": x.sum(1, keepdims=True)}, features="x", targets="y", label="toy"
    )
    return fs.with_split("train", np.arange(n // 2)).with_split("val", np.arange(n // 2, n))


def _experiment(model=None, loss="mse", metrics=()):
    from mml.graph import FeatureSetRef, ModelGraph, ModelNode
    from mml.training import AppliedLoss, Experiment, TrainPhase

    model = model or mml.models.SequentialMLP(hidden=(4,))
    graph = ModelGraph.of(ModelNode("mlp", model, FeatureSetRef("toy"), optimizer=mml.optim.adam(1e-2)))
    cbs = (mml.callbacks.Evaluation(split="val", metrics=metrics),) if metrics else ()
    phase = TrainPhase.simple(
        "fit",
        featureset="toy",
        heads=["mlp"],
        losses=AppliedLoss(mml.training.Loss(loss), "mlp"),
        n_epochs=1,
        sampler=mml.SimpleSampler(8),
        callbacks=cbs,
    )
    return Experiment({"toy": _fs()}, graph, phase)


def _set(doc, path, value):
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value


def _find(doc, key):
    """Paths of every mapping entry named ``key``."""
    out, stack = [], [(doc, ())]
    while stack:
        x, where = stack.pop()
        if isinstance(x, dict):
            for k, v in x.items():
                if k == key:
                    out.append((*where, k))
                stack.append((v, (*where, k)))
        elif isinstance(x, list):
            stack.extend((v, (*where, i)) for i, v in enumerate(x))
    return out


CALLABLE_ATTACKS = {
    # where in an Experiment document, what to put there
    "loss_popen": ("fn", "subprocess:Popen"),
    "loss_system": ("fn", "os:system"),
    "factory_check_call": ("factory", "subprocess:check_call"),
    "metric_system": ("metrics", ["os:system"]),
}


def _attack_experiment(tmp_path, name):
    key, value = CALLABLE_ATTACKS[name]
    model = mml.models.TorchModule(factory="torch.nn:Linear", kwargs={"in_features": 3, "out_features": 1})
    exp = _experiment(model=model if key == "factory" else None, metrics=("mae",) if key == "metrics" else ())
    p = mml.save(exp, tmp_path / name)

    def edit(cfg):
        for path in _find(cfg["value"], key):
            _set(cfg["value"], path, value)
        if key == "fn":
            for path in _find(cfg["value"], "kwargs"):
                if path[-2] == "loss":
                    _set(cfg["value"], path, {"args": ["touch", str(tmp_path / "marker")]})

    edit_config(p, edit)
    return p


@pytest.mark.parametrize("name", sorted(CALLABLE_ATTACKS))
def test_callables_in_experiments_are_refused(tmp_path, name):
    p = _attack_experiment(tmp_path, name)
    bad = CALLABLE_ATTACKS[name][1]
    bad = bad[0] if isinstance(bad, list) else bad
    with pytest.raises(mml.UntrustedTypeError) as info:
        mml.load(p)
    assert bad in info.value.untrusted and info.value.trusted_argument == [bad]
    assert f"trusted=[{bad!r}]" in str(info.value)
    assert not (tmp_path / "marker").exists()


def test_import_time_side_effects_never_run(tmp_path, evil):
    name, marker = evil
    p = mml.save(mml.random.key(1), tmp_path / "k")
    edit_config(p, lambda cfg: {**cfg, "type": f"{name}:Evil", "kind": None, "value": {"x": 1}})
    with pytest.raises(mml.UntrustedTypeError, match=f"{name}:Evil"):
        mml.load(p)
    assert not marker.exists() and name not in sys.modules
    # trusted, it loads (and runs its code: that is what trusting means)
    assert mml.load(p, trusted=[f"{name}:*"]).x == 1
    assert marker.read_text() == "constructed"


def test_a_boxed_optimizer_state_type_is_checked(tmp_path, evil):
    name, marker = evil
    exp = _experiment()
    state, _ = mml.run(exp, mml.init(exp, 0), progress=False)
    p = mml.save(state, tmp_path / "s")

    def edit(cfg):
        paths = [pth for pth in _find(cfg["value"], "type") if "opt_states" in pth]
        assert paths
        _set(cfg["value"], paths[0], f"{name}:Evil")

    edit_config(p, edit)
    with pytest.raises(mml.UntrustedTypeError) as info:
        mml.load(p)
    assert info.value.untrusted == (f"{name}:Evil",)
    assert not marker.exists() and name not in sys.modules


def test_every_untrusted_name_is_listed_at_once(tmp_path, evil):
    name, marker = evil
    p = _attack_experiment(tmp_path, "loss_popen")
    edit_config(
        p,
        lambda cfg: _set(
            cfg["value"], _find(cfg["value"], "model")[0], {"kind": "x", "type": f"{name}:Evil"}
        ),
    )
    with pytest.raises(mml.UntrustedTypeError) as info:
        mml.load(p)
    assert set(info.value.untrusted) == {"subprocess:Popen", f"{name}:Evil"}
    assert not marker.exists()


def test_a_user_factory_loads_when_trusted(tmp_path, evil):
    name, marker = evil
    exp = _experiment(model=mml.models.TorchModule(factory=f"{name}:factory"))
    marker.unlink()  # building the spec above imported the module (the caller's own code)
    sys.modules.pop(name)
    p = mml.save(exp, tmp_path / "e")
    with pytest.raises(mml.UntrustedTypeError, match=rf"trusted=\['{name}:factory'\]"):
        mml.load(p)
    assert not marker.exists()
    back = mml.load(p, trusted=[f"{name}:factory"])
    assert back.graph == exp.graph
    assert isinstance(mml.io.try_load(p, trusted=[f"{name}:*"]).unwrap(), mml.Experiment)


def test_main_module_factories_say_what_failed(tmp_path):
    """A factory defined in __main__ cannot be loaded in a new process: the error says why."""
    p = mml.save(
        _experiment(
            model=mml.models.TorchModule(
                factory="torch.nn:Linear", kwargs={"in_features": 3, "out_features": 1}
            )
        ),
        tmp_path / "e",
    )

    def edit(cfg):
        _set(cfg["value"], _find(cfg["value"], "factory")[0], "__main__:make")

    edit_config(p, edit)
    with pytest.raises(mml.UntrustedTypeError, match=r"trusted=\['__main__:make'\]"):
        mml.load(p)
    with pytest.raises(mml.ArtifactError) as info:
        mml.load(p, trusted=["__main__:make"])
    msg = str(info.value)
    assert "$.value.graph.nodes[0].model" in msg and "__main__" in msg and "has no attribute" in msg
    assert "cannot be imported by another process" in msg


SUBPROCESS = textwrap.dedent(
    """
    import json, sys
    import mml
    out = {}
    for path in sys.argv[1:]:
        try:
            mml.load(path)
            out[path] = "loaded"
        except mml.MMLError as exc:
            out[path] = type(exc).__name__
        out[path + ":modules"] = sorted(m for m in ("this", "antigravity", "webbrowser") if m in sys.modules)
    print(json.dumps(out))
    """
)


def test_stdlib_modules_with_side_effects_are_never_imported(tmp_path):
    paths = []
    for mod in ("this", "antigravity"):
        p = mml.save(mml.random.key(1), tmp_path / mod)
        edit_config(p, lambda cfg, mod=mod: {**cfg, "type": f"{mod}:X"})
        paths.append(str(p))
    p = mml.save(mml.random.key(1), tmp_path / "boxed")
    paths.append(str(p))
    res = subprocess.run(
        [sys.executable, "-c", SUBPROCESS, *paths],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BROWSER": "true"},
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert "Zen of Python" not in res.stdout
    for path in paths[:2]:
        assert out[path] == "UntrustedTypeError" and out[path + ":modules"] == []
    assert out[paths[2]] == "loaded"


# -- files ---------------------------------------------------------------------------------


def _saved_fs(tmp_path):
    return mml.save(_fs(), tmp_path / "a")


def test_absolute_and_parent_paths_in_the_manifest(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    for name in (str(outside), "../outside.txt", "tables/../../outside.txt", "./config.json", "a//b"):
        p = _saved_fs(tmp_path)
        m = json.loads((p / "manifest.json").read_text())
        m["files"][name] = "0" * 64
        m["sizes"][name] = 6
        (p / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(mml.ArtifactError, match="relative, normalised"):
            mml.load(p)


def test_symlinks_are_refused(tmp_path):
    p = _saved_fs(tmp_path)
    outside = tmp_path / "outside.arrow"
    target = next(iter(sorted((p / "tables").iterdir())))
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)
    rehash(p)
    with pytest.raises(mml.ArtifactError, match="symbolic link"):
        mml.load(p)
    with pytest.raises(mml.ArtifactError, match="symbolic link"):
        mml.io.read_document(p)


def test_unlisted_files_at_any_depth(tmp_path):
    for rel in ("evil.py", "tables/manifest.json", "tables/deep/x.arrow", "sub/manifest.json"):
        p = _saved_fs(tmp_path)
        (p / rel).parent.mkdir(parents=True, exist_ok=True)
        (p / rel).write_text("{}")
        with pytest.raises(mml.ArtifactError, match=r"not listed|does not list"):
            mml.load(p)


def test_files_larger_than_the_manifest_says_are_refused_before_reading(tmp_path, monkeypatch):
    p = _saved_fs(tmp_path)
    big = p / "config.json"
    with open(big, "ab") as f:  # sparse: 4 GiB on paper, nothing on disk
        f.truncate(4 << 30)
    import mml.io._snapshot as snap

    real = snap.hasher

    def checked(alg, size=0):
        assert size < 1 << 30, "started hashing (reading) an oversized file"
        return real(alg, size)

    monkeypatch.setattr(snap, "hasher", checked)
    with pytest.raises(mml.ArtifactError, match="the manifest says"):
        mml.load(p)


def test_old_manifests_without_sizes_still_load(tmp_path):
    p = _saved_fs(tmp_path)
    m = json.loads((p / "manifest.json").read_text())
    del m["sizes"]
    (p / "manifest.json").write_text(json.dumps(m))
    assert mml.load(p) == _fs()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format_version", 0, "not an int from 1"),
        ("format_version", -7, "not an int from 1"),
        ("format_version", True, "not an int from 1"),
        ("format_version", "1", "not an int from 1"),
        ("format_version", 99, "upgrade mml"),
        ("hash", "md5", "names hash .md5."),
        ("type", 1, "is not 'package.module:Name'"),
        ("type", "mml.random:Key", "tampered"),
        ("type", "not a path", "is not 'package.module:Name'"),
        ("kind", 3, "kind 3 is not a string"),
        ("mml_version", [1], "is not a string"),
        ("files", [], "files is not a mapping"),
        ("sizes", {"config.json": -1}, "sizes is not a mapping"),
    ],
)
def test_every_manifest_field_is_validated(tmp_path, field, value, message):
    p = _saved_fs(tmp_path)
    m = json.loads((p / "manifest.json").read_text())
    m[field] = value
    (p / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(mml.ArtifactError, match=message):
        mml.load(p)


def test_deep_nesting_is_an_artifact_error(tmp_path):
    for depth in (300, 100_000):
        p = mml.save(mml.random.key(1), tmp_path / f"k{depth}")
        nested = "[" * depth + "]" * depth
        text = (p / "config.json").read_text().replace('"value": {', f'"deep": {nested}, "value": {{', 1)
        (p / "config.json").write_text(text)
        rehash(p)
        with pytest.raises(mml.ArtifactError, match="nested"):
            mml.load(p)


def test_type_one_and_wrong_shapes_name_the_json_path(tmp_path):
    p = mml.save(mml.random.key(1), tmp_path / "k")
    edit_config(p, lambda cfg: {**cfg, "type": 1})
    with pytest.raises(mml.ArtifactError, match=r"'package\.module:Name'"):
        mml.load(p)
    exp = _experiment()
    state = mml.init(exp, 0)
    cases = {
        "model kind": (lambda v: _set(v, _find(v, "model")[0] + ("kind",), "model.nope"), "model.nope"),
        "string as tuple": (lambda v: _set(v, _find(v, "hidden")[0], "64"), "expected a list, got str"),
        "extra key": (
            lambda v: _set(v, (*_find(v, "hidden")[0][:-1], "hiden"), [4]),
            "unknown key; did you mean 'hidden'?",
        ),
        "type one": (lambda v: _set(v, _find(v, "model")[0] + ("type",), 1), "package.module:Name"),
        "dict for a component": (
            lambda v: _set(v, _find(v, "key")[0], {"a": 1}),
            "$.value.key.a: unknown key",
        ),
    }
    for label, (edit, message) in cases.items():
        p = mml.save(state if label.startswith("dict") else exp, tmp_path / label.replace(" ", "_"))
        edit_config(p, lambda cfg, edit=edit: edit(cfg["value"]))
        with pytest.raises(mml.ArtifactError) as info:
            mml.load(p)
        assert message in str(info.value), (label, str(info.value))
        assert "$.value" in str(info.value) or label == "type one", label
