"""Models: the paper's 10 reward models and 12 language models, plus any hub id or local
folder a user adds; family, size and what has been scored on which corpus; add and remove."""
from __future__ import annotations


import pandas as pd
import streamlit as st

import appkit as ak
import audit_ui
from core import catalog, models, report, settings
from core import family as _family
from core.errors import ValueAuditError, one_line
from core.escape import markdown as md

FAMILIES = [catalog.AUTO_FAMILY, "llama", "gemma", "qwen", "mistral", "phi", "other"]


def catalog_table() -> tuple[pd.DataFrame, list[str]]:
    """Registry and stored models (a published model's runs as one model) with the share of
    each corpus they have scored, and what could not be read."""
    cat = catalog.model_catalog(ak.cached("models"))
    names = tuple(ak.cached("corpus_names"))
    cov, problems = ak.cached("coverage_by_corpus", names)
    if not cov.empty:
        piv = cov.pivot_table(index="model_id", columns="corpus", values="share", aggfunc="max")
        for c in piv.columns:
            cat[f"{ak.corpus_label(c)} %"] = cat["model_key"].map(piv[c] * 100)
    return cat, problems


def show_catalog() -> None:
    cat, problems = catalog_table()
    cat = cat.drop(columns="keys")  # every stored key of a model: never sent to the browser (server paths)
    ak.problems(problems)
    if settings.shared():  # local models by folder name: visitors never see a server path
        cat = report.public_models(cat)
    kind = st.radio("Show", [*catalog.KINDS, "all"], horizontal=True, key="mkind",
                    format_func=lambda k: f"{catalog.KINDS[k].capitalize()}s ({k})" if k in catalog.KINDS else "All")
    if kind != "all":
        cat = cat[cat["kind"] == kind]
    ak.family_legend(cat["family"])
    cat = cat.assign(display_name=cat["name"].map(ak.display_name),  # short and unique, as on every page
                     family=cat["family"].map(lambda f: _family.label(f) if _family.display(f) else ""))  # 'Gemma'
    pct = [c for c in cat.columns if c.endswith(" %")]
    order = ["display_name", "name", "family", "size", "source", "runs", *pct, "n_scores", "needs_remote_code"]
    st.dataframe(
        cat, hide_index=True, width="stretch", column_order=order,
        column_config={
            "display_name": st.column_config.TextColumn("Model", width="medium"),
            "name": st.column_config.TextColumn("Hub id or folder", width="medium"),
            "family": st.column_config.TextColumn("Family", width="small"),
            "size": st.column_config.TextColumn("Size", width="small"),
            "runs": st.column_config.TextColumn("Runs", width="small",
                                                help="the paper's published scores: one run per corpus it scored "
                                                     "(each corpus's analysis reads its own run)"),
            "n_scores": st.column_config.NumberColumn("Scores", format="%d", width="small"),
            "needs_remote_code": st.column_config.CheckboxColumn("Own code", width="small",
                                                                 help="runs Python code shipped with the model"),
            "source": st.column_config.TextColumn("Source", width="small", help="registry: the paper's model, not scored yet; "
                                                  "published: the paper's scores; scored: computed here; "
                                                  "added: added here, not scored yet"),
            **{c: st.column_config.ProgressColumn(c.replace(" %", ""), min_value=0, max_value=100, format="%.0f%%",
                                                  width="small",
                                                  help="share of this corpus's words scored") for c in pct}})
    n = int((cat["source"] != "registry").sum())
    st.caption(f"{n} stored models. Coverage columns: share of each corpus's words scored on every prompt the "
               "model was run with (a published model: its best run). Score more on the Score page.")


def add_form() -> None:
    """Why: a user audits their own reward model by adding it here, then scoring it."""
    with st.form("add-model", clear_on_submit=False):
        if settings.shared():
            st.markdown("**Add a model** — a Hugging Face id (`org/name`) or one of this server's models: "
                        + (", ".join(f"`{n}`" for n in settings.operator_models()) or "none listed") + ".")
        else:
            st.markdown("**Add a model** — a Hugging Face id (`org/name`) or a local folder saved with `save_pretrained`.")
        name = st.text_input("Hub id" if settings.shared() else "Hub id or local folder", max_chars=200,
                             placeholder="e.g. Ray2333/GRM-gemma2-2B-rewardmodel-ft", key="add-name")
        c1, c2, c3 = st.columns(3)
        kind = c1.selectbox("Kind", list(catalog.KINDS), format_func=catalog.KINDS.get)
        family = c2.selectbox("Base family", FAMILIES, help="auto-detect reads config.json (model_type)",
                              format_func=lambda f: f if f == catalog.AUTO_FAMILY else _family.label(f))
        revision = c3.text_input("Revision (hub only)", placeholder="main", help="branch, tag or commit",
                                 max_chars=255, key="add-revision")
        submitted = st.form_submit_button("Add model", type="primary")
    if submitted:
        add_model(name.strip(), kind, family, revision.strip() or None)


def add_model(name: str, kind: str, family: str, revision: str | None) -> None:
    try:
        added = catalog.add_model(ak.store(), name, kind, family, revision)
    except ValueAuditError as e:
        st.error(f"Could not add {md(name.strip()) or 'the model'}: {md(one_line(e))}.")
        if isinstance(e, models.ModelError) and family == catalog.AUTO_FAMILY and name.strip():
            st.caption("Hint: pick the base family by hand to add it without reading its config; "
                       "the Score page checks the model when it loads it.")
        return
    if not added["added"]:  # a stored model is never rewritten from here
        st.info(f"{md(name.strip())} is already in the catalogue as a {catalog.KINDS.get(added['kind'], added['kind'])} "
                f"of the {md(added['family'])} family; nothing was changed.", icon=":material/info:")
        return
    st.success(f"Added {md(name.strip())} ({md(added['family'])} {kind}). Score it on the Score page.")


def remove_form() -> None:
    if not settings.allow_delete():
        st.caption("This server is shared: models and scores cannot be removed here (the operator can, "
                   "from a local session).")
        return
    stored = ak.cached("models")
    if stored.empty:
        st.caption("Nothing stored yet, so nothing to remove.")
        return
    folded = catalog.runs_as_models(stored)
    keys = dict(zip(folded["model_key"], folded["keys"]))
    with st.form("remove-model"):
        st.markdown("**Remove a model** and all its stored scores from this database.")
        label = {r.model_key: f"{r.name} · {r.kind} · {r.source}" + (f" ({r.runs})" if r.runs else "")
                              + f" · {r.n_scores:,} scores" for r in folded.itertuples()}
        key = st.selectbox("Model", list(label), format_func=label.get, key="rm-key")
        sure = st.checkbox("Yes, delete its scores too (this cannot be undone)", key="rm-sure")
        go = st.form_submit_button("Remove")
    if go:
        if not sure:
            st.warning("Tick the confirmation box to remove the model.")
            return
        n = sum(ak.store().remove_model(k) for k in keys[key])
        st.success(f"Removed {md(label[key].split(' · ')[0])} and {n:,} scores.")
        st.rerun()


@ak.guarded
def main() -> None:
    ak.header("Models", "The paper's ten reward models and twelve language models, and any model you add. "
              "**Family** is the base model a reward model was fine-tuned from — the thing whose values it inherits.")
    show_catalog()
    st.divider()
    add_form()  # full width: beside the remove form its three fields shrank to empty boxes at 768 px
    remove_form()
    st.divider()
    audit_ui.models_checks()  # measurement checks of every run (issue 15)


main()
