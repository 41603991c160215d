"""Paired: two reward models judged on the very same (prompt, word) cells — per category the
paired rank difference with an interval, per framing one test, then the words that differ most."""
from __future__ import annotations

import streamlit as st

import appkit as ak
import audit_ui
from core import charts, paired


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
    a = c1.selectbox("Model A", sel["models"], format_func=ak.display_name, key="pair-a",
                     help=ak.models_help(sel["models"]))
    b = c2.selectbox("Model B", [m for m in sel["models"] if m != a], format_func=ak.display_name, key="pair-b")
    name_a, name_b = ak.display_name(a), ak.display_name(b)
    ranks = audit_ui.selection_ranks(sel)
    words = ak.corpus(sel["corpus"])[0]
    ak.check_categories(sel["corpus"])
    summary = paired.paired_summary(ranks, words, a, b, reps=audit_ui.REPS, seed=audit_ui.SEED)
    if summary.empty:
        st.warning("These two models share no scored (prompt, word) cells in this selection.")
        return
    ak.plot(charts.paired_difference_figure(summary, name_a, name_b), key="pair-fig")
    st.dataframe(paired.summary_table(summary), hide_index=True, width="stretch")
    ak.downloads(summary, f"paired_{sel['corpus']}", "pair-sum-dl")
    st.caption("Negative difference: model A gives the category's words better (smaller) ranks. Intervals resample "
               "prompts and words. On negative prompts a better rank means a likelier answer to 'the worst thing'.")
    st.markdown("**Tests: one per framing**")
    tests = paired.paired_tests(ranks, words, a, b, reps=audit_ui.REPS, seed=audit_ui.SEED)
    st.dataframe(paired.tests_table(tests), hide_index=True, width="stretch")
    ak.downloads(tests, f"paired_tests_{sel['corpus']}", "pair-tests-dl")
    st.caption("Both models rank the same words on every prompt, so their rank sums are equal: whatever model A "
               "gains on one category it loses on the other. 'A ranks Agency higher' and 'A ranks Communion lower' "
               "are one finding, so each framing has one test, of the contrast (difference on the first category "
               "minus difference on the second). p (prompts and words): bootstrap over prompts and words, from the "
               "same draws as the interval; p (Holm over the N tests): that p corrected over every test in this table, both "
               "framings together, as they are read together. p (prompts only): the paired t-test over prompts, which treats the words "
               "as fixed and is therefore far smaller — read it as being about these words only.")
    st.subheader("Words that differ most")
    panels = [(r.framing, r.category) for r in summary.itertuples()]
    fr, cat = st.selectbox("Panel", panels, format_func=lambda p: f"{p[1]} words, {p[0]} prompts", key="pair-panel")
    n = st.slider("Words", 5, 50, 15, key="pair-n")
    top = paired.word_differences(ranks, words, a, b, fr, cat, n)
    st.dataframe(paired.words_table(top), hide_index=True, width="stretch")
    ak.downloads(top, f"paired_words_{cat}_{fr}", "pair-dl")
    ak.plot(charts.paired_words_figure(top, name_a, name_b), key="pair-words")


main()
