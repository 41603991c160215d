"""Training dynamics (Figure 4): how the Agency/Communion preference of reward models
trained in-house on Gemma, Llama and Qwen bases evolves over training checkpoints."""
from __future__ import annotations

import streamlit as st

import appkit as ak
from core import charts


@ak.guarded
def main() -> None:
    ak.header("Training dynamics", "The paper trained reward models itself from Gemma, Llama and Qwen bases on the "
              "same preference data and tracked, checkpoint by checkpoint, how the corpus categories rank. "
              "If the curves of different bases stay apart, the base model's values survive reward training.")
    td = ak.training_dynamics()
    if td.empty:
        ak.empty_state("The paper's training-dynamics files were not found.",
                       "Set VALUEAUDIT_PAPER_DATA to a copy of the paper's data/ folder (or connect to the internet).")
        return
    runs = td[["data_source", "data_size", "data_size_k"]].drop_duplicates().sort_values(["data_source", "data_size_k"])
    labels = [f"{r.data_source} · {r.data_size} pairs" for r in runs.itertuples()]
    c1, c2, c3 = st.columns([2, 2, 2])
    choice = c1.selectbox("Training data", labels, key="td-run",
                          index=next((i for i, lb in enumerate(labels) if "UltraFeedback" in lb), 0))
    src, size = choice.split(" · ")[0], choice.split(" · ")[1].split()[0]
    sub = td[(td["data_source"] == src) & (td["data_size"] == size)]
    fams = charts.family_order(sub["base_model"].dropna().unique())
    keep = c2.multiselect("Base families", fams, default=fams, key="td-fams")
    cats = c3.multiselect("Categories", sorted(sub["category"].unique()), default=sorted(sub["category"].unique()),
                          key="td-cats")
    sub = sub[sub["base_model"].isin(keep) & sub["category"].isin(cats)]
    ak.family_legend(keep)
    ak.plot(charts.training_figure(sub, f"Rank statistic over training — {choice}"), key="td-chart")
    st.caption("Rank statistic: the sum of the category's word ranks as reported in the paper's files "
               "(lower = the category is preferred). Solid = first category, dotted = second.")
    if sub["checkpoint"].nunique() <= 1:
        st.info("This run has a single checkpoint, so there is no curve — only the final point.")
    with st.expander("Data"):
        st.dataframe(sub, hide_index=True, width="stretch")
        ak.downloads(sub, "training_dynamics", "dl-td")


main()
