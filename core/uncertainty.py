"""The stricter analysis beside the paper's statistics: intervals and tests for family gaps,
rank intervals with groups of models that cannot be told apart, and multiplicity corrections.

Why models, prompts and words are all samples: a family claim ("Llama-based RMs favour
agency") is about how RMs built on one base behave, and rests on a handful of models (4
Gemma, 6 Llama in the paper); the same prompts and the same corpus words are reused by every
model. The paper's tests count every (model, prompt) median as independent.

A family gap's uncertainty has two parts, and each gets the method that is sound for it:
- which models: how much the models of one family differ among themselves, from the spread
  of their own values (each model's mean median rank), s_f^2 / n_f per family — the textbook
  analysis at the level of the claim. With 4 and 6 models this spread is itself uncertain,
  so the gap is read on a t distribution (Welch–Satterthwaite degrees of freedom), not a
  normal one. A bootstrap over so few models cannot know that: drawing 4 models with
  replacement spreads their mean by (n − 1)/n of its variance and its percentile interval
  has no t tail, so its 95% interval covered the true gap 88% of the time in simulated
  studies like the paper's (bench/gap_coverage.py; docs/uncertainty.md has the figures);
- which prompts and words: a two-way bootstrap, prompts within the panel's framing and words
  within the category drawn independently with replacement, models fixed, recomputing the
  whole statistic — median rank per (model, prompt) over the drawn words, mean over the
  drawn prompts per model, mean per family. Its variance of the gap carries how differently
  the families rank the same words and answer the same prompts, which the models' spread
  does not see (every model of a family shares it).
The two variances add (`gap_t_test`); the model part also holds each model's own
prompt-and-word noise, which the bootstrap part counts again, so the sum errs on the wide
side. Ranks are not recomputed: they stay the ranks within each (model, prompt) over the
whole corpus.

Rank intervals answer a different question (where do *these* models stand?), so they
resample prompts and words only.

A p-value always agrees with its interval: a family gap's p is the same t test's; a rank
pair's p the smallest alpha whose percentile interval excludes zero, with the interval's own
quantile rule. Everything is seeded (numpy Generator seeded with (seed, panel index)). No UI
imports."""
from __future__ import annotations

import contextlib
import math
import string
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import family as _family
from . import prompts as _prompts

METHODS = {"bonferroni": "Bonferroni", "holm": "Holm", "bh": "Benjamini–Hochberg"}
REPS = 10_000  # draws: the first decimal of an interval end is then about right (see ci_digits)
_CHUNK_CELLS = 2_000_000  # replicates are processed in chunks of about this many (rep, model, prompt, block) cells


def one_blas_thread():
    """A context with one BLAS thread: the algebra here is many small products, and on a busy
    machine OpenBLAS's threads make those several times slower, not faster."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it only the speed differs
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


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
class SortedPanel:
    """Each (model, prompt)'s ranks sorted ascending, missing words last, cut into blocks of
    b positions, plus U[w, (mp, j)] = 1 when word w sits in a block <= j of (model, prompt) mp:
    the cumulative count of drawn words at every block end is then one matrix product, and
    only the one block holding the median needs its counts gathered (instead of a cumulative
    sum over all W words for every (replicate, model, prompt))."""

    def __init__(self, R: np.ndarray):
        M, P, W = R.shape
        self.shape = (M, P, W)
        self.b = max(4, int(math.sqrt(max(W, 1))))
        self.nblk = max(1, -(-W // self.b))
        order = np.argsort(np.where(np.isnan(R), np.inf, R), axis=-1, kind="stable").reshape(M * P, W)
        vals = np.take_along_axis(R.reshape(M * P, W), order, axis=-1)
        present = ~np.isnan(vals)
        width = self.nblk * self.b
        self.order = np.full((M * P, width), W, dtype=np.int64)  # W = a padding word with count 0
        self.order[:, :W] = np.where(present, order, W)
        self.vals = np.full((M * P, width), np.nan)
        self.vals[:, :W] = vals
        blk = np.full((M * P, W + 1), self.nblk)  # the block of each word in each (m, p); nblk = absent
        rows = np.repeat(np.arange(M * P), W)
        pos = np.tile(np.arange(W), M * P)
        keep = present.ravel()
        blk[rows[keep], order.ravel()[keep]] = pos[keep] // self.b
        U = (np.arange(self.nblk)[None, :, None] >= blk[:, :W].T[:, None, :])  # (W, nblk, MP)
        self.U = U.reshape(W, self.nblk * M * P).astype(np.float32)
        self.order_flat = self.order.ravel()
        self.vals_flat = self.vals.ravel()

    def medians(self, word_counts: np.ndarray) -> np.ndarray:
        """Median per (replicate, model, prompt) of the multiset in which word w appears
        word_counts[rep, w] times (R's median: mean of the two middle values when even).
        Arrays are laid out (block or position, replicate, mp): the short axes are reduced
        across whole planes, and gathers use flat indices (both several times faster)."""
        M, P, W = self.shape
        k = word_counts.shape[0]
        MP, nblk, b = M * P, self.nblk, self.b
        width = nblk * b
        cum = (word_counts.astype(np.float32) @ self.U).reshape(k, nblk, MP)  # exact: small integers
        n = cum[:, -1, :].astype(np.int64)  # (k, MP)
        counts = np.concatenate([word_counts, np.zeros((k, 1), word_counts.dtype)], axis=1).astype(np.int32).ravel()
        rep_off = (np.arange(k) * (W + 1))[:, None]
        mp_off = (np.arange(MP) * width)[None, :]

        def crossing(target, sel=None):
            """Sorted position of the target-th drawn word (0-based) per (rep, mp) [or at the
            (rep, mp) pairs `sel`], and the cumulative counts in its block."""
            cm = cum if sel is None else cum[sel[0], :, sel[1]][:, :, None]  # (k or pairs, nblk, mp or 1)
            t = target if sel is None else target[sel][:, None]
            blk = np.minimum((cm <= t[:, None, :]).sum(1), nblk - 1)
            prev = np.maximum(blk - 1, 0)
            base = np.where(blk > 0, np.take_along_axis(cm, prev[:, None, :], 1)[:, 0, :], 0)
            ro, mo = (rep_off, mp_off) if sel is None else (rep_off[sel[0]], mp_off[0, sel[1]][:, None])
            start = blk * b
            cs = np.empty((b,) + blk.shape, np.int64)
            run = base.astype(np.int64)
            for j in range(b):  # b short steps over whole planes: faster than a cumsum on a short axis
                run = run + np.take(counts, np.take(self.order_flat, mo + start + j) + ro)
                cs[j] = run
            return blk, cs, start + (cs <= t[None]).sum(0)

        lower, upper = (n - 1) // 2, n // 2  # the two middle positions (equal when n is odd)
        blk1, cs, i1 = crossing(lower)
        i2 = i1
        if not np.all(n % 2 == 1):
            blk2 = np.minimum((cum <= upper[:, None, :]).sum(1), nblk - 1)
            i2 = blk1 * b + (cs <= upper[None]).sum(0)  # right wherever both share a block
            other = np.nonzero(blk2 != blk1)
            if len(other[0]):
                i2[other] = crossing(upper, other)[2][:, 0]
        last = width - 1
        med = 0.5 * (np.take(self.vals_flat, mp_off + np.minimum(i1, last))
                     + np.take(self.vals_flat, mp_off + np.minimum(i2, last)))
        return np.where(n > 0, med, np.nan).reshape(k, M, P)


def model_means(med: np.ndarray, prompt_counts: np.ndarray) -> np.ndarray:
    """Per (replicate, model): the prompt-weighted mean of its median ranks (prompts it lacks skipped)."""
    w = prompt_counts[:, None, :] * ~np.isnan(med)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(np.nan_to_num(med) * w, axis=-1) / w.sum(-1)


def _draws(rng: np.random.Generator, reps: int, n: int) -> np.ndarray:
    """Counts of each of n units in `reps` resamples of size n with replacement."""
    idx = rng.integers(0, n, size=(reps, n)) + (np.arange(reps) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=reps * n).reshape(reps, n)


def model_means_under(panel: dict, word_counts: np.ndarray, prompt_counts: np.ndarray,
                      sorted_panel: SortedPanel | None = None) -> np.ndarray:
    """Each model's mean median rank [reps, M] for given word and prompt draws (counts)."""
    sp = sorted_panel or SortedPanel(panel["R"])
    M, P, W = panel["R"].shape
    out = np.empty((len(word_counts), M))
    chunk = max(1, _CHUNK_CELLS // max(M * P * sp.nblk, 1))
    for s in range(0, len(word_counts), chunk):
        wc = word_counts[s:s + chunk]
        out[s:s + len(wc)] = model_means(sp.medians(wc), prompt_counts[s:s + len(wc)])
    return out


def bootstrap_model_means(panel: dict, reps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(observed model means [M], bootstrap model means [reps, M]) with prompts and words
    resampled independently with replacement (models fixed)."""
    M, P, W = panel["R"].shape
    sp = SortedPanel(panel["R"])
    obs = model_means_under(panel, np.ones((1, W), np.int64), np.ones((1, P)), sp)[0]
    wc, pc = _draws(rng, reps, W), _draws(rng, reps, P)
    return obs, model_means_under(panel, wc, pc, sp)


def model_draws(rng: np.random.Generator, reps: int, family: np.ndarray) -> np.ndarray:
    """Counts [reps, M]: each family's models resampled with replacement within the family.
    The family gaps used to take their interval from these draws; with 4 and 6 models that
    interval is too narrow (module docstring), so they no longer do. Kept for
    bench/gap_coverage.py, which measures that rule beside the one that replaced it."""
    out = np.zeros((reps, len(family)), np.int64)
    for f in pd.unique(family):
        idx = np.flatnonzero(family == f)
        out[:, idx] = _draws(rng, reps, len(idx))
    return out


def family_mean(mm: np.ndarray, family: np.ndarray, fam: str, model_counts: np.ndarray | None = None) -> np.ndarray:
    """Mean over the family's models (each drawn model weighs the same; models lacking the
    panel skipped), along the last axis."""
    sel = family == fam
    x = mm[..., sel]
    w = (np.ones_like(x) if model_counts is None else np.broadcast_to(model_counts[..., sel], x.shape)) * np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(np.nan_to_num(x) * w, axis=-1) / np.sum(w, axis=-1)


# ----------------------------------------------------------------------------------
# Percentile intervals and the p-value that always agrees with them
# ----------------------------------------------------------------------------------
def percentile_ci(x: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of bootstrap draws (NaN draws dropped); (nan, nan) when none."""
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(x, [a, 1 - a])
    return float(lo), float(hi)


def bootstrap_p(boot: np.ndarray) -> float:
    """Two-sided p of 'no difference': the smallest alpha whose percentile interval
    [Q(alpha/2), Q(1 - alpha/2)] excludes zero, Q the quantile rule of the interval itself
    (numpy's default = R's type 7). So the (1 - alpha) interval holds zero exactly when
    p >= alpha. 0 when every draw is on one side (report it as p < 1/draws)."""
    x = np.sort(boot[np.isfinite(boot)])
    B = len(x)
    if B == 0:
        return float("nan")
    if B == 1:
        return 0.0 if x[0] != 0 else 1.0
    # a_L = sup{a: Q(a) <= 0}; the lower end excludes 0 iff alpha/2 > a_L.
    k = np.searchsorted(x, 0, side="right") - 1  # last index with x <= 0
    if k < 0:
        a_lo = 0.0
    elif k == B - 1:
        a_lo = 1.0
    else:
        a_lo = (k + (-x[k]) / (x[k + 1] - x[k])) / (B - 1)
    # a_U = inf{a: Q(a) >= 0}; the upper end excludes 0 iff 1 - alpha/2 < a_U.
    j = np.searchsorted(x, 0, side="left")  # first index with x >= 0
    if j >= B:
        up = 0.0  # no draw >= 0: the upper end always excludes zero
    else:
        a_hi = 0.0 if j == 0 else ((j - 1) + (-x[j - 1]) / (x[j] - x[j - 1])) / (B - 1)
        up = 2 * (1 - a_hi)
    return float(min(1.0, 2 * a_lo, up))


def ci_digits(mc_se: float) -> int:
    """Decimals the draws support: the last printed digit's unit is at least 2 Monte Carlo SE
    (0, 1 or 2)."""
    if not np.isfinite(mc_se):
        return 0
    for d in (2, 1):
        if 10.0 ** -d >= 2 * mc_se:
            return d
    return 0


# ----------------------------------------------------------------------------------
# One set of draws per panel, shared by the family gaps and the rank intervals
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resamples:
    """Per (framing, category) panel: the panel array, each model's observed mean median rank,
    and its means under `reps` draws of prompts and words [reps, M] (models fixed: the models'
    part of a family gap's uncertainty comes from their spread, `gap_t_test`); `families` in
    R's order (the first is the reference)."""
    panels: dict
    families: tuple
    reps: int
    seed: int


def resample(ranks: pd.DataFrame, words: pd.DataFrame, reps: int = REPS, seed: int = 0) -> Resamples:
    """Draw prompts (within the panel's framing) and words (within the category),
    independently and with replacement, `reps` times per panel; numpy Generator seeded with
    (seed, panel index), so a rerun gives the same numbers."""
    d = prepare(ranks, words)
    fams = tuple(sorted(d["family"].unique(), key=lambda f: (f.casefold(), f)))
    out = {}
    with one_blas_thread():
        for i, (fr, cat, panel) in enumerate(panels(d)):
            rng = np.random.default_rng([seed, i])
            obs, boot = bootstrap_model_means(panel, reps, rng)
            out[(fr, cat)] = {"panel": panel, "obs": obs, "boot": boot}
    return Resamples(out, fams, reps, seed)


# ----------------------------------------------------------------------------------
# Family gaps
# ----------------------------------------------------------------------------------
GAP_COLUMNS = ["framing", "category", "family_a", "family_b", "mean_a", "mean_b", "gap", "ci_low", "ci_high",
               "p", "p_adjusted", "correction", "se", "df", "se_models", "se_prompts_words", "ci_mc_se", "digits",
               "n_prompts_same_sign", "n_prompts", "n_words", "n_models_a", "n_models_b", "reps", "seed", "level"]


def family_gaps(ranks: pd.DataFrame | None = None, words: pd.DataFrame | None = None, reps: int = REPS,
                seed: int = 0, level: float = 0.95, correction: str = "holm",
                resamples: Resamples | None = None) -> pd.DataFrame:
    """Per (framing, category) panel and per family against the reference family (the first
    in R's order, e.g. Gemma; one row per other family, as the paper's family tests): mean
    rank of each family (the paper's family means) and the gap (family − reference, e.g.
    Llama − Gemma; negative = the family ranks the category's words higher) with its
    `gap_t_test` interval (the models' spread within each family plus a bootstrap of prompts
    and words; t with Welch–Satterthwaite df); `p` the same test's unadjusted two-sided p,
    `p_adjusted` corrected over all the rows (`correction`), and on how many prompts the
    per-prompt gap has the same sign. A family of one model has no spread to read: its gaps
    have no interval and no p (NaN). Pass `resamples` (from `resample`) to reuse draws."""
    rs = resamples or resample(ranks, words, reps, seed)
    if len(rs.families) < 2:
        return pd.DataFrame(columns=GAP_COLUMNS)
    rows = []
    for (fr, cat), x in rs.panels.items():
        for fa, fb in ((rs.families[0], f) for f in rs.families[1:]):
            rows.append(_gap_row(fr, cat, x, fa, fb, rs, level))
    out = pd.DataFrame(rows, columns=GAP_COLUMNS)
    if out.empty:
        return out
    out["p_adjusted"] = adjust_p(out["p"].to_numpy(float), correction)
    out["correction"] = METHODS[correction]
    order = {"positive": 0, "negative": 1}
    rank_of = {f: i for i, f in enumerate(rs.families)}
    return out.sort_values(["framing", "category", "family_b"],
                           key=lambda s: s.map(order).fillna(2) if s.name == "framing"
                           else s.map(rank_of) if s.name == "family_b" else s).reset_index(drop=True)


def _gap_row(fr: str, cat: str, x: dict, fa: str, fb: str, rs: Resamples, level: float) -> dict:
    """One family gap (fb − fa) of one panel, from the panel's draws."""
    panel, obs, boot = x["panel"], x["obs"], x["boot"]
    fam = panel["family"]
    boot_gap = family_mean(boot, fam, fb) - family_mean(boot, fam, fa)  # models fixed: prompts and words
    test = gap_t_test(obs[fam == fa], obs[fam == fb], boot_gap, prompt_word_df(panel), level)
    per_prompt = _per_prompt_gap(panel, fa, fb)
    gap = test["gap"]
    same = int(np.sum(np.sign(per_prompt) == np.sign(gap))) if gap != 0 else 0
    return {"framing": fr, "category": cat, "family_a": fa, "family_b": fb, **test,
            "digits": ci_digits(test["ci_mc_se"]), "n_prompts_same_sign": same,
            "n_prompts": int(np.isfinite(per_prompt).sum()), "n_words": len(panel["words"]),
            "reps": rs.reps, "seed": rs.seed, "level": level}


def prompt_word_df(panel: dict) -> int:
    """Degrees of freedom of the prompts-and-words part of a gap's variance: one fewer than
    the scarcer of the two (a bootstrap variance from P prompts is itself uncertain as a
    variance from P units is), at least 1."""
    return max(1, min(len(panel["prompts"]), len(panel["words"])) - 1)


def gap_t_test(values_a: np.ndarray, values_b: np.ndarray, prompt_word_draws: np.ndarray, prompt_word_df: float,
               level: float = 0.95) -> dict:
    """The family gap mean(values_b) − mean(values_a) (each model's own value, e.g. its mean
    median rank; NaN = the model lacks the panel) with a t interval and p whose variance adds
    the two parts of its uncertainty:

        se² = s_a²/n_a + s_b²/n_b  (which models: the spread within each family)
              + v_pw               (which prompts and words: the variance of the gap over
                                    bootstrap draws of prompts and words, models fixed)
        df  = se⁴ / ((s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1) + v_pw²/prompt_word_df)

    (Welch–Satterthwaite: with no prompt-and-word part it is Welch's t test of the models'
    values.) Interval gap ± t_df(1 − α/2)·se, p = 2·P(t_df > |gap|/se): the interval holds zero
    exactly when p ≥ 1 − level. A family of fewer than two models has no spread to read: NaN
    interval, p and df. `ci_mc_se`: the Monte Carlo error the bootstrap's finite draws put on
    the interval's ends."""
    from scipy import stats as _stats
    a = np.asarray(values_a, float)
    b = np.asarray(values_b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    na, nb = len(a), len(b)
    gap = float(b.mean() - a.mean()) if na and nb else float("nan")
    nan = float("nan")
    out = {"mean_a": float(a.mean()) if na else nan, "mean_b": float(b.mean()) if nb else nan, "gap": gap,
           "ci_low": nan, "ci_high": nan, "p": nan, "se": nan, "df": nan, "se_models": nan,
           "se_prompts_words": nan, "ci_mc_se": nan, "n_models_a": na, "n_models_b": nb}
    draws = np.asarray(prompt_word_draws, float)
    draws = draws[np.isfinite(draws)]
    if na < 2 or nb < 2 or len(draws) < 2 or not np.isfinite(gap):
        return out
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    vpw = float(draws.var(ddof=1))
    var = va + vb + vpw
    se = math.sqrt(var)
    out.update(se=se, se_models=math.sqrt(va + vb), se_prompts_words=math.sqrt(vpw))
    if var == 0:  # every model and every draw the same: no uncertainty to read
        out.update(ci_low=gap, ci_high=gap, p=1.0 if gap == 0 else 0.0, df=float("inf"), ci_mc_se=0.0)
        return out
    df = var ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1) + vpw ** 2 / prompt_word_df)
    q = float(_stats.t.ppf(0.5 + level / 2, df))
    m4 = float(np.mean((draws - draws.mean()) ** 4))
    mc_var = math.sqrt(max(m4 - vpw ** 2, 0.0) / len(draws))  # Monte Carlo SE of v_pw
    out.update(ci_low=gap - q * se, ci_high=gap + q * se, p=float(2 * _stats.t.sf(abs(gap) / se, df)),
               df=float(df), ci_mc_se=q * mc_var / (2 * se))
    return out


def _per_prompt_gap(panel: dict, fa: str, fb: str) -> np.ndarray:
    """A model not scored on a prompt (coverage included on purpose) is NaN there, not a warning."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(panel["R"], axis=-1) if panel["R"].size else np.zeros((0, 0))  # (M, P)
    fam = panel["family"]
    with np.errstate(invalid="ignore"):
        return np.nanmean(med[fam == fb], axis=0) - np.nanmean(med[fam == fa], axis=0)


# ----------------------------------------------------------------------------------
# Rank intervals and groups
# ----------------------------------------------------------------------------------
RANK_COLUMNS = ["position", "model", "family", "mean_rank", "position_low", "position_high", "group"]


def rank_intervals(ranks: pd.DataFrame | None, words: pd.DataFrame | None, framing: str, category: str,
                   reps: int = REPS, seed: int = 0, level: float = 0.95, correction: str = "holm",
                   resamples: Resamples | None = None) -> pd.DataFrame:
    """Models ordered by mean median rank of the category on this framing (position 1 = the
    lowest mean rank: on positive prompts the model that prefers the category most, on negative
    prompts the one that names it most readily as the worst), each with a bootstrap interval of
    its position (prompts and words resampled: these models, not models like them), and groups
    of models that cannot be told apart: every pair compared at once (bootstrap p of their
    difference, `correction` over all pairs); models sharing a letter differ in no pair."""
    rs = resamples or resample(ranks, words, reps, seed)
    x = rs.panels.get((framing, category))
    if x is None:
        return pd.DataFrame(columns=RANK_COLUMNS)
    panel, obs, boot = x["panel"], x["obs"], x["boot"]
    pos_boot = np.argsort(np.argsort(np.nan_to_num(boot, nan=np.inf), axis=1, kind="stable"), axis=1) + 1
    a = (1 - level) / 2
    order = np.argsort(obs, kind="stable")
    M = len(order)
    pairs = [(i, j) for i in range(M) for j in range(i + 1, M)]
    p = np.array([bootstrap_p(boot[:, order[j]] - boot[:, order[i]]) for i, j in pairs])
    differ = np.zeros((M, M), bool)
    for (i, j), pa in zip(pairs, adjust_p(p, correction) if len(p) else []):
        differ[i, j] = differ[j, i] = pa < 1 - level
    letters = group_letters(differ)
    rows = [{"position": j + 1, "model": panel["models"][m], "family": panel["family"][m],
             "mean_rank": float(obs[m]), "position_low": int(np.floor(np.quantile(pos_boot[:, m], a))),
             "position_high": int(np.ceil(np.quantile(pos_boot[:, m], 1 - a))), "group": letters[j]}
            for j, m in enumerate(order)]
    out = pd.DataFrame(rows, columns=RANK_COLUMNS)
    out.attrs.update({"n_pairs": len(pairs), "n_pairs_differ": int(differ.sum() // 2),
                      "correction": METHODS[correction], "reps": rs.reps, "seed": rs.seed, "level": level})
    return out


def rank_table(ri: pd.DataFrame) -> pd.DataFrame:
    """rank_intervals as a reader's table: position, model, family, mean rank (1 decimal), the
    95% range of positions ('1–5') and the group letters."""
    if ri.empty:
        return pd.DataFrame(columns=["position", "model", "family", "mean rank", "positions (95%)", "group"])
    return pd.DataFrame({"position": ri["position"], "model": ri["model"], "family": ri["family"],
                         "mean rank": ri["mean_rank"].round(1),
                         "positions (95%)": [f"{a}–{b}" for a, b in zip(ri["position_low"], ri["position_high"])],
                         "group": ri["group"]})


def group_letters(differ: np.ndarray) -> list[str]:
    """Letters for models in their order: each maximal run of consecutive models in which no
    pair differs gets a letter (the 'underline' display); a model may carry two letters."""
    M = len(differ)
    runs, end_prev = [], -1
    for i in range(M):
        e = i
        while e + 1 < M and not differ[i:e + 2, i:e + 2].any():
            e += 1
        if e > end_prev:
            runs.append((i, e))
            end_prev = e
    names = list(string.ascii_lowercase) + [f"{x}{y}" for x in string.ascii_lowercase for y in string.ascii_lowercase]
    out = [""] * M
    for k, (i, e) in enumerate(runs):
        for m in range(i, e + 1):
            out[m] += names[k] if len(names[k]) == 1 or not out[m] else "," + names[k]
    return out


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
def number(x: float, digits: int) -> str:
    """A bootstrap number with only the decimals its draws support."""
    return f"{x:.{digits}f}"


def adjusted_p_text(p: float, correction: str) -> str:
    """'Holm-adjusted p = 0.72'; at the cap: 'Holm-adjusted p = 1 (a corrected value, capped at 1)'."""
    from .wording import p_text
    if p is not None and np.isfinite(p) and p >= 0.9995:
        return f"{correction}-adjusted p = 1 (a corrected value, capped at 1)"
    return f"{correction}-adjusted {p_text(p)}"


def _places(framing: str) -> str:
    """What a higher place means on this framing, as Figure 1 says it."""
    return "named more readily as the worst" if framing == "negative" else "preferred"


GAP_RULE = ("a t test that adds how much the models of each family differ among themselves, read with "
            "Welch–Satterthwaite degrees of freedom as so few models call for, to how much other prompts and words "
            "would move the gap, from a bootstrap")  # the sentences append " of N draws"
GAP_RULE_SHORT = "t test of the models' spread plus a bootstrap of prompts and words"  # once GAP_RULE is said


def finding_sentence(r: dict) -> str:
    """'On positive prompts, the 6 Llama-based reward models rank Agency words 4.2 places
    higher on average than the 4 Gemma-based ones (95% interval ...; p = ...).'"""
    gap, lo, hi = r["gap"], r["ci_low"], r["ci_high"]
    fa, fb = r["family_a"], r["family_b"]
    na, nb = r.get("n_models_a"), r.get("n_models_b")
    d = int(r.get("digits", 1)) if r.get("digits") is not None and np.isfinite(r.get("digits")) else 0
    pct = f"{r.get('level', 0.95) * 100:.0f}%"
    if gap is None or not np.isfinite(gap):
        return f"On {r['framing']} prompts, {r['category']}: not enough data to compare {fb} and {fa}."
    # gap = mean rank of fb - mean rank of fa; a lower rank number is a higher place.
    higher, lower = (fb, fa) if gap < 0 else (fa, fb)
    n = {fa: na, fb: nb}
    what = (f"On {r['framing']} prompts, the {n[higher]} {higher}-based reward model{'s' if n[higher] != 1 else ''} "
            f"rank{'s' if n[higher] == 1 else ''} {r['category']} words {abs(gap):.1f} places higher "
            f"({_places(r['framing'])}) on average than the {n[lower]} {lower}-based one{'s' if n[lower] != 1 else ''}")
    if lo is None or not np.isfinite(lo):  # a family of one model: no spread to read
        one = fa if (na or 0) < 2 else fb
        return (f"{what}. With one {one}-based model, how much {one}-based models differ among themselves cannot be "
                "seen, so this gap has no interval and no test: it is about these models, not their family.")

    def side(v: float) -> str:
        return f"{number(abs(v), d)} places higher for {fb if v < 0 else fa}"

    holds = lo <= 0 <= hi
    ci = (f"{pct} interval from {side(lo)} to {side(hi)}" if np.sign(lo) != np.sign(hi)
          else f"{pct} interval {number(min(abs(lo), abs(hi)), d)} to {number(max(abs(lo), abs(hi)), d)} places")
    verdict = "it includes zero, so chance could explain the gap" if holds else "it excludes zero"
    reps = int(r.get("reps", 0))
    from .wording import p_text
    adj = f"; {adjusted_p_text(r['p_adjusted'], r['correction'])} over the panels" if "p_adjusted" in r else ""
    df = r.get("df")
    dft = f", {df:.0f} df" if df is not None and np.isfinite(df) else ""
    return (f"{what} ({ci}: {verdict}; {p_text(r['p'])}{adj}; {GAP_RULE_SHORT}, {reps:,} draws{dft}). "
            f"The gap points the same way on {r['n_prompts_same_sign']} of {r['n_prompts']} prompts.")
