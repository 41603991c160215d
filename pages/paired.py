"""Paired: two reward models judged on the very same (prompt, word) cells — per category the
paired rank difference with a test and an interval, then the words that differ most."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

import appkit as ak
import audit_ui
from core import charts, paired


def difference_figure(summary, a: str, b: str) -> go.Figure:
    labels = [f"{r.framing} · {r.category}" for r in summary.itertuples()]
    fig = go.Figure(go.Scatter(
        x=summary["mean_difference"], y=labels, mode="markers", marker=dict(size=10, color="#0064E0"),
        error_x=dict(type="data", symmetric=False, array=summary["ci_high"] - summary["mean_difference"],
                     arrayminus=summary["mean_difference"] - summary["ci_low"])))
    fig.add_vline(x=0, line_dash="dot", line_color="#7b8794")
    fig.update_layout(title=f"Mean rank difference ({a} − {b}) with 95% intervals",
                      xaxis_title=f"← {a} ranks the category higher · {b} ranks it higher →",
                      height=140 + 60 * len(summary), margin=dict(l=170, r=30, t=60, b=60), plot_bgcolor="white")
    fig.update_yaxes(autorange="reversed")
    return fig


@ak.guarded
def main() -> None:
    ak.header("Paired comparison of two reward models",
              "Beyond the paper: two models judged on the very same prompts and words. Per category, the mean "
              "difference of their ranks with a bootstrap interval over prompts and words; per framing, one test.")
    sel = ak.comparison_filters("pair")
    if len(sel["models"]) < 2:
        ak.empty_state("Choose at least two reward models scored on this corpus in the sidebar.",
                       "Import the paper's published results on the Home page, or score models.", "pages/home.py", "Home")
        return
    c1, c2 = st.columns(2)
    a = c1.selectbox("Model A", sel["models"], key="pair-a")
    b = c2.selectbox("Model B", [m for m in sel["models"] if m != a], key="pair-b")
    ranks = audit_ui.selection_ranks(sel)
    words = ak.corpus(sel["corpus"])[0]
    summary = paired.paired_summary(ranks, words, a, b, reps=audit_ui.REPS, seed=audit_ui.SEED)
    if summary.empty:
        st.warning("These two models share no scored (prompt, word) cells in this selection.")
        return
    ak.plot(difference_figure(summary, a, b), key="pair-fig")
    st.dataframe(summary.drop(columns=["model_a", "model_b", "reps", "level"]), hide_index=True, width="stretch")
    st.caption("Negative difference: model A gives the category's words better (smaller) ranks. Intervals resample "
               "prompts and words. On negative prompts a better rank means a likelier answer to 'the worst thing'.")
    st.markdown("**Tests: one per framing**")
    tests = paired.paired_tests(ranks, words, a, b, reps=audit_ui.REPS, seed=audit_ui.SEED)
    st.dataframe(tests.drop(columns=["model_a", "model_b"]), hide_index=True, width="stretch")
    st.caption("Both models rank the same words on every prompt, so their rank sums are equal: whatever model A "
               "gains on one category it loses on the other. 'A ranks Agency higher' and 'A ranks Communion lower' "
               "are one finding, so each framing has one test, of the contrast (difference on the first category "
               "minus difference on the second). p_value: bootstrap over prompts and words, from the same draws as "
               "the interval. p_prompts_only: the paired t-test over prompts, which treats the words as fixed and is "
               "therefore far smaller — read it as being about these words only.")
    st.subheader("Words that differ most")
    panels = [(r.framing, r.category) for r in summary.itertuples()]
    fr, cat = st.selectbox("Panel", panels, format_func=lambda p: f"{p[1]} words, {p[0]} prompts", key="pair-panel")
    n = st.slider("Words", 5, 50, 15, key="pair-n")
    top = paired.word_differences(ranks, words, a, b, fr, cat, n)
    st.dataframe(top, hide_index=True, width="stretch")
    ak.downloads(top, f"paired_words_{cat}_{fr}", "pair-dl")
    ak.plot(charts.empty_figure("") if top.empty else go.Figure(go.Bar(
        x=top["difference"], y=top["word"], orientation="h", marker_color="#0064E0")).update_layout(
        title=f"Rank in {a} − rank in {b}", height=120 + 22 * len(top), yaxis=dict(autorange="reversed"),
        plot_bgcolor="white"), key="pair-words")


main()
