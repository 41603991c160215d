"""Training dynamics (Figure 4): how the Agency/Communion preference of reward models
trained in-house on Gemma, Llama and Qwen bases evolves over training checkpoints (one run
at a time), and where each run ends against its training-data size (Figure 4b). Runs are
labelled by the paper's manifest (generate_figure_4_and_A5.R), not by their file names."""
from __future__ import annotations

import pandas as pd
import streamlit as st

import appkit as ak
from core import family as _family
from core import charts, training


def identical_note(sub: pd.DataFrame, td: pd.DataFrame) -> None:
    """Say so when this run's file is byte-identical to another run's (the paper's 13K and 27K)."""
    other = sub["identical_to"].dropna().unique()
    if len(other):
        twin = td.loc[td["file"] == other[0], "run"].iloc[0]
        st.warning(f"This run's file ({sub['file'].iloc[0]}) is byte-identical to the file of **{twin}** "
                   f"({other[0]}): the two runs show the same numbers, so they are not two independent results.",
                   icon=":material/content_copy:")


def checkpoints_view(td: pd.DataFrame) -> None:
    runs = (td[["run", "data_source", "data_size_k", "method"]].drop_duplicates()
            .sort_values(["method", "data_size_k", "data_source"]))
    labels = runs["run"].tolist()
    c1, c2, c3 = st.columns([2, 2, 2])
    choice = c1.selectbox("Training run", labels, key="td-run",
                          index=next((i for i, lb in enumerate(labels) if "UltraFeedback" in lb), 0))
    sub = td[td["run"] == choice]
    fams = _family.order(sub["base_model"].dropna().unique())
    keep = c2.multiselect("Base families", fams, default=fams, key="td-fams")
    cats = c3.multiselect("Categories", sorted(sub["category"].unique()), default=sorted(sub["category"].unique()),
                          key="td-cats")
    identical_note(sub, td)
    sub = sub[sub["base_model"].isin(keep) & sub["category"].isin(cats)]
    ak.family_legend(keep)
    ak.plot(charts.training_figure(sub, f"Median rank over training — {choice}"), key="td-chart")
    st.caption("Median rank: within each checkpoint the Big Two expanded words are ranked by reward (1 = highest) "
               "and the category's median rank is shown, as in the paper's files; higher on the chart = the "
               "category is preferred. Solid = Agency, dotted = Communion.")
    if sub["checkpoint"].nunique() <= 1:
        st.info("This run has a single checkpoint, so there is no curve — only the final point.")
    with st.expander("Data"):
        st.dataframe(sub, hide_index=True, width="stretch")
        ak.downloads(sub, "training_dynamics", "dl-td")


def data_size_view(td: pd.DataFrame) -> None:
    """Figure 4b (Gemma and Llama), or with Qwen on the Bradley-Terry runs as Figure A5b."""
    with_qwen = st.toggle("Add Qwen (the paper's Figure A5b: Bradley-Terry runs only)", key="td-qwen")
    fams = ("Gemma", "Llama", "Qwen") if with_qwen else ("Gemma", "Llama")
    d = training.figure_4b(td[td["method"] != "GRM"] if with_qwen else td, fams)
    ak.family_legend(list(fams))
    ak.plot(charts.figure_4b(d, "Final-checkpoint median rank against training-data size"), key="td-4b")
    st.caption("Each point is one run's last checkpoint; the dotted line joins the base families of one run. "
               "Sizes are thousands of preference pairs as the paper's manifest gives them; the GRM run "
               "(UltraFeedback + Skywork) is listed as 550K in the manifest while the paper's Figure 4b axis "
               "labels it 632k. The 13K and 27K runs come from byte-identical files.")
    with st.expander("Data"):
        st.dataframe(d, hide_index=True, width="stretch")
        ak.downloads(d, "figure_4b", "dl-4b")


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
    view = st.radio("View", ["Over training (one run)", "Against data size (Figure 4b)"], horizontal=True,
                    key="td-view")
    if view.startswith("Over"):
        checkpoints_view(td)
    else:
        data_size_view(td)


main()
