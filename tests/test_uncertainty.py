"""Uncertainty beside the paper: bootstrap coverage, point estimates, multiplicity (the crossed mixed model: test_crossed.py)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from core import uncertainty

REFERENCE = Path(__file__).parent / "reference"


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
    _, boot = uncertainty.bootstrap_model_means({"R": y.reshape(n * 2, P, W)}, reps, rng)  # models fixed here
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
        assert (r.p < 0.05) == (not r.ci_low <= 0 <= r.ci_high)  # p and interval agree
        assert r.n_models_a == 2 and r.n_models_b == 3 and r.correction == "Holm"
        per_prompt = med[med["category"] == r.category].groupby(["prompt_id", "family"])["rank"].mean().unstack()
        assert r.n_prompts_same_sign == int((np.sign(per_prompt["llama"] - per_prompt["gemma"]) == np.sign(r.gap)).sum())
    assert list(out["p_adjusted"]) == pytest.approx(list(multipletests(out["p"], method="holm")[1]))
    sentence = uncertainty.finding_sentence(out.iloc[0].to_dict())
    assert "places higher" in sentence and ("the 2 Gemma-based" in sentence or "the 3 Llama-based" in sentence)


def test_family_gaps_compare_every_family_with_the_reference():
    """A third family (a user's Qwen-based RM beside the paper's) is compared with the
    reference family like the paper's tests compare it, not dropped: one row per panel and
    family, Holm over every row."""
    rng = np.random.default_rng(6)
    fam = np.array(["gemma", "gemma", "llama", "llama", "llama", "qwen", "qwen"])
    y = rng.normal(size=(7, 6, 9)).argsort(-1).argsort(-1) + 1.0
    ranks = _long(y, fam)
    words = pd.DataFrame({"word": [f"w{i:02d}" for i in range(9)], "category": ["A"] * 5 + ["B"] * 4})
    out = uncertainty.family_gaps(ranks, words, reps=200, seed=1)
    assert list(zip(out["category"], out["family_a"], out["family_b"])) == [
        ("A", "Gemma", "Llama"), ("A", "Gemma", "Qwen"), ("B", "Gemma", "Llama"), ("B", "Gemma", "Qwen")]
    d = ranks.merge(words, left_on="response", right_on="word")
    med = d.groupby(["model", "family", "prompt_id", "category"])["rank"].median().reset_index()
    fm = med.groupby(["category", "family", "model"])["rank"].mean().groupby(["category", "family"]).mean()
    for r in out.itertuples():
        assert r.gap == pytest.approx(fm[(r.category, r.family_b.lower())] - fm[(r.category, "gemma")], abs=1e-12)
        assert r.n_models_b == {"Llama": 3, "Qwen": 2}[r.family_b] and r.n_models_a == 2
        assert (r.p < 0.05) == (not r.ci_low <= 0 <= r.ci_high)
    assert list(out["p_adjusted"]) == pytest.approx(list(multipletests(out["p"], method="holm")[1]))


def test_rank_intervals_separate_clear_winner_and_tie_the_rest():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(4, 10, 30))
    base[0, :, :15] += 3.0  # model m0 strongly prefers category A (words 0-14)
    y = (-base).argsort(-1).argsort(-1) + 1.0
    ranks = _long(y, np.array(["gemma", "gemma", "llama", "llama"]))
    words = pd.DataFrame({"word": [f"w{i:02d}" for i in range(30)], "category": ["A"] * 15 + ["B"] * 15})
    ri = uncertainty.rank_intervals(ranks, words, "positive", "A", reps=300, seed=0)
    assert ri.iloc[0]["model"] == "m0" and ri.iloc[0]["position_low"] == ri.iloc[0]["position_high"] == 1
    assert ri.iloc[0]["group"] == "a" and (ri.iloc[1:]["group"] == "b").all()
    assert ri.attrs["n_pairs"] == 6 and ri.attrs["correction"] == "Holm"


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


def test_sorted_panel_medians_equal_medians_of_the_resampled_words():
    """The vectorised statistic under resampling equals np.median of the words actually drawn."""
    rng = np.random.default_rng(8)
    for W in (9, 10, 40):  # odd and even counts; blocks of 4 and 6 positions
        _check_sorted_panel_medians(rng, W)


def _check_sorted_panel_medians(rng, W):
    R = rng.normal(size=(3, 4, W)).round(1)  # rounding makes ties
    R[1, 2, [0, 4]] = np.nan  # words a model was not scored on
    R[2, 3, :] = np.nan  # a (model, prompt) with no word at all
    counts = np.stack([np.bincount(rng.integers(0, W, W), minlength=W) for _ in range(60)])
    got = uncertainty.SortedPanel(R).medians(counts)
    for r in range(60):
        for m in range(3):
            for p in range(4):
                drawn = np.repeat(R[m, p], counts[r])
                drawn = drawn[~np.isnan(drawn)]
                want = np.median(drawn) if len(drawn) else np.nan
                assert np.isclose(got[r, m, p], want, equal_nan=True), (r, m, p)


def test_stricter_bootstrap_equals_a_literal_recomputation_in_r():
    """The same 400 draws of models within family, prompts and words (committed), fed to core's
    vectorised statistic and to tests/reference/bootstrap_logic.R, which repeats the drawn rows
    and takes medians and means literally; the interval and the p (R: bisection over alpha)."""
    rows = pd.read_csv(REFERENCE / "bootstrap_sim.csv")
    draws = pd.read_csv(REFERENCE / "bootstrap_sim_draws.csv")
    ref = json.loads((REFERENCE / "bootstrap_sim.json").read_text())
    corpus = rows[["response", "category"]].drop_duplicates().rename(columns={"response": "word"})
    (_, _, panel), = list(uncertainty.panels(uncertainty.prepare(rows, corpus)))
    reps = sorted(draws["rep"].unique())

    def counts(kind, labels):
        t = draws[draws["kind"] == kind].pivot_table(index="rep", columns="unit", values="count", fill_value=0)
        return t.reindex(index=reps, columns=labels, fill_value=0).to_numpy()

    mm = uncertainty.model_means_under(panel, counts("word", panel["words"]), counts("prompt", panel["prompts"]))
    mc, fam = counts("model", panel["models"]), panel["family"]
    gaps = uncertainty.family_mean(mm, fam, "Llama", mc) - uncertainty.family_mean(mm, fam, "Gemma", mc)
    assert np.allclose(gaps, ref["gaps"], rtol=0, atol=1e-9)
    assert uncertainty.percentile_ci(gaps, 0.95) == pytest.approx((ref["ci_low"], ref["ci_high"]), abs=1e-9)
    assert uncertainty.bootstrap_p(gaps) == pytest.approx(ref["p"], abs=1e-9)
    observed = uncertainty.family_gaps(rows, corpus, reps=50).iloc[0]
    assert observed["gap"] == pytest.approx(ref["observed"], abs=1e-9)


def test_bootstrap_p_is_the_smallest_alpha_whose_interval_excludes_zero():
    rng = np.random.default_rng(12)
    for _ in range(300):
        b = rng.normal(rng.uniform(-3, 3), 1, int(rng.integers(20, 500)))
        if rng.random() < 0.2:
            b = np.round(b)  # ties, and draws exactly at zero
        p = uncertainty.bootstrap_p(b)

        def excludes(alpha):
            lo, hi = np.quantile(b, [alpha / 2, 1 - alpha / 2])
            return lo > 0 or hi < 0
        if not excludes(1.0):
            assert p == 1.0
        elif excludes(0.0):
            assert p == 0.0
        else:  # bisection, independent of the closed form
            lo, hi = 0.0, 1.0
            for _ in range(60):
                mid = (lo + hi) / 2
                lo, hi = (lo, mid) if excludes(mid) else (mid, hi)
            assert p == pytest.approx(hi, abs=1e-9)
        for level in (0.9, 0.95, 0.99):
            ci_lo, ci_hi = uncertainty.percentile_ci(b, level)
            assert (ci_lo <= 0 <= ci_hi) == (p >= 1 - level)


def test_models_are_resampled_within_their_family():
    fam = np.array(["Gemma"] * 4 + ["Llama"] * 6)
    c = uncertainty.model_draws(np.random.default_rng(0), 2000, fam)
    assert (c[:, :4].sum(1) == 4).all() and (c[:, 4:].sum(1) == 6).all()
    assert (c[:, :4].max(1) > 1).mean() > 0.8  # with replacement


def test_groups_come_from_all_pairs_at_once():
    differ = np.zeros((4, 4), bool)
    differ[0, 3] = differ[3, 0] = True  # only the first and the last differ
    assert uncertainty.group_letters(differ) == ["a", "ab", "ab", "b"]
    assert uncertainty.group_letters(np.zeros((3, 3), bool)) == ["a", "a", "a"]


def test_p_texts_never_print_a_bare_one():
    assert uncertainty.adjusted_p_text(1.0, "Holm") == "Holm-adjusted p = 1 (a corrected value, capped at 1)"
    assert uncertainty.adjusted_p_text(0.2, "Bonferroni") == "Bonferroni-adjusted p = 0.20"
    assert uncertainty.p_boot_text(0.0, 10_000) == "p < 0.0001"
    assert uncertainty.ci_digits(0.25) == 0 and uncertainty.ci_digits(0.04) == 1 and uncertainty.ci_digits(0.004) == 2


def test_family_gap_bootstrap_draws_prompts_and_words_independently():
    """The gap's bootstrap distribution against the exact two-way bootstrap, enumerated here:
    2 prompts and 3 words, so the 2^2 x 3^3 = 108 equally likely (prompt draw, word draw)
    pairs are the whole distribution. Each family has two identical models, so resampling
    models within family (or not) changes nothing; one framing and one category, so a
    stratified draw is the plain one. The Llama ranks add a prompt effect and a word effect
    lined up so that prompt draws tied to the word draws (e.g. the first P word counts reused
    as prompt counts) give another distribution (p about 0.23, interval (-1.5, 4.5))."""
    import itertools
    a, b, delta = np.array([3.0, -3.0]), np.array([-2.0, 2.0, 0.0]), 1.5
    llama = 10 + delta + a[:, None] + b[None, :]  # (prompt, word); Gemma ranks 10 everywhere
    rows = [(m, fam, f"p{p}", "positive", f"w{w}", 10.0 if fam == "gemma" else llama[p, w])
            for fam, models in (("gemma", ["g1", "g2"]), ("llama", ["l1", "l2"])) for m in models
            for p in range(2) for w in range(3)]
    ranks = pd.DataFrame(rows, columns=["model", "family", "prompt_id", "framing", "response", "rank"])
    words = pd.DataFrame({"word": ["w0", "w1", "w2"], "category": "Agency"})
    exact = np.array([np.mean([np.median([llama[i, j] for j in wd]) for i in pd_]) - 10.0
                      for pd_ in itertools.product(range(2), repeat=2)
                      for wd in itertools.product(range(3), repeat=3)])
    assert len(exact) == 108 and not (exact == 0).any()
    p_exact = 2 * min((exact < 0).mean(), (exact > 0).mean())  # 2 x 34/108 = 0.6296
    assert p_exact == pytest.approx(68 / 108)
    r = uncertainty.family_gaps(ranks, words, reps=20_000, seed=3).iloc[0]
    assert r.gap == pytest.approx(delta)
    assert (r.ci_low, r.ci_high) == tuple(np.quantile(exact, [0.025, 0.975]))  # (-3.5, 6.5): 7/108 at each end
    assert r.p == pytest.approx(p_exact, abs=0.03)  # Monte Carlo SE of p over 20,000 draws: 0.007


def test_rank_table_reads_as_a_reader_would_write_it():
    ri = pd.DataFrame({"position": [1, 2], "model": ["a", "b"], "family": ["Gemma", "Llama"],
                       "mean_rank": [119.49, 125.17], "position_low": [1, 1], "position_high": [5, 7],
                       "group": ["a", "ab"]})
    t = uncertainty.rank_table(ri)
    assert list(t["positions (95%)"]) == ["1–5", "1–7"] and list(t["mean rank"]) == [119.5, 125.2]
