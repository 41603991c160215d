"""Left here until the Implicit reward page stops comparing RMs with LMs (issue 11)."""
from __future__ import annotations

import pandas as pd


def agreement_pairs(rm_scores: pd.DataFrame, lm_scores: pd.DataFrame) -> pd.DataFrame:
    """(prompt, word) pairs scored by both an RM and an LM, for the scatter plot."""
    if rm_scores.empty or lm_scores.empty:
        return pd.DataFrame(columns=["prompt_id", "response", "value", "logp"])
    lm = lm_scores.groupby(["prompt", "response"])["value"].max().rename("logp").reset_index()
    rm = rm_scores.drop_duplicates(["prompt", "response"])[["prompt", "prompt_id", "response", "value"]]
    return rm.merge(lm, on=["prompt", "response"])
