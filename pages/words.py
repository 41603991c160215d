"""Words: per model and prompt the optimal and pessimal words; one word's rank across all
models; the words whose rank differs most between two families."""
from __future__ import annotations

import streamlit as st

import appkit as ak
from core import family as _family
from core import charts, offensive, prompts, settings, vocabscan
from core import words as _words
from core.implicit_charts import show_token
from core.escape import markdown as md
from core.store import Store


WORD_COLUMNS = {"word": "Word", "rank": "Rank", "score": "Score", "n_prompts": "Prompts"}  # a reader's headers


def per_model(ranked, models_, pids) -> None:
    st.subheader("Optimal and pessimal words of one model")
    c1, c2, c3 = st.columns([2, 3, 1])
    model = c1.selectbox("Model", models_, format_func=ak.display_name, key="w-model")
    pid = c2.selectbox("Prompt", pids, format_func=ak.prompt_label, key="w-prompt")
    n = int(c3.number_input("Words", 5, 50, 10, key="w-n"))
    hide = ak.offensive_filter("w-hide-offensive", ranked["response"].unique())
    top, bottom = _words.top_bottom_words(ak.without_offensive(ranked) if hide else ranked, model, [pid], n)
    fam = ranked.loc[ranked["model"] == model, "family"].iloc[0] if (ranked["model"] == model).any() else None
    titles = (("Most often named as the worst", "Least often named as the worst")
              if prompts.framing_of(pid) == "negative" else ("Most preferred", "Least preferred"))
    ak.plot(charts.top_bottom_figure(top, bottom, "score", color=_family.color(fam), titles=titles,
                                     title=f"{ak.display_name(model)} · “{ak.PROMPT_TEXT.get(pid, pid)}”"), key="w-topbottom")
    a, b = st.columns(2)
    a.dataframe(top.rename(columns=WORD_COLUMNS), hide_index=True, width="stretch")
    b.dataframe(bottom.rename(columns=WORD_COLUMNS), hide_index=True, width="stretch")


def one_word(ranked, vocab, n_words, framing_pids) -> None:
    st.subheader("One word across models")
    c1, c2 = st.columns([2, 3])
    default = vocab.index("love") if "love" in vocab else 0
    word = c1.selectbox("Word", vocab, index=default, key="w-word")
    framing = c2.radio("Prompts", list(framing_pids), horizontal=True, key="w-word-framing")
    table = _words.word_across_models(ranked, word, framing_pids[framing])
    if not table.empty:  # short model names on the axis (full ids on hover), families as 'Gemma'
        table = table.assign(model=table["model"].map(ak.display_name), family=table["family"].map(_family.label))
    ak.plot(charts.word_rank_figure(table, word, n_words, framing=framing), key="w-word-chart")
    st.caption("Bars: mean rank over the prompts; whiskers: standard deviation over prompts. Lower = "
               + charts.LOWER_RANK_MEANS.get(framing, "ranked nearer the top") + ".")


def family_gap(ranked, framing_pids) -> None:
    st.subheader("Words the families disagree on most")
    fams = _family.order(ranked["family"].dropna().unique())
    if len(fams) < 2:
        st.info("Needs reward models from at least two families; score or import more models.")
        return
    c1, c2, c3, c4 = st.columns(4)
    fa = c1.selectbox("Family A", fams, index=0, format_func=_family.label, key="w-fa")
    fb = c2.selectbox("Family B", [f for f in fams if f != fa], index=0, format_func=_family.label, key="w-fb")
    framing = c3.radio("Prompts", list(framing_pids), key="w-gap-framing")
    n = int(c4.number_input("Words each way", 5, 40, 12, key="w-gap-n"))
    a, b = _family.label(fa), _family.label(fb)  # 'Gemma', as on every chart (family_gaps ignores case)
    gaps = _words.family_gaps(ranked, a, b, framing_pids[framing], n)
    ak.plot(charts.family_gap_figure(gaps, a, b, f"Mean rank in {a} minus mean rank in {b} ({framing} prompts)",
                                     framing=framing),
            key="w-gap-chart")
    ak.downloads(gaps, f"family_gap_{fa}_{fb}", "dl-gap")


@st.cache_data(show_spinner=False, max_entries=32)
def _scans(ver: tuple):
    return vocabscan.scanned_models(Store(ver[0]))


@st.cache_data(show_spinner=False, max_entries=64)
def _scan_prompts(ver: tuple, key: str):
    return vocabscan.scanned_prompts(Store(ver[0]), key)


@st.cache_data(show_spinner=False, max_entries=64)
def _scan_top_bottom(ver: tuple, key: str, prompt: str, n: int, hide: bool):
    return vocabscan.top_bottom(Store(ver[0]), key, prompt, n, hide=offensive.words() if hide else ())


@st.cache_data(show_spinner=False, max_entries=16)
def _scan_words(ver: tuple, model: str) -> list[str]:
    return vocabscan.scanned_words(Store(ver[0]), model)


def vocabulary_scans() -> None:
    """Top and bottom tokens of a model's whole vocabulary (a vocabulary scan: Score page or
    `score --corpus vocabulary`)."""
    st.subheader("Optimal and pessimal tokens of a whole vocabulary")
    scans = _scans(ak.version())
    if scans.empty:
        if not settings.allow_vocab_scans():  # a visitor is never offered what this server does not allow
            st.info("No vocabulary scan stored. On this server the operator starts them (from the command line).")
            return
        st.info("No vocabulary scan stored. Start one on the Score page (Answers: *Scan the model's "
                "vocabulary*; it shows the rows and a time estimate before it starts) or run "
                "`python -m core score --model ORG/NAME --kind rm --corpus vocabulary`.")
        return
    keys = scans["model_key"].tolist()
    label = dict(zip(keys, [f"{ak.model_label(m, f)} ({n:,} word tokens)"  # short names: never a server path
                            for m, f, n in zip(scans["model"], scans["family"], scans["n_words"])]))
    c1, c2, c3 = st.columns([3, 3, 1])
    key = c1.selectbox("Model", keys, format_func=label.get, key="w-scan-model", help=ak.models_help(scans["model"]))
    pl = _scan_prompts(ak.version(), key)
    if pl.empty:
        st.info("The scan has not stored any rows yet.")
        return
    texts = dict(zip(pl["prompt_id"], pl["prompt"]))
    order = list(ak.PROMPT_TEXT)  # the paper's order; other prompts after
    pids = sorted(texts, key=lambda p: (order.index(p) if p in order else len(order), p))
    pid = c2.selectbox("Prompt", pids, format_func=ak.prompt_label, key="w-scan-prompt",
                       index=pids.index("greatest_ever_one") if "greatest_ever_one" in pids else 0)
    n = int(c3.number_input("Tokens", 5, 100, 20, key="w-scan-n"))
    model = scans.set_index("model_key").loc[key, "model"]
    hide = ak.offensive_filter("w-scan-hide-offensive", _scan_words(ak.version(), model),
                               where="this model's vocabulary", source="as word tokens")
    top, bottom = _scan_top_bottom(ak.version(), key, texts[pid], n, hide)
    fam = scans.set_index("model_key").loc[key, "family"]
    show = lambda d: d.assign(token=d["token"].map(show_token))
    ak.plot(charts.top_bottom_figure(show(top).rename(columns={"token": "word"}),
                                     show(bottom).rename(columns={"token": "word"}), "score",
                                     color=_family.color(fam), title=f"{ak.display_name(model)} · “{texts[pid]}”",
                                     titles=("Highest reward", "Lowest reward")), key="w-scan-chart")
    a, b = st.columns(2)
    a.markdown("**Highest reward**")
    a.dataframe(show(top), hide_index=True, width="stretch")
    b.markdown("**Lowest reward**")
    b.dataframe(show(bottom), hide_index=True, width="stretch")
    st.caption("Tokens in quotes, so a leading space shows. Only this model's own word tokens are ranked.")


@ak.guarded
def main() -> None:
    ak.header("Words", "The words behind the numbers: what each reward model rewards most and least, and where "
              "model families part ways.")
    saved = st.session_state.get("comparison", {})
    corpus = ak.corpus_picker("w-corpus", default=saved.get("corpus", "big2-nouns"))
    ranked = ak.ranked(corpus)
    if ranked.empty:
        ak.empty_state(f"No reward-model scores on **{md(corpus)}** yet.",
                       "Import the published results on the Home page, or score models on the Score page.",
                       "pages/home.py", "Home")
        vocabulary_scans()
        return
    models_ = sorted(ranked["model"].unique())
    have = set(ranked["prompt_id"].unique())
    pids = [p for p in ak.PROMPT_TEXT if p in have] + sorted(have - set(ak.PROMPT_TEXT))
    # Across models: the models and prompts the selection rule uses (as Compare and `analyze`).
    sel = ak.selection(corpus)
    across = ranked[ranked["model_key"].isin(sel.used_keys) & ranked["prompt_id"].isin(sel.prompt_ids)]
    used_pids = [p for p in pids if p in set(sel.prompt_ids)]
    framing_pids = {f: [p for p in used_pids if prompts.framing_of(p) == f] for f in ("positive", "negative")}
    framing_pids = {f: v for f, v in framing_pids.items() if v} or {"all": used_pids}
    vocab = sorted(ranked["response"].unique(), key=str.casefold)
    tab1, tab2, tab3, tab4 = st.tabs(["Per model and prompt", "One word across models", "Family differences",
                                      "Vocabulary scans"])
    with tab1:
        per_model(ranked, models_, pids)
    with tab2:
        ak.coverage_note(sel)
        one_word(across, vocab, len(vocab), framing_pids)
    with tab3:
        ak.coverage_note(sel)
        family_gap(across, framing_pids)
    with tab4:
        vocabulary_scans()


main()
