"""Uncertainty beside the paper: bootstrap coverage, point estimates, multiplicity (the crossed mixed model: test_crossed.py)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from core import paired, uncertainty


def _long(y: np.ndarray, fam: np.ndarray, framing: str = "positive") -> pd.DataFrame:
    """(model, prompt, word) array -> the word-rank table the app works on."""
    m, p, w = np.meshgrid(*[np.arange(k) for k in y.shape], indexing="ij")
    return pd.DataFrame({"model": [f"m{i}" for i in m.ravel()], "family": fam[m.ravel()],
                         "prompt_id": [f"p{i:02d}" for i in p.ravel()], "framing": framing,
                         "response": [f"w{i:02d}" for i in w.ravel()], "rank": y.ravel()})


def test_bootstrap_interval_covers_known_gap_at_nominal_rate():
    """300 simulated data sets with a known family gap of 3 ranks (family x prompt and family x
    word effects, symmetric so the median's population gap is the mean's): the 95% two-way
    bootstrap interval must cover 3 in 95% of them, within 3 binomial standard errors.
    Vectorised: the replicates are stacked as models of one panel (one model per family)."""
    n, P, W, reps, delta = 300, 27, 25, 300, 3.0
    rng = np.random.default_rng(20260101)
    g = rng.normal(0, 2.0, (n, 2, P))  # family x prompt
    h = rng.normal(0, 2.0, (n, 2, W))  # family x word
    e = rng.normal(0, 1.0, (n, 2, P, W))
    y = 50 + delta * np.array([0, 1])[None, :, None, None] + g[..., None] + h[:, :, None, :] + e
    _, boot = uncertainty.bootstrap_model_means({"R": y.reshape(n * 2, P, W)}, reps, rng)
    b = boot.reshape(reps, n, 2)
    gap = b[..., 1] - b[..., 0]
    lo, hi = np.quantile(gap, [0.025, 0.975], axis=0)
    rate = np.mean((lo <= delta) & (delta <= hi))
    se = math.sqrt(0.95 * 0.05 / n)
    assert abs(rate - 0.95) <= 3 * se, rate


def test_family_gaps_point_estimate_and_reproducibility():
    rng = np.random.default_rng(1)
    fam = np.array(["gemma", "gemma", "llama", "llama", "llama"])
    y = rng.normal(size=(5, 6, 9)).argsort(-1).argsort(-1) + 1.0  # ranks 1..9 per (model, prompt)
    ranks = _long(y, fam)
    words = pd.DataFrame({"word": [f"w{i:02d}" for i in range(9)], "category": ["A"] * 5 + ["B"] * 4})
    out = uncertainty.family_gaps(ranks, words, reps=300, seed=4)
    again = uncertainty.family_gaps(ranks, words, reps=300, seed=4)
    pd.testing.assert_frame_equal(out, again)
    # Independent: median per (model, prompt, category), mean per model, mean per family.
    d = ranks.merge(words, left_on="response", right_on="word")
    med = d.groupby(["model", "family", "prompt_id", "category"])["rank"].median().reset_index()
    fm = med.groupby(["category", "family", "model"])["rank"].mean().groupby(["category", "family"]).mean()
    for r in out.itertuples():
        assert r.family_a == "Gemma" and r.family_b == "Llama"
        assert r.gap == pytest.approx(fm[(r.category, "llama")] - fm[(r.category, "gemma")], abs=1e-12)
        assert r.ci_low <= r.gap <= r.ci_high
        assert (r.p_boot < 0.05) == (not r.ci_low <= 0 <= r.ci_high)  # p and interval agree
        per_prompt = med[med["category"] == r.category].groupby(["prompt_id", "family"])["rank"].mean().unstack()
        assert r.n_prompts_same_sign == int((np.sign(per_prompt["llama"] - per_prompt["gemma"]) == np.sign(r.gap)).sum())
    assert "places higher" in uncertainty.finding_sentence(out.iloc[0].to_dict())


def test_rank_intervals_separate_clear_winner_and_tie_the_rest():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(4, 10, 30))
    base[0, :, :15] += 3.0  # model m0 strongly prefers category A (words 0-14)
    y = (-base).argsort(-1).argsort(-1) + 1.0
    ranks = _long(y, np.array(["gemma", "gemma", "llama", "llama"]))
    words = pd.DataFrame({"word": [f"w{i:02d}" for i in range(30)], "category": ["A"] * 15 + ["B"] * 15})
    ri = uncertainty.rank_intervals(ranks, words, "positive", "A", reps=300, seed=0)
    assert ri.iloc[0]["model"] == "m0" and ri.iloc[0]["position_low"] == ri.iloc[0]["position_high"] == 1
    assert ri.iloc[0]["tie_group"] == 1 and (ri.iloc[1:]["tie_group"] == 2).all()


@pytest.mark.parametrize("method,sm", [("bonferroni", "bonferroni"), ("holm", "holm"), ("bh", "fdr_bh")])
def test_multiplicity_equals_statsmodels(method, sm):
    p = np.random.default_rng(3).uniform(0, 0.2, 17)
    p[[2, 5]] = p[7]  # ties
    assert np.allclose(uncertainty.adjust_p(p, method), multipletests(p, method=sm)[1], atol=1e-15)
    with_nan = np.append(p, np.nan)
    got = uncertainty.adjust_p(with_nan, method)
    assert np.isnan(got[-1]) and np.allclose(got[:-1], multipletests(p, method=sm)[1])
    tests = pd.DataFrame({"category": ["A"] * len(p), "welch_p": p})
    star = uncertainty.corrected_tests(tests, method)["stars"]
    assert all(s.endswith(uncertainty.METHODS[method]) for s in star)


def test_paired_difference_and_test_match_independent_computation():
    from scipy import stats
    rng = np.random.default_rng(6)
    y = rng.normal(size=(2, 8, 12)).argsort(-1).argsort(-1) + 1.0
    ranks = _long(y, np.array(["gemma", "llama"]))
    words = pd.DataFrame({"word": [f"w{i:02d}" for i in range(12)], "category": ["A"] * 6 + ["B"] * 6})
    out = paired.paired_summary(ranks, words, "m0", "m1", reps=200, seed=0)
    r = out[out["category"] == "A"].iloc[0]
    a, b = y[0][:, :6], y[1][:, :6]
    assert r["mean_difference"] == pytest.approx((a - b).mean())
    per_prompt = (a - b).mean(axis=1)
    assert r["p_prompts_only"] == pytest.approx(stats.ttest_1samp(per_prompt, 0).pvalue)
    assert (r["p_value"] < 0.05) == (not r["ci_low"] <= 0 <= r["ci_high"])  # p and interval agree
    assert r["ci_low"] <= r["mean_difference"] <= r["ci_high"]
    top = paired.word_differences(ranks, words, "m0", "m1", "positive", "A")
    diffs = (a - b).mean(axis=0)
    assert top.iloc[0]["difference"] == pytest.approx(diffs[np.argmax(np.abs(diffs))])


def test_weighted_medians_equal_medians_of_the_resampled_words():
    """The vectorised statistic under resampling equals np.median of the words actually drawn."""
    rng = np.random.default_rng(8)
    R = rng.normal(size=(3, 4, 9)).round(1)  # rounding makes ties
    R[1, 2, [0, 4]] = np.nan  # words a model was not scored on
    counts = np.stack([np.bincount(rng.integers(0, 9, 9), minlength=9) for _ in range(25)])
    got = uncertainty.weighted_medians(uncertainty._sorted_panel(R), counts)
    for r in range(25):
        for m in range(3):
            for p in range(4):
                drawn = np.repeat(R[m, p], counts[r])
                drawn = drawn[~np.isnan(drawn)]
                want = np.median(drawn) if len(drawn) else np.nan
                assert np.isclose(got[r, m, p], want, equal_nan=True), (r, m, p)
