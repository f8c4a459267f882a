"""The layer rule of docs/conventions.md holds: import-linter's contracts in pyproject.toml are kept."""

import pathlib
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FRAMEWORKS = {"torch", "tensorflow", "keras", "sklearn"}
ORCHESTRATION = {"mml.training", "mml.callbacks", "mml.observers", "mml.views"}


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["name"]: c for c in config["contracts"]}


def test_layers_point_only_downward():
    pytest.importorskip("importlinter")
    code = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "5 kept, 0 broken" in proc.stdout
    for name in _contracts():
        assert f"{name} KEPT" in " ".join(proc.stdout.split()), name


def test_the_contracts_say_what_docs_conventions_says():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert config["include_external_packages"] is True  # frameworks are nodes of the graph
    by_type: dict[str, list[dict]] = {}
    for c in config["contracts"]:
        by_type.setdefault(c["type"], []).append(c)
    assert len(by_type["layers"]) == 1
    forbidden = {frozenset(c["forbidden_modules"]): c for c in by_type["forbidden"]}
    no_framework = forbidden[frozenset(FRAMEWORKS)]
    public_only = forbidden[frozenset({"mml.backends.*"})]
    for c in (no_framework, public_only):
        assert set(c["source_modules"]) == ORCHESTRATION
        assert not c.get("ignore_imports")  # no exceptions: a new one is a design change
    # every submodule of mml.backends is private, so `mml.backends.*` forbids exactly those
    subs = [p for p in (ROOT / "mml" / "backends").iterdir() if p.name != "__init__.py" and p.suffix == ".py"]
    assert subs and all(p.name.startswith("_") for p in subs)
    # issue 12: no upward import but mml/__init__.py's TYPE_CHECKING block (lazy at run time)
    (layers,) = by_type["layers"]
    assert layers["ignore_imports"] == ["mml -> mml.*"]
    (private,) = by_type["private_modules"]  # every package's `_modules`, no exception
    assert private["packages_with_private_modules"] == ["mml"] and not private.get("ignore_imports")
    (acyclic,) = by_type["acyclic_siblings"]
    assert acyclic["ancestors"] == ["mml"] and acyclic["depth"] == 0
    assert not acyclic.get("ignore_imports")  # no exception at all


def _mutual_imports(graph, package: str) -> dict[tuple[str, str], list[str]]:  # type: ignore[no-untyped-def]
    """Pairs of children of ``package`` that import each other directly, with the imports."""
    children = sorted(graph.find_children(package))

    def direct(a: str, b: str) -> list[str]:
        found = []
        for expr in (f"{a} -> {b}", f"{a}.** -> {b}", f"{a} -> {b}.**", f"{a}.** -> {b}.**"):
            for imp in graph.find_matching_direct_imports(import_expression=expr):
                found.append(f"{imp['importer']} -> {imp['imported']}")
        return found

    out = {}
    for i, a in enumerate(children):
        for b in children[i + 1 :]:
            ab, ba = direct(a, b), direct(b, a)
            if ab and ba:
                out[(a, b)] = ab + ba
    return out


def test_no_two_packages_of_mml_import_each_other():
    grimp = pytest.importorskip("grimp")
    import mml

    assert pathlib.Path(mml.__file__).parent == ROOT / "mml"  # the checkout under test, not another
    graph = grimp.build_graph("mml", include_external_packages=False)  # function-local imports too
    assert {"mml.data", "mml.backends", "mml.models", "mml.training", "mml.views"} <= graph.find_children(
        "mml"
    )
    assert _mutual_imports(graph, "mml") == {}  # no exception


def test_the_cycle_check_sees_a_cycle():
    grimp = pytest.importorskip("grimp")
    graph = grimp.ImportGraph()
    for m in ("p", "p.a", "p.a._x", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a._x", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.b")  # one way only: not a cycle
    assert _mutual_imports(graph, "p") == {("p.a", "p.b"): ["p.a._x -> p.b", "p.b -> p.a"]}


def _cycles(graph, package: str) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """The import cycles among the children of ``package`` (strongly connected sets of >1 child).

    A module counts as its child's: ``p.a._x -> p.b._y`` is the edge ``p.a -> p.b``; loops of any
    length are found, not only pairs.
    """
    children = sorted(graph.find_children(package))

    def child_of(module: str) -> str | None:
        if not module.startswith(package + "."):
            return None
        return f"{package}.{module[len(package) + 1 :].split('.')[0]}"

    edges: dict[str, set[str]] = {c: set() for c in children}
    for module in graph.modules:
        a = child_of(module)
        if a is None:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            b = child_of(imported)
            if b is not None and b != a:
                edges[a].add(b)
    reach = {c: set() for c in children}  # transitive closure: the graphs are small
    for c in children:
        todo = list(edges[c])
        while todo:
            n = todo.pop()
            if n not in reach[c]:
                reach[c].add(n)
                todo.extend(edges[n])
    found: list[list[str]] = []
    for c in children:
        group = sorted({c} | {d for d in reach[c] if c in reach[d]})
        if len(group) > 1 and group not in found:
            found.append(group)
    return found


def test_no_import_cycle_at_run_time_inside_any_package():
    """issue 12: no module of a package imports one that imports it back (e.g. graph._graph and
    graph._draw), at any depth; imports under ``if TYPE_CHECKING:`` (annotations) do not run."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("mml", include_external_packages=False, exclude_type_checking_imports=True)
    packages = sorted(m for m in graph.modules if graph.find_children(m))
    assert {"mml", "mml.graph", "mml.training", "mml.data", "mml.backends"} <= set(packages)
    assert {p: c for p in packages if (c := _cycles(graph, p))} == {}


def test_the_run_time_cycle_check_sees_a_loop_of_three():
    grimp = pytest.importorskip("grimp")
    graph = grimp.ImportGraph()
    for m in ("p", "p.a", "p.a._x", "p.b", "p.c", "p.d"):
        graph.add_module(m)
    graph.add_import(importer="p.a._x", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    graph.add_import(importer="p.d", imported="p.a")  # into the loop, not part of it
    assert _cycles(graph, "p") == [["p.a", "p.b", "p.c"]]
    assert _cycles(graph, "p.a") == []


def test_the_private_modules_contract_breaks_on_an_import_of_another_packages_private_module(tmp_path):
    """The contract type does what the layout rule says: `p.b` may use `p.a`, not `p.a._x`."""
    pytest.importorskip("importlinter")
    pkg = tmp_path / "p"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("from p.a._x import X as X\n")
    (pkg / "a" / "_x.py").write_text("X = 1\n")
    (pkg / "c.py").write_text("from p.a import X\n")  # through the package: allowed
    contract = '[tool.importlinter]\nroot_package = "p"\n[[tool.importlinter.contracts]]\nname = "private"\n'
    contract += 'type = "private_modules"\npackages_with_private_modules = ["p"]\n'
    (tmp_path / "pyproject.toml").write_text(contract)
    code = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports())"

    def lint() -> subprocess.CompletedProcess[str]:
        env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)

    kept = lint()
    assert kept.returncode == 0 and "private KEPT" in kept.stdout, kept.stdout[-2000:]
    (pkg / "b.py").write_text("from p.a._x import X\n")  # around the package: broken
    broken = lint()
    assert broken.returncode == 1 and "private BROKEN" in broken.stdout
    assert "p.b -> p.a._x" in broken.stdout
