"""Corpora: the built-in word lists with counts per category and a searchable word list;
upload a CSV / LIWC .dic / .dicx with validation and a preview before saving it."""
from __future__ import annotations

import streamlit as st

import appkit as ak
from core import charts, corpora, limits, settings, wording
from core.errors import ValueAuditError, one_line
from core.escape import markdown as md

FORMATS = """**Formats.** CSV with a header `word,category` (category may be empty) ·
LIWC `.dic` (category block between two `%` lines, then `word<TAB>ids`) ·
`.dicx` (`DicTerm` column plus one column per category marked `X`). UTF-8, at most
{mb} MB. Wildcard entries such as `abus*` are dropped: only whole words can be answers."""


def browse() -> None:
    name = ak.corpus_picker("corpus-browse")
    try:
        words, desc = ak.corpus(name)
    except Exception as e:  # noqa: BLE001 - one odd saved corpus: say what is wrong, keep the page
        ak.problems([f"corpus {ak.corpus_label(name)}: {one_line(e).replace(name, ak.corpus_label(name))}"],
                    "This saved corpus could not be read")
        delete_option(name)
        return
    st.text(f"{ak.corpus_label(name)} — {desc or 'user corpus'} · {wording.plural(words['word'].nunique(), 'distinct word')}, "
            f"{wording.plural(words['category'].nunique(), 'category', 'categories')}")
    # The counts above the list, full width: beside it, a third of a 768 px window cut the names.
    ak.plot(charts.category_counts_figure(words), key="corpus-counts", filename=f"categories_{name}")
    c1, c2 = st.columns(2)
    q = c1.text_input("Search words", placeholder="type part of a word, e.g. free", key="corpus-q")
    cats = c2.multiselect("Categories", sorted(words["category"].unique()), key="corpus-cats")
    hide = ak.offensive_filter("corpus-hide-offensive", words["word"])
    view = ak.without_offensive(words, "word") if hide else words
    if q:
        view = view[view["word"].str.contains(q, case=False, regex=False)]
    if cats:
        view = view[view["category"].isin(cats)]
    st.dataframe(view, hide_index=True, width="stretch", height=320)
    st.caption(f"{len(view):,} of {len(words):,} rows")
    delete_option(name)


def delete_option(name: str) -> None:
    if name not in corpora.BUILTINS and settings.allow_delete():
        with st.expander("Delete this saved corpus"):
            if st.button("Delete this corpus", key="corpus-del"):
                ak.store().delete_corpus(name)
                st.text(f"Deleted {ak.corpus_label(name)}. Its scores stay in the store.")
                st.rerun()


def upload() -> None:
    """Why a preview: a wrong delimiter or column name shows here, not after an hour of scoring."""
    st.markdown(FORMATS.format(mb=corpora.MAX_BYTES // 2**20))
    f = st.file_uploader("Upload a corpus", type=["csv", "dic", "dicx"], key="corpus-upload")
    if f is None:
        return
    try:
        corpus = corpora.parse_upload(f.name, f.getvalue())
    except corpora.CorpusError as e:
        st.error(f"Cannot use this file: {md(one_line(e))}")
        return
    for note in corpus.notes:
        st.warning(md(note))
    st.success(f"{md(f.name)}: {wording.plural(corpus.words['word'].nunique(), 'word')} in "
               f"{wording.plural(corpus.words['category'].nunique(), 'category', 'categories')}. Check the preview, then save.")
    c1, c2 = st.columns([1, 2])
    with c1:
        st.dataframe(corpus.counts(), hide_index=True, width="stretch")
    with c2:
        st.dataframe(corpus.words.head(200), hide_index=True, width="stretch", height=260)
    with st.form("save-corpus"):
        name = st.text_input("Save as", value=corpus.name, key="corpus-name")
        desc = st.text_input("Description", value=corpus.description, key="corpus-desc")
        if st.form_submit_button("Save corpus", type="primary"):
            save(name.strip(), corpus, desc)


def save(name: str, corpus, desc: str) -> None:
    saved = ak.cached("corpus_names")
    store = ak.store()
    try:
        name = corpora.check_saved_name(name, saved, may_replace=settings.allow_delete())
        limits.check_categories(corpus.words["category"].nunique(), name)
        replaced = len(store.corpus_words(name)) if name in saved else 0
        limits.check_saved_space(store.saved_words() - replaced, len(corpus.words))
    except ValueAuditError as e:
        st.error(md(one_line(e)))
        return
    replacing = name in saved
    store.save_corpus(name, corpus.words, desc)
    st.session_state["corpus-saved-msg"] = (f"{'Replaced' if replacing else 'Saved'} corpus '{md(name)}'. Score it on "
                                            f"the Score page or from the command line: "
                                            f"`python -m core score --corpus {name} ...`")
    st.rerun()  # redraw Browse (drawn above this tab) with the new list


@ak.guarded
def main() -> None:
    ak.header("Corpora", "The word lists whose words are offered as one-word answers. Categories (e.g. "
              "Agency vs Communion) are what the comparison is about.")
    if msg := st.session_state.pop("corpus-saved-msg", None):
        st.success(msg)
    tab1, tab2 = st.tabs(["Browse", "Upload your own"])
    with tab1:
        browse()
    with tab2:
        upload()


main()
