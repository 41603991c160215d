"""Report: the current comparison as a standalone HTML file (plotly embedded, the numbers and
the plain-language summary), each chart as PNG/SVG (or HTML), each table as CSV/Parquet."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

import appkit as ak
from core import analysis, charts, ui


def build(sel: dict, result: dict):
    """Figures and tables of the report, in reading order."""
    med = pd.DataFrame(result["median_ranks"])
    med = med[med["framing"].isin(sel["framing"])]
    fm = pd.DataFrame(result["family_means"])
    tests = ui.tests_table(result)
    figures = [("Mean rank by family", charts.family_means_figure(fm)),
               ("Median ranks per model and prompt", charts.compare_figure(med, tests))]
    tables = [("Family means", fm), ("Family tests (Bonferroni-corrected)", tests),
              ("Mixed model", pd.DataFrame(result.get("mixed_model", {}).get("terms", []))),
              ("Median ranks", med)]
    return figures, [(n, t) for n, t in tables if not t.empty]


def chart_downloads(figures) -> None:
    st.markdown("**Charts**")
    if not ui.kaleido_available():
        st.caption("PNG/SVG need the optional `kaleido` package (`pip install kaleido`), which is not installed "
                   "here; each chart is offered as a standalone interactive HTML file instead.")
    # Rendering a static image starts a headless Chrome (seconds), so it runs only on request.
    images = ui.kaleido_available() and st.toggle("Also make PNG and SVG files (takes a few seconds)", key="rep-img")
    for i, (name, fig) in enumerate(figures):
        cols = st.columns([3, 1, 1, 1])
        cols[0].write(name)
        stem = name.lower().replace(" ", "_")
        png, svg = (ui.figure_image(fig, "png"), ui.figure_image(fig, "svg")) if images else (None, None)
        if images and png is None:
            cols[0].caption("PNG/SVG need Chrome or Chromium for kaleido (e.g. `apt-get install chromium`).")
        if png:
            cols[1].download_button("PNG", png, f"{stem}.png", "image/png", key=f"png-{i}")
        if svg:
            cols[2].download_button("SVG", svg, f"{stem}.svg", "image/svg+xml", key=f"svg-{i}")
        cols[3].download_button("HTML", ui.figure_html(fig, name), f"{stem}.html", "text/html", key=f"fightml-{i}")


@ak.guarded
def main() -> None:
    ak.header("Report", "Download the current comparison (as set on the Compare page) as one file you can e-mail "
              "or open offline, plus each chart and table.")
    sel = ak.comparison_filters("rep")
    if not sel["models"]:
        ak.empty_state(f"No reward-model scores on **{sel['corpus']}** to report.",
                       "Import the published results on the Home page or score models first.", "pages/home.py", "Home")
        return
    result = ak.comparison_result(sel)
    if not result or not result.get("median_ranks"):
        st.warning("Nothing to report for this selection; widen the filters.")
        return
    summary = analysis.summary_text(result) + "\n" + ui.mixed_model_sentence(result)
    figures, tables = build(sel, result)
    context = {"Corpus": f"{sel['corpus']} ({result['n_words']} words)",
               "Reward models": ", ".join(sel["models"]), "Prompts": f"{len(sel['prompts'])} ({', '.join(sel['framing'])})",
               "Coverage": sel.get("coverage_note") or "every chosen model is scored on every prompt"}
    html = ui.report_html(f"Value audit: {sel['corpus']}", summary, figures, tables, context)
    stamp = dt.date.today().isoformat()
    st.download_button("Download the report (HTML)", html, f"value_audit_{sel['corpus']}_{stamp}.html", "text/html",
                       type="primary", key="report-html")
    st.caption(f"{len(html) / 2**20:.1f} MB, plotly embedded: opens without internet.")
    with st.container(border=True):
        st.markdown("**Summary in the report**")
        for ln in summary.splitlines():
            st.markdown(ln)
    ak.plot(figures[0][1], key="rep-preview")
    chart_downloads(figures)
    st.markdown("**Tables**")
    for i, (name, df) in enumerate(tables):
        st.write(f"{name} — {len(df):,} rows")
        ak.downloads(df, name.split(" (")[0].lower().replace(" ", "_"), f"tbl-{i}")


main()
