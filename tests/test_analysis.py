"""Tests for core.analysis: the published Big Two scores (imported by the `big2_store` fixture
in conftest.py) must reproduce the R re-run in paper-data/reference/fig1_big2.json, and the
edge cases must not crash."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PAPER_DATA = Path(os.environ["VALUEAUDIT_PAPER_DATA"])  # set by the test command (conftest checks it)

from core import analysis, corpora, prompts, ranks  # noqa: E402
from core.store import Store  # noqa: E402

REFERENCE = PAPER_DATA / "reference" / "fig1_big2.json"
needs_reference = pytest.mark.r_reference(REFERENCE.name)  # skipped without it, except under CI (conftest)


# -- helpers -------------------------------------------------------------------------
def synthetic_scores(models: dict[str, str], words: list[str], prompt_ids: list[str],
                     seed: int = 0, value=None) -> pd.DataFrame:
    """Scores in store.scores() shape: models maps name -> family."""
    rng = np.random.default_rng(seed)
    texts = {p.prompt_id: p.text for p in prompts.paper_prompts()}
    rows = []
    for m, fam in models.items():
        for pid in prompt_ids:
            for w in words:
                v = value(m, pid, w) if value else rng.normal()
                rows.append({"model": m, "model_key": f"k:{m}", "family": fam, "prompt_id": pid,
                             "prompt": texts.get(pid, pid), "response": w, "value": v})
    return pd.DataFrame(rows)


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


# -- Figure 1 on the published scores (the import itself: tests/test_published.py) ----------
@pytest.fixture(scope="module")
def big2_result(big2_store):
    store, _ = big2_store
    corpus = corpora.load("big2-nouns")
    scores = store.scores(kind="rm", words=corpus.vocabulary)
    return analysis.figure1(scores, corpus.words, corpus="big2-nouns", permutations=2000, seed=0, bootstrap=500)


# -- Figure 1 against the R reference ----------------------------------------------------
@needs_reference
def test_figure1_median_ranks_match_reference(big2_result):
    ref = json.loads(REFERENCE.read_text())
    assert big2_result.corpus == "big2-nouns" and big2_result.n_words == ref["n_words"] == 263
    ours = pd.DataFrame(big2_result.median_ranks)
    theirs = pd.DataFrame(ref["median_ranks"])
    assert len(ours) == len(theirs) == 1080
    m = ours.merge(theirs, on=["model", "prompt_id", "category"], suffixes=("", "_ref"), validate="1:1")
    assert len(m) == 1080
    assert (m["median_rank"] == m["median_rank_ref"]).all()
    assert (m["family"] == m["family_ref"]).all() and (m["framing"] == m["framing_ref"]).all()


@needs_reference
def test_figure1_family_means_match_reference(big2_result):
    ref = json.loads(REFERENCE.read_text())
    m = pd.DataFrame(big2_result.family_means).merge(
        pd.DataFrame(ref["family_means"]), on=["framing", "category", "family"], suffixes=("", "_ref"))
    assert len(m) == 8
    assert np.allclose(m["mean_rank"], m["mean_rank_ref"], rtol=0, atol=1e-6)


@needs_reference
def test_figure1_mixed_model_matches_nlme(big2_result):
    ref = {t["term"]: t for t in json.loads(REFERENCE.read_text())["mixed_model"]["terms"]}
    ours = big2_result.to_json()["mixed_model"]["terms"]  # the JSON `analyze --json` prints
    assert [t["term"] for t in ours] == list(ref)  # R's names, in R's order
    for t in ours:
        r = ref[t["term"]]
        assert rel(t["estimate"], r["estimate"]) < 1e-4, t
        if r["p"] == 0:
            assert t["p"] < 1e-300
        else:
            assert rel(t["p"], r["p"]) < 1e-3, (t, r)


@needs_reference
def test_figure1_welch_tests_match_reference(big2_result):
    ref = json.loads(REFERENCE.read_text())["family_tests"]
    ours = {(t["category"], t["framing"]): t for t in big2_result.to_json()["family_tests"]}
    assert len(ours) == len(ref) == 4
    for r in ref:
        t = ours[(r["category"], r["framing"])]
        assert rel(t["welch_p"], r["welch_p"]) < 1e-6
        assert rel(t["welch_p_bonferroni"], r["welch_p_bonferroni"]) < 1e-6
        assert 1 / 2001 <= t["permutation_p"] <= 1
        assert t["permutation_p_bonferroni"] == pytest.approx(min(1, 4 * t["permutation_p"]))
        assert t["effect_ci_low"] <= t["effect_size"] <= t["effect_ci_high"]
    # Llama ranks agency higher (smaller rank) on positive prompts: negative g of Llama − Gemma.
    assert ours[("Agency", "positive")]["effect_size"] < 0 < ours[("Communion", "positive")]["effect_size"]


def test_figure1_is_strict_json_and_summary_reads_well(big2_result):
    json.dumps(big2_result.to_json(), allow_nan=False)
    text = analysis.summary_text(big2_result)
    assert "On positive prompts, Llama-based reward models rank Agency words 4.2 places higher than Gemma-based" in text
    assert "Gemma-based reward models rank Communion words 4.2 places higher" in text
    assert "Bonferroni" in text


# -- ranking ---------------------------------------------------------------------------
def test_ties_get_average_ranks():
    words = pd.DataFrame({"word": ["a", "b", "c", "d"], "category": ["X", "X", "Y", "Y"]})
    vals = {"a": 3.0, "b": 1.0, "c": 1.0, "d": 0.5}
    scores = synthetic_scores({"m": "gemma"}, list(vals), ["best_ever_one"], value=lambda m, p, w: vals[w])
    ranked = analysis.word_ranks(scores, words)
    assert {"model", "model_key", "family", "prompt_id", "response", "value", "rank"} <= set(ranked.columns)
    ranks = ranked.set_index("response")["rank"]
    assert ranks.to_dict() == {"a": 1.0, "b": 2.5, "c": 2.5, "d": 4.0}
    med = analysis.median_ranks(scores, words).set_index("category")["median_rank"]
    assert med.to_dict() == {"X": 1.75, "Y": 3.25}


def test_only_corpus_words_are_ranked_and_multi_category_words_count_twice():
    words = pd.DataFrame({"word": ["a", "b", "c", "b"], "category": ["X", "X", "Y", "Y"]})
    vals = {"a": 3.0, "zzz": 10.0, "b": 2.0, "c": 1.0}
    scores = synthetic_scores({"m": "gemma"}, list(vals), ["best_ever_one"], value=lambda m, p, w: vals[w])
    med = analysis.median_ranks(scores, words).set_index("category")["median_rank"]
    assert med.to_dict() == {"X": 1.5, "Y": 2.5}  # 'zzz' not ranked; 'b' in both


def test_word_missing_for_one_model():
    words = pd.DataFrame({"word": ["a", "b", "c"], "category": ["X", "X", "Y"]})
    vals = {"a": 3.0, "b": 2.0, "c": 1.0}
    scores = synthetic_scores({"full": "gemma", "partial": "llama"}, list(vals), ["best_ever_one"],
                              value=lambda m, p, w: vals[w])
    scores = scores[~((scores["model"] == "partial") & (scores["response"] == "a"))]
    med = analysis.median_ranks(scores, words).set_index(["model", "category"])["median_rank"]
    assert med[("full", "X")] == 1.5 and med[("full", "Y")] == 3.0
    assert med[("partial", "X")] == 1.0 and med[("partial", "Y")] == 2.0


# -- fewer or more families ---------------------------------------------------------------
def test_one_family_gives_message_not_exception():
    words = pd.DataFrame({"word": list("abcdef"), "category": list("XXXYYY")})
    ids = ["best_ever_one", "worst_ever_one"]
    scores = synthetic_scores({"g1": "gemma", "g2": "gemma"}, list("abcdef"), ids)
    res = analysis.figure1(scores, words, corpus="toy", permutations=100, bootstrap=50)
    assert res.median_ranks and res.family_means
    assert res.mixed_model is None and res.family_tests is None  # typed: missing, with the reason
    assert "found only Gemma" in res.reason and "at least two families" in res.reason
    assert res.to_json()["mixed_model"] == res.to_json()["family_tests"] == {"message": res.reason}
    assert "No family comparison" in analysis.summary_text(res)
    json.dumps(res.to_json(), allow_nan=False)


def test_one_model_per_family_on_one_prompt_per_framing_says_why_no_mixed_model():
    """Issue 21's road: two tiny models (one per family) scored on two prompts gave Compare a
    'math domain error' — 8 medians for 8 fixed effects leave no residual degrees of freedom."""
    words = pd.DataFrame({"word": list("abcdef"), "category": list("XXXYYY")})
    scores = synthetic_scores({"g1": "gemma", "l1": "llama"}, list("abcdef"), ["best_ever_one", "worst_ever_one"])
    res = analysis.figure1(scores, words, corpus="toy", permutations=100, bootstrap=50)
    assert res.mixed_model.terms == [] and "no residual degrees of freedom" in res.mixed_model.note
    assert res.family_tests is not None and len(res.median_ranks) == 2 * 2 * 2
    from core import wording
    assert "no family interaction term" in wording.mixed_model_sentence(res)
    assert analysis.summary_text(res)
    json.dumps(res.to_json(), allow_nan=False)


def test_user_corpus_three_categories_three_families():
    cats = ["Alpha", "Beta", "Gamma"]
    words = pd.DataFrame({"word": [f"w{i}" for i in range(30)], "category": [cats[i % 3] for i in range(30)]})
    ids = ["best_ever_one", "good_world_single", "worst_time_please", "bad_ever_one"]
    models = {"g1": "gemma", "g2": "gemma", "l1": "llama", "l2": "llama", "q1": "qwen", "q2": "qwen"}
    scores = synthetic_scores(models, words["word"].tolist(), ids, seed=3)
    fig = analysis.figure1(scores, words, corpus="mine", permutations=500, bootstrap=100, seed=1)
    assert fig.mixed_model.reference == {"family": "Gemma", "category": "Alpha", "framing": "positive"}
    assert fig.mixed_model.estimate("(Intercept)") == fig.mixed_model.terms[0].estimate
    res = fig.to_json()
    json.dumps(res, allow_nan=False)
    assert len(res["median_ranks"]) == 6 * 4 * 3
    terms = [t["term"] for t in res["mixed_model"]["terms"]]
    assert len(terms) == 18
    assert terms[:6] == ["(Intercept)", "familyLlama", "familyQwen", "categoryBeta", "categoryGamma",
                         "framingnegative"]  # the paper's coding: positive framing is the reference
    assert "familyLlama:categoryBeta" in terms and "familyQwen:categoryGamma:framingnegative" in terms
    tests = res["family_tests"]
    assert len(tests) == 3 * 2 * 2  # panels x (Llama, Qwen vs Gemma)
    assert {t["comparison"] for t in tests} == {"Llama vs Gemma", "Qwen vs Gemma"}
    assert all(t["welch_p_bonferroni"] == min(1.0, t["welch_p"] * 12) for t in tests)
    assert analysis.summary_text(res)
    capped = {**res, "family_tests": [{**t, "welch_p_bonferroni": 1.0} for t in tests]}
    lines = analysis.summary_text(capped).splitlines()[1:]
    assert lines and all("p = 1.00, Welch, Bonferroni-corrected and capped at 1; not significant" in ln
                         for ln in lines)  # a corrected p of 1 is never shown as if it were measured


def test_design_matrix_follows_r_column_order():
    df = pd.DataFrame({"a": ["p", "q", "r", "p"], "b": ["x", "y", "y", "x"]})
    X, names = analysis.design_matrix(df, ["a", "b"])
    assert names == ["(Intercept)", "aq", "ar", "by", "aq:by", "ar:by"]
    assert X[:, names.index("ar:by")].tolist() == [0, 0, 1, 0]


def test_permutation_test_is_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 1, 30), rng.normal(0, 1, 40)
    p1 = analysis.permutation_p(a, b, analysis.permutation_labels(70, 30, 2000, seed=7))
    p2 = analysis.permutation_p(a, b, analysis.permutation_labels(70, 30, 2000, seed=7))
    assert p1 == p2 and 1 / 2001 <= p1 <= 1


# -- the DuckDB fast path (what `analyze` and the app use) equals the pandas path ---------
def _store_from(scores: pd.DataFrame, path) -> Store:
    store = Store(path)
    for (m, key, fam), rows in scores.groupby(["model", "model_key", "family"]):
        store.upsert_model(key, m, "rm", fam)
        store.add_scores(key, "rm", rows[["prompt_id", "prompt", "response", "value"]])
    return store


@needs_reference
def test_store_fast_path_matches_reference(big2_store):
    store, _ = big2_store
    corpus = corpora.load("big2-nouns")
    fast = analysis.figure1_from_store(store, corpus.words, "big2-nouns", permutations=200, bootstrap=50).to_json()
    ref = json.loads(REFERENCE.read_text())
    assert fast["n_words"] == 263
    m = pd.DataFrame(fast["median_ranks"]).merge(pd.DataFrame(ref["median_ranks"]),
                                                 on=["model", "prompt_id", "category", "family", "framing"])
    assert len(m) == 1080 and (m["median_rank_x"] == m["median_rank_y"]).all()
    est = {t["term"]: t["estimate"] for t in fast["mixed_model"]["terms"]}
    for t in ref["mixed_model"]["terms"]:
        assert rel(est[t["term"]], t["estimate"]) < 1e-4


def test_store_fast_path_ties_missing_words_and_multi_category(tmp_path):
    words = pd.DataFrame({"word": ["a", "b", "c", "d", "b"], "category": ["X", "X", "Y", "Y", "Y"]})
    vals = {"a": 3.0, "b": 1.0, "c": 1.0, "d": 0.5, "zzz": 9.0}
    scores = synthetic_scores({"g": "gemma", "l": "llama"}, list(vals), ["best_ever_one", "worst_ever_one"],
                              value=lambda m, p, w: vals[w] * (1 if m == "g" else -1))
    scores = scores[~((scores["model"] == "l") & (scores["response"] == "a"))]
    store = _store_from(scores, tmp_path / "x.duckdb")
    fast = ranks.rank_summaries(store, words)["medians"].set_index(["model", "prompt_id", "category"])["median_rank"]
    slow = analysis.median_ranks(scores, words).set_index(["model", "prompt_id", "category"])["median_rank"]
    assert fast.sort_index().to_dict() == slow.sort_index().to_dict()
    assert fast[("g", "best_ever_one", "X")] == 1.75  # a=1, b=2.5 (tied with c)


def test_word_means_equal_scipy_ranks_per_prompt(tmp_path):
    """A model's top/bottom words (Compare): mean over the chosen prompts of the word's rank
    among the corpus words within each prompt (ties averaged), and its mean score."""
    from scipy.stats import rankdata
    words = pd.DataFrame({"word": ["a", "b", "c", "d", "b"], "category": ["X", "X", "Y", "Y", "Y"]})
    rng = np.random.default_rng(3)
    scores = synthetic_scores({"g": "gemma", "l": "llama"}, ["a", "b", "c", "d", "zzz"],
                              ["best_ever_one", "greatest_ever_one", "worst_ever_one"],
                              value=lambda m, p, w: float(rng.integers(0, 3)))  # many ties
    scores = scores[~((scores["prompt_id"] == "greatest_ever_one") & (scores["response"] == "a"))]
    store = _store_from(scores, tmp_path / "w.duckdb")
    pids = ["best_ever_one", "greatest_ever_one"]
    got = ranks.word_means(store, words, ["k:g"], pids).set_index("word")
    d = scores[(scores["model"] == "g") & scores["prompt_id"].isin(pids) & (scores["response"] != "zzz")].copy()
    d["rank"] = d.groupby("prompt_id")["value"].transform(lambda v: rankdata(-v.to_numpy()))
    want = d.groupby("response").agg(rank=("rank", "mean"), score=("value", "mean"), n=("rank", "size"))
    assert sorted(got.index) == ["a", "b", "c", "d"]
    for w, row in want.iterrows():
        assert got.loc[w, "rank"] == pytest.approx(row["rank"]) and got.loc[w, "score"] == pytest.approx(row["score"])
        assert got.loc[w, "n_prompts"] == row["n"]
    assert list(got["rank"]) == sorted(got["rank"])  # best first


def test_row_ranking_ranks_a_word_once_per_row_in_store_and_pandas(tmp_path):
    """The paper's MFD ranking: 'b' sits in two rows (X/virtue, Y/vice) and is ranked twice
    (tied with itself); word ranking ranks it once and counts it in both categories."""
    from core import ranks
    words = pd.DataFrame({"word": ["a", "b", "c", "b"], "category": ["X", "X", "Y", "Y"],
                          "subcategory": ["virtue", "virtue", "vice", "vice"]})
    vals = {"a": 3.0, "b": 2.0, "c": 1.0, "zzz": 9.0}
    scores = synthetic_scores({"g": "gemma", "l": "llama"}, list(vals), ["best_ever_one", "worst_ever_one"],
                              value=lambda m, p, w: vals[w])
    store = _store_from(scores, tmp_path / "r.duckdb")
    # rows ranked: a=1, b=2.5, b=2.5, c=4 -> X: median(1, 2.5) = 1.75; Y: median(2.5, 4) = 3.25
    row = ranks.rank_summaries(store, words, "row")
    assert row["n_words"] == 3
    assert row["medians"].groupby("category")["median_rank"].unique().map(list).to_dict() == {"X": [1.75], "Y": [3.25]}
    # words ranked: a=1, b=2, c=3 -> X: 1.5; Y: median(2, 3) = 2.5
    word = ranks.rank_summaries(store, words, "word")
    assert word["medians"].groupby("category")["median_rank"].unique().map(list).to_dict() == {"X": [1.5], "Y": [2.5]}
    # average ranks: per model, the median of its ranks over all rows and prompts of a framing
    avg = {(r["framing"], r["category"], r["model"]): r["median_rank"] for r in row["average"].to_dict("records")}
    assert avg[("positive", "X", "g")] == 1.75 and avg[("negative", "Y", "l")] == 3.25


def test_row_ranking_pandas_path_equals_store_path(tmp_path):
    words = pd.DataFrame({"word": list("abcdefgh") + ["b", "e"], "category": list("XXXXYYYY") + ["Y", "X"],
                          "subcategory": ["virtue"] * 8 + ["vice", "vice"]})
    ids = ["best_ever_one", "good_world_one", "worst_ever_one", "bad_time_please"]
    scores = synthetic_scores({"g1": "gemma", "g2": "gemma", "l1": "llama", "l2": "llama"}, list("abcdefgh"), ids,
                              seed=5)
    scores["value"] = scores["value"].round(1)  # ties
    store = _store_from(scores, tmp_path / "p.duckdb")
    slow = analysis.figure1(scores, words, "toy", permutations=0, bootstrap=0, ranking="row").to_json()
    fast = analysis.figure1_from_store(store, words, "toy", permutations=0, bootstrap=0, ranking="row").to_json()
    assert slow["n_words"] == fast["n_words"] == 8
    assert pd.DataFrame(slow["median_ranks"]).equals(pd.DataFrame(fast["median_ranks"]))
    assert slow["average_ranks"] == fast["average_ranks"] and len(fast["average_ranks"]) == 8


def test_average_ranks_table_has_the_family_difference():
    res = {"average_ranks": [
        {"framing": "positive", "category": "Agency", "family": "Gemma", "mean_rank": 132.5},
        {"framing": "positive", "category": "Agency", "family": "Llama", "mean_rank": 128.25},
        {"framing": "negative", "category": "Agency", "family": "Gemma", "mean_rank": 97.0},
        {"framing": "negative", "category": "Agency", "family": "Llama", "mean_rank": 103.5}]}
    t = analysis.average_ranks_table(res)
    assert t["framing"].tolist() == ["positive", "negative"]
    assert t["Llama − Gemma"].tolist() == [-4.25, 6.5]


def test_model_mean_ranks_are_each_models_mean_of_its_prompt_medians(big2_result):
    """The per-model Figure-1 value, from the published CSV with scipy (not core): within each
    prompt rank the corpus words (1 = highest, ties averaged), median per category, mean over
    the framing's prompts."""
    from scipy.stats import rankdata
    name = "Ray2333/GRM-gemma2-2B-rewardmodel-ft"
    raw = pd.read_csv(PAPER_DATA / "reward_model_scores" / "dict_big2_nouns"
                      / "big2_rewards_Ray2333_GRM-gemma2-2B-rewardmodel-ft.csv", keep_default_na=False)
    words = pd.read_csv(PAPER_DATA / "corpora" / "dict_big2_nouns.csv", keep_default_na=False)
    raw = raw[raw["response"].isin(set(words["token_decoded"]))].drop_duplicates("response")
    cat = dict(zip(words["token_decoded"], words["Category"]))
    per_prompt = []
    for pid in [p.prompt_id for p in prompts.paper_prompts()]:
        r = rankdata(-raw[pid].to_numpy(float), method="average")
        for c in ("Agency", "Communion"):
            per_prompt.append({"framing": prompts.framing_of(pid), "category": c,
                               "median": float(np.median(r[raw["response"].map(cat).to_numpy() == c]))})
    want = pd.DataFrame(per_prompt).groupby(["framing", "category"])["median"].mean()
    got = analysis.model_mean_ranks(pd.DataFrame(big2_result.median_ranks))
    got = got[got["model"] == name].set_index(["framing", "category"])
    assert len(got) == 4 and (got["n_prompts"] == 27).all()
    for idx, v in want.items():
        assert got.loc[idx, "mean_rank"] == pytest.approx(v, abs=1e-9)
    # family means average exactly these values, one per model
    per = analysis.model_mean_ranks(pd.DataFrame(big2_result.median_ranks))
    fm = per.groupby(["framing", "category", "family"])["mean_rank"].mean()
    for r in big2_result.family_means:
        assert fm.loc[(r["framing"], r["category"], r["family"])] == pytest.approx(r["mean_rank"], abs=1e-12)
