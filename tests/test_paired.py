"""Paired model-vs-model comparison (core/paired.py): differences per category, one test per
framing (the two categories mirror each other), checked against R (tests/reference/paired_t.R
on the published ranks of two RMs) and an independent computation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core import paired
from tests.reference import inputs

REFERENCE = Path(__file__).parent / "reference"


def _long(y: np.ndarray, fam: np.ndarray) -> pd.DataFrame:
    m, p, w = np.meshgrid(*[np.arange(k) for k in y.shape], indexing="ij")
    return pd.DataFrame({"model": [f"m{i}" for i in m.ravel()], "family": fam[m.ravel()],
                         "prompt_id": [f"p{i:02d}" for i in p.ravel()], "framing": "positive",
                         "response": [f"w{i:02d}" for i in w.ravel()], "rank": y.ravel()})


def test_paired_differences_and_the_one_test_match_an_independent_computation():
    rng = np.random.default_rng(6)
    y = rng.normal(size=(2, 8, 12)).argsort(-1).argsort(-1) + 1.0  # ranks of all 12 words
    ranks = _long(y, np.array(["gemma", "llama"]))
    words = pd.DataFrame({"word": [f"w{i:02d}" for i in range(12)], "category": ["A"] * 6 + ["B"] * 6})
    summ = paired.paired_summary(ranks, words, "m0", "m1", reps=400, seed=0)
    r = summ[summ["category"] == "A"].iloc[0]
    a, b = y[0][:, :6], y[1][:, :6]
    assert r["mean_difference"] == pytest.approx((a - b).mean())
    assert r["ci_low"] <= r["mean_difference"] <= r["ci_high"]
    tests = paired.paired_tests(ranks, words, "m0", "m1", reps=400, seed=0)
    assert len(tests) == 1 and tests.iloc[0]["test"] == "A vs B"  # one framing, one test
    t = tests.iloc[0]
    dA, dB = (y[0] - y[1])[:, :6].mean(1), (y[0] - y[1])[:, 6:].mean(1)
    assert np.allclose(dA * 6, -dB * 6)  # the mirror: equal rank sums
    assert t["p_prompts_only"] == pytest.approx(stats.ttest_1samp(dA, 0).pvalue)
    assert t["p_prompts_only"] == pytest.approx(stats.ttest_1samp(dB, 0).pvalue)
    assert t["contrast"] == pytest.approx(dA.mean() - dB.mean())
    assert (t["p_value"] < 0.05) == (not t["ci_low"] <= 0 <= t["ci_high"])  # p and interval agree
    top = paired.word_differences(ranks, words, "m0", "m1", "positive", "A")
    diffs = (a - b).mean(axis=0)
    assert top.iloc[0]["difference"] == pytest.approx(diffs[np.argmax(np.abs(diffs))])


def test_paired_contrast_bootstrap_draws_prompts_once_for_both_categories():
    """The bootstrap contrast equals a literal recomputation with the same draws."""
    rng = np.random.default_rng(9)
    y = rng.normal(size=(2, 5, 8)).argsort(-1).argsort(-1) + 1.0
    ranks = _long(y, np.array(["gemma", "llama"]))
    words = pd.DataFrame({"word": [f"w{i:02d}" for i in range(8)], "category": ["A"] * 4 + ["B"] * 4})
    got = paired.paired_tests(ranks, words, "m0", "m1", reps=300, seed=3).iloc[0]
    g = np.random.default_rng([3, 0])  # the same stream: prompts, then A's words, then B's
    cp, cwa, cwb = paired._draws(g, 300, 5), paired._draws(g, 300, 4), paired._draws(g, 300, 4)
    D = y[0] - y[1]
    boot = [np.average(D[:, :4], weights=np.outer(cp[r], cwa[r])) - np.average(D[:, 4:], weights=np.outer(cp[r], cwb[r]))
            for r in range(300)]
    assert got["p_value"] == pytest.approx(paired.bootstrap_p(np.array(boot)), abs=1e-12)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])), abs=1e-9)


def test_paired_one_test_per_framing_equals_r_on_published_ranks(big2_store):
    ref = json.loads((REFERENCE / "paired_big2.json").read_text())
    rows = inputs.paired_rows(big2_store[0])
    words = rows[["response", "category"]].drop_duplicates().rename(columns={"response": "word"})
    a, b = ref["model_a"], ref["model_b"]
    summ = paired.paired_summary(rows, words, a, b, reps=200)
    tests = paired.paired_tests(rows, words, a, b, reps=200)
    assert list(tests["framing"]) == ["positive", "negative"] and (tests["n_tests_in_framing"] == 1).all()
    for f in ref["framings"]:
        t = tests[tests["framing"] == f["framing"]].iloc[0]
        # R: each category's paired t-test and the contrast's are the same test
        assert f["p_t"]["Agency"] == pytest.approx(f["p_t"]["Communion"], rel=1e-9)
        assert t["p_prompts_only"] == pytest.approx(f["p_contrast"], rel=1e-6)
        assert t["contrast"] == pytest.approx(f["contrast"], rel=1e-9)
        for cat, want in f["mean_difference"].items():
            got = summ[(summ["framing"] == f["framing"]) & (summ["category"] == cat)]["mean_difference"].iloc[0]
            assert got == pytest.approx(want, rel=1e-9)


def test_holm_runs_over_every_test_shown_across_both_framings():
    """The page shows the tests of both framings at once, so the correction runs over all of
    them (it ran within a framing only, and a Big Two framing has one test: no correction at
    all), and the column says over how many."""
    from statsmodels.stats.multitest import multipletests
    rng = np.random.default_rng(4)
    y = rng.normal(size=(2, 8, 12)).argsort(-1).argsort(-1) + 1.0
    ranks = pd.concat([_long(y[:, :4], np.array(["gemma", "llama"])),
                       _long(y[:, 4:], np.array(["gemma", "llama"])).assign(framing="negative")])
    ranks["prompt_id"] = ranks["framing"].str[:3] + ranks["prompt_id"]
    for cats in (["A"] * 6 + ["B"] * 6, ["A"] * 4 + ["B"] * 4 + ["C"] * 4):
        words = pd.DataFrame({"word": [f"w{i:02d}" for i in range(12)], "category": cats})
        tests = paired.paired_tests(ranks, words, "m0", "m1", reps=300, seed=0)
        n = 2 * (1 if len(set(cats)) == 2 else 3)
        assert len(tests) == n and set(tests["framing"]) == {"positive", "negative"} and (tests["n_tests"] == n).all()
        assert list(tests["p_value_holm"]) == pytest.approx(list(multipletests(tests["p_value"], method="holm")[1]))
        table = paired.tests_table(tests)
        assert list(table[f"p (Holm over the {n} tests)"]) == [paired.p_cell(p) for p in tests["p_value_holm"]]
