"""Paired model-vs-model comparison: two models judged on the very same (prompt, word) cells.

Why paired: two models answered the same prompts about the same words, so the difference
of their ranks cell by cell removes everything the cells share (how hard a prompt is, how
common a word is). The interval and p-value resample prompts and words (two-way bootstrap), so reusing
the same words across prompts is not counted as independent evidence; the paired t-test
over prompts (`p_prompts_only`) is shown beside it and is far smaller because it treats
the words as fixed."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .uncertainty import _draws, _percentile_ci, bootstrap_p, prepare


def _cells(ranks: pd.DataFrame, words: pd.DataFrame, model_a: str, model_b: str) -> pd.DataFrame:
    """Rank of A, rank of B and their difference on every (framing, category, prompt, word) both have."""
    for m in (model_a, model_b):
        if m not in set(ranks["model"]):
            raise ValueError(f"no ranks for model '{m}'; pick models scored on this corpus")
    d = prepare(ranks[ranks["model"].isin([model_a, model_b])], words)
    wide = d.pivot_table(index=["framing", "category", "prompt_id", "response"], columns="model",
                         values="rank", aggfunc="first")
    if model_a not in wide or model_b not in wide:
        return pd.DataFrame(columns=["framing", "category", "prompt_id", "response", "rank_a", "rank_b", "difference"])
    out = wide[[model_a, model_b]].dropna().reset_index()
    out.columns = ["framing", "category", "prompt_id", "response", "rank_a", "rank_b"]
    out["difference"] = out["rank_a"] - out["rank_b"]
    return out


def paired_summary(ranks: pd.DataFrame, words: pd.DataFrame, model_a: str, model_b: str,
                   reps: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per (framing, category): mean rank difference A − B over the shared cells (negative =
    A ranks the category's words higher), a two-way bootstrap interval and p-value, the
    paired t-test over prompts (words fixed), and on how many prompts A ranks the category higher."""
    cells = _cells(ranks, words, model_a, model_b)
    rows = []
    for i, ((fr, cat), g) in enumerate(cells.groupby(["framing", "category"], sort=True)):
        D = g.pivot(index="prompt_id", columns="response", values="difference").to_numpy(float)
        per_prompt = np.nanmean(D, axis=1)
        p_prompts = float(stats.ttest_1samp(per_prompt, 0).pvalue) if len(per_prompt) >= 2 else float("nan")
        boot = _boot_means(D, reps, np.random.default_rng([seed, i]))
        lo, hi = _percentile_ci(boot, level)
        rows.append({"framing": fr, "category": cat, "model_a": model_a, "model_b": model_b,
                     "mean_difference": float(np.nanmean(D)), "ci_low": lo, "ci_high": hi,
                     "p_value": bootstrap_p(boot), "p_prompts_only": p_prompts, "n_prompts": D.shape[0], "n_words": D.shape[1],
                     "n_cells": int(np.isfinite(D).sum()), "prompts_a_higher": int((per_prompt < 0).sum())})
    return pd.DataFrame(rows)


def _boot_means(D: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Mean of D over cells under prompt and word resampling: (cp' D cw) / (cp' 1 cw)."""
    P, W = D.shape
    cp, cw = _draws(rng, reps, P).astype(float), _draws(rng, reps, W).astype(float)
    ok = np.isfinite(D)
    num = np.einsum("rp,pw,rw->r", cp, np.where(ok, D, 0.0), cw)
    den = np.einsum("rp,pw,rw->r", cp, ok.astype(float), cw)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def word_differences(ranks: pd.DataFrame, words: pd.DataFrame, model_a: str, model_b: str,
                     framing: str, category: str, n: int | None = None) -> pd.DataFrame:
    """The words whose rank differs most between A and B (mean over prompts of A − B), largest first."""
    cells = _cells(ranks, words, model_a, model_b)
    g = cells[(cells["framing"] == framing) & (cells["category"] == category)]
    out = g.groupby("response").agg(rank_a=("rank_a", "mean"), rank_b=("rank_b", "mean"),
                                    difference=("difference", "mean"), n_prompts=("difference", "size"))
    out = out.reset_index().rename(columns={"response": "word"})
    out = out.reindex(out["difference"].abs().sort_values(ascending=False, kind="stable").index)
    return (out.head(n) if n else out).reset_index(drop=True)
