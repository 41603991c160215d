"""Which models are scored on enough of a corpus to join the family statistics.

Why: a family test compares per-model median ranks; a model scored on 2 of 54 prompts
gives a mean over 2 prompts that is not comparable to the others' mean over 54, and one
such model changed the headline family gap from 4.2 to 1.4 places. So a model joins the
family statistics by default only when its coverage matches the best-covered model's;
the dashboard shows each model's coverage and lets the user include the others."""
from __future__ import annotations

import pandas as pd

# A model is complete when it has every prompt the best-covered model has and at least
# this share of its words (a few words may lack tokens and be skipped).
WORD_SHARE = 0.95


def model_coverage_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """Per model: prompts and words scored, against the best-covered model on the same data,
    from per (model, prompt) word counts (columns model, family, prompt_id, n_words): the
    small table a database aggregate returns, so a corpus of a million scores never
    travels to pandas to learn who is complete."""
    cols = ["model", "family", "n_prompts", "n_words", "ref_prompts", "ref_words", "complete"]
    if counts is None or counts.empty:
        return pd.DataFrame(columns=cols)
    g = counts.groupby("model", sort=True).agg(family=("family", "first"), n_prompts=("prompt_id", "nunique"),
                                               n_words=("n_words", "max")).reset_index()
    g["ref_prompts"] = int(g["n_prompts"].max())
    g["ref_words"] = int(g["n_words"].max())
    g["complete"] = (g["n_prompts"] >= g["ref_prompts"]) & (g["n_words"] >= WORD_SHARE * g["ref_words"])
    return g[cols]


def incomplete(cov: pd.DataFrame) -> list[str]:
    return cov.loc[~cov["complete"].astype(bool), "model"].tolist() if not cov.empty else []


def describe(row) -> str:
    """'2 of 54 prompts, 263 of 263 words'."""
    return (f"{int(row['n_prompts'])} of {int(row['ref_prompts'])} prompts, "
            f"{int(row['n_words'])} of {int(row['ref_words'])} words")


def left_out_note(cov: pd.DataFrame, chosen) -> str:
    """One sentence for every place family numbers appear: who is left out, or who is in
    despite incomplete coverage; '' when every model is complete."""
    bad = cov[~cov["complete"].astype(bool)] if not cov.empty else cov
    if bad.empty:
        return ""
    chosen = set(chosen or [])
    out = bad[~bad["model"].isin(chosen)]
    inc = bad[bad["model"].isin(chosen)]
    parts = []
    if not out.empty:
        who = "; ".join(f"{r['model']} ({describe(r)})" for r in out.to_dict("records"))
        parts.append(f"Left out of the family statistics because of incomplete coverage: {who}.")
    if not inc.empty:
        who = "; ".join(f"{r['model']} ({describe(r)})" for r in inc.to_dict("records"))
        parts.append(f"Included although incompletely scored, so the family numbers may mislead: {who}.")
    return " ".join(parts)
