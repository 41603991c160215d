"""Compare (the heart): median ranks per panel (framing x category) by family — violins of
every (model, prompt), each model's mean with one standard error as the paper draws it (a
95% interval as an option), Bonferroni-corrected stars — the family means beside the
paper's "average ranks" table, the mixed model in one plain sentence, and any model's top
and bottom words."""
from __future__ import annotations

import pandas as pd
import streamlit as st

import appkit as ak
import audit_ui
from core import family as _family
from core import analysis, charts, corpora, prompts, wording
from core.escape import markdown as md


def coverage_notice(sel: dict) -> None:
    """Which models the statistics below use, who is left out and why (or in, incompletely
    scored). Plain text: model names are data."""
    with st.container(border=True):
        st.text(f"{len(sel['models'])} reward models in the family statistics. " + (
            sel["coverage_note"] + " (Sidebar: 'Include models with incomplete coverage'.)"
            if sel.get("coverage_note") else "Every chosen model is scored on every compared prompt and word."))


def unscored_notice(sel: dict) -> None:
    """Name the corpus words no chosen model has a score for, instead of a silent smaller count."""
    missing = ak.cached("unscored_words", sel["corpus"], tuple(sorted(sel["keys"])))
    if missing:
        shown = ", ".join(missing[:30]) + (f", … ({len(missing) - 30} more)" if len(missing) > 30 else "")
        st.caption(f"{wording.plural(len(missing), 'word')} of {md(sel['corpus'])} {'has' if len(missing) == 1 else 'have'} "
                   f"no score from the chosen models and {'is' if len(missing) == 1 else 'are'} not ranked: {md(shown)}.")


def summary(result: analysis.Figure1, sel: dict) -> None:
    """The one story first (core/headline.py), then the paper's analysis panel by panel."""
    audit_ui.headline_box(sel["corpus"], result)
    lines = analysis.summary_text(result).splitlines()
    with st.expander("The paper's analysis, panel by panel", expanded=False):
        st.markdown("**What this shows.** " + md(lines[0]))
        for ln in lines[1:]:
            st.markdown("- " + md(ln))
        st.markdown("**The paper's mixed model.** " + md(wording.mixed_model_sentence(result)))
        for note in result.notes:
            st.caption(md(note))


def mfd_variant_note(sel: dict) -> None:
    """Which MFD 2.0 variant this is and how it differs (the sidebar switches between them)."""
    if note := corpora.NOTES.get(sel["corpus"]):
        st.caption(f"**{sel['corpus']}** — {note} (sidebar: 'MFD 2.0 variant')")


def interval_choice() -> str:
    """The error bar on each model's mean: one SE as the paper's Figure 1, or a 95% interval."""
    return st.radio("Error bars on each model's mean", list(charts.INTERVALS), horizontal=True,
                    format_func=charts.INTERVALS.get, key="cmp-interval")


def family_tables(result: analysis.Figure1, corpus: str) -> None:
    """The family means (mean of each model's mean median rank) beside the paper's
    "average ranks" table (mean of each model's median rank over all words and prompts)."""
    left, right = st.columns(2)
    with left:
        st.markdown("**Family means** — mean over models of each model's mean median rank")
        fm = pd.DataFrame(result.family_means)
        st.dataframe(fm, hide_index=True, width="stretch")
        ak.downloads(fm, f"family_means_{corpus}", "dl-fm")
    with right:
        st.markdown("**Average ranks** (the paper's table) — mean over models of each model's median rank "
                    "over all words and prompts")
        avg = analysis.average_ranks_table(result)
        st.dataframe(avg, hide_index=True, width="stretch")
        if not avg.empty:
            ak.downloads(avg, f"average_ranks_{corpus}", "dl-avg")


def panels(result: analysis.Figure1, sel: dict) -> None:
    med = ak.public(pd.DataFrame(result.median_ranks))  # hover names: no server path on a shared server
    med = med[med["framing"].isin(sel["framing"])]
    tests = wording.tests_table(result)
    ak.family_legend(med["family"].dropna())
    interval = interval_choice()
    fig = charts.compare_figure(med, tests, title=f"Median rank of each category's words — {sel['corpus']} "
                                f"({result.n_words} words)", interval=interval)
    ak.plot(fig, key="compare-main", filename=f"figure1_{sel['corpus']}")
    bars = "± 1 standard error (as the paper)" if interval == "se" else "a 95% interval (the t quantile for its number of prompts times the SE: ± 2.06 SE over 27 prompts)"
    st.caption("Each faint dot is one (model, prompt): the median rank of that category's words; the violin shows "
               f"their spread per family. Solid dots: each model's mean over prompts with {bars}. "
               "Rank 1 = the most rewarded word, so **higher on the chart = ranked nearer the top**: preferred on "
               "positive prompts, named more readily as *the worst thing* on negative ones. Hover a dot for its "
               "model. Stars: the paper's Welch t-test between families over one median rank per (model, prompt), "
               "Bonferroni-corrected over the panels (* p<.05, ** p<.01, *** p<.001); it counts prompts, not "
               "models, as the samples. The stricter analysis above treats the models as samples too.")
    unscored_notice(sel)
    with st.expander("Numbers: family means, average ranks and tests"):
        family_tables(result, sel["corpus"])
        if not tests.empty:
            st.dataframe(tests, hide_index=True, width="stretch")
            ak.downloads(tests, f"family_tests_{sel['corpus']}", "dl-tests")
        else:
            st.caption(md(result.reason or "No tests."))
        ak.downloads(med, f"median_ranks_{sel['corpus']}", "dl-med")


def model_words(sel: dict) -> None:
    """Why: a number like 'median rank 128' means more next to the words behind it."""
    st.subheader("One model's highest- and lowest-rewarded words")
    c1, c2, c3 = st.columns([2, 2, 1])
    model = c1.selectbox("Model", sel["models"], format_func=ak.display_name, key="cmp-word-model")
    framing = c2.radio("On prompts", sel["framing"] or ["positive"], horizontal=True, key="cmp-word-framing",
                       format_func=lambda f: {"positive": "positive (best/greatest/good)",
                                              "negative": "negative (worst/bad/terrible)"}.get(f, f))
    n = c3.number_input("Words", 5, 50, 10, key="cmp-word-n")
    words, _ = ak.corpus(sel["corpus"])
    hide = ak.offensive_filter("cmp-hide-offensive", words["word"])
    pids = tuple(p for p in sel["prompts"] if prompts.framing_of(p) == framing)
    with st.spinner("Ranking this model's words…"):
        means = ak.cached("word_means", sel["corpus"], model, pids)
    shown = ak.without_offensive(means, "word") if hide else means
    top, bottom = shown.head(int(n)).reset_index(drop=True), shown.tail(int(n)).iloc[::-1].reset_index(drop=True)
    fam = dict(zip(ak.cached("models")["name"], ak.cached("models")["family"])).get(model)
    n_prompts = int(means["n_prompts"].max()) if not means.empty else 0
    titles = (("Most often named as the worst", "Least often named as the worst") if framing == "negative"
              else ("Most preferred", "Least preferred"))
    ak.plot(charts.top_bottom_figure(top, bottom, "score", color=_family.color(fam), titles=titles,
                                     title=f"{ak.display_name(model)}: mean reward over {n_prompts} {framing} prompts"),
            key="cmp-words")
    a, b = st.columns(2)
    a.dataframe(top, hide_index=True, width="stretch")
    b.dataframe(bottom, hide_index=True, width="stretch")
    if framing == "negative":
        st.caption("On negative prompts a *top* word is the model's favourite answer to 'the worst thing' — "
                   "i.e. a word it views unfavourably.")


@ak.guarded
def main() -> None:
    ak.header("Compare reward models by base family",
              "Does the base model a reward model was built on shape which values it rewards? "
              "Choose the corpus, models, prompts and framing in the sidebar.")
    sel = ak.comparison_filters("cmp")
    mfd_variant_note(sel)
    if not sel["models"] and not ak.scored_rms(sel["corpus"])[0]:
        ak.empty_state(f"No reward-model scores on **{md(sel['corpus'])}** yet.",
                       "Import the paper's published results on the Home page (Big Two nouns), "
                       "or score reward models on this corpus on the Score page.", "pages/home.py", "Home")
        return
    if not sel["chosen"] or not sel["prompts"] or not sel["framing"]:
        st.warning("Choose at least one model, one framing and one prompt in the sidebar.")
        return
    if not sel["models"]:
        st.warning("No chosen model is scored on every chosen prompt with every corpus word, so there is nothing "
                   "to compare. Tick 'Include models with incomplete coverage' in the sidebar, or score them.")
        coverage_notice(sel)
        return
    result = ak.comparison_result(sel)
    if result is None:
        ak.empty_state("The chosen models have no scores for these prompts and words.",
                       "Widen the filters or score the models on this corpus.")
        return
    coverage_notice(sel)
    ak.link("pages/your_model.py", "Auditing one model? See where it sits among the families", ":material/person_search:")
    summary(result, sel)  # the one story (with the stricter verdict) before the paper's stars
    panels(result, sel)
    audit_ui.compare_uncertainty(sel, result)  # beyond the paper: intervals, ties, corrections (issue 15)
    st.divider()
    model_words(sel)


main()
