"""Every ```python block in docs/*.md and README.md runs, in order, sharing one namespace per page.

Blocks written as doctests (``>>>`` prompts) are checked with doctest, so their shown outputs
must match; other blocks are executed as scripts.
"""

import doctest
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md"])
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _needs(code: str) -> list[str]:
    return [m for m in ("torch", "tensorflow", "keras") if re.search(rf"\b(import|from) {m}\b", code)]


@pytest.mark.parametrize("page", [p for p in PAGES if p.exists()], ids=lambda p: p.name)
def test_page_examples_run(page, tmp_path, monkeypatch):
    blocks = BLOCK.findall(page.read_text())
    if not blocks:
        return
    for mod in _needs("\n".join(blocks)):
        pytest.importorskip(mod)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for i, code in enumerate(blocks):
        name = f"{page.name}[block {i + 1}]"
        if code.lstrip().startswith(">>>"):
            test = parser.get_doctest(code, namespace, name, str(page), 0)
            result = runner.run(test, clear_globs=False)
            namespace.update(test.globs)  # DocTest works on a copy of the namespace
            assert result.failed == 0, f"{name}: {result.failed} doctest example(s) failed (see output above)"
        else:
            exec(compile(code, name, "exec"), namespace)
