"""Views of values for people: plots, notebook HTML and run comparison (effects of the shell).

Nothing here computes a number a run depends on; every function reads values and draws or
formats them. Plots need the ``plot`` extra (matplotlib), imported on first use.

- :func:`plot_history` (``History.plot()``): loss and metric curves per phase, train against
  validation, the returned (best) epoch marked.
- :func:`plot_eval` (``EvalResult.plot()``): predicted against true in raw units, and residuals.
- :func:`compare` / :func:`compare_runs` (``mml compare RUN_DIR...``): one table of several runs.
- :func:`history_html`, :func:`eval_html`, :func:`graph_html`, :func:`experiment_html`,
  :func:`cv_html`, :func:`sweep_html`: the compact ``_repr_html_`` of notebooks.
"""

from mml.views._compare import Comparison as Comparison, compare as compare, compare_runs as compare_runs
from mml.views._html import (
    eval_html as eval_html,
    experiment_html as experiment_html,
    graph_html as graph_html,
    history_html as history_html,
)
from mml.views._plot import plot_eval as plot_eval, plot_history as plot_history, plot_runs as plot_runs
from mml.views._strategies_html import cv_html as cv_html, sweep_html as sweep_html
from mml.views._summary import summary_rows as summary_rows

__all__ = [
    "Comparison",
    "compare",
    "compare_runs",
    "cv_html",
    "eval_html",
    "experiment_html",
    "graph_html",
    "history_html",
    "plot_eval",
    "plot_history",
    "plot_runs",
    "summary_rows",
    "sweep_html",
]
