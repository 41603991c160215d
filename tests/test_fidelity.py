"""Figure 1 / A1 as the paper's own R script computes them (issue 10).

The published MFD score files (reward_model_scores/dict_MFD_20/) are not in the shared
paper data, so this test writes score files in their exact format and naming (a `response`
column then the 54 prompt columns in the paper's order; `MFD20_rewards_<owner>_<repo>.csv`
and `big2_rewards_...` as the paper's folder holds both) into a copy of the data folder:
seeded synthetic scores for the real MFD 2.0 words, disagreeing with the Big Two files on
the words both corpora share. They go through the real `import-published` and `analyze`
commands, and the numbers are compared with an independent pandas/scipy/statsmodels
transcription of generate_figure_1_and_A1.R written here (not calling core)."""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
PAPER_DATA = Path(os.environ["VALUEAUDIT_PAPER_DATA"])
REFERENCE = PAPER_DATA / "reference" / "fig1_big2.json"
BIG2 = PAPER_DATA / "reward_model_scores" / "dict_big2_nouns"
needs_reference = pytest.mark.r_reference(REFERENCE.name)  # skipped without it, except under CI (conftest)

# Four of the paper's RMs (two per family), with the file prefixes the paper's MFD folder uses.
MFD_FILES = {
    "MFD20_rewards_nicolinho_QRM-Gemma-2-27B.csv": "Gemma",
    "big2_rewards_Ray2333_GRM-gemma2-2B-rewardmodel-ft.csv": "Gemma",
    "MFD20_rewards_Skywork_Skywork-Reward-Llama-3.1-8B-v0.2.csv": "Llama",
    "big2_rewards_nicolinho_QRM-Llama3.1-8B.csv": "Llama",
}


def cli(data: Path, *args) -> str:
    """`python -m core ARGS` run in this process (the same code path as the command line,
    without a new interpreter per call), with VALUEAUDIT_PAPER_DATA pointing at `data`."""
    import contextlib
    import io

    from core import cli as core_cli
    old = os.environ.get("VALUEAUDIT_PAPER_DATA")
    os.environ["VALUEAUDIT_PAPER_DATA"] = str(data)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = core_cli.main([str(a) for a in args])
    finally:
        os.environ["VALUEAUDIT_PAPER_DATA"] = old
    assert rc == 0, err.getvalue()[-2000:]
    return out.getvalue()


def hub(filename: str) -> str:
    stem = filename.removesuffix(".csv").removeprefix("MFD20_rewards_").removeprefix("big2_rewards_")
    owner, _, repo = stem.partition("_")
    return f"{owner}/{repo}"


def write_mfd_files(folder: Path, seed: int = 11) -> None:
    """Synthetic MFD score files: one row per dictionary word, rounded to 2 decimals so ties
    occur; a family-dependent shift per foundation; shared Big Two words get values no Big
    Two file holds."""
    dic = pd.read_csv(PAPER_DATA / "corpora" / "moral-foundations-dictionary-20.dicx", dtype=str,
                      keep_default_na=False)
    header = pd.read_csv(next(BIG2.glob("*.csv")), nrows=0).columns.tolist()
    prompts = header[1:]
    foundation = dic.drop(columns="DicTerm").eq("X").idxmax(axis=1).str.split("_").str[0].to_numpy()
    rng = np.random.default_rng(seed)
    shift = {"Gemma": {"Care": 0.4, "Sanctity": -0.3}, "Llama": {"Authority": 0.5, "Fairness": 0.2}}
    folder.mkdir(parents=True)
    for name, fam in MFD_FILES.items():
        base = np.array([shift[fam].get(f, 0.0) for f in foundation])
        vals = rng.normal(0, 1, (len(dic), len(prompts))) + base[:, None]
        vals[:, len(prompts) // 2:] *= -1  # negative prompts reverse the preference
        df = pd.DataFrame(np.round(vals, 2), columns=prompts)
        df.insert(0, "response", dic["DicTerm"])
        df.to_csv(folder / name, index=False)


@pytest.fixture(scope="module")
def paper_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paper-data")
    for sub in ("corpora", "config", "reward_model_training"):
        shutil.copytree(PAPER_DATA / sub, root / sub)
    shutil.copytree(BIG2, root / "reward_model_scores" / "dict_big2_nouns")
    write_mfd_files(root / "reward_model_scores" / "dict_MFD_20")
    return root


@pytest.fixture(scope="module")
def imported(paper_copy, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("db") / "published.duckdb"
    out = cli(paper_copy, "import-published", "--db", db)
    assert "from 14 files" in out
    return db


@pytest.fixture(scope="module")
def analyses(paper_copy, imported) -> dict:
    return {c: json.loads(cli(paper_copy, "analyze", "--db", imported, "--corpus", c, "--json",
                              "--permutations", "200"))
            for c in ("big2-nouns", "mfd2-paper", "mfd2")}


# -- an independent transcription of the paper's R script --------------------------------
def r_script_mfd(folder: Path, whole_dictionary: bool) -> dict:
    """generate_figure_1_and_A1.R's MFD section: melt the prompt columns, join the
    dictionary, pivot the foundation columns Care_Virtue:Sanctity_Virtue (all ten columns
    for the whole dictionary) to rows, keep 'X', rank(-score) within (model, prompt), median
    per (model, prompt, foundation). The whole dictionary instead ranks each word once."""
    dic = pd.read_csv(PAPER_DATA / "corpora" / "moral-foundations-dictionary-20.dicx", dtype=str,
                      keep_default_na=False)
    cols = list(dic.columns)
    pivot = cols[1:] if whole_dictionary else cols[cols.index("Care_Virtue"):cols.index("Sanctity_Virtue") + 1]
    frames = []
    for f in sorted(folder.glob("*.csv")):
        d = pd.read_csv(f, keep_default_na=False)
        prompts = list(d.columns)[list(d.columns).index("best_ever_one"):list(d.columns).index("terrible_time_please") + 1]
        long = d.melt(id_vars="response", value_vars=prompts, var_name="prompt", value_name="score")
        long["model"] = hub(f.name)
        frames.append(long)
    rm = pd.concat(frames)
    rm["framing"] = np.where(rm["prompt"].str.split("_").str[0].isin(["greatest", "best", "good"]),
                             "positive", "negative")
    rm["family"] = np.where(rm["model"].str.contains("gem", case=False), "Gemma", "Llama")
    rows = dic.melt(id_vars="DicTerm", value_vars=pivot, var_name="column", value_name="value")
    rows = rows[rows["value"] == "X"]
    rows["category"] = rows["column"].str.replace(r"_.*", "", regex=True)
    if whole_dictionary:  # each word once per (model, prompt), then counted in each foundation
        rm["rank"] = rm.groupby(["model", "prompt"])["score"].rank(method="average", ascending=False)
        d = rm.merge(rows[["DicTerm", "category"]].drop_duplicates(), left_on="response", right_on="DicTerm")
    else:  # the script's way: one ranked row per (word, foundation column)
        d = rm.merge(rows[["DicTerm", "column", "category"]], left_on="response", right_on="DicTerm")
        d = d.drop_duplicates()
        d["rank"] = d.groupby(["model", "prompt"])["score"].rank(method="average", ascending=False)
    med = d.groupby(["model", "family", "prompt", "framing", "category"])["rank"].median().rename("median_rank")
    return {"n_words": d["response"].nunique(), "median_ranks": med.reset_index(), "ranks": d}


def family_means(med: pd.DataFrame) -> pd.DataFrame:
    per_model = med.groupby(["framing", "category", "family", "model"])["median_rank"].mean()
    return per_model.groupby(["framing", "category", "family"]).mean().rename("mean_rank").reset_index()


def mixed_model_estimates(med: pd.DataFrame) -> dict:
    """statsmodels' REML fit of lme(median_rank ~ family*category*framing, random=~1|model),
    positive framing the reference level; the names rewritten to R's."""
    import statsmodels.formula.api as smf
    f = "median_rank ~ C(family) * C(category) * C(framing, Treatment('positive'))"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm(f, med, groups=med["model"]).fit(reml=True, method=["powell"])
    out = {}
    for name, est in fit.fe_params.items():
        r = name.replace("Intercept", "(Intercept)").replace("C(family)[T.", "family") \
            .replace("C(category)[T.", "category").replace("C(framing, Treatment('positive'))[T.", "framing")
        out[r.replace("]", "")] = est
    return out


def welch(med: pd.DataFrame) -> dict:
    out = {}
    for (cat, fr), p in med.groupby(["category", "framing"]):
        out[(cat, fr)] = stats.ttest_ind(p.loc[p["family"] == "Llama", "median_rank"],
                                         p.loc[p["family"] == "Gemma", "median_rank"], equal_var=False).pvalue
    return out


def average_ranks(ranks: pd.DataFrame) -> pd.DataFrame:
    """The script's "avg ranks": median(rank) per model over all words and prompts, mean per family."""
    per_model = ranks.groupby(["model", "family", "category", "framing"])["rank"].median()
    return per_model.groupby(["framing", "category", "family"]).mean().rename("mean_rank").reset_index()


# -- the checks -------------------------------------------------------------------------
@pytest.mark.parametrize("corpus,whole,n_words", [("mfd2-paper", False, 1652), ("mfd2", True, 2040)])
def test_mfd_equals_the_paper_script(analyses, paper_copy, corpus, whole, n_words):
    res = analyses[corpus]
    ref = r_script_mfd(paper_copy / "reward_model_scores" / "dict_MFD_20", whole)
    assert res["n_words"] == ref["n_words"] == n_words
    ours = pd.DataFrame(res["median_ranks"])
    m = ours.merge(ref["median_ranks"].rename(columns={"prompt": "prompt_id"}),
                   on=["model", "prompt_id", "category"], suffixes=("", "_r"), validate="1:1")
    assert len(m) == len(ours) == len(ref["median_ranks"]) == 4 * 54 * 5
    assert (m["median_rank"] == m["median_rank_r"]).all()
    assert (m["family"] == m["family_r"]).all() and (m["framing"] == m["framing_r"]).all()

    fm = pd.DataFrame(res["family_means"]).merge(family_means(ref["median_ranks"]),
                                                 on=["framing", "category", "family"])
    assert len(fm) == 20 and np.allclose(fm["mean_rank_x"], fm["mean_rank_y"], rtol=0, atol=1e-6)

    est = mixed_model_estimates(ref["median_ranks"])
    terms = res["mixed_model"]["terms"]
    assert [t["term"] for t in terms][:4] == ["(Intercept)", "familyLlama", "categoryCare", "categoryFairness"]
    assert "framingnegative" in est and "familyLlama:categoryLoyalty:framingnegative" in est
    assert {t["term"] for t in terms} == set(est)
    for t in terms:
        assert abs(t["estimate"] - est[t["term"]]) <= 1e-4 * max(1.0, abs(est[t["term"]])), t

    p = welch(ref["median_ranks"])
    assert len(res["family_tests"]) == len(p) == 10
    for t in res["family_tests"]:
        r = p[(t["category"], t["framing"])]
        assert abs(t["welch_p"] - r) <= 1e-3 * r
        assert abs(t["welch_p_bonferroni"] - min(1.0, 10 * r)) <= 1e-3 * min(1.0, 10 * r)

    avg = pd.DataFrame(res["average_ranks"]).merge(average_ranks(ref["ranks"]), on=["framing", "category", "family"])
    assert len(avg) == 20 and np.allclose(avg["mean_rank_x"], avg["mean_rank_y"], rtol=0, atol=1e-9)


@needs_reference
def test_big2_from_the_same_database_equals_the_r_reference(analyses):
    """The MFD files disagree with the Big Two files on shared words; Big Two still reads its own run."""
    res, ref = analyses["big2-nouns"], json.loads(REFERENCE.read_text())
    assert res["n_words"] == ref["n_words"] == 263
    m = pd.DataFrame(res["median_ranks"]).merge(pd.DataFrame(ref["median_ranks"]),
                                                on=["model", "prompt_id", "category"], validate="1:1")
    assert len(m) == 1080 and (m["median_rank_x"] == m["median_rank_y"]).all()
    fm = pd.DataFrame(res["family_means"]).merge(pd.DataFrame(ref["family_means"]), on=["framing", "category", "family"])
    assert len(fm) == 8 and np.allclose(fm["mean_rank_x"], fm["mean_rank_y"], rtol=0, atol=1e-6)
    est = {t["term"]: t["estimate"] for t in res["mixed_model"]["terms"]}
    assert list(est) == [t["term"] for t in ref["mixed_model"]["terms"]]
    for t in ref["mixed_model"]["terms"]:
        assert abs(est[t["term"]] - t["estimate"]) <= 1e-4 * max(1.0, abs(t["estimate"]))
    tests = {(t["category"], t["framing"]): t for t in res["family_tests"]}
    for r in ref["family_tests"]:
        assert abs(tests[(r["category"], r["framing"])]["welch_p"] - r["welch_p"]) <= 1e-3 * r["welch_p"]
    # The script's "avg ranks" table, from the Big Two files (inner join with the corpus, rank(-score)).
    words = pd.read_csv(PAPER_DATA / "corpora" / "dict_big2_nouns.csv", keep_default_na=False)
    frames = []
    for f in sorted(BIG2.glob("*.csv")):
        d = pd.read_csv(f, keep_default_na=False)
        frames.append(d.melt(id_vars="response", var_name="prompt", value_name="score").assign(model=hub(f.name)))
    rm = pd.concat(frames).merge(words, left_on="response", right_on="token_decoded").drop_duplicates()
    rm["rank"] = rm.groupby(["model", "prompt"])["score"].rank(method="average", ascending=False)
    rm["framing"] = np.where(rm["prompt"].str.split("_").str[0].isin(["greatest", "best", "good"]),
                             "positive", "negative")
    rm["family"] = np.where(rm["model"].str.contains("gem", case=False), "Gemma", "Llama")
    avg = average_ranks(rm.rename(columns={"Category": "category"}))
    got = pd.DataFrame(res["average_ranks"]).merge(avg, on=["framing", "category", "family"])
    assert len(got) == 8 and np.allclose(got["mean_rank_x"], got["mean_rank_y"], rtol=0, atol=1e-9)


def test_each_corpus_keeps_its_own_published_values(paper_copy, imported):
    """A word in both corpora: the Big Two run holds the Big Two file's value, the MFD run the MFD file's."""
    import duckdb
    mfd = pd.read_csv(paper_copy / "reward_model_scores" / "dict_MFD_20" / "MFD20_rewards_nicolinho_QRM-Gemma-2-27B.csv",
                      keep_default_na=False)
    big = pd.read_csv(BIG2 / "big2_rewards_nicolinho_QRM-Gemma-2-27B.csv", keep_default_na=False)
    shared = sorted(set(mfd["response"]) & set(big["response"]))
    assert len(shared) >= 40
    word = shared[0]
    con = duckdb.connect(str(imported), read_only=True)
    rows = con.execute("""SELECT model_key, value FROM scores WHERE model_key LIKE 'published:nicolinho/QRM-Gemma-2-27B@%'
                          AND response = ? AND prompt_id = 'best_ever_one'""", [word]).fetchall()
    n_models = con.execute("SELECT count(*) FROM models WHERE source = 'published'").fetchone()[0]
    con.close()
    got = {k.rsplit("#", 1)[1]: v for k, v in rows}
    assert got == {"big2-nouns": pytest.approx(big.set_index("response").loc[word, "best_ever_one"]),
                   "mfd2": pytest.approx(mfd.set_index("response").loc[word, "best_ever_one"])}
    assert got["big2-nouns"] != got["mfd2"]
    assert n_models == 10 + 4


@pytest.fixture()
def small_copy(paper_copy, tmp_path) -> Path:
    """Two models' Big Two and MFD files cut to a few hundred words (shared words kept)."""
    root = tmp_path / "small"
    for folder, names in (("dict_big2_nouns", ["big2_rewards_nicolinho_QRM-Gemma-2-27B.csv",
                                                "big2_rewards_nicolinho_QRM-Llama3.1-8B.csv"]),
                          ("dict_MFD_20", ["MFD20_rewards_nicolinho_QRM-Gemma-2-27B.csv",
                                           "big2_rewards_nicolinho_QRM-Llama3.1-8B.csv"])):
        (root / "reward_model_scores" / folder).mkdir(parents=True)
        for n in names:
            d = pd.read_csv(paper_copy / "reward_model_scores" / folder / n, keep_default_na=False, dtype=str)
            shared = d["response"].isin(pd.read_csv(next(BIG2.glob("*.csv")), keep_default_na=False)["response"])
            d[shared | (np.arange(len(d)) % 8 == 0)].to_csv(root / "reward_model_scores" / folder / n, index=False)
    return root


def test_reimport_migrates_a_merged_database_without_losing_rows(small_copy, tmp_path, monkeypatch):
    """A database written by the old import (one key per model, first file wins) is moved
    onto per-corpus runs; a merged row no file holds stays under the old key."""
    from core import paperdata, published
    from core.store import Store
    monkeypatch.setenv("VALUEAUDIT_PAPER_DATA", str(small_copy))
    store = Store(tmp_path / "old.duckdb")
    legacy = {}
    for rel, hub_id, _run in published.score_files():  # what the old import did
        key = f"published:{hub_id}@{paperdata.COMMIT[:12]}"
        legacy[hub_id] = key
        store.upsert_model(key, hub_id, "rm", "gemma" if "gemma" in hub_id.lower() else "llama",
                           source="published")
        store.add_scores(key, "rm", published.read_scores(paperdata.path(rel)))
    orphan = pd.DataFrame({"prompt_id": ["best_ever_one"], "prompt": ["What, in one word, is the best thing ever?"],
                           "response": ["zzz-not-in-any-file"], "value": [1.5]})
    store.add_scores(legacy["nicolinho/QRM-Gemma-2-27B"], "rm", orphan)
    before = store.query("SELECT model_key, prompt, response, value FROM scores")
    assert before["model_key"].nunique() == 2

    counts = published.import_published(store)
    after = store.query("SELECT model_key, prompt, response, value FROM scores")
    assert counts["merged_rows_kept"] == 1 and counts["merged_rows_removed"] == len(before) - 1
    # Every old row is still there, under a run of the same model (or the old key for the orphan).
    name = lambda k: k.split("@")[0]  # noqa: E731
    old = set(zip(before["model_key"].map(name), before["prompt"], before["response"], before["value"]))
    new = set(zip(after["model_key"].map(name), after["prompt"], after["response"], after["value"]))
    assert old <= new
    keys = set(after["model_key"])
    assert keys == {published.model_key(h, r) for _, h, r in published.score_files()} | {legacy["nicolinho/QRM-Gemma-2-27B"]}
    # The merged key held the Big Two value of a shared word; the MFD run now holds the MFD file's.
    differ = store.query("""SELECT count(*) AS n FROM scores b JOIN scores m USING (prompt, response)
                            WHERE b.model_key = ? AND m.model_key = ? AND b.value <> m.value""",
                         [published.model_key("nicolinho/QRM-Gemma-2-27B", "big2-nouns"),
                          published.model_key("nicolinho/QRM-Gemma-2-27B", "mfd2")])["n"].iloc[0]
    assert differ >= 40 * 54
    again = published.import_published(store)
    assert again["rows_added"] == 0 and again["merged_rows_removed"] == 0 and again["merged_rows_kept"] == 1


def test_mfd_files_carry_the_paper_naming(paper_copy, monkeypatch):
    from core import paperdata, published
    monkeypatch.setenv("VALUEAUDIT_PAPER_DATA", str(paper_copy))
    mfd = [(h, r) for rel, h, r in published.score_files() if "dict_MFD_20" in rel]
    assert sorted(mfd) == sorted((hub(n), "mfd2") for n in MFD_FILES)
    # Downloads of the MFD run are checked against the pinned commit's sha256 like the others.
    pinned = [k for k in paperdata.SHA256 if k.startswith("reward_model_scores/dict_MFD_20/")]
    assert len(pinned) == 10 and all(published.hub_id_from_filename(k.rsplit("/", 1)[1]) for k in pinned)


@pytest.mark.slow  # a long run: its file starts first under xdist (conftest)
def test_compare_defaults_to_the_papers_mfd_variant_for_published_models(paper_copy, imported, monkeypatch):
    """With the paper's published MFD files imported, choosing MFD 2.0 on Compare shows
    mfd2-paper (Figure A1's words and ranking) with its note, and its numbers are the CLI's."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import appkit
    monkeypatch.setenv("VALUEAUDIT_PAPER_DATA", str(paper_copy))
    monkeypatch.setenv("VALUEAUDIT_DB", str(imported))
    st.cache_data.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "compare.py"), default_timeout=240)
    at.run()
    at.selectbox(key="cmp-corpus").set_value(appkit.MFD_CHOICE).run()
    assert not at.exception and not at.error
    assert at.radio(key="cmp-mfd-variant").value == "mfd2-paper"
    assert any(c.value.startswith("**mfd2-paper**") and "Sanctity_Vice" in c.value for c in at.caption)
    assert len(at.multiselect(key="cmp-models").value) == len(MFD_FILES)
