"""Implicit reward: where do the values come from? Compare two language models' preferences
word by word (MWLR, the paper's Figures 2-3), and check how far a reward model agrees with
its base language model."""
from __future__ import annotations

import pandas as pd
import streamlit as st

import appkit as ak
from core import analysis, charts, ui

HOW_TO = """Language-model log-probabilities are computed from the command line (or on the Score page,
kind *Language models*), for example:

```bash
python -m core score --kind lm --model google/gemma-2-2b-it --corpus big2-nouns
python -m core score --kind lm --model meta-llama/Llama-3.2-3B-Instruct --corpus big2-nouns
```
Then come back here to compare them."""


def pick_corpus() -> str:
    names = [""] + ak.cached("corpus_names")
    return st.selectbox("Words", names, key="ir-corpus",
                        format_func=lambda n: n or "all stored words (e.g. the token intersection)")


def mwlr_section(lm: pd.DataFrame, corpus: str) -> None:
    st.subheader("Which words does each language model prefer? (MWLR)")
    names = sorted(lm["model"].unique())
    fam = dict(zip(lm["model"], lm["family"]))
    c1, c2, c3 = st.columns([2, 2, 2])
    m1 = c1.selectbox("Model 1", names, index=0, key="ir-m1")
    m2 = c2.selectbox("Model 2", [n for n in names if n != m1], index=0, key="ir-m2")
    pids = sorted(lm["prompt_id"].unique())
    pid = c3.selectbox("Prompt", ["(average over prompts)"] + pids, key="ir-prompt")
    n = st.slider("Words each way", 5, 40, 15, key="ir-n")
    sub = lm if pid.startswith("(") else lm[lm["prompt_id"] == pid]
    table = analysis.mwlr_table(sub, m1, m2)
    if table.empty:
        st.info("These two models share no scored words on this prompt.")
        return
    colors = (charts.family_color(fam.get(m1)), charts.family_color(fam.get(m2)))
    ak.plot(charts.mwlr_lollipop(table, m1, m2, n, colors, f"{m1} vs {m2}"), key="ir-lollipop")
    st.caption("MWLR(w) = ½·(p₁(w)+p₂(w))·(log p₁(w) − log p₂(w)): positive = model 1 prefers the word; "
               "weighting by the mixture keeps rare words from dominating.")
    tb = analysis.top_bottom(table, n)
    a, b = st.columns(2)
    a.markdown(f"**{m1} prefers**")
    a.dataframe(tb["top"], hide_index=True, width="stretch")
    b.markdown(f"**{m2} prefers**")
    b.dataframe(tb["bottom"], hide_index=True, width="stretch")
    ak.downloads(table, "mwlr", "dl-mwlr")
    if corpus:
        st.markdown("**By category**")
        st.dataframe(analysis.mwlr_by_category(table, ak.corpus(corpus)[0]), hide_index=True, width="stretch")


def agreement_section(lm: pd.DataFrame, corpus: str) -> None:
    st.subheader("Does a reward model agree with its base language model?")
    rm = ak.cached("scores", "rm", corpus, None, None)
    if rm.empty:
        st.info("No reward-model scores on these words; import the published results or score an RM.")
        return
    c1, c2 = st.columns(2)
    rm_name = c1.selectbox("Reward model", sorted(rm["model"].unique()), key="ir-rm")
    lm_name = c2.selectbox("Language model", sorted(lm["model"].unique()), key="ir-lm")
    r, l_ = rm[rm["model"] == rm_name], lm[lm["model"] == lm_name]
    if r["model_key"].nunique() > 1:
        r = r[r["model_key"] == r["model_key"].iloc[0]]
    agree = analysis.rm_lm_agreement(r, l_)
    overall = agree[agree["prompt"] == "(all)"]
    if overall.empty or not overall["n"].iloc[0]:
        st.info("The two models have no (prompt, word) pairs in common.")
        return
    o = overall.iloc[0]
    st.metric("Spearman correlation, all pairs", f"{o['spearman']:.2f}" if pd.notna(o["spearman"]) else "n/a",
              help=f"{int(o['n']):,} (prompt, word) pairs; Kendall τ = {o['kendall']:.2f}")
    ak.plot(charts.agreement_figure(ui.agreement_pairs(r, l_), rm_name, lm_name), key="ir-agree")
    st.dataframe(agree, hide_index=True, width="stretch")


@ak.guarded
def main() -> None:
    ak.header("Implicit reward", "A language model already 'prefers' some answers: the ones it finds likely. "
              "Comparing two base models word by word shows the value differences a reward model built on them "
              "can inherit.")
    corpus = pick_corpus()
    lm = ak.cached("scores", "lm", corpus, None, None)
    if lm.empty:
        ak.empty_state("No language-model log-probabilities stored" + (f" for {corpus}" if corpus else "") + ".",
                       None)
        st.markdown(HOW_TO)
        return
    if lm["model"].nunique() < 2:
        st.info(f"Only one language model scored ({lm['model'].iloc[0]}); MWLR needs two. " + HOW_TO)
    else:
        mwlr_section(lm, corpus)
    st.divider()
    agreement_section(lm, corpus)


main()
