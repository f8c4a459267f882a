"""The notebook views (``_repr_html_``) rendered in a real headless Chromium.

Each view goes into a minimal notebook-like page (no network: the views carry no scripts and
fetch nothing). Chromium takes a screenshot and dumps the DOM; a small inline probe script
writes what only a browser knows into the DOM: the rendered text (``innerText``, so folded
``<details>`` stay hidden), the page's scroll width, console errors, and for each drawn graph
box whether its text fits inside it. The tests skip when no Chromium is installed (set
``MML_CHROMIUM`` to a binary to pick one); CI installs Debian's ``chromium``.

``python -m tests.views.test_browser_views`` rewrites ``docs/img/notebook.png``.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import mml

WIDTH, HEIGHT = 1000, 800
_PROBE_ID = "mml-probe"

#: the probe: runs after the view is parsed, reads layout, writes JSON into a hidden <pre>
_PROBE = """<script>
(function () {
  var svgs = Array.prototype.slice.call(document.querySelectorAll("svg.mml-graph"));
  var boxes = Array.prototype.slice.call(document.querySelectorAll("svg.mml-graph g.mml-node"));
  var rects = Array.prototype.slice.call(document.querySelectorAll("svg.mml-graph rect")).map(function (r) {
    return r.getBBox();
  });
  function overlaps(a, b) {
    return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  }
  var labels = Array.prototype.slice.call(document.querySelectorAll("svg.mml-graph text.mml-edge-label"));
  var out = {
    innerWidth: window.innerWidth,
    scrollWidth: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    text: document.body.innerText,
    errors: window.__mmlErrors,
    labelsOnBoxes: labels.filter(function (t) {
      var b = t.getBBox();
      return rects.some(function (r) { return overlaps(b, r); });
    }).map(function (t) { return t.textContent; }),
    nLabels: labels.length,
    svgWidths: svgs.map(function (s) { return s.getBoundingClientRect().width; }),
    boxes: boxes.map(function (g) {
      var r = g.querySelector("rect").getBBox();
      var texts = Array.prototype.slice.call(g.querySelectorAll("text"));
      return {
        label: texts.length ? texts[0].textContent : "",
        fits: texts.every(function (t) {
          var b = t.getBBox();
          return b.x >= r.x && b.x + b.width <= r.x + r.width && b.y >= r.y && b.y + b.height <= r.y + r.height;
        })
      };
    })
  };
  var pre = document.createElement("pre");
  pre.id = "__PROBE_ID__"; pre.hidden = true; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>""".replace("__PROBE_ID__", _PROBE_ID)

#: collect errors before the view is parsed
_CATCH = """<script>
window.__mmlErrors = [];
window.addEventListener("error", function (e) { window.__mmlErrors.push(String(e.message)); });
var _err = console.error;
console.error = function () { window.__mmlErrors.push(Array.prototype.join.call(arguments, " ")); _err.apply(console, arguments); };
</script>"""


def notebook_page(*views: tuple[str, str]) -> str:
    """A notebook-like page: each ``(prompt, html)`` as an output cell, then the probe."""
    cells = "".join(
        f'<div class="cell"><div class="prompt">{html.escape(prompt)}</div>'
        f'<div class="output_html">{body}</div></div>'
        for prompt, body in views
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>mml notebook views</title>'
        "<style>body{margin:0;padding:12px;font-family:sans-serif;background:#fff;color:#000}"
        ".cell{display:flex;gap:8px;margin-bottom:14px}.prompt{color:#303f9f;font-family:monospace;"
        "font-size:12px;min-width:64px;text-align:right;padding-top:2px}"
        ".output_html{min-width:0;flex:1}</style>"
        f"{_CATCH}</head><body>{cells}{_PROBE}</body></html>"
    )


def find_chromium() -> str | None:
    """``$MML_CHROMIUM``, else the first of chromium / chromium-browser / google-chrome on PATH."""
    env = os.environ.get("MML_CHROMIUM")
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def render(chromium: str, page: str, workdir: Path, name: str, height: int = HEIGHT) -> tuple[Path, str, str]:
    """Screenshot and dump the DOM of ``page`` in one headless Chromium run (one retry: the box is shared)."""
    src = workdir / f"{name}.html"
    src.write_text(page, encoding="utf-8")
    png = workdir / f"{name}.png"
    cmd = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--enable-logging=stderr",
        f"--user-data-dir={workdir / 'profile'}",
        f"--window-size={WIDTH},{height}",
        f"--screenshot={png}",
        "--dump-dom",
        src.as_uri(),
    ]
    last = ""
    for _ in range(2):
        png.unlink(missing_ok=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            last = "timed out after 60 s"
            continue
        if proc.returncode == 0 and png.exists() and _PROBE_ID in proc.stdout:
            return png, proc.stdout, proc.stderr
        last = f"exit {proc.returncode}; stderr tail: {proc.stderr[-1500:]}"
    raise AssertionError(f"headless Chromium failed twice on {src}: {last}")


def probe(dom: str) -> dict:
    m = re.search(rf'<pre id="{_PROBE_ID}" hidden="">(.*?)</pre>', dom, re.S)
    assert m, "the probe script did not run"
    return json.loads(html.unescape(m.group(1)))


def console_lines(stderr: str) -> list[str]:
    """Chromium's log lines of the page's console (there should be none)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


#: six or more numbers in a row: what an array repr looks like
_ARRAY_DUMP = re.compile(r"(-?\d+\.\d+[,\s]+){5,}-?\d+\.\d+|array\(|tensor\(|\[\[")


def check_rendered(chromium: str, tmp_path: Path, name: str, view_html: str, expected: list[str]) -> dict:
    """Render one view; assert the screenshot, text, width and errors; return the probe."""
    png, dom, stderr = render(chromium, notebook_page((f"[{name}]", view_html)), tmp_path, name)
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (WIDTH, HEIGHT)
        px = np.asarray(im.convert("L"))
    assert (px < 250).mean() > 0.005, f"{name}: the screenshot is blank"
    assert (px < 110).sum() > 400, f"{name}: no dark (text) pixels in the screenshot"
    # the content sits in the page's top-left part, where the view starts
    assert (px[:200, :500] < 110).sum() > 200
    out = probe(dom)
    text = out["text"]
    missing = [t for t in expected if t not in text]
    assert not missing, f"{name}: not in the rendered text: {missing}\n{text}"
    assert not _ARRAY_DUMP.search(text), f"{name}: an array dump is rendered: {_ARRAY_DUMP.search(text)}"
    assert out["innerWidth"] == WIDTH
    assert out["scrollWidth"] <= WIDTH, f"{name}: the page overflows: {out['scrollWidth']} px > {WIDTH}"
    assert out["errors"] == [] and console_lines(stderr) == [], (out["errors"], console_lines(stderr))
    assert out["labelsOnBoxes"] == [], f"{name}: edge labels drawn over boxes: {out['labelsOnBoxes']}"
    for box in out["boxes"]:
        assert box["fits"], f"{name}: the text of graph box {box['label']!r} overflows its box"
    return out


# --- the values shown ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip(
            "no Chromium (chromium, chromium-browser, google-chrome or $MML_CHROMIUM): browser views not checked"
        )
    pytest.importorskip("PIL", reason="Pillow reads the screenshots")
    return found


def cells_featureset() -> mml.FeatureSet:
    rng = np.random.default_rng(0)
    n = 60
    fs = mml.FeatureSet.from_dict(
        {
            "curve": rng.normal(size=(n, 8)).astype(np.float32),
            "temp": rng.normal(size=n),
            "soh": rng.uniform(size=n),
            "cell": np.arange(n) % 6,
        },
        features=["curve", "temp"],
        targets="soh",
        tags=["cell"],
        label="cells",
    )
    fs = fs.split(mml.RandomSplitter({"train": 0.7, "val": 0.15, "test": 0.15}, seed=0))
    fs = mml.scalers.fit_transform(fs, "standard", domain="features", fit_on="train")
    return mml.scalers.fit_transform(fs, "minmax", domain="targets", fit_on="train")


def short_run() -> tuple[mml.Experiment, mml.training.History]:
    """The run of ``tests/observers/test_summary_views.py``: 25 epochs, stopped early, then a test phase."""
    from ..training.conftest import early_stopped_run

    exp, _, history = early_stopped_run()
    return exp, history


@pytest.fixture(scope="module")
def run():
    pytest.importorskip("torch")
    exp, history = short_run()
    assert history.status == "stopped", history.error  # early stopping fired: a returned best epoch
    return exp, history


def wide_graph() -> mml.ModelGraph:
    """A chain of ten nodes behind a join: wider than the page when drawn at full size."""
    from mml.graph import ConcatNode, FeatureSetRef, ModelGraph, ModelNode, NodeRef

    nodes = [ModelNode("encoder_a", "mlp", FeatureSetRef("cells", features=("curve",)))]
    nodes.append(ModelNode("encoder_b", "mlp", FeatureSetRef("cells", features=("temp",)), frozen=True))
    nodes.append(ConcatNode("joined", (NodeRef("encoder_a"), NodeRef("encoder_b"))))
    for i in range(10):
        nodes.append(ModelNode(f"stage_{i}", "mlp", NodeRef(nodes[-1].label)))
    return ModelGraph.of(*nodes)


# --- the tests -----------------------------------------------------------------------------


def test_featureset_view(chromium, tmp_path):
    fs = cells_featureset()
    expected = ["FeatureSet 'cells': 60 samples", "curve", "(8,)", "temp", "soh", "cell", "raw+transformed"]
    expected += ["train\t42", "val\t9", "test\t9", "scaler standard on features curve, temp", "minmax"]
    check_rendered(chromium, tmp_path, "featureset", fs._repr_html_(), expected)


def test_graph_view_draws_svg_that_fits(chromium, tmp_path):
    g = wide_graph()
    out = check_rendered(
        chromium, tmp_path, "graph", g._repr_html_(), ["ModelGraph", "encoder_a", "stage_9", "(frozen)"]
    )
    labels = {b["label"] for b in out["boxes"]}
    assert labels == {"cells", "encoder_a", "encoder_b", "joined", *(f"stage_{i}" for i in range(10))}
    assert out["nLabels"] == 2  # "features: curve" and "features: temp", clear of the boxes
    # drawn at full size the chain is wider than the page; it is scaled into the cell instead
    natural = float(re.search(r'<svg[^>]* width="(\d+)"', g._repr_html_()).group(1))
    assert natural > WIDTH and 0 < out["svgWidths"][0] <= WIDTH
    assert "flowchart LR" not in out["text"]  # the mermaid source is folded


def test_experiment_view(chromium, tmp_path, run):
    exp, _ = run
    expected = ["Experiment", "FeatureSet 'toy': 120 samples", "mlp", "SequentialMLP", "fit", "test"]
    expected += ["mlp <- toy[train]", "mse@mlp, mae@mlp", "EarlyStopping"]
    out = check_rendered(chromium, tmp_path, "experiment", exp._repr_html_(), expected)
    assert {b["label"] for b in out["boxes"]} == {"toy", "mlp"}


def test_history_view_is_small_and_shows_the_returned_epoch(chromium, tmp_path, run):
    _, history = run
    view = history._repr_html_()
    assert len(view.encode()) <= 5000
    best = int(history.where(phase="fit").last("best_epoch"))
    epochs_run = int(history.epochs().where(phase="fit", name="loss").epoch.max()) + 1
    at_best = history.epochs().where(phase="fit", epoch=best)
    ev = history.eval_result("test")
    expected = ["History", "status stopped", f"{best} (best)", f"fit\tphase.train\tstopped\t{epochs_run}\t"]
    expected += [f"val_r2\t{at_best.last('val_r2'):.6g}", f"loss (total)\t{ev.losses['loss']:.6g}"]
    expected += [f"last 8 of {len(history.epochs())} epoch-level rows"]
    check_rendered(chromium, tmp_path, "history", view, expected)


def test_history_view_of_a_long_run_stays_small(chromium, tmp_path):
    from mml.training import History, PhaseResult

    names = ["loss", "val_loss", *(f"val_metric_{i}" for i in range(30))]
    h = History.from_rows(
        [("fit", e, -1, e, n, 1.0 / (e + 1)) for e in range(2000) for n in names],
        phases=(PhaseResult("fit", "phase.train", "completed"),),
    )
    view = h._repr_html_()
    assert len(view.encode()) <= 5000 and "more not shown" in view
    check_rendered(chromium, tmp_path, "long_history", view, [f"{len(h)} rows", "last 8 of 64000"])


def test_eval_view(chromium, tmp_path, run):
    _, history = run
    ev = history.eval_result("test")
    y, p = ev.targets["mlp"], ev.outputs["mlp"]
    r2 = 1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    expected = ["EvalResult test", "(30, 1)", f"mlp.mae\t{ev.losses['mlp.mae']:.6g}", f"r2\t{r2:.6g}"]
    check_rendered(chromium, tmp_path, "eval", ev._repr_html_(), expected)


def test_cross_validation_view(chromium, tmp_path):
    from tests.strategies.conftest import make_experiment, make_featureset

    exp = make_experiment(make_featureset(48), n_epochs=2)
    cv = mml.strategies.cross_validate(
        exp, featureset="toy", splitter=mml.KFoldSplitter(3), on="train", key=0
    )
    first = cv.folds[0].metrics()
    name = next(iter(first))
    expected = ["CVResult", "3 folds of FeatureSet toy", "mean ± std", name, f"{first[name]:.6g}"]
    expected += [k for k in cv.pooled_metrics()]
    check_rendered(chromium, tmp_path, "cv", cv._repr_html_(), expected)


def test_a_broken_page_fails_the_checks(chromium, tmp_path):
    """The checks can fail: an overflowing page, a console error, a blank page and an array dump."""
    text = "<p>" + "some text " * 400 + "</p>"
    with pytest.raises(AssertionError, match="overflows"):
        check_rendered(chromium, tmp_path, "wide", text + '<div style="width:1600px">wide</div>', [])
    with pytest.raises(AssertionError, match="boom"):
        check_rendered(chromium, tmp_path, "error", text + '<script>console.error("boom")</script>', [])
    with pytest.raises(AssertionError, match="blank"):
        check_rendered(chromium, tmp_path, "blank", "<div></div>", [])
    with pytest.raises(AssertionError, match="array dump"):
        check_rendered(chromium, tmp_path, "dump", text + f"<pre>{np.linspace(0, 1, 12)}</pre>", [])


def write_docs_image(path: Path) -> None:
    """Render a FeatureSet and the graph, History and EvalResult views of a short run into ``path``."""
    import tempfile

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium found")
    exp, history = short_run()
    page = notebook_page(
        ("[1]: fs", cells_featureset()._repr_html_()),
        ("[2]: graph", exp.graph._repr_html_()),
        ("[3]: history", history._repr_html_()),
        ("[4]: test", history.eval_result("test")._repr_html_()),
    )
    with tempfile.TemporaryDirectory() as tmp:
        png, _, _ = render(chromium, page, Path(tmp), "notebook", height=1400)
        from PIL import Image, ImageOps

        with Image.open(png) as im:  # crop the empty page below the last cell
            box = ImageOps.invert(im.convert("L")).getbbox()
            assert box is not None, "the notebook page rendered blank"
            crop = im.crop((0, 0, WIDTH, min(im.height, box[3] + 12)))
            crop.quantize(64).save(path, optimize=True)  # 64 colours: text and table lines stay crisp


if __name__ == "__main__":
    write_docs_image(Path(__file__).parents[2] / "docs" / "img" / "notebook.png")
