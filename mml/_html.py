"""Small HTML helpers for notebook views (``_repr_html_``), usable by every layer.

>>> table(["a"], [["<b>"]])
'<table class="mml"><tr><th>a</th></tr><tr><td>&lt;b&gt;</td></tr></table>'
"""

from __future__ import annotations

import html as _html
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["escape", "table", "view"]


def escape(x: Any) -> str:
    """``str(x)`` escaped for HTML."""
    return _html.escape(str(x))


#: one style block per view (cells carry no inline styles, which keeps views small)
_STYLE = (
    "<style>table.mml{border-collapse:collapse;font-family:monospace;font-size:12px;margin:2px 0}"
    "table.mml td,table.mml th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
    "table.mml caption{text-align:left;font-weight:bold;white-space:nowrap}</style>"
)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> str:
    """An HTML table of ``rows`` (every cell escaped)."""
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="mml">{cap}<tr>{head}</tr>{body}</table>'


def view(*parts: str) -> str:
    """The parts in one ``<div>`` with the shared style block."""
    return "<div>" + _STYLE + "".join(parts) + "</div>"
