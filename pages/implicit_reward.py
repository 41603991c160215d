"""Implicit reward: where do the values come from? Compare two language models' preferences
token by token and word by word (MWLR: the paper's Table 1, Figures 2-3). Every picker lists
language models with stored log-probabilities only — a reward model is never compared with
a language model here — and defaults to two families (a Llama and a Gemma model)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

import appkit as ak
from core import family as _family
from core import charts, implicit, logprobs, settings
from core import implicit_charts as ic
from core.models import REGISTRY
from core.paperdata import cache_dir
from core.errors import ValueAuditError, one_line
from core.escape import markdown as md
from core.store import Store

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
                        format_func=lambda n: ak.corpus_label(n) or "all stored words (e.g. the token intersection)")


def mwlr_section(lm: pd.DataFrame, corpus: str) -> None:
    st.subheader("Which words does each language model prefer? (MWLR)")
    names = sorted(lm["model"].unique())
    fam = dict(zip(lm["model"], lm["family"]))
    a0, b0 = implicit.default_pair([fam.get(n) for n in names], names)
    c1, c2, c3 = st.columns([2, 2, 2])
    m1 = c1.selectbox("Model 1", names, index=a0, key="ir-m1", format_func=ak.display_name, help=ak.models_help(names))
    rest = [n for n in names if n != m1]
    m2 = c2.selectbox("Model 2", rest, index=rest.index(names[b0]) if names[b0] in rest else 0, key="ir-m2",
                      format_func=ak.display_name)
    s1, s2 = ak.display_name(m1), ak.display_name(m2)  # short names: never a server path
    pids = sorted(lm["prompt_id"].unique())
    pid = c3.selectbox("Prompt", ["(average over prompts)"] + pids, key="ir-prompt")
    n = st.slider("Words each way", 5, 40, 15, key="ir-n")
    sub = lm if pid.startswith("(") else lm[lm["prompt_id"] == pid]
    table = implicit.mwlr_table(sub, m1, m2)
    if table.empty:
        st.info("These two models share no scored words on this prompt.")
        return
    colors = (_family.color(fam.get(m1)), _family.color(fam.get(m2)))
    ak.plot(charts.mwlr_lollipop(table, s1, s2, n, colors, f"{s1} vs {s2}"), key="ir-lollipop")
    st.caption("MWLR(w) = ½·(p₁(w)+p₂(w))·(log p₁(w) − log p₂(w)): positive = model 1 prefers the word; "
               "weighting by the mixture keeps rare words from dominating.")
    tb = implicit.top_bottom(table, n)
    a, b = st.columns(2)
    a.markdown(f"**{md(s1)} prefers**")
    a.dataframe(tb["top"], hide_index=True, width="stretch")
    b.markdown(f"**{md(s2)} prefers**")
    b.dataframe(tb["bottom"], hide_index=True, width="stretch")
    ak.downloads(table, "mwlr", "dl-mwlr")
    if corpus:
        st.markdown("**By category**")
        st.dataframe(implicit.mwlr_by_category(table, ak.corpus(corpus)[0]), hide_index=True, width="stretch")


# -- whole-vocabulary log-probabilities (Table 1, Figure 3, Figure 2) ----------------------
@st.cache_data(show_spinner=False, max_entries=32)
def _vocab_models(ver: tuple) -> pd.DataFrame:
    return logprobs.stored_models(Store(ver[0]))


@st.cache_data(show_spinner=False, max_entries=32)
def _prompt_ids(ver: tuple, key: str) -> list[str]:
    return logprobs.stored_prompt_list(Store(ver[0]), key)["prompt_id"].tolist()


@st.cache_data(show_spinner="Matching the two vocabularies…", max_entries=16)
def _table1(ver: tuple, ka: str, kb: str, pid: str) -> pd.DataFrame:
    return implicit.mwlr_from_store(Store(ver[0]), ka, kb, pid)


@st.cache_data(show_spinner="Computing MWLR for every Llama x Gemma pair…", max_entries=16)
def _figure3(ver: tuple, keys: tuple, words: tuple, pid: str) -> pd.DataFrame:
    return implicit.figure3(Store(ver[0]), list(keys), list(words), pid)


@st.cache_data(show_spinner="Ranking the corpus words…", max_entries=16)
def _figure2(ver: tuple, k1: str, k2: str, corpus: str) -> tuple[pd.DataFrame, dict]:
    med = implicit.figure2_ranks(Store(ver[0]), k1, k2, ak.corpus(corpus)[0])
    return med, implicit.figure2_tests(med, k1, k2)


def _label(models: pd.DataFrame) -> dict[str, str]:
    """Model key -> the short name every page shows (never a server path)."""
    return {k: ak.display_name(n) for k, n in zip(models["model_key"], models["model"])}


def default_pair(models: pd.DataFrame) -> tuple[int, int]:
    """Indices of the default pair: a Llama and a Gemma LM when both are stored (core.implicit)."""
    return implicit.default_pair(models["family"].tolist(), models["model"].tolist())


def table1_section(models: pd.DataFrame, names: dict) -> None:
    st.markdown("**Table 1 — the tokens each model prefers most (MWLR over the shared vocabulary)**")
    keys = models["model_key"].tolist()
    a0, b0 = default_pair(models)
    c1, c2, c3, c4 = st.columns([3, 3, 3, 1])
    ka = c1.selectbox("Model A", keys, index=a0, format_func=names.get, key="ir-t1-a")
    kb = c2.selectbox("Model B", [k for k in keys if k != ka], format_func=names.get, key="ir-t1-b",
                      index=max(0, [k for k in keys if k != ka].index(keys[b0])) if keys[b0] != ka else 0)
    pids = [p for p in _prompt_ids(ak.version(), ka) if p in set(_prompt_ids(ak.version(), kb))]
    if not pids:
        st.info("These two models share no prompt.")
        return
    pid = c3.selectbox("Prompt", pids, index=pids.index("greatest_ever_one") if "greatest_ever_one" in pids else 0,
                       format_func=ak.prompt_label, key="ir-t1-p")
    n = int(c4.number_input("Rows", 5, 50, 15, key="ir-t1-n"))
    table = _table1(ak.version(), ka, kb, pid)
    if table.empty:
        st.info("No decoded token text is shared by the two vocabularies.")
        return
    fam = dict(zip(models["model_key"], models["family"]))
    colors = (_family.color(fam.get(ka)), _family.color(fam.get(kb)))
    ak.plot(ic.table1_lollipop(table, names[ka], names[kb], n, colors,
                               f"{names[ka]} vs {names[kb]} · {len(table):,} shared tokens"), key="ir-t1-chart")
    res = implicit.table1(table, n)
    show = lambda rows, start: pd.DataFrame({"rank": range(start, start + len(rows)),
                                             "token": [ic.show_token(r["token_decoded"]) for r in rows],
                                             "MWLR": [r["mwlr"] for r in rows]})
    left, right = st.columns(2)
    left.markdown(f"**{md(names[ka])} prefers**")
    left.dataframe(show(res["top"], 1), hide_index=True, width="stretch")
    right.markdown(f"**{md(names[kb])} prefers**")
    right.dataframe(show(res["bottom"], res["n_common"] - len(res["bottom"]) + 1), hide_index=True, width="stretch")
    ak.downloads(table, f"mwlr_{pid}", "dl-t1")


def figure3_section(models: pd.DataFrame, names: dict) -> None:
    st.markdown("**Figure 3 — MWLR of chosen words for every Llama x Gemma pair** "
                "(averaged over a word's token variants: “Freedom”, “ freedom”, …)")
    fams = models["family"].fillna("").str.lower()
    keys = tuple(models.loc[fams.isin(["llama", "gemma"]), "model_key"])
    if not (fams == "llama").any() or not (fams == "gemma").any():
        st.info("Needs stored log-probabilities of at least one Llama and one Gemma model.")
        return
    c1, c2 = st.columns([3, 2])
    typed = c1.text_input("Words (comma-separated)", "Freedom, Love", max_chars=200, key="ir-f3-words")
    words = implicit.typed_words(typed)
    pids = _prompt_ids(ak.version(), keys[0])
    pid = c2.selectbox("Prompt", pids, index=pids.index("greatest_ever_one") if "greatest_ever_one" in pids else 0,
                       format_func=ak.prompt_label, key="ir-f3-p")
    if not words:
        st.info("Type one or more words (letters).")
        return
    df = _figure3(ak.version(), keys, words, pid)
    ak.plot(ic.figure3_dots(df, names), key="ir-f3-chart")
    st.caption("Tokens are those whose decoded text every model listed has, as in the paper. "
               "MWLR > 0: the Llama model prefers the word.")
    ak.downloads(df.assign(llama_model=df["llama_model"].map(names), gemma_model=df["gemma_model"].map(names)),
                 "figure3_mwlr", "dl-f3")


def figure2_section(models: pd.DataFrame, names: dict) -> None:
    st.markdown("**Figure 2 — how likely each model finds the Big Two nouns** (rank among the corpus words "
                "by log-probability; median per prompt and category)")
    keys = models["model_key"].tolist()
    a0, b0 = default_pair(models)
    c1, c2, c3 = st.columns(3)
    k1 = c1.selectbox("Model 1", keys, index=a0, format_func=names.get, key="ir-f2-a")
    rest = [k for k in keys if k != k1]
    k2 = c2.selectbox("Model 2", rest, index=rest.index(keys[b0]) if keys[b0] in rest else 0,
                      format_func=names.get, key="ir-f2-b")
    corpus = c3.selectbox("Words", [c for c in ak.cached("corpus_names") if not c.startswith("vocabulary:")],
                          key="ir-f2-corpus")
    ak.check_categories(corpus)
    med, stats = _figure2(ak.version(), k1, k2, corpus)
    fam = dict(zip(models["model_key"], models["family"]))
    ak.plot(ic.figure2_violins(med, {k1: names[k1], k2: names[k2]}, fam, stats["tests"],
                               f"{names[k1]} vs {names[k2]} · {corpus}"), key="ir-f2-chart")
    st.caption("Lower rank = more likely. Stars: Welch t-test per panel, Benjamini–Hochberg FDR over the panels "
               "(*** p<.001, ** p<.01, * p<.05).")
    t = pd.DataFrame(stats["tests"])
    for c in ("p", "p_fdr"):
        if c in t:
            t[c] = t[c].map(lambda x: f"{x:.3g}" if pd.notna(x) else "n/a")
    t = t.astype(object).where(t.notna(), "n/a")  # a panel with too few prompts has no test
    t = t.rename(columns={"mean_rank_1": f"mean rank {names[k1]}",
                                                    "mean_rank_2": f"mean rank {names[k2]}"})
    st.dataframe(t, hide_index=True, width="stretch")
    if stats["anova"]:
        with st.expander("Type-II three-way ANOVA: rank ~ category × valence × model"):
            st.dataframe(pd.DataFrame(stats["anova"]), hide_index=True, width="stretch")


def import_section() -> None:
    """Downloads and server folders are the operator's: a shared server offers them only
    where the operator allowed it (settings), and a typed folder goes through the one
    visitor rule (settings.visitor_path) before the disk is touched."""
    downloads, folders = settings.allow_logprob_downloads(), settings.allow_paths()
    title = ("Import log-probabilities" + (" (the paper's files or a local folder)" if downloads and folders
                                            else " (the paper's files)" if downloads
                                            else " (a local folder)" if folders else ""))
    with st.expander(title, expanded=False):
        st.markdown(f"The paper's files are in the Hugging Face dataset `{logprobs.HF_DATASET}` "
                    "(0.1–0.3 GB per model). Or compute your own: "
                    "`python -m core logprobs --model ORG/NAME --out DIR`, then "
                    "`python -m core import-logprobs DIR`.")
        if downloads:
            download_form()
        if folders:
            folder_form()
        if not downloads:  # a visitor of a shared server is not told to change the server's settings
            st.caption("Downloading the paper's files is not enabled on this server (its operator can, from the "
                       "command line" + (")." if settings.shared() else
                                         ", or allow it with the setting VALUEAUDIT_LOGPROB_DOWNLOADS)."))
        if not folders:
            st.caption("This server is shared: importing a folder on the server is for the operator, from the "
                       "command line.")


def download_form() -> None:
    lms = [e.name for e in REGISTRY if e.kind == "lm"]
    chosen = st.multiselect("Models to download", lms, default=["meta-llama/Llama-3.2-3B-Instruct",
                                                                 "google/gemma-2-2b-it"], key="ir-dl-models")
    if st.button("Download and import", key="ir-dl", disabled=not chosen):
        if not settings.allow_logprob_downloads():  # the setting, not the widget, decides
            st.error("Downloads are not enabled on this server.")
            return
        bar = st.progress(0.0, text="Downloading…")
        prog = lambda i, n, m: bar.progress(i / n, text=f"{m} ({i}/{n})")  # noqa: E731
        try:
            res = logprobs.import_published(ak.store(), chosen, cache_dir() / "logprobs", progress=prog)
            st.success(f"Imported {res.files} models; {res.rows_repaired} split rows repaired.")
        except ValueAuditError as e:
            st.error(md(one_line(e)))


def folder_form() -> None:
    folder = st.text_input("…or a local folder of <org>--<name>.csv files", key="ir-folder", max_chars=500)
    if st.button("Import folder", key="ir-import", disabled=not folder.strip()):
        try:
            path = settings.visitor_path(folder, "a folder on the server")
            with st.spinner("Importing…"):
                res = logprobs.import_paths(ak.store(), [path])
            st.success(f"Imported {res.files} files ({md(', '.join(res.models))}); "
                       f"{res.rows_repaired} rows split by a lone carriage return repaired.")
        except ValueAuditError as e:
            st.error(md(one_line(e)))


def vocabulary_section() -> bool:
    """The whole-vocabulary part of the page; False when nothing is stored yet."""
    models = _vocab_models(ak.version())
    import_section()
    if models.empty:
        st.info("No whole-vocabulary log-probabilities stored yet: import the paper's files above, or run "
                "`python -m core logprobs --model ORG/NAME --out DIR`.")
        return False
    if len(models) < 2:
        st.info("Only one language model has whole-vocabulary log-probabilities "
                f"({md(ak.display_name(models['model'].iloc[0]))}); "
                "the comparisons need two.")
        return True
    names = _label(models)
    tab1, tab3, tab2 = st.tabs(["Table 1 · MWLR tokens", "Figure 3 · chosen words", "Figure 2 · Big Two ranks"])
    with tab1:
        table1_section(models, names)
    with tab3:
        figure3_section(models, names)
    with tab2:
        figure2_section(models, names)
    return True


@ak.guarded
def main() -> None:
    ak.header("Implicit reward", "A language model already 'prefers' some answers: the ones it finds likely. "
              "Comparing two base models word by word shows the value differences a reward model built on them "
              "can inherit.")
    st.subheader("Whole vocabularies: which tokens does each language model prefer?")
    have_vocab = vocabulary_section()
    st.divider()
    st.subheader("Corpus words scored as whole answers")
    st.caption("A second source, separate from the whole-vocabulary log-probabilities above: each corpus word "
               "scored as a complete answer (`score --kind lm`; a multi-token word's log-probability is the sum "
               "over its tokens).")
    corpus = pick_corpus()
    lm = ak.cached("scores", "lm", corpus, None, None)
    if lm.empty:
        where = " on this corpus" if corpus else ""
        if have_vocab:  # the figures above exist: say only what this part lacks
            st.info(f"No language model has scored corpus words as whole answers{where} yet; the table and "
                    "figures above use the whole-vocabulary log-probabilities.", icon=":material/info:")
        else:
            ak.empty_state(f"No language model has scored corpus words as whole answers{where} yet.", None)
        st.markdown(HOW_TO)
        return
    if lm["model"].nunique() < 2:
        st.info(f"Only one language model scored ({md(ak.display_name(lm['model'].iloc[0]))}); MWLR needs two. "
                + HOW_TO)
    else:
        mwlr_section(lm, corpus)


main()
