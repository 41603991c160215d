"""Words: per model and prompt the optimal and pessimal words; one word's rank across all
models; the words whose rank differs most between two families."""
from __future__ import annotations

import streamlit as st

import appkit as ak
from core import charts, prompts, ui


def per_model(ranked, models_, pids) -> None:
    st.subheader("Optimal and pessimal words of one model")
    c1, c2, c3 = st.columns([2, 3, 1])
    model = c1.selectbox("Model", models_, key="w-model")
    pid = c2.selectbox("Prompt", pids, format_func=ak.prompt_label, key="w-prompt")
    n = int(c3.number_input("Words", 5, 50, 10, key="w-n"))
    hide = ak.offensive_filter("w-hide-offensive", ranked["response"].unique())
    top, bottom = ui.top_bottom_words(ak.without_offensive(ranked) if hide else ranked, model, [pid], n)
    fam = ranked.loc[ranked["model"] == model, "family"].iloc[0] if (ranked["model"] == model).any() else None
    titles = (("Most often named as the worst", "Least often named as the worst")
              if prompts.framing_of(pid) == "negative" else ("Most preferred", "Least preferred"))
    ak.plot(charts.top_bottom_figure(top, bottom, "score", color=charts.family_color(fam), titles=titles,
                                     title=f"{model} · “{ak.PROMPT_TEXT.get(pid, pid)}”"), key="w-topbottom")
    a, b = st.columns(2)
    a.dataframe(top, hide_index=True, width="stretch")
    b.dataframe(bottom, hide_index=True, width="stretch")


def one_word(ranked, vocab, n_words, framing_pids) -> None:
    st.subheader("One word across models")
    c1, c2 = st.columns([2, 3])
    default = vocab.index("love") if "love" in vocab else 0
    word = c1.selectbox("Word", vocab, index=default, key="w-word")
    framing = c2.radio("Prompts", list(framing_pids), horizontal=True, key="w-word-framing")
    table = ui.word_across_models(ranked, word, framing_pids[framing])
    ak.plot(charts.word_rank_figure(table, word, n_words), key="w-word-chart")
    st.caption("Bars: mean rank over the prompts; whiskers: standard deviation over prompts. Lower = preferred.")


def family_gap(ranked, framing_pids) -> None:
    st.subheader("Words the families disagree on most")
    fams = charts.family_order(ranked["family"].dropna().unique())
    if len(fams) < 2:
        st.info("Needs reward models from at least two families; score or import more models.")
        return
    c1, c2, c3, c4 = st.columns(4)
    fa = c1.selectbox("Family A", fams, index=0, key="w-fa")
    fb = c2.selectbox("Family B", [f for f in fams if f != fa], index=0, key="w-fb")
    framing = c3.radio("Prompts", list(framing_pids), key="w-gap-framing")
    n = int(c4.number_input("Words each way", 5, 40, 12, key="w-gap-n"))
    gaps = ui.family_gaps(ranked, fa, fb, framing_pids[framing], n)
    ak.plot(charts.family_gap_figure(gaps, fa, fb, f"Mean rank in {fa} minus mean rank in {fb} ({framing} prompts)"),
            key="w-gap-chart")
    ak.downloads(gaps, f"family_gap_{fa}_{fb}", "dl-gap")


@ak.guarded
def main() -> None:
    ak.header("Words", "The words behind the numbers: what each reward model rewards most and least, and where "
              "model families part ways.")
    saved = st.session_state.get("comparison", {})
    corpus = ak.corpus_picker("w-corpus", default=saved.get("corpus", "big2-nouns"))
    ranked = ak.ranked(corpus)
    if ranked.empty:
        ak.empty_state(f"No reward-model scores on **{corpus}** yet.",
                       "Import the published results on the Home page, or score models on the Score page.",
                       "pages/home.py", "Home")
        return
    models_ = sorted(ranked["model"].unique())
    have = set(ranked["prompt_id"].unique())
    pids = [p for p in ak.PROMPT_TEXT if p in have] + sorted(have - set(ak.PROMPT_TEXT))
    framing_pids = {f: [p for p in pids if prompts.framing_of(p) == f] for f in ("positive", "negative")}
    framing_pids = {f: v for f, v in framing_pids.items() if v} or {"all": pids}
    vocab = sorted(ranked["response"].unique(), key=str.casefold)
    tab1, tab2, tab3 = st.tabs(["Per model and prompt", "One word across models", "Family differences"])
    with tab1:
        per_model(ranked, models_, pids)
    with tab2:
        one_word(ranked, vocab, len(vocab), framing_pids)
    with tab3:
        family_gap(ranked, framing_pids)


main()
