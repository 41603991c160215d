"""Uncertainty beside the paper: bootstrap coverage, point estimates, multiplicity (the crossed mixed model: test_crossed.py)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
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


def _simulated_panel():
    """The committed simulated rows (tests/reference/bootstrap_sim.csv) as one panel, and the
    committed draws as count matrices: counts(kind, labels) -> (draw, unit) for kind model,
    prompt or word, the units in the panel's order."""
    rows = pd.read_csv(REFERENCE / "bootstrap_sim.csv")
    draws = pd.read_csv(REFERENCE / "bootstrap_sim_draws.csv")
    corpus = rows[["response", "category"]].drop_duplicates().rename(columns={"response": "word"})
    (_, _, panel), = list(uncertainty.panels(uncertainty.prepare(rows, corpus)))
    reps = sorted(draws["rep"].unique())

    def counts(kind, labels):
        t = draws[draws["kind"] == kind].pivot_table(index="rep", columns="unit", values="count", fill_value=0)
        return t.reindex(index=reps, columns=labels, fill_value=0).to_numpy()
    return rows, corpus, panel, counts


def test_stricter_bootstrap_equals_a_literal_recomputation_in_r():
    """The same 400 draws of models within family, prompts and words (committed), fed to core's
    vectorised statistic and to tests/reference/bootstrap_logic.R, which repeats the drawn rows
    and takes medians and means literally; the interval and the p (R: bisection over alpha)."""
    rows, corpus, panel, counts = _simulated_panel()
    ref = json.loads((REFERENCE / "bootstrap_sim.json").read_text())
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
    assert uncertainty.ci_digits(0.25) == 0 and uncertainty.ci_digits(0.04) == 1 and uncertainty.ci_digits(0.004) == 2


def test_family_gap_bootstrap_draws_prompts_and_words_independently():
    """The gap's prompts-and-words variance against the exact two-way bootstrap, enumerated here:
    2 prompts and 3 words, so the 2^2 x 3^3 = 108 equally likely (prompt draw, word draw)
    pairs are the whole distribution. Each family has two identical models, so resampling
    models within family (or not) changes nothing; one framing and one category, so a
    stratified draw is the plain one. The Llama ranks add a prompt effect and a word effect
    lined up so that prompt draws tied to the word draws (e.g. the first P word counts reused
    as prompt counts) give another distribution (variance 2.62 instead of 6.57)."""
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
    # the prompts-and-words part of the gap's variance is the exact two-way bootstrap's variance
    # (6.57; tied draws give 2.62); the models part is zero (identical models within each family)
    assert r.se_models == 0 and r.se_prompts_words ** 2 == pytest.approx(exact.var(), rel=0.05)
    assert r.df == pytest.approx(1.0)  # all of it from the bootstrap part: min(2 prompts, 3 words) − 1
    assert r.p == pytest.approx(2 * stats.t.sf(delta / r.se, 1))


def test_rank_table_reads_as_a_reader_would_write_it():
    ri = pd.DataFrame({"position": [1, 2], "model": ["a", "b"], "family": ["Gemma", "Llama"],
                       "mean_rank": [119.49, 125.17], "position_low": [1, 1], "position_high": [5, 7],
                       "group": ["a", "ab"]})
    t = uncertainty.rank_table(ri)
    assert list(t["positions (95%)"]) == ["1–5", "1–7"] and list(t["mean rank"]) == [119.5, 125.2]


def _study_values(rng, n: int, P: int = 27, W: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """n simulated studies shaped like the paper's (4 Gemma, 6 Llama RMs, 27 prompts, 20
    words), the reviewer's design: models differ by 3–6 ranks, little else varies; a true
    gap of 5 ranks. Values [n, 10, P, W] and the family of each of the 10 models."""
    fam = np.array(["Gemma"] * 4 + ["Llama"] * 6)
    f = (fam == "Llama").astype(int)
    model = rng.normal(0, 1, (n, 10)) * rng.uniform(3, 6, (n, 1))
    fp, fw = rng.normal(0, 1, (n, 2, P)), rng.normal(0, 1, (n, 2, W))
    y = (5.0 * f[None, :, None, None] + model[..., None, None] + fp[:, f][..., None] + fw[:, f][:, :, None, :]
         + rng.normal(0, 1, (n, 10, P, 1)) + rng.normal(0, 1, (n, 10, 1, W)) + rng.normal(0, 5, (n, 10, P, W)))
    return y, fam


def test_family_gap_interval_is_calibrated_with_4_and_6_models():
    """300 simulated studies like the reviewer's (bench/gap_coverage.py runs 1,000 per design):
    the percentile bootstrap that drew models within family covered the true gap about 0.9 of
    the time; gap_t_test's interval (the models' spread, t with Welch–Satterthwaite df, plus the
    prompts-and-words bootstrap) covers it at 0.95 or more. Vectorised: the studies' models are
    stacked as the models of one panel for the prompts-and-words draws."""
    n, reps, delta = 300, 300, 5.0
    rng = np.random.default_rng(20260602)
    y, fam = _study_values(rng, n)
    obs, boot = uncertainty.bootstrap_model_means({"R": y.reshape(n * 10, *y.shape[2:])}, reps, rng)
    obs, boot = obs.reshape(n, 10), boot.reshape(reps, n, 10)
    g, l = fam == "Gemma", fam == "Llama"
    new_covers, old_covers = 0, 0
    for i in range(n):
        pw = boot[:, i, l].mean(1) - boot[:, i, g].mean(1)
        t = uncertainty.gap_t_test(obs[i, g], obs[i, l], pw, 19)
        new_covers += t["ci_low"] <= delta <= t["ci_high"]
        mc = uncertainty.model_draws(rng, reps, fam)  # the rule it replaced
        old = (uncertainty.family_mean(boot[:, i], fam, "Llama", mc)
               - uncertainty.family_mean(boot[:, i], fam, "Gemma", mc))
        lo, hi = uncertainty.percentile_ci(old, 0.95)
        old_covers += lo <= delta <= hi
    se = math.sqrt(0.95 * 0.05 / n)
    assert new_covers / n >= 0.95 - se, new_covers / n
    assert old_covers / n < 0.95 - 2 * se, old_covers / n  # the design is one where the old rule fails


def test_gap_t_test_equals_r():
    """tests/reference/gap_t.R computes the test literally from the committed rows and the
    committed prompt and word draws (each draw's rows repeated): every model's value, the
    prompts-and-words variance, se, Welch–Satterthwaite df, interval and p; and R's own Welch
    t.test equals gap_t_test with no prompts-and-words part."""
    rows, corpus, panel, counts = _simulated_panel()
    ref = json.loads((REFERENCE / "gap_t_sim.json").read_text())
    fam = panel["family"]
    P, W = len(panel["prompts"]), len(panel["words"])
    obs = uncertainty.model_means_under(panel, np.ones((1, W), np.int64), np.ones((1, P)))[0]
    assert dict(zip(panel["models"], obs)) == pytest.approx(ref["values"], abs=1e-12)
    mm = uncertainty.model_means_under(panel, counts("word", panel["words"]), counts("prompt", panel["prompts"]))
    pw = uncertainty.family_mean(mm, fam, "Llama") - uncertainty.family_mean(mm, fam, "Gemma")
    assert np.allclose(pw, ref["draw_gaps"], rtol=0, atol=1e-9)
    assert uncertainty.prompt_word_df(panel) == ref["prompt_word_df"] == 6
    got = uncertainty.gap_t_test(obs[fam == "Gemma"], obs[fam == "Llama"], pw, uncertainty.prompt_word_df(panel))
    for k in ("gap", "se", "df", "ci_low", "ci_high", "p"):
        assert got[k] == pytest.approx(ref[k], rel=1e-9), k
    assert got["se_prompts_words"] ** 2 == pytest.approx(ref["v_prompts_words"], rel=1e-9)
    welch = uncertainty.gap_t_test(obs[fam == "Gemma"], obs[fam == "Llama"], np.zeros(10), 1)
    for k in ("df", "p", "ci_low", "ci_high"):
        assert welch[k] == pytest.approx(ref["welch"][k], rel=1e-9), k
    # family_gaps reads the same test: its models' part equals the spread computed here
    r = uncertainty.family_gaps(rows, corpus, reps=200, seed=1).iloc[0]
    va, vb = (np.var(obs[fam == f], ddof=1) / (fam == f).sum() for f in ("Gemma", "Llama"))
    assert r.se_models == pytest.approx(math.sqrt(va + vb), rel=1e-12) and r.gap == pytest.approx(ref["gap"], rel=1e-12)
    assert r.ci_low == pytest.approx(r.gap - stats.t.ppf(0.975, r.df) * r.se, rel=1e-12)


def test_a_family_of_one_model_gets_no_interval_and_says_why():
    """One Qwen-based RM beside the paper's families: how Qwen-based models vary cannot be
    seen from one, so its gaps have no interval and no p (not a bootstrap over its prompts and
    words dressed up as a family claim); the Llama gaps are tested as before."""
    rng = np.random.default_rng(7)
    fam = np.array(["gemma", "gemma", "llama", "llama", "llama", "qwen"])
    y = rng.normal(size=(6, 6, 9)).argsort(-1).argsort(-1) + 1.0
    words = pd.DataFrame({"word": [f"w{i:02d}" for i in range(9)], "category": ["A"] * 5 + ["B"] * 4})
    out = uncertainty.family_gaps(_long(y, fam), words, reps=200, seed=1)
    qwen, llama = out[out["family_b"] == "Qwen"], out[out["family_b"] == "Llama"]
    assert qwen[["ci_low", "ci_high", "p", "p_adjusted", "df"]].isna().all().all() and (qwen["n_models_b"] == 1).all()
    assert llama[["ci_low", "ci_high", "p", "p_adjusted"]].notna().all().all()
    assert list(llama["p_adjusted"]) == pytest.approx(list(multipletests(llama["p"], method="holm")[1]))
    s = uncertainty.finding_sentence(qwen.iloc[0].to_dict())
    assert "With one Qwen-based model" in s and "no interval and no test" in s and "nan" not in s.lower()
