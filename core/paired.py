"""Paired model-vs-model comparison: two models judged on the very same (prompt, word) cells.

Why paired: two models answered the same prompts about the same words, so the difference
of their ranks cell by cell removes everything the cells share (how hard a prompt is, how
common a word is). The interval and p-value resample prompts and words (two-way bootstrap), so reusing
the same words across prompts is not counted as independent evidence; the paired t-test
over prompts (`p_prompts_only`) is shown beside it and is far smaller because it treats
the words as fixed. Both models rank the same words, so within a framing the two Big Two
categories mirror each other: one test per framing (`paired_tests`), not one per category."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .uncertainty import REPS, _draws, adjust_p, bootstrap_p, percentile_ci, prepare
from .wording import p_cell


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
                   reps: int = REPS, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per (framing, category): mean rank difference A − B over the shared cells (negative =
    A ranks the category's words higher), its bootstrap interval (prompts and words
    resampled), and on how many prompts A ranks the category higher. The tests are in
    `paired_tests`: one per framing, not one per category."""
    rows = []
    for fr, g, draws in _framings(ranks, words, model_a, model_b, reps, seed):
        for cat, D in g.items():
            per_prompt = np.nanmean(D, axis=1)
            lo, hi = percentile_ci(draws[cat], level)
            rows.append({"framing": fr, "category": cat, "model_a": model_a, "model_b": model_b,
                         "mean_difference": float(np.nanmean(D)), "ci_low": lo, "ci_high": hi,
                         "n_prompts": D.shape[0], "n_words": D.shape[1], "n_cells": int(np.isfinite(D).sum()),
                         "prompts_a_higher": int((per_prompt < 0).sum()), "reps": reps, "level": level})
    return pd.DataFrame(rows)


def paired_tests(ranks: pd.DataFrame, words: pd.DataFrame, model_a: str, model_b: str,
                 reps: int = REPS, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """One test per framing. Both models rank the same corpus words on every prompt, so their
    rank sums are equal and the rank differences of two categories that split the corpus
    mirror each other exactly (sum over Agency = − sum over Communion): 'A ranks Agency
    higher' and 'A ranks Communion lower' are one finding, and testing each category would
    count it twice. The statistic is the contrast mean(A − B on the first category) −
    mean(A − B on the second) (negative = A favours the first category relative to the
    second more than B does), with a bootstrap interval and p (prompts drawn once for both
    categories, words within each) and the paired t-test over prompts of the per-prompt
    contrast (words fixed). With more than two categories, one row per category (each
    against the rest). `p_value_holm`: the bootstrap p Holm-adjusted over every test returned
    (both framings, every row: all the tests a reader is shown at once), with their number in
    `n_tests`, when there are two or more."""
    from scipy import stats as _stats
    rows = []
    for fr, g, draws in _framings(ranks, words, model_a, model_b, reps, seed):
        cats = list(g)
        if len(cats) == 2:
            contrasts = [(f"{cats[0]} vs {cats[1]}", cats[0], [cats[1]])]
        else:
            contrasts = [(f"{c} vs the rest", c, [o for o in cats if o != c]) for c in cats]
        out = []
        for name, first, rest in contrasts:
            pp = {c: np.nanmean(g[c], axis=1) for c in cats}
            per_prompt = pp[first] - np.mean([pp[c] for c in rest], axis=0)
            obs = float(np.nanmean(g[first]) - np.mean([np.nanmean(g[c]) for c in rest]))
            boot = draws[first] - np.mean([draws[c] for c in rest], axis=0)
            lo, hi = percentile_ci(boot, level)
            ok = np.isfinite(per_prompt)
            t = _stats.ttest_1samp(per_prompt[ok], 0).pvalue if ok.sum() >= 2 else float("nan")
            out.append({"framing": fr, "test": name, "model_a": model_a, "model_b": model_b, "contrast": obs,
                        "ci_low": lo, "ci_high": hi, "p_value": bootstrap_p(boot), "p_prompts_only": float(t),
                        "n_prompts": int(ok.sum()), "n_tests_in_framing": len(contrasts), "reps": reps})
        rows += out
    if len(rows) > 1:  # every test shown at once, across the framings
        for r, pa in zip(rows, adjust_p([r["p_value"] for r in rows], "holm")):
            r.update(p_value_holm=float(pa), n_tests=len(rows))
    return pd.DataFrame(rows)


def _framings(ranks, words, model_a, model_b, reps, seed):
    """Per framing: {category: D[prompt, word] of A − B} and {category: bootstrap means}, the
    prompts drawn once per framing (shared by its categories), words within each category."""
    from .analysis import framing_levels
    cells = _cells(ranks, words, model_a, model_b)
    for i, fr in enumerate(framing_levels(cells["framing"].unique())):
        gf = cells[cells["framing"] == fr]
        pids = sorted(gf["prompt_id"].unique())
        g = {cat: gc.pivot(index="prompt_id", columns="response", values="difference").reindex(pids).to_numpy(float)
             for cat, gc in gf.groupby("category", sort=True)}
        rng = np.random.default_rng([seed, i])
        cp = _draws(rng, reps, len(pids)).astype(float)
        draws = {cat: _boot_means(D, cp, _draws(rng, reps, D.shape[1]).astype(float)) for cat, D in g.items()}
        yield fr, g, draws


def _boot_means(D: np.ndarray, cp: np.ndarray, cw: np.ndarray) -> np.ndarray:
    """Mean of D over cells under prompt counts cp [reps, P] and word counts cw [reps, W]:
    (cp' D cw) / (cp' 1 cw)."""
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


def _interval(lo, hi) -> list[str]:
    return [f"{a:.1f} to {b:.1f}" for a, b in zip(lo, hi)]


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """paired_summary for a reader: named columns, ranks to one decimal, the interval in one
    cell (the raw frame stays the download)."""
    if summary.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "Prompts": summary["framing"], "Category": summary["category"],
        "Mean rank difference (A − B)": summary["mean_difference"].round(1),
        "95% interval": _interval(summary["ci_low"], summary["ci_high"]),
        "A ranks higher on": [f"{a} of {n} prompts" for a, n in zip(summary["prompts_a_higher"], summary["n_prompts"])],
        "Words": summary["n_words"]})


def tests_table(tests: pd.DataFrame) -> pd.DataFrame:
    """paired_tests for a reader: named columns, p-values as '< 0.001' (a cell reading
    0.00000000000009 says nothing a reader can use), and the Holm-adjusted p over every test
    shown, labelled with how many ('p (Holm over the 2 tests)')."""
    if tests.empty:
        return pd.DataFrame()
    out = pd.DataFrame({
        "Prompts": tests["framing"], "Test": tests["test"], "Contrast": tests["contrast"].round(1),
        "95% interval": _interval(tests["ci_low"], tests["ci_high"]),
        "p (prompts and words)": tests["p_value"].map(p_cell),
        "p (prompts only)": tests["p_prompts_only"].map(p_cell), "Prompts used": tests["n_prompts"]})
    if "p_value_holm" in tests and tests["p_value_holm"].notna().any():
        out.insert(5, f"p (Holm over the {int(tests['n_tests'].max())} tests)", tests["p_value_holm"].map(p_cell))
    return out


def words_table(differences: pd.DataFrame) -> pd.DataFrame:
    """word_differences for a reader: named columns, mean ranks to one decimal."""
    return pd.DataFrame({"Word": differences["word"], "Rank in A": differences["rank_a"].round(1),
                         "Rank in B": differences["rank_b"].round(1),
                         "Difference (A − B)": differences["difference"].round(1),
                         "Prompts": differences["n_prompts"]})
