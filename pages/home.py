"""Home: what the tool shows and why, what the database holds, the one-click import of the
paper's published results, and the headline chart as soon as data is there."""
from __future__ import annotations

import streamlit as st

import appkit as ak
import pandas as pd

from core import analysis, charts, published, ui

INTRO = """
Reward models decide which answers a chatbot learns to give. This dashboard shows that they
**inherit value biases from the language model they were built on**: ask a reward model
*"What, in one word, is the greatest thing ever?"* and score hundreds of candidate answers —
models built on **Llama** tend to reward words about *agency* (freedom, success, power), models
built on **Gemma** words about *communion* (love, family, kindness).

Each reward model ranks the words of a corpus from 1 (highest reward) down. Lower ranks for a
category mean the model prefers those words. The tool reproduces the analysis of Christian et al.,
*Reward Models Inherit Value Biases from Pretraining* (ICLR 2026), and lets you run it on your
own models and word lists.
"""


def stats_row() -> dict:
    s = ak.cached("stats")
    cols = st.columns(4)
    cols[0].metric("Models", s["n_models"])
    cols[1].metric("Scores stored", f"{s['n_scores']:,}")
    cols[2].metric("Reward-model scores", f"{s['n_rm_scores']:,}")
    cols[3].metric("Language-model log-probs", f"{s['n_lm_scores']:,}")
    st.caption(f"Database: `{ak.db_label()}`" + ("" if ak.shared() else " (set `VALUEAUDIT_DB` to use another)"))
    return s


def import_button() -> None:
    """Why a button: the published scores let anyone see the paper's result without a GPU."""
    st.subheader("Start with the paper's published results")
    st.write("Import the ten reward models' published scores on the Big Two nouns "
             "(~143,000 rows; takes a few seconds; already-stored rows are kept).")
    if st.button("Import the paper's published results", type="primary", key="import_published"):
        bar = st.progress(0.0, text="Importing…")

        def progress(done, total, hub):
            bar.progress(done / max(total, 1), text=f"Imported {hub} ({done}/{total})")

        counts = published.import_published(ak.store(), progress=progress)
        bar.empty()
        st.session_state["import_msg"] = (f"Imported {counts['rows_added']:,} new rows for {counts['models']} models "
                                          f"from {counts['files']} files.")
        st.rerun()  # redraw the counts and the headline from the new data


def headline() -> None:
    result = ak.figure1("big2-nouns")
    if not result or not result.get("family_means"):
        ak.empty_state("No reward-model scores on the Big Two nouns yet.",
                       "Import the published results (button above), or score a model on the Score page.",
                       "pages/score.py", "Score models")
        return
    st.subheader("Headline: which values do reward models prefer, by base family?")
    fm = pd.DataFrame(result["family_means"])
    ak.plot(charts.family_means_figure(fm, "Mean rank of each category's words — Big Two nouns (lower = preferred)"),
            key="home-headline")
    lines = analysis.summary_text(result).splitlines()
    positive = [ln for ln in lines if ln.startswith("On positive prompts")] or lines[1:2]
    st.markdown("**In plain words.** " + " ".join(positive))
    st.caption(ui.mixed_model_sentence(result))
    ak.link("pages/compare.py", "See the full comparison, per model and prompt", ":material/bar_chart:")


@ak.guarded
def main() -> None:
    ak.header("Do reward models inherit values from their base model?", INTRO)
    if msg := st.session_state.pop("import_msg", None):
        st.success(msg)
    s = stats_row()
    st.divider()
    if s["n_rm_scores"]:
        headline()
        with st.expander("Import or refresh the paper's published results"):
            import_button()
    else:
        import_button()
        headline()


main()
