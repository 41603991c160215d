"""Your model: where one reward model sits among the paper's families — its Figure-1 value
per panel with an interval, beside each family's mean and the paper's models, the closest
family and how clearly, in one sentence with its caveats (core.model_audit; the CLI's
`audit-model` prints the same)."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

import appkit as ak
from core import charts, model_audit, report

INTRO = ("A researcher's first question about their own reward model: **which base family's values does it "
         "resemble, and how clearly?** Each panel is one framing and one category of words: the model's mean "
         "rank of those words (1 = most rewarded), with a 95% interval from resampling prompts and words, beside "
         "the paper's models and their family means.")


def pick_model(corpus: str) -> str | None:
    """Every model scored on the corpus; the first one not published by the paper (yours) by default."""
    t = ak.selection(corpus).table
    t = t[t["readable"]]
    if t.empty:
        return None
    own = t[t["source"] != "published"]
    names = own["model"].tolist() + t.loc[t["source"] == "published", "model"].tolist()
    fam = dict(zip(t["model"], t["family"]))
    saved = st.session_state.get("your-model-choice")
    return st.selectbox("Model to audit", names, index=names.index(saved) if saved in names else 0,
                        format_func=lambda m: ak.model_label(m, fam.get(m)), key="ym-model",
                        help="Your models first, then the paper's. A model of the paper is placed among the other nine.")


def verdict(audit: model_audit.ModelAudit) -> None:
    with st.container(border=True):
        st.text(model_audit.placement_text(audit))  # plain text: it names the model (data)
        c1, c2 = st.columns(2)
        near = ", ".join(f"{f}: {d:.1f}" for f, d in sorted(audit.distances.items(), key=lambda x: x[1]))
        c1.metric("Closest family", audit.closest_family or "—",
                  help=f"Distance to each family's mean ({near or 'none'}): the root mean square over the panels of "
                       "(value − family mean) / the family's model-to-model standard deviation; 1 = as far from the "
                       "family's mean as its own models typically are.")
        c2.metric("How clearly", audit.clarity)
    if audit.caveats:
        with st.container(border=True):
            st.warning("What the scores cannot tell", icon=":material/warning:")
            for c in audit.caveats:
                st.text("• " + c)


def details(audit: model_audit.ModelAudit, corpus: str) -> None:
    table = model_audit.panels_table(audit)
    st.dataframe(table, hide_index=True, width="stretch")
    dist = pd.DataFrame([{"family": f, "distance (family spreads)": round(d, 2),
                          "models": max((p["family_n_models"].get(f, 0) for p in audit.panels), default=0)}
                         for f, d in sorted(audit.distances.items(), key=lambda x: x[1])])
    c = audit.consistency
    with st.expander("How the placement is computed, and the consistency checks"):
        st.markdown(
            f"- **Value**: the model's median rank of the category's words within each prompt (among the "
            f"{audit.n_words} corpus words, ties averaged), averaged over the framing's prompts "
            f"({audit.n_prompts} prompts in all).\n"
            f"- **Interval**: {audit.level:.0%} percentile interval of {audit.reps} bootstrap replicates that "
            f"resample prompts and words independently (seed {audit.seed}).\n"
            "- **Reference**: " + audit.reference_kind + f" ({len(audit.reference)}); a model of the paper is "
            "left out of its own reference.\n"
            "- **Distance**: per family, the root mean square over the panels of (value − family mean) divided by "
            "the family's model-to-model standard deviation. *Clearly*: the next family is at least one spread "
            "further; *somewhat*: half a spread; never *clearly* when every interval holds both families' means.")
        st.dataframe(dist, hide_index=True, width="stretch")
        rows = [{"check": "word rankings agree from prompt to prompt (mean rank correlation)",
                 "this model": c.get("model", {}).get("within"),
                 "reference models": _range(c.get("reference_within"))},
                {"check": "best vs worst questions (rank correlation of mean scores; high = ignores the question)",
                 "this model": c.get("model", {}).get("best_vs_worst"),
                 "reference models": _range(c.get("reference_best_vs_worst"))}]
        st.dataframe(pd.DataFrame(rows).round(2), hide_index=True, width="stretch")
    a, b, _ = st.columns([1, 1, 3])
    a.download_button("JSON", json.dumps(audit.to_json(), allow_nan=False, indent=1), f"audit_model_{corpus}.json",
                      "application/json", key="ym-json")
    ak.downloads(table, f"audit_model_{corpus}", "ym-dl")


def _range(r: dict | None) -> str:
    return f"{r['min']:.2f} to {r['max']:.2f} (median {r['median']:.2f})" if r else "—"


@ak.guarded
def main() -> None:
    ak.header("Your model: where does it sit among the families?", INTRO)
    saved = st.session_state.get("comparison", {})
    with st.sidebar:
        corpus = ak.comparison_corpus_picker("ym", saved.get("corpus", "big2-nouns"))
    model = pick_model(corpus)
    if model is None:
        ak.empty_state("No reward model is scored on this corpus yet.",
                       "Add your model on the Models page and score it on the Score page (Big Two nouns x the "
                       "paper's 54 prompts takes minutes for a small model), or import the paper's results on Home.",
                       "pages/score.py", "Score a model")
        return
    st.session_state["your-model-choice"] = model
    audit = ak.model_audit_of(corpus, model)
    short = ak.display_name(audit.model)
    if ak.shared():  # a visitor never sees a server path: not in the sentence, the tables or the JSON
        audit = audit.renamed(report.public_model_name)
    verdict(audit)
    shown = {**audit.to_json(), "model": short}  # the short name; the full one is above
    ak.plot(charts.model_placement_figure(shown, title=f"Where it sits — {ak.corpus_label(corpus)}"), key="ym-chart")
    st.caption("Black diamond: this model's mean rank of the category's words with its 95% interval (prompts and "
               "words resampled). Large dots: each family's mean over the reference models; small dots: the "
               "reference models (hover for names). Up = ranked nearer 1 (preferred on positive prompts, named "
               "more readily as the worst on negative ones).")
    details(audit, corpus)
    ak.link("pages/report.py", "Put this placement in the report", ":material/description:")


main()
