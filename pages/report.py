"""Report: the current comparison as a standalone HTML file (plotly embedded, the numbers and
the plain-language summary), each chart as PNG/SVG (or HTML), each table as CSV/Parquet."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

import appkit as ak
import audit_ui
from core import analysis, charts, corpora, headline, model_audit, report, wording
from core.escape import markdown as md


def build(sel: dict, result: analysis.Figure1):
    """Figures and tables of the report, in reading order."""
    med = pd.DataFrame(result.median_ranks)
    med = med[med["framing"].isin(sel["framing"])]
    med = report.public_models(med)  # local models by folder name: the report never prints server paths
    fm = pd.DataFrame(result.family_means)
    tests = wording.tests_table(result)
    corpus = f"{sel['corpus']} ({result.n_words} words)"
    figures = [("Mean rank by family",
                charts.family_dots_figure(med, f"Mean rank of each category's words by base family — {corpus}"),
                HEADLINE_CAPTION),
               ("Median ranks per model and prompt",
                charts.compare_figure(med, tests, title=f"Median rank of each category's words — {corpus}"),
                VIOLIN_CAPTION)]
    tables = [("Family means", fm), ("Average ranks (the paper's table)", analysis.average_ranks_table(result)),
              ("Family tests (Bonferroni-corrected)", tests),
              ("Mixed model", pd.DataFrame(result.mixed_model.terms if result.mixed_model else [])),
              ("Median ranks", med)]
    return figures, [(n, t) for n, t in tables if not t.empty]


HEADLINE_CAPTION = ("Large dots: each family's mean rank (mean over its models of each model's mean median rank) "
                    "with a 95% interval over its models; small dots: single models. Rank 1 = the most rewarded "
                    "word, so higher = ranked nearer the top (on negative prompts: named more readily as the worst).")
VIOLIN_CAPTION = ("Each faint dot is one (model, prompt): the median rank of that category's words; the violin shows "
                  "their spread per family. Solid dots: each model's mean over prompts with ± 1 standard error (as the paper). Higher = "
                  "ranked nearer 1. Stars: Welch t-test between families, Bonferroni-corrected over the panels "
                  "(* p<.05, ** p<.01, *** p<.001).")
# Download names say what a chart shows and of which corpus: 'figure1_big2-nouns.png'.
FIGURE_FILES = {"Mean rank by family": "headline", "Median ranks per model and prompt": "figure1"}
PLACEMENT_CAPTION = ("Black diamond: the model's mean rank of the category's words with its 95% interval (prompts and "
                     "words resampled); large dots: each family's mean over the reference models; small dots: those "
                     "models. Higher = ranked nearer 1.")


def placement(sel: dict) -> model_audit.ModelAudit | None:
    """One model placed among the families (the Your model page) as a section of the report:
    yours by default when one is scored on this corpus. Named as reports name models."""
    t = ak.selection(sel["corpus"]).table
    t = t[t["readable"]]
    own = t.loc[t["source"] != "published", "model"].tolist()
    options = ["(none)"] + own + t.loc[t["source"] == "published", "model"].tolist()
    chosen = st.session_state.get("your-model-choice")
    default = chosen if chosen in options else (own[0] if own else "(none)")
    pick = st.selectbox("Place one model among the families in the report", options, index=options.index(default),
                        key="rep-placement", format_func=lambda m: m if m == "(none)" else ak.display_name(m),
                        help="Its values per panel with intervals beside the paper's models, the closest family "
                             "and how clearly (the Your model page).")
    if pick == "(none)":
        return None
    return ak.model_audit_of(sel["corpus"], pick).renamed(report.public_model_name)


# Raw tables (one row per model, prompt and category) go in the CSV/Parquet downloads, not the HTML.
RAW_TABLES = {"Median ranks"}


def figure_file(name: str, corpus: str) -> str:
    return f"{FIGURE_FILES.get(name, report.file_stem(name))}_{corpus}"


def chart_downloads(figures, corpus: str) -> None:
    st.markdown("**Charts**")
    if not report.kaleido_available():
        st.caption("PNG/SVG need the optional `kaleido` package (`pip install kaleido`), which is not installed "
                   "here; each chart is offered as a standalone interactive HTML file instead.")
    # Rendering a static image starts a headless Chrome (seconds), so it runs only on request.
    images = report.kaleido_available() and st.toggle("Also make PNG and SVG files (takes a few seconds)", key="rep-img")
    for i, (name, fig, *_caption) in enumerate(figures):
        cols = st.columns([3, 1, 1, 1])
        cols[0].text(name)  # a name may hold a model name (data): plain text
        stem = report.file_stem(figure_file(name, corpus))
        png, svg = (report.figure_image(fig, "png"), report.figure_image(fig, "svg")) if images else (None, None)
        if images and png is None:
            cols[0].caption("PNG/SVG need Chrome or Chromium for kaleido (e.g. `apt-get install chromium`).")
        if png:
            cols[1].download_button("PNG", png, f"{stem}.png", "image/png", key=f"png-{i}")
        if svg:
            cols[2].download_button("SVG", svg, f"{stem}.svg", "image/svg+xml", key=f"svg-{i}")
        cols[3].download_button("HTML", report.figure_html(fig, name), f"{stem}.html", "text/html", key=f"fightml-{i}")


@ak.guarded
def main() -> None:
    ak.header("Report", "Download the current comparison (as set on the Compare page) as one file you can e-mail "
              "or open offline, plus each chart and table.")
    sel = ak.comparison_filters("rep")
    if not sel["models"]:
        ak.empty_state(f"No reward-model scores on **{md(sel['corpus'])}** to report.",
                       "Import the published results on the Home page or score models first.", "pages/home.py", "Home")
        return
    result = ak.comparison_result(sel)
    if result is None:
        st.warning("Nothing to report for this selection; widen the filters.")
        return
    strict = audit_ui.stricter_for(sel["corpus"], result)
    summary = "\n".join([*headline.story(result, strict),  # the one story first, as the CLI prints it
                         "The paper's mixed model: " + wording.mixed_model_sentence(result)])
    figures, tables = build(sel, result)
    if placed := placement(sel):
        summary += "\nWhere one model sits: " + placed.sentence
        title = f"Where {placed.model} sits among the families"
        figures.append((title, charts.model_placement_figure(placed.to_json(), title=f"{title} — {sel['corpus']}"),
                        PLACEMENT_CAPTION))
        tables.insert(0, (f"{title} (the panels)", model_audit.panels_table(placed)))
    context = {"Corpus": f"{sel['corpus']} ({result.n_words} words)"
                         + (f" — {corpora.NOTES[sel['corpus']]}" if sel["corpus"] in corpora.NOTES else ""),
               "Reward models": f"{len(sel['models'])} used: "
                                + ", ".join(report.public_model_name(m) for m in sel["models"]),
               "Prompts": f"{len(sel['prompts'])} ({', '.join(sel['framing'])})",
               "Coverage": ak.selection(sel["corpus"], sel["chosen"], sel["prompt_texts"], sel["include_incomplete"]
                                        ).note(report.public_model_name)
                           or "none left out: every model used is scored on every compared prompt and word",
               "Database": ak.store().path.name}  # a file name, never a server path
    html = report.report_html(f"Value audit: {sel['corpus']}", summary, figures,
                          [(n, t) for n, t in tables if n not in RAW_TABLES], context)
    stamp = dt.date.today().isoformat()
    st.download_button("Download the report (HTML)", html, f"value_audit_{sel['corpus']}_{stamp}.html", "text/html",
                       type="primary", key="report-html")
    st.caption(f"{len(html) / 2**20:.1f} MB, plotly embedded: opens without internet.")
    with st.container(border=True):
        st.markdown("**Summary in the report**")
        for ln in summary.splitlines():
            st.markdown(md(ln))
    ak.plot(figures[0][1], key="rep-preview", filename=figure_file(figures[0][0], sel["corpus"]))
    st.caption(figures[0][2])
    chart_downloads(figures, sel["corpus"])
    audit_ui.audit_download(sel, result, figures)  # audit report with intervals and provenance (issue 15)
    st.markdown("**Tables**")
    for i, (name, df) in enumerate(tables):
        st.text(f"{name} — {len(df):,} rows")  # a table name may hold a model name (data)
        ak.downloads(df, name.split(" (")[0].lower().replace(" ", "_"), f"tbl-{i}")


main()
