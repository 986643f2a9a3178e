"""HTML pieces for the report: a table (escaped, floats to three decimals, empty for no rows),
the small Markdown the study writes (data card, model cards) as HTML, and a nested summary
(a training run's) as a readable two-column table."""
from __future__ import annotations

import html
import re

import pandas as pd


def html_table(df: pd.DataFrame, cls: str = "data") -> str:
    """The frame as an escaped HTML table of class `cls` ("" for an empty or missing frame)."""
    if df is None or df.empty:
        return ""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_float_dtype(df[c]):
            df[c] = df[c].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    return df.to_html(index=False, classes=cls, border=0, escape=True, na_rep="")


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold** marked up."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def markdown_html(text: str) -> str:
    """The Markdown skillmix writes (headings, paragraphs, "- " lists, pipe tables, `code`,
    **bold**) as HTML, everything escaped; not a general Markdown renderer.

    >>> markdown_html("# Card\\n\\nKept: **3**.\\n\\n| k | kept |\\n|---|---|\\n| 1 | 2 |\\n\\n- `k1`: 2 rows")
    '<h4>Card</h4>\\n<p>Kept: <b>3</b>.</p>\\n<table class="data"><tr><th>k</th><th>kept</th></tr><tr><td>1</td><td>2</td></tr></table>\\n<ul><li><code>k1</code>: 2 rows</li></ul>'
    """
    blocks = re.split(r"\n\s*\n", (text or "").strip())
    out = []
    for block in blocks:
        lines = [ln.rstrip() for ln in block.splitlines() if ln.strip()]
        if not lines:
            continue
        if lines[0].startswith("#"):
            level = min(6, 3 + len(lines[0]) - len(lines[0].lstrip("#")))
            out.append(f"<h{level}>{_inline(lines[0].lstrip('#').strip())}</h{level}>")
            lines = lines[1:]
            if not lines:
                continue
        if all(ln.lstrip().startswith("|") for ln in lines):
            rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines
                    if not re.fullmatch(r"\|?[\s:|-]+\|?", ln.strip())]
            head, body = rows[0], rows[1:]
            out.append('<table class="data"><tr>' + "".join(f"<th>{_inline(c)}</th>" for c in head)
                       + "</tr>" + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r)
                                           + "</tr>" for r in body) + "</table>")
        elif all(ln.lstrip().startswith(("- ", "* ")) for ln in lines):
            out.append("<ul>" + "".join(f"<li>{_inline(ln.lstrip()[2:])}</li>" for ln in lines)
                       + "</ul>")
        else:
            out.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(out)


def summary_rows(data, prefix: str = "") -> list[tuple[str, str]]:
    """A nested summary (dicts, lists, numbers) as (what, value) rows in reading order, nested
    keys joined with " › ", short lists inline, numbers rounded to 4 significant digits.

    >>> summary_rows({"steps": 3, "lora": {"r": 8}, "data_mix": [1, 2, 3], "loss": 2.524871})
    [('steps', '3'), ('lora › r', '8'), ('data mix', '1, 2, 3'), ('loss', '2.525')]
    """
    rows: list[tuple[str, str]] = []
    for key, value in (data or {}).items():
        name = f"{prefix}{str(key).replace('_', ' ')}"
        if isinstance(value, dict):
            rows += summary_rows(value, name + " › ") if value else [(name, "–")]
        elif isinstance(value, (list, tuple)):
            rows.append((name, ", ".join(_value(v) for v in value) or "–"))
        else:
            rows.append((name, _value(value)))
    return rows


def _value(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
