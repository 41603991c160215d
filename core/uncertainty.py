"""Honest uncertainty beside the paper's statistics: bootstrap intervals for family gaps,
rank intervals with "statistically tied" groups, and multiplicity corrections.

Why a two-way (prompt x word) cluster bootstrap: the paper's tests treat every (model,
prompt) median rank as an independent observation, but the same 54 prompts and the same
corpus words are reused by every model, so a gap carried by a few prompts or a few words
looks surer than it is. Resampling prompts and words (independently, with replacement)
and recomputing the whole statistic — median rank per (model, prompt, category), mean over
prompts per model, mean over models per family — gives intervals that carry both sources
of variation. Models are not resampled: the intervals are about these models.

Everything is seeded (numpy Generator seeded with (seed, panel index)) so a rerun gives the
same intervals. No UI imports."""
from __future__ import annotations


import numpy as np
import pandas as pd

from . import family as _family
from . import prompts as _prompts

METHODS = {"bonferroni": "Bonferroni", "holm": "Holm", "bh": "Benjamini–Hochberg"}
_CHUNK_CELLS = 4_000_000  # bootstrap replicates are processed in chunks of about this many cells


# ----------------------------------------------------------------------------------
# Data: word-level ranks as one (model x prompt x word) array per panel
# ----------------------------------------------------------------------------------
def prepare(ranks: pd.DataFrame, words: pd.DataFrame) -> pd.DataFrame:
    """Word ranks (analysis.word_ranks / words.ranked_words) joined with the corpus categories
    (a word in two categories counts in each), with framing and capitalised family."""
    cols = ["model", "family", "prompt_id", "response", "rank"] + (["framing"] if "framing" in ranks else [])
    d = ranks[cols].copy()
    if "framing" not in d:
        fr = {p: _prompts.framing_of(str(p)) for p in d["prompt_id"].unique()}
        d["framing"] = d["prompt_id"].map(fr)
    shown = {f: _family.display(f) for f in d["family"].dropna().unique()}
    d["family"] = d["family"].map(shown)
    d = d.dropna(subset=["family", "rank"])
    cats = words[["word", "category"]].astype(str).drop_duplicates()
    return d.merge(cats, left_on="response", right_on="word").drop(columns="word")


def panel_array(d: pd.DataFrame) -> dict:
    """One panel's ranks as R[model, prompt, word] (NaN = not scored), with the labels."""
    mc, models = pd.factorize(d["model"], sort=True)
    pc, pids = pd.factorize(d["prompt_id"], sort=True)
    wc, wds = pd.factorize(d["response"], sort=True)
    R = np.full((len(models), len(pids), len(wds)), np.nan)
    R[mc, pc, wc] = d["rank"].to_numpy(float)
    fam = d.drop_duplicates("model").set_index("model")["family"].reindex(models).to_numpy(object)
    return {"R": R, "models": list(models), "prompts": list(pids), "words": list(wds), "family": fam}


def panels(d: pd.DataFrame):
    """(framing, category, panel_array) for every panel, in the paper's order."""
    for (cat, fr), g in d.groupby(["category", "framing"], sort=True):
        yield fr, cat, panel_array(g)


# ----------------------------------------------------------------------------------
# The statistic under resampling weights (vectorised over replicates)
# ----------------------------------------------------------------------------------
def _sorted_panel(R: np.ndarray):
    """Each (model, prompt)'s ranks sorted ascending (NaN last), the word order, and presence."""
    order = np.argsort(np.where(np.isnan(R), np.inf, R), axis=-1, kind="stable")
    vals = np.take_along_axis(R, order, axis=-1)
    return order, vals, ~np.isnan(vals)


def weighted_medians(sorted_panel, word_counts: np.ndarray) -> np.ndarray:
    """Median per (replicate, model, prompt) of the multiset of ranks in which word w appears
    word_counts[rep, w] times (R's median: mean of the two middle values when even)."""
    order, vals, present = sorted_panel
    small = np.int16 if vals.shape[-1] < 16000 else np.int32  # counts fit; less memory traffic
    c = word_counts.astype(small)[:, order]  # (reps, M, P, W)
    if not present.all():
        c *= present
    cum = np.cumsum(c, axis=-1, dtype=small)
    n = cum[..., -1].astype(np.int64)
    k1, k2 = ((n - 1) // 2).astype(small), (n // 2).astype(small)
    i1 = np.argmax(cum > k1[..., None], axis=-1)
    i2 = np.argmax(cum > k2[..., None], axis=-1)
    v = np.broadcast_to(vals, c.shape)
    med = 0.5 * (np.take_along_axis(v, i1[..., None], -1)[..., 0] + np.take_along_axis(v, i2[..., None], -1)[..., 0])
    return np.where(n > 0, med, np.nan)


def model_means(med: np.ndarray, prompt_counts: np.ndarray) -> np.ndarray:
    """Per (replicate, model): the prompt-weighted mean of its median ranks (prompts it lacks skipped)."""
    w = prompt_counts[:, None, :] * ~np.isnan(med)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(np.nan_to_num(med) * w, axis=-1) / w.sum(-1)


def _draws(rng: np.random.Generator, reps: int, n: int) -> np.ndarray:
    """Counts of each of n units in `reps` resamples of size n with replacement."""
    idx = rng.integers(0, n, size=(reps, n)) + (np.arange(reps) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=reps * n).reshape(reps, n)


def bootstrap_model_means(panel: dict, reps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(observed model means [M], bootstrap model means [reps, M]) with prompts and words
    resampled independently with replacement (two-way cluster bootstrap)."""
    R = panel["R"]
    M, P, W = R.shape
    sp = _sorted_panel(R)
    obs = model_means(weighted_medians(sp, np.ones((1, W), int)), np.ones((1, P)))[0]
    out = np.empty((reps, M))
    chunk = max(1, _CHUNK_CELLS // max(M * P * W, 1))
    for s in range(0, reps, chunk):
        k = min(chunk, reps - s)
        wc, pc = _draws(rng, k, W), _draws(rng, k, P)
        out[s:s + k] = model_means(weighted_medians(sp, wc), pc)
    return obs, out


def _family_means(mm: np.ndarray, family: np.ndarray, fam: str) -> np.ndarray:
    """Mean over the family's models (every model weighs the same), along the last axis."""
    sel = mm[..., family == fam]
    with np.errstate(invalid="ignore"):
        return np.nanmean(sel, axis=-1) if sel.shape[-1] else np.full(mm.shape[:-1], np.nan)


def bootstrap_p(boot: np.ndarray) -> float:
    """Two-sided p of 'no difference' from the same two-way bootstrap as the interval
    (the smallest level at which the percentile interval excludes zero), so the p-value
    and the interval never disagree."""
    b = boot[np.isfinite(boot)]
    if len(b) == 0:
        return float("nan")
    tail = min(np.sum(b <= 0), np.sum(b >= 0))
    return float(min(1.0, 2 * (1 + tail) / (1 + len(b))))


def _percentile_ci(x: np.ndarray, level: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(x, [a, 1 - a])
    return float(lo), float(hi)


# ----------------------------------------------------------------------------------
# Family gaps
# ----------------------------------------------------------------------------------
def family_gaps(ranks: pd.DataFrame, words: pd.DataFrame, reps: int = 2000, seed: int = 0,
                level: float = 0.95) -> pd.DataFrame:
    """Per (framing, category) panel: mean rank of each family (the paper's family means)
    and the gap (second family − first, e.g. Llama − Gemma; negative = the second family
    ranks the category's words higher) with a two-way cluster bootstrap interval, and on
    how many prompts the per-prompt gap has the same sign."""
    d = prepare(ranks, words)
    fams = sorted(d["family"].unique(), key=lambda f: (f.casefold(), f))
    cols = ["framing", "category", "family_a", "family_b", "mean_a", "mean_b", "gap", "ci_low", "ci_high", "p_boot",
            "n_prompts_same_sign", "n_prompts", "n_words", "n_models_a", "n_models_b", "reps", "seed", "level"]
    if len(fams) < 2:
        return pd.DataFrame(columns=cols)
    fa, fb = fams[0], fams[1]
    rows = []
    for i, (fr, cat, panel) in enumerate(panels(d[d["family"].isin([fa, fb])])):
        rng = np.random.default_rng([seed, i])
        obs, boot = bootstrap_model_means(panel, reps, rng)
        fam = panel["family"]
        ma, mb = _family_means(obs, fam, fa), _family_means(obs, fam, fb)
        gap = float(mb - ma)
        boot_gap = _family_means(boot, fam, fb) - _family_means(boot, fam, fa)
        lo, hi = _percentile_ci(boot_gap, level)
        per_prompt = _per_prompt_gap(panel, fa, fb)
        same = int(np.sum(np.sign(per_prompt) == np.sign(gap))) if gap != 0 else 0
        rows.append({"framing": fr, "category": cat, "family_a": fa, "family_b": fb, "mean_a": float(ma),
                     "mean_b": float(mb), "gap": gap, "ci_low": lo, "ci_high": hi, "p_boot": bootstrap_p(boot_gap),
                     "n_prompts_same_sign": same,
                     "n_prompts": int(np.isfinite(per_prompt).sum()), "n_words": len(panel["words"]),
                     "n_models_a": int((fam == fa).sum()), "n_models_b": int((fam == fb).sum()),
                     "reps": reps, "seed": seed, "level": level})
    out = pd.DataFrame(rows, columns=cols)
    order = {"positive": 0, "negative": 1}
    return out.sort_values(["framing", "category"], key=lambda s: s.map(order).fillna(2) if s.name == "framing"
                           else s).reset_index(drop=True)


def _per_prompt_gap(panel: dict, fa: str, fb: str) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        med = np.nanmedian(panel["R"], axis=-1) if panel["R"].size else np.zeros((0, 0))  # (M, P)
    fam = panel["family"]
    with np.errstate(invalid="ignore"):
        return np.nanmean(med[fam == fb], axis=0) - np.nanmean(med[fam == fa], axis=0)


# ----------------------------------------------------------------------------------
# Rank intervals and ties
# ----------------------------------------------------------------------------------
def rank_intervals(ranks: pd.DataFrame, words: pd.DataFrame, framing: str, category: str,
                   reps: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Models ordered by how strongly they prefer a category (position 1 = lowest mean
    median rank = prefers it most), each with a bootstrap interval of its position, and
    groups of models that are statistically tied: a model joins the group of the model
    above it when the bootstrap interval of their difference in mean rank contains zero."""
    d = prepare(ranks, words)
    d = d[(d["framing"] == framing) & (d["category"] == category)]
    cols = ["position", "model", "family", "mean_rank", "position_low", "position_high", "tie_group"]
    if d.empty:
        return pd.DataFrame(columns=cols)
    panel = panel_array(d)
    obs, boot = bootstrap_model_means(panel, reps, np.random.default_rng([seed, 7919]))
    pos_boot = np.argsort(np.argsort(np.nan_to_num(boot, nan=np.inf), axis=1, kind="stable"), axis=1) + 1
    a = (1 - level) / 2
    order = np.argsort(obs, kind="stable")
    groups, g, leader = [], 1, order[0]
    for j, m in enumerate(order):
        if j > 0:
            lo, hi = _percentile_ci(boot[:, m] - boot[:, leader], level)
            if not (lo <= 0 <= hi):
                g, leader = g + 1, m
        groups.append(g)
    rows = [{"position": j + 1, "model": panel["models"][m], "family": panel["family"][m],
             "mean_rank": float(obs[m]), "position_low": int(np.floor(np.quantile(pos_boot[:, m], a))),
             "position_high": int(np.ceil(np.quantile(pos_boot[:, m], 1 - a))), "tie_group": groups[j]}
            for j, m in enumerate(order)]
    return pd.DataFrame(rows, columns=cols)


# ----------------------------------------------------------------------------------
# Multiplicity
# ----------------------------------------------------------------------------------
def adjust_p(p, method: str = "bonferroni") -> np.ndarray:
    """Adjusted p-values over exactly the p-values given (NaN stays NaN and is not counted).
    bonferroni: p*m; holm: step-down; bh: Benjamini–Hochberg step-up (false discovery rate)."""
    if method not in METHODS:
        raise ValueError(f"unknown correction {method!r}; use one of {', '.join(METHODS)}")
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    m = len(q)
    if m == 0:
        return out
    if method == "bonferroni":
        adj = np.minimum(q * m, 1.0)
    elif method == "holm":
        o = np.argsort(q, kind="stable")
        stepped = np.maximum.accumulate((m - np.arange(m)) * q[o])
        adj = np.empty(m)
        adj[o] = np.minimum(stepped, 1.0)
    else:
        o = np.argsort(q, kind="stable")[::-1]
        stepped = np.minimum.accumulate(q[o] * m / (m - np.arange(m)))
        adj = np.empty(m)
        adj[o] = np.minimum(stepped, 1.0)
    out[ok] = adj
    return out


def stars(p) -> str:
    if p is None or not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "ns"


def corrected_tests(tests: pd.DataFrame, method: str = "bonferroni", p_column: str = "welch_p") -> pd.DataFrame:
    """The family tests of the panels shown with p adjusted over exactly those panels, and
    the correction named next to every star ('** Holm')."""
    out = tests.copy()
    if out.empty:
        return out
    out["p_adjusted"] = adjust_p(out[p_column].to_numpy(float), method)
    out["correction"] = METHODS[method]
    out["stars"] = [f"{stars(p)} {METHODS[method]}" if np.isfinite(p) else "" for p in out["p_adjusted"]]
    return out


# ----------------------------------------------------------------------------------
# Findings in plain sentences
# ----------------------------------------------------------------------------------
def finding_sentence(r: dict) -> str:
    """'On positive prompts, Llama-based reward models rank Agency words 4.2 places higher
    than Gemma-based ones (95% CI 1.0 to 7.5 places; on 50 of 54 prompts).'"""
    gap, lo, hi = r["gap"], r["ci_low"], r["ci_high"]
    fa, fb = r["family_a"], r["family_b"]
    pct = f"{r.get('level', 0.95) * 100:.0f}%"
    if not np.isfinite(gap):
        return f"On {r['framing']} prompts, {r['category']}: not enough data to compare {fb} and {fa}."
    # gap = mean rank of fb - mean rank of fa; a lower rank number is a higher place.
    higher, lower = (fb, fa) if gap < 0 else (fa, fb)
    a, b = sorted((abs(lo), abs(hi))) if np.sign(lo) == np.sign(hi) else (None, None)
    if a is None:
        ci = (f"{pct} CI from {abs(lo):.1f} places higher for {fb if lo < 0 else fa} to {abs(hi):.1f} places "
              f"higher for {fa if hi > 0 else fb}: the interval includes zero")
    else:
        ci = f"{pct} CI {a:.1f} to {b:.1f} places"
    return (f"On {r['framing']} prompts, {higher}-based reward models rank {r['category']} words "
            f"{abs(gap):.1f} places higher than {lower}-based ones ({ci}; the gap points the same way on "
            f"{r['n_prompts_same_sign']} of {r['n_prompts']} prompts).")
