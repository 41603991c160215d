"""Streamlit glue shared by the pages: the store, cached data, the error guard, small widgets.

Why one module: every page gets data the same way (through core, cached on the database's
version so a new score or import shows up at once), and fails the same way (a message
and a hint, never a traceback)."""
from __future__ import annotations

import functools
import hmac
import logging
import re
import secrets
import traceback

import pandas as pd
import streamlit as st

from core import analysis, catalog, corpora, export, limits, model_audit, models, prompts, published, ranks, report
from core import settings, training
from core import trajectory
from core import words as _words
from core import coverage as _coverage
from core import family as _family
from core import offensive
from core.store import Store
from core.errors import one_line
from core.escape import markdown as md

log = logging.getLogger("valueaudit.app")

# What to do next, by error and by the server's mode: a visitor of a shared server is never
# told to do what shared mode forbids (give a folder, set a variable on the server).
HINTS = {
    "local": {
        "StoreError": "Check VALUEAUDIT_DB points at a readable DuckDB file, or wait for another process using it.",
        "PaperDataError": "Set VALUEAUDIT_PAPER_DATA to a copy of the paper's data/ folder, or connect to the internet.",
        "CorpusError": "Fix the corpus file as described and upload it again.",
        "ModelError": "Check the model id or folder (a folder saved with save_pretrained) and the safe-loading options.",
        "SettingsError": "Fix the setting named above (README: Settings) and restart the app.",
        "LimitError": "Shorten or remove the item named, then try again.",
        "SweepError": "Give a training run's folder (with checkpoint-<step> folders) or a hub id with its revisions.",
        "TrajectoryError": "Sweep the run on this corpus first (Score page, or `python -m core sweep`).",
        "ModelAuditError": "Score the model on this corpus first (Score page, or `python -m core score`).",
    },
    "shared": {
        "StoreError": "The database is busy or unavailable; wait a minute and reload. If it persists, tell the "
                      "operator of this server.",
        "PaperDataError": "The paper's data cannot be reached from this server; tell its operator.",
        "CorpusError": "Fix the corpus file as described and upload it again.",
        "ModelError": "Check the Hugging Face id (org/name), or choose one of this server's models.",
        "SettingsError": "This server is shared: choose one of the listed models or give a Hugging Face id "
                         "(org/name).",
        "LimitError": "Shorten or remove the item named, then try again.",
        "SweepError": "Give a hub id with its revisions, or one of this server's models.",
        "TrajectoryError": "Sweep the run on this corpus first (Score page).",
        "ModelAuditError": "Score the model on this corpus first (Score page).",
    },
}


def hint_for(e: BaseException) -> str:
    """The next step for an error, in this server's mode (an error's own `hint` first)."""
    if getattr(e, "hint", None):
        return e.hint
    return hint(type(e).__name__)


def hint(error_name: str) -> str:
    """The next step for a kind of error ('PaperDataError'), in this server's mode: also for a
    page that finds something missing without an error raised."""
    return HINTS["shared" if shared() else "local"].get(
        error_name, "Reload the page; if it persists, run with VALUEAUDIT_DEBUG=1 and check the server log."
        if not shared() else "Reload the page; if it persists, tell the operator of this server.")


# ---------------------------------------------------------------------------------
# Store and cached data
# ---------------------------------------------------------------------------------
def store() -> Store:
    """The store selected by VALUEAUDIT_DB (read on every call so tests can switch it)."""
    return Store()


def version() -> tuple:
    return store().version()


@st.cache_data(show_spinner=False, max_entries=64)
def _cached(fn_name: str, ver: tuple, *args):
    """One cache for all store reads: the key holds the database version, so any write
    (a scoring batch, an import, a removal) makes the next read fresh."""
    return _LOADERS[fn_name](Store(ver[0]), *args)


def cached(fn_name: str, *args):
    return _cached(fn_name, version(), *args)


def _scores_for(s: Store, kind: str, corpus: str, model_names: tuple | None, prompt_texts: tuple | None):
    words = corpus_vocab(corpus) if corpus else None  # '' = every stored word
    df = s.scores(kind=kind, models=list(model_names) if model_names is not None else None,
                  words=words, prompts=list(prompt_texts) if prompt_texts is not None else None)
    if corpus and not df.empty:  # of a published model, only the corpus's own run
        df = df[df["model_key"].isin(published.keys_for_corpus(s, corpus, words, kind))].reset_index(drop=True)
    return df


def _word_means(s: Store, corpus_name: str, model_name: str, prompt_ids: tuple) -> pd.DataFrame:
    """One model's mean rank and score of every corpus word over these prompts (its own run
    of this corpus where the model is one of the paper's published ones)."""
    words, _ = corpus(corpus_name)
    keys = published.keys_for_corpus(s, corpus_name, corpus_vocab(corpus_name), "rm", wanted=[model_name])
    return ranks.word_means(s, words, keys, list(prompt_ids))


def _corpus_names(s: Store) -> list[str]:
    return list(corpora.BUILTINS) + [n for n in s.corpus_names() if n not in corpora.BUILTINS]


def _coverage_by_corpus(s: Store, names: tuple) -> tuple[pd.DataFrame, list[str]]:
    """(coverage per model and corpus, one line per corpus that could not be read): one odd
    saved corpus never hides the others."""
    vocabularies, problems = {}, []
    for n in names:
        try:
            vocabularies[n] = corpus_vocab(n)
        except Exception as e:  # noqa: BLE001 - reported beside the rest, never a failed page
            problems.append(f"corpus {corpus_label(n)}: {one_line(e).replace(n, corpus_label(n))}")
    return catalog.coverage_by_corpus(s, vocabularies), problems


def _selection(s: Store, corpus_name: str, models: tuple | None, prompt_texts: tuple | None,
               include: bool) -> _coverage.Selection:
    return _coverage.select(s, corpus_name, corpus(corpus_name)[0], prompt_texts, models, include)


def _unscored_words(s: Store, corpus_name: str, model_keys: tuple) -> list[str]:
    """Corpus words that none of these RMs (store keys) has a score for (they cannot be ranked)."""
    vocab = corpus_vocab(corpus_name)
    got = s.query("""SELECT DISTINCT s.response FROM scores s
                     WHERE s.kind = 'rm' AND s.response IN (SELECT w FROM vocab)
                       AND s.model_key IN (SELECT m FROM chosen)""",
                  vocab=pd.DataFrame({"w": vocab}, dtype=str), chosen=pd.DataFrame({"m": list(model_keys)}, dtype=str))
    have = set(got["response"])
    return [w for w in vocab if w not in have]


def _trajectory(s: Store, run_key: str, corpus_name: str, n_movers: int = trajectory.N_MOVERS):
    """A swept run's Figure 4a points and Figure 5 movers on a corpus (None: nothing stored)."""
    c = corpora.resolve(corpus_name, s, files=False)
    try:
        return trajectory.trajectory(s, run_key, c.words, c.name, ranking=c.ranking, n_movers=n_movers)
    except trajectory.TrajectoryError:
        return None


def _model_audit(s: Store, corpus_name: str, model: str, reps: int) -> model_audit.ModelAudit:
    """Where one model sits among the families on a corpus (core.model_audit)."""
    c = corpora.resolve(corpus_name, s, files=False)
    return model_audit.audit_model(s, model, c.name, c.words, c.ranking, reps=reps, seed=0)


_LOADERS = {
    "model_audit": _model_audit,
    "runs": lambda s: trajectory.runs(s),
    "trajectory": _trajectory,
    "unscored_words": _unscored_words,
    "selection": _selection,
    "models": lambda s: s.models(),
    "stats": lambda s: s.stats(),
    "coverage": lambda s: s.coverage(),
    "scores": _scores_for,
    "word_means": _word_means,
    "corpus_names": _corpus_names,
    "coverage_by_corpus": _coverage_by_corpus,
    "saved_corpus": lambda s, name: s.corpus_words(name),
    "display_names": lambda s: catalog.display_names([*s.models()["name"], *(e.name for e in models.REGISTRY)]),
}


def display_name(name) -> str:
    """A model's short name as every page shows it (core.catalog.display_names over every
    stored and registry model, so no two read the same); the full id stays on hover."""
    return cached("display_names").get(str(name)) or catalog.display_names([name])[str(name)]


def public_name(name) -> str:
    """A model's full name as a page shows it: on a shared server a local folder by its last
    part (a visitor never sees a server path; core.report.public_model_name), else as stored."""
    return report.public_model_name(name) if settings.shared() else str(name)


def public(df: pd.DataFrame) -> pd.DataFrame:
    """A table with its model, name and model_key columns as a page may send them to the
    browser (public_name): for charts' hover data and downloads."""
    return report.public_models(df) if settings.shared() else df


def models_help(names) -> str:
    """A picker's help (the ? beside it): each short name with the full id behind it (a
    server folder by its name only on a shared server)."""
    return "Full ids of the short names shown:\n\n" + "\n".join(
        f"- {md(display_name(n))}: {md(public_name(n))}" for n in names)


def model_label(name, family=None) -> str:
    """A model's short name with its family where the name does not say it ('my-rm (Llama)')."""
    return catalog.model_label(display_name(name), family)


@st.cache_data(show_spinner=False, max_entries=32)
def _corpus_cached(name: str, ver: tuple) -> tuple[pd.DataFrame, str]:
    c = corpora.resolve(name, Store(ver[0]), files=False)  # a saved name never reads a server file
    return c.words, c.description


def corpus(name: str) -> tuple[pd.DataFrame, str]:
    """(words table, description) of a built-in or saved corpus."""
    ver = version() if name not in corpora.BUILTINS else ("builtin", 0, 0, 0)
    return _corpus_cached(name, ver)


def corpus_vocab(name: str) -> list[str]:
    return list(dict.fromkeys(corpus(name)[0]["word"]))


@st.cache_data(show_spinner="Computing ranks and statistics…", max_entries=32)
def _figure1(ver: tuple, corpus_name: str, model_names: tuple | None, prompt_texts: tuple | None,
             include: bool, permutations: int) -> analysis.Figure1 | None:
    words, _ = corpus(corpus_name)
    sel = _cached("selection", ver, corpus_name, model_names, prompt_texts, include)
    result = analysis.figure1_from_store(Store(ver[0]), words, corpus_name, permutations=permutations, seed=0,
                                         selection=sel)
    return result if result.median_ranks else None


def model_audit_of(corpus_name: str, model: str, reps: int = 2000) -> model_audit.ModelAudit:
    """core.model_audit.audit_model, cached on the database version (a bootstrap of seconds)."""
    with st.spinner("Placing the model among the families (bootstrapping prompts and words)…"):
        return cached("model_audit", corpus_name, model, reps)


def selection(corpus_name: str, model_names=None, prompt_texts=None, include: bool = False) -> _coverage.Selection:
    """Which models an analysis of this corpus uses and which it leaves out, with the reason
    (core/coverage.py: the one rule of the CLI, every page and the report)."""
    m = tuple(sorted(model_names)) if model_names is not None else None
    p = tuple(sorted(prompt_texts)) if prompt_texts is not None else None
    return cached("selection", corpus_name, m, p, bool(include))


def figure1(corpus_name: str, model_names=None, prompt_texts=None, include: bool = False,
            permutations: int = 10000) -> analysis.Figure1 | None:
    """Figure 1 statistics for the corpus, the models asked for (None = every model scored on
    it) and the prompts compared (None = the rule's default), None when nothing qualifies."""
    m = tuple(sorted(model_names)) if model_names is not None else None
    p = tuple(sorted(prompt_texts)) if prompt_texts is not None else None
    return _figure1(version(), corpus_name, m, p, bool(include), permutations)


@st.cache_data(show_spinner=False)
def training_dynamics() -> pd.DataFrame:
    return training.training_dynamics()


@st.cache_resource(max_entries=1, show_spinner=False)
def load_model(name: str, kind: str, revision=None, device="auto", dtype="auto",
               trust_remote_code=False, allow_pickle=False, family=None, tokenizer=None):
    """Keep the last loaded model in memory so re-scoring it (e.g. another corpus) skips loading.

    The visitor's string is resolved here, at load time, by the server's settings: an
    operator model by its folder name, else (shared mode) only a hub id — and so is a
    separate tokenizer (a training run's root) and the base model an adapter names; remote
    code and pickle are forced off in shared mode whatever the request says."""
    path = settings.visitor_model(name)
    tok = settings.visitor_model(tokenizer) if tokenizer else None
    if not settings.allow_remote_code():
        trust_remote_code = False
    if not settings.allow_pickle():
        allow_pickle = False
    with settings.named_as_visitor(name, path):
        loaded = models.load(path, kind, revision=models.check_revision(revision), device=device, dtype=dtype,
                             trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, family=family,
                             tokenizer=tok, base_resolver=settings.visitor_model if settings.shared() else None)
    if path != name:  # an operator model is stored and shown by its folder name, not its server path
        loaded.name = loaded.display_name = name
    return loaded


def shared() -> bool:
    """The server's mode (VALUEAUDIT_MODE): True when visitors use it (the default)."""
    return settings.shared()


_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,64}")


def visitor() -> str:
    """This visitor's token: random (128 bits), kept in the page address (`?visitor=...`) so a
    reload keeps it, and with it the right to cancel the jobs it submitted. Anyone given the
    address gets that right too: it is a key, not a name. Called by the Score page only, so
    other pages' addresses stay clean."""
    token = st.session_state.get("visitor")
    if not token:
        given = st.query_params.get("visitor", "")
        token = given if _TOKEN.fullmatch(given) else secrets.token_urlsafe(16)
        st.session_state["visitor"] = token
    if st.query_params.get("visitor") != token:
        st.query_params["visitor"] = token
    return token


def operator() -> bool:
    """Whether this session is the operator's: local mode, or a shared server opened with
    `?operator=<VALUEAUDIT_OPERATOR_KEY>` (checked once, then removed from the address)."""
    if not settings.shared() or st.session_state.get("operator"):
        return True
    key, given = settings.operator_key(), st.query_params.get("operator")
    if given is None:
        return False
    del st.query_params["operator"]  # never left in the address bar, history or a copied link
    if key and hmac.compare_digest(given.encode(), key.encode()):
        st.session_state["operator"] = True
        return True
    return False


def db_label() -> str:
    """The database as shown to visitors: its file name only in shared mode."""
    path = store().path
    return path.name if shared() else str(path)


@st.cache_resource(show_spinner=False)
def device_label() -> str:
    """What 'auto' picks here, in words (imports torch once per server)."""
    try:
        import torch
        dev = models.pick_device("auto")
        if dev == "cuda":
            return f"GPU: {torch.cuda.get_device_name(0)}"
        return {"mps": "Apple GPU (MPS)", "cpu": "CPU (no GPU found — large models will be slow)"}.get(dev, dev)
    except Exception as e:  # noqa: BLE001
        return f"unknown ({e})"


# ---------------------------------------------------------------------------------
# Page scaffolding
# ---------------------------------------------------------------------------------
def guarded(body):
    """Run a page body so that no traceback reaches the page: errors become st.error + hint.
    A wrong server setting closes every page with one operator error (fail closed)."""
    @functools.wraps(body)
    def run():
        _ensure_navigation()
        if not settings_ok():
            return
        try:
            with store().held():  # one open of the database for the whole page run
                body()
        except Exception as e:  # noqa: BLE001 - this is the last line of defence
            # Streamlit's st.stop/st.rerun exceptions derive from BaseException and pass through.
            show_error(e)
    return run


def settings_ok() -> bool:
    """The server's settings, checked before any page: a wrong one (a typo in VALUEAUDIT_MODE)
    is one error for the operator on every page, and nothing else runs. An unknown VALUEAUDIT_*
    variable is logged once per server, and shown once per session to the person at a local one."""
    settings.warn_unknown(log.warning)
    try:
        settings.check()
    except settings.SettingsError as e:
        st.error(f"This dashboard is closed until its operator fixes a server setting: {md(one_line(e))}.",
                 icon=":material/error:")
        return False
    if not settings.shared() and not st.session_state.get("unknown-settings-shown"):
        st.session_state["unknown-settings-shown"] = True
        for line in settings.unknown():
            st.warning(md(line))
    return True


def _ensure_navigation() -> None:
    """Keep the app's own navigation when a first visitor opens a deep link (/compare).

    Why: with a pages/ folder, Streamlit starts in its legacy mode, in which a deep link runs
    the page file directly instead of app.py; app.py's st.navigation never runs, and every
    session then sees a flat, unsectioned menu. Leaving legacy mode and rerunning makes
    app.py run first and open the requested page.

    This is the project's ONE use of Streamlit internals (PagesManager.uses_pages_directory,
    read by ScriptRunner._mpa_v1 in Streamlit 1.67): Streamlit has no config option for it and
    the product's layout keeps pages/ beside app.py. Checked by
    tests/test_browser.py::test_deep_link_first_keeps_sectioned_navigation; if Streamlit
    renames the attribute, the import/getattr below makes this a no-op, and that test fails."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


def show_error(e: BaseException, what: str = "This page hit a problem") -> None:
    msg = one_line(e)
    st.error(f"{what}: {md(msg)}")
    st.caption("Hint: " + hint_for(e))
    log.warning("page error: %s", "".join(traceback.format_exception(e)))
    if settings.debug():
        st.code("".join(traceback.format_exception(e)))


def problems(lines: list[str], what: str = "Some stored items could not be read") -> None:
    """Odd stored items named beside everything else (a page never fails for one of them).
    Plain text: the items are data."""
    if lines:
        with st.container(border=True):
            st.warning(f"{what}; everything else is shown.", icon=":material/warning:")
            st.text("\n".join(lines))


def header(title: str, intro: str) -> None:
    st.title(title)
    st.markdown(intro)


def empty_state(message: str, next_step: str | None = None, page: str | None = None, label: str | None = None) -> None:
    """Nothing to show yet: say so, and say what to do next."""
    st.info(message + (f"\n\n**Next:** {next_step}" if next_step else ""), icon=":material/info:")
    if page:
        link(page, label or "Go there")


def link(page: str, label: str, icon: str = ":material/arrow_forward:") -> None:
    """A link to another page; skipped when a page runs on its own (tests), where the
    multipage navigation that page_link needs does not exist."""
    from streamlit.errors import StreamlitPageNotFoundError
    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitPageNotFoundError:
        pass


def plot(fig, key: str | None = None, filename: str | None = None) -> None:
    """A chart whose camera button saves a PNG named after what it shows: `filename`
    ('figure1_big2-nouns'), else the chart's title."""
    title = getattr(getattr(fig.layout, "title", None), "text", None) or key
    st.plotly_chart(fig, width="stretch", key=key, config=report.plot_config(title, filename))


# Streamlit's named text colours (markdown `:red[...]`), for a legend drawn without HTML.
_NAMED = {"red": "#FF4B4B", "orange": "#FFA421", "yellow": "#FFE312", "green": "#21C354", "blue": "#1C83E1",
          "violet": "#803DF5", "gray": "#A3A8B8"}


def _nearest_named(hex_color: str) -> str:
    rgb = [int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]
    return min(_NAMED, key=lambda n: sum((a - int(_NAMED[n][i:i + 2], 16)) ** 2 for a, i in zip(rgb, (1, 3, 5))))


def family_label(family) -> str:
    """A family as plain, markdown-safe text: only validated names are shown (a family comes
    from a model's config.json or --family, i.e. from whoever made the model)."""
    return _family.label(family).replace("_", "\\_")


def family_legend(families) -> None:
    """A one-line colour key so colours mean the same everywhere. Plain markdown, no HTML:
    family names are data and are never rendered as HTML."""
    def color(f):
        return _family.color(f if family_label(f) != "Unknown" else "unknown")
    chips = " ".join(f":{_nearest_named(color(f))}[**● {family_label(f)}**]" for f in _family.order(families))
    st.markdown(chips)


def downloads(df: pd.DataFrame, stem: str, key: str) -> None:
    """CSV (spreadsheet-safe) and Parquet buttons for one table (on a shared server no model
    named by its server path)."""
    df = public(df)
    row = st.container(horizontal=True)  # buttons as wide as their labels, not 'Par…' in a narrow column
    row.download_button("CSV", export.to_csv_bytes(df), f"{stem}.csv", "text/csv", key=f"{key}-csv")
    try:
        row.download_button("Parquet", export.to_parquet_bytes(df), f"{stem}.parquet",
                            "application/octet-stream", key=f"{key}-pq")
    except Exception:  # noqa: BLE001 - pyarrow missing: CSV is enough
        row.caption("Parquet needs pyarrow")


def corpus_label(name: str) -> str:
    """A corpus as a page names it: a vocabulary scan's 'vocabulary:<folder>' by the folder's
    last part on a shared server (a visitor never sees a server path); otherwise as saved."""
    name = str(name)
    if shared() and name.startswith(corpora.SCAN_PREFIX):
        return corpora.SCAN_PREFIX + report.public_model_name(name[len(corpora.SCAN_PREFIX):])
    return name


def corpus_picker(key: str, label: str = "Corpus", default: str = "big2-nouns") -> str:
    names = cached("corpus_names")
    return st.selectbox(label, names, index=names.index(default) if default in names else 0, key=key,
                        format_func=lambda n: f"{n} — {corpora.BUILTINS[n][1]}" if n in corpora.BUILTINS
                        else corpus_label(n),
                        help="Two MFD 2.0 variants: " + " ".join(f"**{n}**: {t}" for n, t in corpora.NOTES.items()))


MFD_CHOICE = "MFD 2.0"  # one entry for both MFD variants; a space keeps it apart from any corpus name


def published_only(names) -> bool:
    """True when every one of these models is one of the paper's published score sets."""
    m = cached("models")
    pub = set(m.loc[m["source"] == "published", "name"])
    return bool(names) and all(n in pub for n in names)


def mfd_default_variant() -> str:
    """The paper's own MFD variant when the models scored on MFD are the paper's published ones
    (so the page reproduces Figure A1); the whole dictionary for models scored here."""
    return "mfd2-paper" if published_only(scored_rms("mfd2-paper")[0]) or not scored_rms("mfd2")[0] else "mfd2"


def comparison_corpus_picker(prefix: str, default: str) -> str:
    """Corpus for the comparison in two steps: the word list, then — for MFD 2.0 — which of
    the two variants, each named with its one-line note."""
    names = [n for n in cached("corpus_names") if n not in corpora.NOTES]
    choices = names[:2] + [MFD_CHOICE] + names[2:]
    first = MFD_CHOICE if default in corpora.NOTES else default
    label = {MFD_CHOICE: "MFD 2.0 — Moral Foundations Dictionary (two variants)"}
    choice = st.selectbox("Corpus", choices, index=choices.index(first) if first in choices else 0,
                          key=f"{prefix}-corpus",
                          format_func=lambda n: label.get(n) or (f"{n} — {corpora.BUILTINS[n][1]}"
                                                                 if n in corpora.BUILTINS else corpus_label(n)))
    if choice != MFD_CHOICE:
        return choice
    variants = list(corpora.NOTES)
    pick = default if default in variants else mfd_default_variant()
    return st.radio("MFD 2.0 variant", variants, index=variants.index(pick), key=f"{prefix}-mfd-variant",
                    format_func=lambda n: f"{n} — {corpora.BUILTINS[n][1]}",
                    help=" ".join(f"**{n}**: {t}" for n, t in corpora.NOTES.items()))


PAPER_PROMPTS = prompts.paper_prompts()
PROMPT_TEXT = {p.prompt_id: p.text for p in PAPER_PROMPTS}


def prompt_label(pid: str) -> str:
    return f"{pid} — {PROMPT_TEXT.get(pid, '')}"


# ---------------------------------------------------------------------------------
# The current comparison (shared by Compare, Words and Report)
# ---------------------------------------------------------------------------------
def scored_rms(corpus_name: str) -> tuple[list[str], list[str], pd.DataFrame]:
    """(model labels, prompt ids, model->family table) of the RMs with scores on this corpus
    that an analysis can read (complete or not)."""
    t = selection(corpus_name).table
    t = t[t["readable"]]
    if t.empty:
        return [], [], pd.DataFrame(columns=["model", "family"])
    fam = t[["model", "family"]].sort_values(["family", "model"], na_position="last")
    return fam["model"].tolist(), selection(corpus_name).available["prompt_id"].tolist(), fam


def include_incomplete_toggle(key: str, sel: _coverage.Selection, default: bool = False) -> bool:
    """One click to let incompletely scored models into the family statistics (off by default)."""
    n = len(sel.incomplete)
    if not n:
        return False
    return st.checkbox(f"Include models with incomplete coverage ({n})", value=default, key=key,
                       help="A model scored on fewer prompts or words gives a mean that is not comparable with "
                            "the others'; by default only models scored on every compared prompt with every "
                            "corpus word join the family statistics.")


def coverage_note(sel: _coverage.Selection) -> None:
    """Say it wherever family numbers appear: who is left out and why (or in, incompletely).
    Plain text: model names are data."""
    if note := sel.note(display_name):
        st.text(note)


def _models_picker(key: str, names: list, usable: list, label: dict, saved: dict, corpus_name: str) -> list:
    """The models multiselect: every model scored on the corpus by default but a swept run's
    earlier checkpoints (`usable`; the selection rule then leaves out the incomplete ones and
    says so); a new corpus resets it, otherwise the user's choice is kept."""
    if st.session_state.get(f"{key}-corpus-prev") != corpus_name:
        st.session_state.pop(key, None)
    st.session_state[f"{key}-corpus-prev"] = corpus_name
    fmt = lambda m: model_label(m, label.get(m))  # noqa: E731
    if key in st.session_state:
        st.session_state[key] = [m for m in st.session_state[key] if m in names]
        return st.multiselect("Reward models", names, format_func=fmt, key=key, help=models_help(names))
    default = ([m for m in saved.get("chosen", usable) if m in names] if saved.get("corpus") == corpus_name
               else usable)
    return st.multiselect("Reward models", names, default=default, format_func=fmt, key=key, help=models_help(names))


def offensive_filter(key: str, vocab, where: str = "this corpus",
                     source: str = "mostly from the MFD vice lists") -> bool:
    """A content note and a 'hide' toggle where the corpus (or a scanned vocabulary) holds
    offensive words; True = hide. Only word lists and single-word charts are filtered, never
    the statistics."""
    n = offensive.count_in(pd.unique(pd.Series(list(vocab), dtype=object)))
    if not n:
        return False
    hide = st.toggle("Hide offensive words", value=True, key=key,
                     help="Profanity and sexual insults from a short list kept in core/data/offensive_words.txt. "
                          "Hiding them changes only the lists and word charts; every rank and statistic still "
                          "counts them.")
    st.caption(f"Content note: {where} contains {n} offensive words (profanity, sexual insults), {source}; "
               + ("they are hidden from the word lists below (ranks unchanged)." if hide else "they are shown below."))
    return hide


def without_offensive(ranked: pd.DataFrame, column: str = "response") -> pd.DataFrame:
    return ranked[~offensive.mask(ranked[column]).to_numpy()] if not ranked.empty else ranked


def comparison_filters(prefix: str = "cmp") -> dict:
    """Corpus, models, prompts and framing for the comparison; remembered across pages in
    session_state['comparison'] so the Report exports exactly what Compare shows. `models`
    are the models the analysis uses (core/coverage.py's rule over the chosen ones), `keys`
    their store keys, `coverage_note` who is left out and why."""
    saved = st.session_state.get("comparison", {})
    with st.sidebar:
        st.markdown("**Comparison**")
        corpus_name = comparison_corpus_picker(prefix, saved.get("corpus", "big2-nouns"))
    base = selection(corpus_name)
    names, _, fam = scored_rms(corpus_name)
    if not names:
        return {"corpus": corpus_name, "models": [], "keys": [], "chosen": [], "prompts": [], "prompt_texts": [],
                "framing": [], "include_incomplete": False, "coverage_note": ""}
    label = dict(zip(fam["model"], fam["family"].fillna("unknown")))
    with st.sidebar:
        include = include_incomplete_toggle(f"{prefix}-incomplete", base, saved.get("include_incomplete", False))
        t = base.table[base.table["readable"]]
        earlier = t.loc[t["earlier_checkpoint"], "model"].tolist()
        chosen = _models_picker(f"{prefix}-models", names, [m for m in names if m not in set(earlier)], label, saved,
                                corpus_name)
        if earlier:
            st.caption(f"{len(earlier)} earlier checkpoint(s) of swept training runs are not chosen by default (each "
                       "run's last checkpoint is); Training dynamics follows them.")
        framing = st.multiselect("Framing", ["positive", "negative"], default=saved.get("framing", ["positive", "negative"]),
                                 key=f"{prefix}-framing",
                                 help="positive: best/greatest/good prompts; negative: worst/bad/terrible")
        avail = base.available
        text_of = dict(zip(avail["prompt_id"], avail["prompt"]))
        pick = [p for p in avail["prompt_id"]
                if prompts.framing_of(p, text_of[p]) in framing or prompts.framing_of(p, text_of[p]) == "unknown"]
        compared = [p for p in base.prompt_ids if p in pick]
        prev = saved.get("prompts") if saved.get("corpus") == corpus_name else None
        prompt_ids = st.multiselect("Prompts", pick, default=[p for p in (prev or compared) if p in pick] or compared,
                                    format_func=prompt_label, key=f"{prefix}-prompts",
                                    help="By default the prompts at least half of the models are scored on; a "
                                         "model needs every chosen prompt to join the family statistics.")
    texts = [text_of[p] for p in prompt_ids]
    unreadable = base.table.loc[~base.table["readable"], "model"].tolist()  # named in the note, never chosen
    final = selection(corpus_name, chosen + unreadable, texts, include)
    sel = {"corpus": corpus_name, "models": final.used, "keys": final.used_keys, "chosen": chosen,
           "prompts": prompt_ids, "prompt_texts": texts, "framing": framing, "include_incomplete": include,
           "coverage_note": final.note(display_name)}
    st.session_state["comparison"] = sel
    return sel


def check_categories(corpus_name: str) -> None:
    """Refuse, in one line and before any statistics, a corpus with more categories than the
    family statistics take (VALUEAUDIT_MAX_CATEGORIES; each category is a panel with tests)."""
    limits.check_categories(corpus(corpus_name)[0]["category"].nunique(), corpus_name)


def comparison_result(sel: dict, permutations: int = 10000) -> analysis.Figure1 | None:
    """Figure 1 statistics for the current selection (None when there is nothing to analyse)."""
    if not sel or not sel.get("models") or not sel.get("prompts"):
        return None
    check_categories(sel["corpus"])
    return figure1(sel["corpus"], sel["chosen"], sel["prompt_texts"], sel["include_incomplete"], permutations)


@st.cache_data(show_spinner="Ranking words…", max_entries=8)
def _ranked(ver: tuple, corpus_name: str) -> pd.DataFrame:
    sc = _scores_for(Store(ver[0]), "rm", corpus_name, None, None)
    return _words.ranked_words(sc, corpus(corpus_name)[0])


def ranked(corpus_name: str) -> pd.DataFrame:
    """Every RM's rank of every corpus word on every prompt (1 = highest reward)."""
    return _ranked(version(), corpus_name)
