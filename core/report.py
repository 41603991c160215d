"""Exports of charts and of the current comparison: standalone HTML (offline, plotly.js
inlined), PNG/SVG through kaleido where it runs, file names from titles, and model names
as a report may show them (never a server path). Every cell and caption is escaped."""
from __future__ import annotations

import datetime as _dt
import html
import importlib.util
from pathlib import PurePath

import pandas as pd


def kaleido_available() -> bool:
    """Static images need the optional kaleido package (and a Chrome it drives)."""
    return importlib.util.find_spec("kaleido") is not None


def figure_image(fig, fmt: str) -> bytes | None:
    """PNG/SVG bytes of a figure, or None when kaleido cannot produce it here."""
    if not kaleido_available():
        return None
    try:
        return fig.to_image(format=fmt, scale=2 if fmt == "png" else 1)
    except Exception:  # noqa: BLE001 - kaleido failures (no Chrome) come in many types
        return None


def file_stem(title: str) -> str:
    """'Mean rank by family — Big Two' -> 'mean_rank_by_family_big_two', 'figure1_big2-nouns'
    stays as it is (a safe file name; a chart title's line breaks and tags are dropped)."""
    import re
    text = re.sub(r"<[^>]*>", " ", str(title)).lower()
    stem = re.sub(r"[^a-z0-9-]+", "_", text).strip("_-")
    return stem[:80] or "chart"


def plot_config(title: str | None = None, filename: str | None = None) -> dict:
    """Plotly config: no logo, and the camera button saves '<filename or chart title>.png',
    not 'newplot.png'."""
    cfg = {"displaylogo": False}
    if filename or title:
        cfg["toImageButtonOptions"] = {"filename": file_stem(filename or title), "format": "png", "scale": 2}
    return cfg


def figure_html(fig, title: str = "chart") -> bytes:
    """One chart as a standalone, offline HTML file (plotly.js inlined)."""
    return fig.to_html(full_html=True, include_plotlyjs="inline", config=plot_config(title),
                       default_width="100%").replace("<head>", f"<head><title>{html.escape(title)}</title>", 1).encode()


def public_model_name(name) -> str:
    """A model name or key as a report shows it: a local folder by its last part, never the
    server path ('/srv/m/rm' -> 'rm'; 'local:/srv/m/rm#ab12~float32' -> 'local:rm#ab12~float32')."""
    text = str(name)
    if text.startswith("local:"):
        path, sep, rest = text[len("local:"):].partition("#")
        return f"local:{PurePath(path).name}{sep}{rest}"
    if text.startswith(("/", "~", ".")) or "\\" in text:
        return PurePath(text.replace("\\", "/")).name
    return text


def public_models(df: pd.DataFrame) -> pd.DataFrame:
    """The table with its model, name and model_key columns passed through public_model_name."""
    cols = [c for c in ("model", "name", "model_key") if c in df.columns]
    return df.assign(**{c: df[c].map(public_model_name) for c in cols}) if cols else df


def report_html(title: str, summary: str, figures: list[tuple[str, object]],
                tables: list[tuple[str, pd.DataFrame]], context: dict | None = None) -> bytes:
    """The current comparison as one self-contained HTML file: summary, charts (plotly.js
    inlined once, so it opens offline) and the numbers behind them."""
    parts = []
    for i, (name, fig, *caption) in enumerate(figures):
        body = fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False,
                           config=plot_config(name), default_width="100%")
        cap = f"<p class='caption'>{html.escape(caption[0])}</p>" if caption and caption[0] else ""
        parts.append(f"<section><h2>{html.escape(name)}</h2>{body}{cap}</section>")
    for name, df in tables:
        parts.append(f"<section><h2>{html.escape(name)}</h2>{table_html(df)}</section>")
    ctx = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in (context or {}).items())
    summ = "".join(f"<p>{html.escape(line)}</p>" for line in summary.splitlines() if line.strip())
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:Inter,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2rem auto;
padding:0 1rem;color:#1f2933;line-height:1.5}}h1{{font-size:1.8rem}}h2{{font-size:1.25rem;margin-top:2.2rem;
border-bottom:1px solid #e4e7eb;padding-bottom:.3rem}}table{{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}}
td,th{{border:1px solid #e4e7eb;padding:.25rem .5rem;text-align:right}}th{{background:#f5f7fa}}
td:first-child,th:first-child{{text-align:left}}.summary{{background:#f5f7fa;border-left:4px solid #0064E0;
padding:.6rem 1rem}}.caption{{color:#52606d;font-size:.9rem}}footer{{color:#7b8794;font-size:.8rem;margin-top:3rem}}</style></head><body>
<h1>{html.escape(title)}</h1><ul>{ctx}</ul><div class="summary"><h2 style="border:0;margin-top:.4rem">Summary</h2>{summ}</div>
{''.join(parts)}<footer>Generated {stamp} by the value-audit dashboard. Method: Christian et al.,
"Reward Models Inherit Value Biases from Pretraining" (ICLR 2026).</footer></body></html>"""
    return doc.encode("utf-8")


def table_html(df: pd.DataFrame, max_rows: int = 500) -> str:
    """A table for the HTML reports: every cell escaped, floats shortened, long tables cut
    (the full table is in the CSV/Parquet downloads)."""
    if df is None or df.empty:
        return "<p>(empty)</p>"
    d = df.head(max_rows).copy()
    for c in d.columns:
        if pd.api.types.is_float_dtype(d[c]):
            d[c] = d[c].map(lambda v: "" if pd.isna(v) else (f"{v:.3g}" if abs(v) < 0.01 and v != 0 else f"{v:.2f}"))
    more = f"<p>… {len(df) - max_rows} more rows in the CSV download.</p>" if len(df) > max_rows else ""
    # A cell stays on one line (a name or number broken as 'Corp us', '0.9 5' or 'big2- nouns'
    # reads wrong); only sentences wrap, in a readable width. A table wider than the page
    # scrolls sideways in its own box.
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in d.columns)
    rows = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in d.itertuples(index=False))
    return (f'<div class="table-scroll" style="overflow-x:auto"><table style="white-space:nowrap">'
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>{more}")


def _cell(value) -> str:
    missing = value is None or (pd.api.types.is_scalar(value) and pd.isna(value))
    text = "" if missing else str(value)
    wrap = len(text) > 40 and " " in text.strip()
    return (f'<td style="white-space:normal;min-width:18rem">{html.escape(text)}</td>' if wrap
            else f"<td>{html.escape(text)}</td>")

