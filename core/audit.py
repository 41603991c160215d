"""The audit report: findings in plain sentences with their intervals, then the charts, then
the measurement checks and a provenance card — one self-contained HTML file (plotly.js
inlined, no network), printable to PDF from any browser.

Everything data-derived is HTML-escaped; the only markup is this module's own."""
from __future__ import annotations

import datetime as _dt
import html
import json
from typing import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import charts, checks, provenance, report, uncertainty
from . import family as _family
from .escape import plotly as _esc

CSS = """body{font-family:Inter,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2rem auto;
padding:0 1rem;color:#1f2933;line-height:1.5}h1{font-size:1.8rem}h2{font-size:1.25rem;margin-top:2.2rem;
border-bottom:1px solid #e4e7eb;padding-bottom:.3rem}table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0;max-width:100%}
td,th{border:1px solid #e4e7eb;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f5f7fa}
.findings li{margin:.4rem 0}.note{color:#52606d;font-size:.9rem}pre{white-space:pre-wrap;background:#f5f7fa;
padding:.5rem;font-size:.8rem}.failed{color:#b42318;font-weight:600}
@media print{.plotly-graph-div{page-break-inside:avoid}section{page-break-inside:avoid}}"""


def gap_figure(gaps: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Each panel's family gap with its interval (uncertainty.gap_t_test; a forest plot)."""
    if gaps.empty:
        return charts.empty_figure("No family gap to show.")
    several = gaps[["family_a", "family_b"]].drop_duplicates().shape[0] > 1  # a third family: name each pair
    labels = [_esc(f"{r.framing} · {r.category}" + (f" · {r.family_b}" if several else ""))
              for r in gaps.itertuples()]
    fig = go.Figure(go.Scatter(
        x=gaps["gap"], y=labels, mode="markers", marker=dict(size=10, color="#0064E0"),
        error_x=dict(type="data", symmetric=False, array=gaps["ci_high"] - gaps["gap"],
                     arrayminus=gaps["gap"] - gaps["ci_low"], thickness=2)))
    fig.add_vline(x=0, line_dash="dot", line_color="#7b8794")
    fa = _esc(str(gaps["family_a"].iloc[0]))
    fb = "the family named" if several else _esc(str(gaps["family_b"].iloc[0]))
    n = {**dict(zip(gaps["family_a"], gaps["n_models_a"])), **dict(zip(gaps["family_b"], gaps["n_models_b"]))} \
        if {"n_models_a", "n_models_b"} <= set(gaps.columns) else {}
    counts = (" (" + ", ".join(f"{int(k)} {_esc(str(f))}" for f, k in n.items()) + " models)") if n else ""
    fig.update_layout(title=_esc(title) or f"Family gap in mean rank ({fb} − {fa}) with "
                      f"{gaps['level'].iloc[0] * 100:.0f}% intervals{counts}",
                      xaxis_title=f"← {fb} ranks the category higher · {fa} ranks it higher →",
                      height=140 + 60 * len(gaps), margin=dict(l=170, r=30, t=60, b=60),
                      plot_bgcolor="white", showlegend=False)
    fig.update_yaxes(autorange="reversed")
    return fig


def rank_chart_title(framing: str, category: str) -> str:
    """What position 1 means, worded as Figure 1 words the framings."""
    if framing == "negative":
        return (f"Which models name {category} words most readily as the worst, on negative prompts "
                "(1 = most readily)")
    return f"Which models prefer {category} words most, on {framing} prompts (1 = prefers them most)"


GROUPS_CAPTION = ("Models that share a letter cannot be told apart: no two models within a lettered group "
                  "differ significantly when all pairs are compared at once (bootstrap over prompts and words, "
                  "Holm-adjusted over every pair). A model can carry two letters. Read groups, not a strict order.")


def rank_interval_figure(ri: pd.DataFrame, framing: str, category: str) -> go.Figure:
    """Each model's position with its interval, coloured by family (a legend names them); the
    group letters after each name and in the hover."""
    if ri.empty:
        return charts.empty_figure("No models to rank.")
    fig = go.Figure()
    for fam in _family.order(ri["family"]):
        d = ri[ri["family"] == fam]
        color = _family.color(fam)
        fig.add_trace(go.Scatter(
            x=d["position"], y=_esc([f"{m} ({g})" for m, g in zip(d["model"], d["group"])]), mode="markers",
            name=_esc(str(fam)), marker=dict(size=10, color=color),
            error_x=dict(type="data", symmetric=False, array=d["position_high"] - d["position"],
                         arrayminus=d["position"] - d["position_low"], color=color, thickness=1.5),
            text=[f"group {g}" for g in d["group"]], hovertemplate="%{y}: position %{x}, %{text}<extra></extra>"))
    fig.update_layout(title=_esc(rank_chart_title(framing, category)),
                      xaxis_title="position (95% interval); letters: groups that cannot be told apart",
                      height=170 + 32 * len(ri), margin=dict(l=300, r=30, t=60, b=50), plot_bgcolor="white",
                      legend=dict(orientation="h", yanchor="top", y=-0.12, x=0.5, xanchor="center"))
    fig.update_yaxes(autorange="reversed", categoryorder="array",
                     categoryarray=_esc([f"{m} ({g})" for m, g in zip(ri["model"], ri["group"])]))
    fig.update_xaxes(dtick=1)
    return fig


def findings(gaps: pd.DataFrame, tests: pd.DataFrame, method: str) -> list[str]:
    """Plain sentences: one per panel (gap, interval, prompts) with the unadjusted p of the same
    test as the interval and the p corrected over the panels shown, and the
    paper's Welch p with the same correction, the correction named."""
    out = []
    if len(gaps):
        gaps = gaps.assign(p_adjusted=uncertainty.adjust_p(gaps["p"].to_numpy(float), method),
                           correction=uncertainty.METHODS[method])
    # each gap beside the paper's test of the same two families ('Llama vs Gemma')
    t = tests.set_index(["category", "framing", "comparison"]) if not tests.empty else None
    for r in gaps.to_dict("records"):
        s = uncertainty.finding_sentence(r)
        key = (r["category"], r["framing"], f"{r['family_b']} vs {r['family_a']}")
        if t is not None and key in t.index:
            row = t.loc[key]
            row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
            if np.isfinite(row["p_adjusted"]):
                s += (" The paper's Welch test, which counts every (model, prompt) median as independent, gives "
                      f"{uncertainty.adjusted_p_text(row['p_adjusted'], uncertainty.METHODS[method])} ({row['stars']}).")
        out.append(s)
    return out


def _kv(rows: dict) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                               for k, v in rows.items()) + "</table>"


def provenance_html(card: dict) -> str:
    models = pd.DataFrame(card["models"])
    libs = ", ".join(f"{k} {v}" for k, v in card["libraries"].items())
    head = _kv({"Corpus": card["corpus"], "Corpus sha256": card["corpus_sha256"],
                "Prompt set sha256": f"{card['prompts_sha256']} ({card['n_prompts']} prompts)",
                "App git commit": card["app_commit"], "Libraries (this report)": libs})
    return head + "<h3>Models</h3>" + report.table_html(models)


def checks_html(chk: pd.DataFrame) -> str:
    if chk is None or chk.empty:
        return "<p class='note'>No measurement checks recorded for these models (published scores are imported, " \
               "not measured here).</p>"
    cols = ["model", "corpus", "status", "message", "n_one_token", "n_multi_token", "n_dropped", "n_changed",
            "created_at"]
    parts = [report.table_html(chk[[c for c in cols if c in chk]])]
    for r in chk.itertuples():
        if getattr(r, "template_text", None):
            parts.append(f"<p><b>{html.escape(str(r.model))}</b> — chat-template text sent for one example:</p>"
                         f"<pre>{html.escape(str(r.template_text))}</pre>")
    return "".join(parts)


def audit_html(title: str, *, gaps: pd.DataFrame, tests: pd.DataFrame, method: str,
               figures: list[tuple[str, go.Figure]], card: dict, checks_table: pd.DataFrame | None = None,
               extra_sentences: list[str] | None = None, context: dict | None = None,
               head=None) -> bytes:
    """The report document. `tests` must already be corrected (uncertainty.corrected_tests);
    `head` the headline (core.headline.Headline), shown first."""
    from .headline import LABELS
    sent = findings(gaps, tests, method) + list(extra_sentences or [])
    story = "".join(f"<p><b>{html.escape(LABELS[k])}.</b> {html.escape(v)}</p>"
                    for k, v in ((k, getattr(head, k)) for k in LABELS) if v) if head is not None else ""
    figs = []
    for i, (name, fig, *caption) in enumerate(figures):
        body = fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False,
                           config={"displaylogo": False, "responsive": True}, default_width="100%")
        cap = f"<p class='note'>{html.escape(caption[0])}</p>" if caption and caption[0] else ""
        figs.append(f"<section><h3>{html.escape(name)}</h3>{body}{cap}</section>")
    reps = int(gaps["reps"].iloc[0]) if not gaps.empty else 0
    seed = int(gaps["seed"].iloc[0]) if not gaps.empty else 0
    method_note = (f"Family-gap intervals and p: {uncertainty.GAP_RULE} of {reps:,} draws (seed {seed}); p "
                   f"unadjusted, and adjusted over the panels. Stars: the paper's Welch "
                   f"tests, {uncertainty.METHODS[method]} correction over exactly the panels shown. Lower rank = more "
                   "rewarded.")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>{_kv(context or {})}
<section id="headline"><h2>In short</h2>{story}</section>
<section id="findings"><h2>Findings</h2><ul class="findings">{''.join(f"<li>{html.escape(s)}</li>" for s in sent)}</ul>
<p class="note">{html.escape(method_note)}</p>{report.table_html(gaps)}{report.table_html(tests)}</section>
<section id="charts"><h2>Charts</h2>{''.join(figs)}</section>
<section id="checks"><h2>Measurement checks</h2>{checks_html(checks_table)}</section>
<section id="provenance"><h2>Provenance</h2>{provenance_html(card)}</section>
<footer class="note">Generated {stamp} by the value-audit dashboard. Method: Christian et al., "Reward Models
Inherit Value Biases from Pretraining" (ICLR 2026); uncertainty, checks and provenance are this tool's additions.
Print this page to PDF from the browser.</footer>
<details><summary>Provenance as JSON</summary><pre id="provenance-json">{html.escape(json.dumps(card, indent=1, default=str))}</pre></details>
</body></html>"""
    return doc.encode("utf-8")


def build(store, corpus: str, words: pd.DataFrame, ranks: pd.DataFrame, result, prompt_list,
          method: str = "bonferroni", reps: int = uncertainty.REPS, seed: int = 0, extra_figures=None,
          stricter=None, name: Callable[[str], str] = str) -> bytes:
    """Everything the report needs from the store and the current comparison (`result`: the
    comparison's `analysis.Figure1`; `stricter`: its core.headline.Stricter when already
    computed, else it is computed here from `ranks`). `name` writes each model name and key
    as the report shows it (a shared server passes core.report.public_model_name: a visitor's
    download names no server path); the store is read with the real ones."""
    from . import crossed, headline
    strict = stricter or headline.stricter(headline.restrict(ranks, result), words, reps, seed)
    head = headline.headline(result, strict)
    gaps = strict.gaps.assign(p_adjusted=uncertainty.adjust_p(strict.gaps["p"].to_numpy(float), method),
                              correction=uncertainty.METHODS[method]) if len(strict.gaps) else strict.gaps
    tests = pd.DataFrame(result.family_tests or [])
    tests = uncertainty.corrected_tests(tests, method) if not tests.empty else tests
    figures = [("Family gaps with intervals", gap_figure(gaps))]
    for (fr, cat), ri in strict.rank_intervals.items():
        ri = ri.assign(model=ri["model"].map(name)) if "model" in ri else ri
        figures.append((f"Rank intervals: {cat}, {fr}", rank_interval_figure(ri, fr, cat), GROUPS_CAPTION))
    figures += [tuple(f) for f in extra_figures or []]  # (name, figure[, caption])
    m = store.models()
    keys = set(ranks["model_key"]) if "model_key" in ranks else set()
    m = m[m["model_key"].isin(keys)] if keys else m[m["name"].isin(set(ranks["model"]))]
    runs = checks.latest(store, m["model_key"])
    card = provenance.card(m, runs, corpus, words, prompt_list)
    card["models"] = [{**e, "model": name(e["model"]), "model_key": name(e["model_key"])} for e in card["models"]]
    runs = runs.assign(model=runs["model"].map(name)) if len(runs) else runs
    extra = [crossed.crossed_sentence(strict.crossed) + " " + crossed.WHAT_IT_ADDS] if strict.crossed else []
    context = {"Corpus": f"{corpus} ({words['word'].nunique()} words)",
               "Reward models": ", ".join(sorted(map(name, m["name"]))),
               "Reward models per family": headline.counts_text(headline.model_counts(result)),
               "Prompts": len(prompt_list)}
    return audit_html(f"Value audit: {corpus}", gaps=gaps, tests=tests, method=method, figures=figures, card=card,
                      checks_table=runs, extra_sentences=extra, context=context, head=head)
