"""The stricter crossed mixed model (core/crossed.py) against R: lme4 REML + lmerTest's
Satterthwaite df. On the paper's published Big Two scores the reference is
paper-data/reference/crossed_big2.json; on a subset of them and on two simulated data sets
(one with a variance on the boundary) it is our own R run, tests/reference/crossed_lmer.R,
committed beside its numbers (tests/reference/README.md says how to re-run it)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from core import corpora, crossed, uncertainty, words
from tests.conftest import PAPER_DATA
from tests.reference import inputs
from tests.support import assert_crossed_equals_r as assert_equals_r

HERE = Path(__file__).parent / "reference"


def _corpus_of(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[["response", "category"]].drop_duplicates().rename(columns={"response": "word"})


@pytest.fixture(scope="module")
def big2_ranks(big2_store):
    store, _ = big2_store
    return words.ranked_from_store(store, corpora.load("big2-nouns").words, "big2-nouns")


@pytest.mark.r_reference("crossed_big2.json")  # skipped without it, except under CI (conftest)
def test_crossed_model_equals_lmer_on_the_published_big2_scores(big2_ranks):
    ref = json.loads((PAPER_DATA / "reference" / "crossed_big2.json").read_text())
    fit = crossed.crossed_model(big2_ranks, corpora.load("big2-nouns").words)
    assert fit["n_rows"] == 142_020 and fit["levels"]["family:response:framing"] == 1052
    assert fit["n_models"] == {"Gemma": 4, "Llama": 6}
    assert_equals_r(fit, ref)
    three = crossed.three_way_term(fit)
    assert three["term"] == "familyLlama:categoryCommunion:framingnegative" and three["p"] > 0.3
    assert "Satterthwaite" in crossed.crossed_sentence(fit) and "p = 0.36" in crossed.crossed_sentence(fit)


def test_crossed_model_equals_lmer_on_a_subset_of_the_published_scores(big2_store):
    """3 Gemma and 4 Llama RMs on 10 prompts of each framing: other df, same agreement."""
    rows = inputs.subset_rows(big2_store[0])
    ref = json.loads((HERE / "crossed_subset.json").read_text())
    assert len(rows) == ref["n_rows"]
    assert_equals_r(crossed.crossed_model(rows, _corpus_of(rows)), ref)
    crossed.ANALYTIC_MAX_LEVELS, keep = 0, crossed.ANALYTIC_MAX_LEVELS  # the numerical derivatives too
    try:
        assert_equals_r(crossed.crossed_model(rows, _corpus_of(rows)), ref)
    finally:
        crossed.ANALYTIC_MAX_LEVELS = keep


@pytest.mark.parametrize("exact", [True, False], ids=["exact-derivatives", "numerical-derivatives"])
@pytest.mark.parametrize("name", ["crossed_sim", "crossed_sim_singular"])
def test_crossed_model_equals_lmer_on_simulated_data(name, exact, monkeypatch):
    """Committed inputs; in `crossed_sim_singular` lme4 puts a variance at zero and the df come
    from the pseudo-inverse of the Hessian, as lmerTest's. Both derivative paths: exact (up to
    ANALYTIC_MAX_LEVELS random levels) and numerical (above it)."""
    if not exact:
        monkeypatch.setattr(crossed, "ANALYTIC_MAX_LEVELS", 0)
    rows = pd.read_csv(HERE / f"{name}.csv")
    pd.testing.assert_frame_equal(rows, inputs.simulated_rows(inputs.SIMULATED[name]), check_exact=False, rtol=1e-9)
    ref = json.loads((HERE / f"{name}.json").read_text())
    fit = crossed.crossed_model(rows, _corpus_of(rows))
    assert_equals_r(fit, ref)
    assert (fit["variances"]["model:category:framing"] == 0) == ref["singular"]
    shuffled = crossed.crossed_model(rows.sample(frac=1, random_state=3), _corpus_of(rows))
    assert [t["estimate"] for t in shuffled["terms"]] == pytest.approx([t["estimate"] for t in fit["terms"]], rel=1e-8)


def test_a_family_term_of_several_coefficients_is_tested_jointly_as_lmertest_does():
    """Three families and three categories (tests/reference/crossed_sim3.csv): the family ×
    category × framing term has 4 coefficients; its test is lmerTest's contestMD (= anova
    type 3), not whichever coefficient comes first. The sentences print the joint test."""
    rows = pd.read_csv(HERE / "crossed_sim3.csv")
    pd.testing.assert_frame_equal(rows, inputs.simulated_rows_3x3(), check_exact=False, rtol=1e-9)
    ref = json.loads((HERE / "crossed_sim3.json").read_text())
    fit = crossed.crossed_model(rows, _corpus_of(rows))
    assert_equals_r(fit, ref)
    j = fit["family_term"]
    assert j["term"] == "family:category:framing" and sorted(j["coefficients"]) == sorted(ref["joint"]["coefficients"])
    assert j["num_df"] == ref["joint"]["num_df"] == 4
    assert j["F"] == pytest.approx(ref["joint"]["F"], rel=1e-3)
    assert j["den_df"] == pytest.approx(ref["joint"]["den_df"], rel=1e-3)
    assert abs(j["p"] - ref["joint"]["p"]) <= 0.002 and ref["anova_type3"]["F"] == pytest.approx(ref["joint"]["F"])
    assert crossed.joint_family_term(fit) is j
    assert "(4 coefficients, tested together): F = 4.59 on 4 and 144 Satterthwaite df, p = 0.002" \
        in crossed.crossed_sentence(fit)
    from core import headline
    assert headline._mixed_clause(fit, {}) == (", and its mixed model's family × category × framing term "
                                               "(4 coefficients, tested together) has p = 0.002")


def test_a_family_term_of_one_coefficient_is_its_t_test():
    rows = pd.read_csv(HERE / "crossed_sim.csv")
    fit = crossed.crossed_model(rows, _corpus_of(rows))
    j, t = fit["family_term"], crossed.three_way_term(fit)
    assert j["coefficients"] == [t["term"]] and j["num_df"] == 1 and crossed.joint_family_term(fit) is None
    assert j["F"] == pytest.approx((t["estimate"] / t["se"]) ** 2, rel=1e-9)
    assert j["den_df"] == pytest.approx(t["df"], rel=1e-9) and j["p"] == pytest.approx(t["p"], rel=1e-9)


def _dense_reml(y, X, Zs):
    """An independent REML fit: the marginal likelihood with V = s2 I + sum t_k Z_k Z_k'
    written densely, maximised over log variances by scipy."""
    ZZ = [Z @ Z.T for Z in Zs]

    def nll(logv):
        v = np.exp(logv)
        V = v[0] * np.eye(len(y)) + sum(t * G for t, G in zip(v[1:], ZZ))
        Vi = np.linalg.inv(V)
        XtViX = X.T @ Vi @ X
        beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
        r = y - X @ beta
        return 0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtViX)[1] + r @ Vi @ r)

    opt = optimize.minimize(nll, np.zeros(1 + len(Zs)), method="BFGS", options={"gtol": 1e-9})
    v = np.exp(opt.x)
    V = v[0] * np.eye(len(y)) + sum(t * G for t, G in zip(v[1:], ZZ))
    Vi = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    return beta, v


def test_crossed_model_equals_an_independent_dense_reml_fit():
    rng = np.random.default_rng(5)
    M, P, W = 4, 6, 6  # small: the dense fit inverts an n x n matrix per evaluation
    fam = np.array(["gemma"] * 2 + ["llama"] * 2)
    u_w = rng.normal(0, 2.0, W)
    u_fw = rng.normal(0, 1.5, (2, W))
    y = (10 + 2.0 * (fam == "llama")[:, None, None] + u_w[None, None, :] + u_fw[(fam == "llama") * 1][:, None, :]
         + rng.normal(0, 1.0, (M, P, W)))
    m, p, w = np.meshgrid(*[np.arange(k) for k in y.shape], indexing="ij")
    ranks = pd.DataFrame({"model": [f"m{i}" for i in m.ravel()], "family": fam[m.ravel()],
                          "prompt_id": [f"p{i:02d}" for i in p.ravel()], "response": [f"w{i:02d}" for i in w.ravel()],
                          "rank": y.ravel()})
    ranks["framing"] = np.where(ranks["prompt_id"] < "p03", "positive", "negative")
    corpus = pd.DataFrame({"word": [f"w{i:02d}" for i in range(W)], "category": ["A"] * 3 + ["B"] * 3})
    terms = ("response", "family:response")
    fit = crossed.crossed_model(ranks, corpus, terms=terms)
    d = uncertainty.prepare(ranks, corpus).reset_index(drop=True)
    # Independent design: family x category x framing, treatment contrasts, positive framing the reference.
    fl, cb, fn = (d["family"] == "Llama") * 1.0, (d["category"] == "B") * 1.0, (d["framing"] == "negative") * 1.0
    X = np.column_stack([np.ones(len(d)), fl, cb, fn, fl * cb, fl * fn, cb * fn, fl * cb * fn])
    Zs = [pd.get_dummies(d["response"]).to_numpy(float), pd.get_dummies(d["family"] + d["response"]).to_numpy(float)]
    beta, v = _dense_reml(d["rank"].to_numpy(float), X, Zs)
    assert [t["term"] for t in fit["terms"]][:4] == ["(Intercept)", "familyLlama", "categoryB", "framingnegative"]
    assert np.allclose([t["estimate"] for t in fit["terms"]], beta, atol=1e-3)
    got = [fit["variances"][k] for k in ("Residual", "response", "family:response")]
    assert np.allclose(got, v, rtol=1e-3, atol=1e-3), (got, v)


def test_crossed_model_needs_two_families():
    rows = pd.read_csv(HERE / "crossed_sim.csv")
    one = rows[rows["family"] == "Llama"]
    assert "two families" in crossed.crossed_model(one, _corpus_of(one))["message"]
    assert crossed.crossed_sentence({"message": "x"}).startswith("Stricter mixed model not fitted")
