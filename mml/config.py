"""Experiment configs: a YAML / TOML / JSON file that describes data, graph and plan.

The ``graph`` and ``plan`` sections are cattrs documents of :class:`~mml.ModelGraph` and a
phase (what ``mml.io.unstructure`` writes), with defaults left out and components named by
their ``kind`` tag alone (``kind: model.mlp``); a loss may be written as its name. The
``featuresets`` section says where each FeatureSet comes from and what is done to it:

.. code-block:: yaml

    featuresets:
      battery:
        dataset: battery            # built-in demo data (or: parquet: PATH, or: artifact: PATH)
        n_samples: 2000
        split: {kind: splitter.random, ratios: {train: 0.7, val: 0.15, test: 0.15}, seed: 0}
        transforms:
          - {scaler: per_sample_zero_start, domain: features}
          - {scaler: standard, domain: targets}

See ``examples/battery.yaml`` for a complete file and ``mml run --help``.

A config file is the user's own code: the classes and functions it names (``factory:``,
``loss:``, ``type:``) are imported as written. Everything it *reads* — ``artifact: PATH``
sources — is untrusted input, checked against ``trusted=`` like :func:`mml.load`. Every
key is checked: an unknown one is an error naming its path and the closest valid key.
Numbers such as ``1e-3`` are numbers (YAML 1.2 rules), in files and in ``--set``.

>>> cfg = {"label": "toy", "seed": 1,
...        "featuresets": {"battery": {"dataset": "battery", "n_samples": 60,
...                        "split": {"kind": "splitter.random", "ratios": {"train": 0.8, "test": 0.2}}}},
...        "graph": {"nodes": [{"kind": "node.model", "label": "lin",
...                  "model": {"kind": "model.sklearn", "estimator": "sklearn.linear_model:Ridge"},
...                  "upstream": {"featureset": "battery"}}]},
...        "plan": {"kind": "phase.fit", "label": "fit",
...                 "inputs": {"lin": {"featureset": "battery", "split": "train"}}}}
>>> exp, seed = experiment_from_config(cfg)
>>> exp.label, seed, len(exp.featuresets["battery"]["train"])
('toy', 1, 48)
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import importlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mml.errors import ConfigError, DataError

__all__ = [
    "load_config",
    "parse_yaml",
    "apply_overrides",
    "experiment_from_config",
    "featureset_from_config",
    "kind_table",
]

_TOP_KEYS = ("label", "seed", "featuresets", "graph", "plan", "callbacks", "description")
_FEATURESET_KEYS = (
    "dataset",
    "parquet",
    "artifact",
    "n_samples",
    "seed",
    "split",
    "transforms",
    "features",
    "targets",
    "tags",
)
_TRANSFORM_KEYS = ("scaler", "domain", "keys", "fit_on")
# YAML 1.2 floats: PyYAML (YAML 1.1) reads 1e-3 and 1E5 as strings
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


def _unknown_keys(given: Mapping[str, Any], valid: tuple[str, ...], where: str) -> None:
    problems = []
    for key in given:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"
            problems.append(f"{where}.{key}: unknown key{hint}")
    if problems:
        raise ConfigError("; ".join(problems))


def parse_yaml(text: str) -> Any:
    """YAML with numbers read as numbers (``1e-3`` is a float, as in YAML 1.2 and JSON).

    >>> parse_yaml("lr: 1e-3")
    {'lr': 0.001}
    """
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    return yaml.load(text, Loader=Loader)


_COMPONENT_PACKAGES = (
    "mml.data",
    "mml.splitters",
    "mml.scalers",
    "mml.samplers",
    "mml.models",
    "mml.backends",
    "mml.optim",
    "mml.graph",
    "mml.callbacks",
    "mml.training",
)


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix in (".yaml", ".yml"):
            data = parse_yaml(text)
        elif p.suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # pragma: no cover - Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]

            data = tomllib.loads(text)
        elif p.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {p} must end in .yaml, .yml, .toml or .json")
    except ConfigError:
        raise
    except Exception as exc:  # the parsers raise their own error types
        raise ConfigError(f"config file {p} cannot be parsed: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return data


def apply_overrides(config: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``config`` with ``KEY=VALUE`` overrides (dotted keys).

    A list item is named by its index or by its ``label`` (a phase, a node). Values are
    parsed as YAML (``3`` is an int, ``1e-3`` a float, ``[64, 64]`` a list, ``adam`` a string).
    A misspelt key is reported when the config is built, with the closest valid key.

    >>> apply_overrides({"a": {"b": [1, {"c": 2}]}}, ["a.b.1.c=5", "seed=3"])
    {'a': {'b': [1, {'c': 5}]}, 'seed': 3}
    >>> apply_overrides({"plan": {"phases": [{"label": "train", "n_epochs": 1}]}}, ["plan.phases.train.n_epochs=2"])
    {'plan': {'phases': [{'label': 'train', 'n_epochs': 2}]}}
    """
    out = copy.deepcopy(dict(config))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like KEY=VALUE (e.g. seed=3)")
        path, raw = item.split("=", 1)
        try:
            value = parse_yaml(raw)
        except Exception as exc:  # the YAML parser raises its own error types
            raise ConfigError(f"override {item!r}: the value cannot be parsed as YAML ({exc})") from exc
        parts = path.split(".")
        cur: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(cur, list):
                labels = [e.get("label") if isinstance(e, Mapping) else None for e in cur]
                if part in labels:
                    idx = labels.index(part)
                else:
                    try:
                        idx = int(part)
                        cur[idx]
                    except (ValueError, IndexError):
                        named = [str(label) for label in labels if label is not None]
                        raise ConfigError(
                            f"override {item!r}: {part!r} is neither an index of a list of {len(cur)} nor "
                            f"the label of one of its items ({', '.join(named) or 'none has a label'})"
                        ) from None
                if last:
                    cur[idx] = value
                else:
                    cur = cur[idx]
            elif isinstance(cur, dict):
                if last:
                    cur[part] = value
                else:
                    cur = cur.setdefault(part, {})
            else:
                raise ConfigError(f"override {item!r}: {'.'.join(parts[:i])} is not a mapping or list")
    return out


def kind_table() -> dict[str, str]:
    """``kind`` tag → import path of every component class currently loaded."""
    for name in _COMPONENT_PACKAGES:
        importlib.import_module(name)
    from mml.io import type_path

    table: dict[str, str] = {}
    stack = list(object.__subclasses__())
    seen: set[type] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        try:
            stack.extend(cls.__subclasses__())
        except TypeError:  # type.__subclasses__ needs an argument
            continue
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str) and hasattr(cls, "__attrs_attrs__"):
            table.setdefault(kind, type_path(cls))
    return table


def _desugar(value: Any, table: Mapping[str, str], where: str) -> Any:
    if isinstance(value, dict):
        out = {k: _desugar(v, table, f"{where}.{k}") for k, v in value.items()}
        if isinstance(out.get("kind"), str) and "type" not in out:
            kind = out["kind"]
            if kind not in table:
                import difflib

                close = difflib.get_close_matches(kind, list(table), n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ConfigError(f"{where}: unknown kind {kind!r}{hint}")
            out["type"] = table[kind]
        if isinstance(out.get("loss"), str):
            out["loss"] = {"fn": out["loss"]}
        return out
    if isinstance(value, list):
        return [_desugar(v, table, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


@contextlib.contextmanager
def _at(where: str) -> Iterator[None]:
    """Name the document path ``where`` in a data error raised inside (a split, a scaler)."""
    try:
        yield
    except (ConfigError, DataError) as exc:
        if str(exc).startswith("$."):
            raise
        raise type(exc)(f"{where}: {exc}") from exc


def featureset_from_config(
    label: str, spec: Mapping[str, Any], *, base: Path | None = None, trusted: Any = None
) -> Any:
    """Build one FeatureSet from its config entry (source, then split, then transforms).

    ``trusted``: what an ``artifact:`` source may name (as for :func:`mml.load`).
    """
    import mml
    from mml.io import TRUST_ALL, structure
    from mml.scalers import fit_transform
    from mml.splitters import AbstractSplitter

    if not isinstance(spec, Mapping):
        raise ConfigError(f"$.featuresets.{label} must be a mapping (dataset:, split:, transforms:)")
    _unknown_keys(spec, _FEATURESET_KEYS, f"$.featuresets.{label}")
    spec = dict(spec)
    base = base or Path.cwd()
    sources = [k for k in ("dataset", "parquet", "artifact") if k in spec]
    if len(sources) != 1:
        raise ConfigError(f"featuresets.{label}: give exactly one of dataset:, parquet:, artifact:")
    source = sources[0]
    if source == "dataset":
        if spec["dataset"] != "battery":
            raise ConfigError(f"featuresets.{label}: unknown dataset {spec['dataset']!r}; built-in: battery")
        fs = mml.datasets.load_battery(
            int(spec.get("n_samples", 1000)), seed=int(spec.get("seed", 0)), label=label
        )
    elif source == "parquet":
        fs = mml.FeatureSet.from_parquet(
            base / spec["parquet"],
            features=spec.get("features"),
            targets=spec.get("targets", ()),
            tags=spec.get("tags", ()),
            label=label,
        )
    else:
        fs = mml.load(base / spec["artifact"], mml.FeatureSet, trusted=trusted)
        if fs.label != label:
            import attrs

            fs = attrs.evolve(fs, label=label)
    table = kind_table()
    if "split" in spec:
        where = f"$.featuresets.{label}.split"
        splitter = structure(
            _desugar(spec["split"], table, where), AbstractSplitter, trusted=TRUST_ALL, path=where
        )
        with _at(where):
            fs = fs.split(splitter)
    for i, t in enumerate(spec.get("transforms", ())):
        where = f"$.featuresets.{label}.transforms[{i}]"
        if not isinstance(t, Mapping) or "scaler" not in t:
            raise ConfigError(f"{where} needs a scaler: entry")
        _unknown_keys(t, _TRANSFORM_KEYS, where)
        scaler = t["scaler"]
        if isinstance(scaler, Mapping):
            from mml.scalers import AbstractScaler

            scaler = structure(
                _desugar(dict(scaler), table, f"{where}.scaler"),
                AbstractScaler,
                trusted=TRUST_ALL,
                path=f"{where}.scaler",
            )
        with _at(where):
            fs = fit_transform(
                fs,
                scaler,
                domain=t.get("domain", "features"),
                keys=t.get("keys"),
                fit_on=t.get("fit_on", "train"),
            )
    return fs


def experiment_from_config(
    config: Mapping[str, Any],
    *,
    base: str | os.PathLike[str] | None = None,
    registry: Mapping[str, Any] | None = None,
    trusted: Any = None,
) -> tuple[Any, int]:
    """``(Experiment, seed)`` from a config dict (see the module docstring).

    ``registry`` maps short names to user component classes (``{"my_scaler": MyScaler}``), as
    does a top-level ``registry:`` section of the config (names to import paths): then
    ``kind: my_scaler`` and ``scaler: my_scaler`` name them (see :mod:`mml._registry`).
    The config is the caller's own code; ``trusted`` is what artifacts it reads may name.
    """
    from mml._registry import apply_registry
    from mml.io import TRUST_ALL
    from mml.training import Experiment

    config = apply_registry(config, registry, builtin=kind_table())
    _unknown_keys(config, _TOP_KEYS, "$")
    for required in ("featuresets", "graph", "plan"):
        if required not in config:
            raise ConfigError(f"the config has no {required}: section")
    base_path = Path(base) if base is not None else None
    featuresets = {
        label: featureset_from_config(label, spec, base=base_path, trusted=trusted)
        for label, spec in config["featuresets"].items()
    }
    table = kind_table()
    doc = {
        "label": config.get("label", "experiment"),
        "graph": _desugar(config["graph"], table, "$.graph"),
        "plan": _desugar(config["plan"], table, "$.plan"),
        "callbacks": _desugar(list(config.get("callbacks", ())), table, "$.callbacks"),
    }
    seed = config.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an int, got {seed!r}")
    return Experiment.from_config(doc, featuresets, trusted=TRUST_ALL), seed
