"""Streamlit sections for the capability beyond the paper (issue 15): uncertainty on Compare,
measurement checks on Models, the audit report on Report. Each page calls one function
here, so the pages themselves change by a couple of lines; the paper's exact reproduction
stays the default view (everything here is behind a toggle or a button)."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import streamlit as st

import appkit as ak
from core import audit, checks, crossed, headline, uncertainty, wording
from core.escape import markdown as md
from core.store import Store

REPS, SEED = uncertainty.REPS, 0


# ---------------------------------------------------------------------------------
# Data (cached on the database version, like appkit's loaders)
# ---------------------------------------------------------------------------------
def selection_ranks(sel: dict) -> pd.DataFrame:
    """Word ranks of the models and prompts chosen in the sidebar (ranks are within each
    (model, prompt), so filtering afterwards changes no rank)."""
    r = ak.ranked(sel["corpus"])
    who = r["model_key"].isin(sel["keys"]) if "keys" in sel else r["model"].isin(sel["models"])
    return r[who & r["prompt_id"].isin(sel["prompts"])]


@st.cache_data(show_spinner="Checking the result with a stricter analysis: the models' spread within each family, "
                            "prompts and words resampled 10,000 times, and a mixed model of every word's rank "
                            "(a few seconds)…", max_entries=8)
def _stricter(ver, corpus: str, models: tuple, pids: tuple, reps: int, seed: int) -> headline.Stricter:
    sel = {"corpus": corpus, "models": list(models), "prompts": list(pids)}
    return headline.stricter(selection_ranks(sel), ak.corpus(corpus)[0], reps=reps, seed=seed)


def stricter_for(corpus: str, result) -> headline.Stricter | None:
    """The stricter analysis of exactly the models and prompts of this Figure 1 result (cached
    on the database version: Home, Compare and Report share one computation); None when the
    result compares no families."""
    if not result.family_tests:
        return None
    med = pd.DataFrame(result.median_ranks)
    return _stricter(ak.version(), corpus, tuple(sorted(med["model"].unique())),
                     tuple(sorted(med["prompt_id"].unique())), REPS, SEED)


def headline_box(corpus: str, result) -> headline.Headline:
    """The one story: what the paper's analysis finds, what the stricter analysis finds, what
    it means (core/headline.py writes the sentences; the same in the reports and the CLI)."""
    head = headline.headline(result, stricter_for(corpus, result))
    with st.container(border=True):
        for key in ("paper", "stricter", "meaning"):
            if text := getattr(head, key):
                st.markdown(f"**{headline.LABELS[key]}.** " + md(text))
    return head


def correction_picker(key: str) -> str:
    return st.radio("Multiple-comparison correction", list(uncertainty.METHODS), horizontal=True, key=key,
                    format_func=uncertainty.METHODS.get,
                    help="Bonferroni is the paper's. Holm is uniformly more powerful with the same guarantee; "
                         "Benjamini–Hochberg controls the false discovery rate. Applied over exactly the panels shown.")


# ---------------------------------------------------------------------------------
# Compare: uncertainty section
# ---------------------------------------------------------------------------------
def compare_uncertainty(sel: dict, result) -> None:
    """The stricter analysis in detail (opt-in): intervals, corrected stars, rank intervals with
    groups, and the stricter mixed model."""
    if not st.toggle("Show the stricter analysis in detail: intervals, groups, other corrections, the mixed model "
                     "of every word's rank", key="cmp-unc"):
        return
    strict = stricter_for(sel["corpus"], result)
    if strict is None:
        st.info(result.reason or "The stricter analysis compares families: it needs reward models from two families.")
        return
    with st.container(border=True):
        st.markdown("**Uncertainty.** A family claim rests on a handful of models, and every model answers the "
                    "same prompts about the same words, so each family gap is tested with "
                    f"{uncertainty.GAP_RULE} of {strict.reps:,} draws (seed {strict.seed}). "
                    "With 4 and 6 models the t distribution's heavier tails matter: a bootstrap over so few models "
                    "gives intervals that are too narrow. Each p comes from the same test as its interval; a gap is "
                    "called clearly different from zero when its p, corrected over the panels, is below 0.05.")
        method = correction_picker("cmp-corr")
        gaps = strict.gaps
        tests = pd.DataFrame(result.family_tests or [])
        tests = uncertainty.corrected_tests(tests, method) if not tests.empty else tests
        for s in audit.findings(gaps, tests, method):
            st.markdown("- " + md(s))
        ak.plot(audit.gap_figure(gaps), key="cmp-gap-fig")
        if not tests.empty:
            st.dataframe(pd.DataFrame({"framing": tests["framing"], "category": tests["category"],
                                       "the paper's Welch p": tests["welch_p"].map(wording.p_cell),
                                       f"{uncertainty.METHODS[method]}-adjusted": tests["p_adjusted"].map(wording.p_cell),
                                       "stars": tests["stars"]}), hide_index=True, width="stretch")
        rank_section(strict)
        crossed_section(strict.crossed)


def rank_section(strict: headline.Stricter) -> None:
    st.markdown("**Where each model stands — rank intervals and groups that cannot be told apart**")
    panels = list(strict.rank_intervals)
    if not panels:
        return
    fr, cat = st.selectbox("Panel", panels, format_func=lambda p: f"{p[1]} words, {p[0]} prompts", key="cmp-rank-panel")
    ri = strict.rank_intervals[(fr, cat)]
    ri = ri.assign(model=ri["model"].map(ak.display_name))  # the short names every page shows
    ak.plot(audit.rank_interval_figure(ri, fr, cat), key="cmp-rank-fig")
    st.dataframe(uncertainty.rank_table(ri), hide_index=True, width="stretch")
    st.caption(audit.GROUPS_CAPTION + " Positions are about these models (prompts and words resampled).")


def crossed_section(res: dict) -> None:
    st.markdown("**The stricter mixed model** (every word's rank)")
    st.text(crossed.crossed_sentence(res))
    st.caption(crossed.WHAT_IT_ADDS)
    if "terms" in res:
        st.caption(f"Model: {md(res['formula'])} (REML; Satterthwaite degrees of freedom as R's lmerTest; "
                   "reference levels as the paper: " + md(", ".join(res["reference"].values())) + ").")
        st.dataframe(crossed.terms_table(res), hide_index=True, width="stretch")
        st.dataframe(crossed.variance_table(res).round({"variance": 1}), hide_index=True, width="stretch")


# ---------------------------------------------------------------------------------
# Models: measurement checks
# ---------------------------------------------------------------------------------
def models_checks() -> None:
    """The latest measurement checks of every scored model; failed runs are flagged at the top."""
    st.subheader("Measurement checks")
    chk = checks.latest(Store(ak.version()[0]))
    if chk.empty:
        st.caption("No checks recorded yet: every scoring run (Score page or `python -m core score`) records "
                   "them. Published scores are imported, not measured here.")
        return
    # names as the pages show them: on a shared server no server path (a local model's folder, a scan's corpus)
    chk = chk.assign(model=chk["model"].map(ak.public_name), corpus=chk["corpus"].map(ak.corpus_label))
    failed = chk[chk["status"] == "failed"]
    for r in failed.itertuples():
        st.error(md(f"{r.model} on {r.corpus}: scores are flagged — {r.message}"))
    view = chk[["model", "corpus", "status", "message", "n_one_token", "n_multi_token", "n_dropped", "n_changed",
                "created_at"]]
    st.dataframe(view, hide_index=True, width="stretch", column_config={
        "n_one_token": st.column_config.NumberColumn("one token"),
        "n_multi_token": st.column_config.NumberColumn("several tokens"),
        "n_dropped": st.column_config.NumberColumn("dropped"),
        "n_changed": st.column_config.NumberColumn("changed")})
    label = {r.run_id: f"{r.model} · {r.corpus}" for r in chk.itertuples()}
    run = st.selectbox("Details of", list(label), format_func=label.get, key="chk-run")
    row = chk[chk["run_id"] == run].iloc[0]
    a, b = st.columns(2)
    with a:
        st.markdown("**Invariance** (stored value vs each way of computing it)")
        st.dataframe(pd.DataFrame(json.loads(row["invariance"] or "[]")), hide_index=True, width="stretch")
        st.markdown("**Chat-template text sent for one example**")
        st.code(row["template_text"] or "", language=None)
    with b:
        st.markdown("**Words that split, were dropped or changed**")
        st.dataframe(pd.DataFrame(json.loads(row["coverage"] or "[]")), hide_index=True, width="stretch")


# ---------------------------------------------------------------------------------
# Report: the audit report download
# ---------------------------------------------------------------------------------
def audit_download(sel: dict, result, figures=()) -> None:
    st.markdown("**Audit report (beyond the paper)** — findings with intervals, charts, measurement checks and "
                "a provenance card (model revisions and weight hashes, corpus and prompt hashes, engine, dtype, "
                "device, libraries, app commit). One HTML file, opens offline; print it to PDF from the browser.")
    method = correction_picker("rep-corr")
    if st.button("Build the audit report", key="rep-audit"):
        ranks = selection_ranks(sel)
        ps = sorted(set(zip(ranks["prompt_id"], ranks["prompt"]))) if "prompt" in ranks else sel["prompts"]
        with st.spinner("Bootstrapping and writing the report…"):
            doc = audit.build(Store(ak.version()[0]), sel["corpus"], ak.corpus(sel["corpus"])[0],
                              ranks, result, ps, method=method, reps=REPS, seed=SEED,
                              extra_figures=list(figures), stricter=stricter_for(sel["corpus"], result),
                              name=ak.public_name)  # a shared server's visitor downloads no server path
        st.session_state["audit-doc"] = doc
    doc = st.session_state.get("audit-doc")
    if doc:
        st.download_button("Download the audit report (HTML)", doc,
                           f"value_audit_{sel['corpus']}_{dt.date.today().isoformat()}_audit.html", "text/html",
                           key="rep-audit-dl")
