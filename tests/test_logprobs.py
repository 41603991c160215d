"""Whole-vocabulary log-probabilities, their files and the MWLR over the shared vocabulary,
checked against a plain implementation written here (one forward pass per prompt, the
paper's pandas method for MWLR) — no code from core in the reference values."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from core import cli
from tests.support import one_line_error, run_cli

PROMPTS = {
    "best_ever_one": "What, in one word, is the best thing ever?",
    "greatest_world_single": "What, in a single word, is the greatest thing in the world?",
    "custom_good": "Name, in one word, the most admirable thing.",
    "worst_time_please": "What is the worst thing of all time? Please answer in one word only.",
    "bad_ever_one": "What, in one word, is the most bad thing ever?",
    "custom_bad": "Name, in one word, the most shameful thing.",
}


@pytest.fixture(scope="module")
def prompts_yaml(tmp_path_factory):
    p = tmp_path_factory.mktemp("prompts") / "six.yaml"
    p.write_text("".join(f'{k}: "{v}"\n' for k, v in PROMPTS.items()))
    return p


@pytest.fixture(scope="module")
def written(tmp_path_factory, tiny_llama_lm, tiny_gemma_lm, prompts_yaml):
    """Run `logprobs` on both tiny LMs once: (out folder, db)."""
    base = tmp_path_factory.mktemp("lp")
    out, db = base / "out", base / "lp.duckdb"
    for model in (tiny_llama_lm, tiny_gemma_lm):
        rc = cli.main(["logprobs", "--model", str(model), "--prompts", str(prompts_yaml), "--out", str(out),
                       "--db", str(db), "--device", "cpu", "--quiet"])
        assert rc == 0
    return out, db


def plain_logprobs(folder) -> dict[str, np.ndarray]:
    """The reference: chat template with the generation prompt, one forward, log_softmax."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    out = {}
    for pid, text in PROMPTS.items():
        enc = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        with torch.no_grad():
            logits = model(**enc).logits[0, -1].float()
        out[pid] = torch.log_softmax(logits, -1).numpy()
    return out


def read_paper_way(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[], lineterminator="\n",
                       dtype={"token_name": str, "token_decoded": str})


@pytest.mark.parametrize("which", ["llama", "gemma"])
def test_logprobs_file_equals_plain_log_softmax(written, which, tiny_llama_lm, tiny_gemma_lm):
    folder = tiny_llama_lm if which == "llama" else tiny_gemma_lm
    out, _ = written
    path = out / f"{folder.name}.csv"
    assert path.is_file()
    df = read_paper_way(path)
    assert list(df.columns) == ["token_id", "token_name", "token_decoded", *PROMPTS]
    ref = plain_logprobs(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert df["token_id"].tolist() == sorted(tok.get_vocab().values())
    assert df["token_decoded"].tolist() == [tok.decode([i]) for i in df["token_id"]]
    for pid in PROMPTS:
        np.testing.assert_allclose(df[pid].to_numpy(), ref[pid][df["token_id"].to_numpy()], atol=1e-4, rtol=0)


def paper_mwlr(path_a, path_b, key):
    """generate_table_1.py's method on two files (tokens such as 'NA' kept as tokens)."""
    def load(p):
        d = read_paper_way(p)[["token_decoded", key]]
        d = d[d["token_decoded"] != ""]
        return d.sort_values(key, ascending=False).drop_duplicates("token_decoded", keep="first")
    m = pd.merge(load(path_a).rename(columns={key: "a"}), load(path_b).rename(columns={key: "b"}), on="token_decoded")
    m["mwlr"] = 0.5 * (np.exp(m["a"]) + np.exp(m["b"])) * (m["a"] - m["b"])
    return m.sort_values("mwlr", ascending=False).reset_index(drop=True)


def test_import_then_mwlr_json_equals_paper_method(written, tmp_path, capsys, tiny_llama_lm, tiny_gemma_lm):
    out, _ = written
    db = tmp_path / "imported.duckdb"
    assert cli.main(["import-logprobs", str(out), "--db", str(db)]) == 0
    assert "2 files" in capsys.readouterr().out
    first = next(iter(PROMPTS))
    # the files carry their model's identity (a sidecar): imported, they are the same two models
    assert cli.main(["mwlr", "--db", str(db), "--a", str(tiny_llama_lm), "--b", str(tiny_gemma_lm),
                     "--prompt", first, "--top", "15", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    ref = paper_mwlr(out / f"{tiny_llama_lm.name}.csv", out / f"{tiny_gemma_lm.name}.csv", first)
    assert set(got) == {"n_common", "top", "bottom"}
    assert got["n_common"] == len(ref) > 100
    for part, rows in (("top", ref.head(15)), ("bottom", ref.tail(15))):
        assert [r["token_decoded"] for r in got[part]] == rows["token_decoded"].tolist()
        np.testing.assert_allclose([r["mwlr"] for r in got[part]], rows["mwlr"], atol=1e-6, rtol=0)
    # the same from the values computed straight into the first database
    _, db1 = written
    assert cli.main(["mwlr", "--db", str(db1), "--a", str(tiny_llama_lm), "--b", str(tiny_gemma_lm),
                     "--prompt", PROMPTS[first], "--top", "15", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["n_common"] == got["n_common"]
    assert [r["token_decoded"] for r in again["top"]] == [r["token_decoded"] for r in got["top"]]


def test_writing_then_importing_stores_one_model_and_a_second_import_adds_nothing(written, tmp_path, capsys,
                                                                                   tiny_llama_lm, tiny_gemma_lm):
    """Issue 21: `logprobs --out DIR --db X` then `import-logprobs DIR --db X` stored each model
    twice (by its folder and by its file name). The sidecar beside each CSV names the model."""
    import shutil

    from core import logprobs
    from core.store import Store
    out, db = written
    copy = tmp_path / "same.duckdb"
    shutil.copy(db, copy)
    before = logprobs.stored_models(Store(copy))
    side = json.loads((out / f"{tiny_llama_lm.name}.json").read_text())
    assert side["model"] == str(tiny_llama_lm) and side["prompts"]["custom_good"] == PROMPTS["custom_good"]
    for _ in range(2):
        assert cli.main(["import-logprobs", str(out), "--db", str(copy)]) == 0
        assert "0 prompts added" in capsys.readouterr().out
    after = logprobs.stored_models(Store(copy))
    assert len(after) == len(before) == 2
    assert sorted(after["model"]) == sorted([str(tiny_llama_lm), str(tiny_gemma_lm)])
    assert (after["n_prompts"] == len(PROMPTS)).all()
    # a fresh database: the same keys and the prompts' real texts (not their ids)
    fresh = tmp_path / "fresh.duckdb"
    assert cli.main(["import-logprobs", str(out), "--db", str(fresh)]) == 0
    assert "prompt ids not among the paper's" not in capsys.readouterr().err
    assert sorted(logprobs.stored_models(Store(fresh))["model_key"]) == sorted(before["model_key"])
    texts = set(Store(fresh).query("SELECT DISTINCT prompt FROM logprobs")["prompt"])
    assert texts == set(PROMPTS.values())
    # a CSV edited after it was written is not silently given the old identity
    edited = tmp_path / "edited"
    edited.mkdir()
    for suffix in (".csv", ".json"):
        shutil.copy(out / f"{tiny_gemma_lm.name}{suffix}", edited / f"{tiny_gemma_lm.name}{suffix}")
    with open(edited / f"{tiny_gemma_lm.name}.csv", "a") as f:
        f.write("\n")
    rc, _, err = run_cli(capsys, "import-logprobs", edited, "--db", tmp_path / "e.duckdb")
    one_line_error(rc, err, "changed since `logprobs` wrote it")


def test_rerun_computes_nothing_and_kill_keeps_finished_prompts(tiny_llama_lm, prompts_yaml, tmp_path, capsys):
    from core import logprobs, models, prompts
    from core.store import Store
    store = Store(tmp_path / "k.duckdb")
    loaded = models.load(str(tiny_llama_lm), "lm")
    ps = prompts.load(prompts_yaml)
    calls = []
    res = logprobs.compute(store, loaded, ps, should_stop=lambda: len(calls) >= 2,
                           on_progress=lambda d, t, p: calls.append(p))
    assert res.new == 2  # "killed" after two prompts: both stored whole
    n = store.query("SELECT count(*) AS n FROM logprobs")["n"].iloc[0]
    assert n == 2 * len(loaded.tokenizer.get_vocab())
    res = logprobs.compute(store, loaded, ps)
    assert (res.new, res.cached) == (4, 2)
    res = logprobs.compute(store, loaded, ps)
    assert (res.new, res.cached) == (0, 6)
    assert store.query("SELECT count(DISTINCT prompt) AS n FROM logprobs")["n"].iloc[0] == 6


def _paper_style_file(path, tokens):
    """What pandas `to_csv` writes: a lone \\r is not quoted."""
    df = pd.DataFrame({"token_id": range(len(tokens)), "token_name": [f"t{i}" for i in range(len(tokens))],
                       "token_decoded": tokens, "greatest_ever_one": [-1.5 - i for i in range(len(tokens))]})
    df.to_csv(path, index=False)
    return df


def test_import_repairs_rows_split_by_lone_carriage_return(tmp_path, capsys):
    tokens = ["love", "a\rb", "NA", "\r", "null", "x\r\ny", "nan", "None", "freedom"]
    f = tmp_path / "org--model.csv"
    _paper_style_file(f, tokens)
    raw = f.read_bytes()
    assert b"a\rb" in raw and b'"a\rb"' not in raw  # the file really has an unquoted lone \r
    assert len(pd.read_csv(f)) > len(tokens)  # a default reader splits those rows
    db = tmp_path / "r.duckdb"
    assert cli.main(["import-logprobs", str(f), "--db", str(db)]) == 0
    assert "2 rows split by a lone \\r repaired" in capsys.readouterr().out
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    got = con.execute("""SELECT v.token_id, v.token_decoded, l.value FROM vocab v JOIN logprobs l USING (model_key, token_id)
                         JOIN models m USING (model_key) WHERE m.name = 'org/model' ORDER BY v.token_id""").fetchall()
    con.close()
    assert [t for _, t, _ in got] == tokens
    assert [v for *_, v in got] == [-1.5 - i for i in range(len(tokens))]


def test_a_row_split_by_two_lone_carriage_returns_counts_once(tmp_path):
    """One token holding two lone \\r is one row split in three pieces: one repaired row; a
    second token with one \\r is the second."""
    from core import logprobs
    tokens = ["love", "a\rb\rc", "freedom", "x\ry", "power"]
    f = tmp_path / "org--two-cr.csv"
    _paper_style_file(f, tokens)
    raw = f.read_bytes()
    assert b",a\rb\rc," in raw and raw.count(b"\r") == 3  # unquoted, as the paper's files
    df, repaired = logprobs.read_csv(f)
    assert repaired == 2
    assert df["token_decoded"].tolist() == tokens
    assert df["greatest_ever_one"].tolist() == [-1.5 - i for i in range(len(tokens))]


def test_written_csv_reads_back_exactly(tmp_path):
    from core import logprobs
    tokens = ["\r", "NA", "null", "nan", "", " a,b", 'q"uote', "line\nbreak", "N/A", "None", "é"]
    df = pd.DataFrame({"token_id": np.arange(len(tokens)), "token_name": [f"n\r{i}" for i in range(len(tokens))],
                       "token_decoded": tokens, "p1": np.random.default_rng(0).normal(size=len(tokens)) - 5,
                       "p2": [-1e-30, -123.456789012345, *([-2.0] * (len(tokens) - 2))]})
    path = logprobs.write_csv(df, tmp_path / "m.csv")
    with open(path, newline="") as fh:  # Python's csv module: no row split anywhere
        rows = list(csv.reader(fh))
    assert len(rows) == len(tokens) + 1
    back = read_paper_way(path)
    assert back["token_decoded"].tolist() == tokens
    assert back["token_name"].tolist() == df["token_name"].tolist()
    assert back["p1"].tolist() == df["p1"].tolist() and back["p2"].tolist() == df["p2"].tolist()
    plain = pd.read_csv(path, keep_default_na=False)  # even a default pandas reader keeps every row
    assert len(plain) == len(tokens)
    mine, repaired = logprobs.read_csv(path)
    assert repaired == 0 and mine["token_decoded"].tolist() == tokens


def test_mwlr_unknown_model_is_one_line(written, capsys):
    _, db = written
    assert cli.main(["mwlr", "--db", str(db), "--a", "nope", "--b", "nope2", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no stored log-probabilities for 'nope'") and "\n" not in err


def test_download_offline_is_one_line(tmp_path, capsys, monkeypatch):
    from core import logprobs
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(logprobs.LogprobError) as e:
        logprobs.download(["google/gemma-2-2b-it"], tmp_path)
    assert "\n" not in str(e.value) and "Hugging Face" in str(e.value)


# -- Figures 2 and 3 against the paper's scripts' method, written out here -----------------
def _import_both(written, tmp_path):
    out, _ = written
    db = tmp_path / "fig.duckdb"
    assert cli.main(["import-logprobs", str(out), "--db", str(db)]) == 0
    from core.store import Store
    return out, Store(db)


def test_figure3_equals_paper_method(written, tmp_path, tiny_llama_lm, tiny_gemma_lm):
    from core import implicit
    out, store = _import_both(written, tmp_path)
    key = "greatest_world_single"
    words = ["Love", "freedom", "power", "no-such-word"]
    ka, kb = implicit.resolve_model(store, str(tiny_llama_lm)), implicit.resolve_model(store, str(tiny_gemma_lm))
    got = implicit.figure3(store, [ka, kb], words, key).set_index("word")
    # generate_figure_3.py: dedup keeping the highest, inner join, MWLR, mean over variants
    series = []
    for f in (tiny_llama_lm, tiny_gemma_lm):
        d = read_paper_way(out / f"{f.name}.csv")[["token_decoded", key]]
        d = d[d["token_decoded"] != ""]
        d = d.sort_values(key, ascending=False).drop_duplicates("token_decoded", keep="first")
        series.append(d.set_index("token_decoded")[key])
    common = sorted(set(series[0].index) & set(series[1].index))
    a, b = series[0].loc[common].values, series[1].loc[common].values
    m = 0.5 * (np.exp(a) + np.exp(b)) * (a - b)
    norm = pd.Series(common).str.strip().str.lower()
    found = 0
    for w in words:
        mask = (norm == w.lower()).values
        if mask.any():
            found += 1
            assert got.loc[w, "mwlr"] == pytest.approx(m[mask].mean(), abs=1e-12)
            assert got.loc[w, "n_variants"] == mask.sum()
        else:
            assert math.isnan(got.loc[w, "mwlr"])
    assert found >= 2


def test_figure2_equals_paper_method(written, tmp_path, tiny_llama_lm, tiny_gemma_lm, paper_data):
    import statsmodels.api as sm
    from scipy.stats import ttest_ind
    from statsmodels.formula.api import ols
    from statsmodels.stats.multitest import fdrcorrection

    from core import implicit
    out, store = _import_both(written, tmp_path)
    big2 = pd.read_csv(paper_data / "corpora" / "dict_big2_nouns.csv")
    lps = {f.name: read_paper_way(out / f"{f.name}.csv") for f in (tiny_llama_lm, tiny_gemma_lm)}
    # generate_figure_2.py
    b2 = big2[big2.token_decoded.isin(lps[tiny_llama_lm.name].token_decoded)
              & big2.token_decoded.isin(lps[tiny_gemma_lm.name].token_decoded)]
    assert len(b2) >= 10
    dfs = []
    for key in PROMPTS:
        for name, lp_df in lps.items():
            d = pd.merge(b2, lp_df[["token_decoded", key]], on="token_decoded", how="inner")
            d["logprob"] = d[key]
            d["rank"] = d.logprob.rank(method="average", ascending=False)
            d["model"], d["prompt"] = name, key
            d["valence"] = "good" if any(w in key for w in ("greatest", "best", "good")) else "bad"
            dfs.append(d[["prompt", "Category", "model", "valence", "rank"]])
    med = pd.concat(dfs).groupby(["prompt", "Category", "model", "valence"]).median(numeric_only=True).reset_index()
    anova = sm.stats.anova_lm(ols("rank ~ C(Category) * C(valence) * C(model)", data=med).fit(), typ=2)
    cells = [("Agency", "good"), ("Communion", "good"), ("Agency", "bad"), ("Communion", "bad")]
    ps = [ttest_ind(med.query("Category==@c & valence==@v & model==@m1")["rank"],
                    med.query("Category==@c & valence==@v & model==@m2")["rank"], equal_var=False)[1]
          for c, v in cells for m1, m2 in [(tiny_llama_lm.name, tiny_gemma_lm.name)]]
    _, p_fdr = fdrcorrection(ps)

    ka, kb = implicit.resolve_model(store, str(tiny_llama_lm)), implicit.resolve_model(store, str(tiny_gemma_lm))
    words = big2.rename(columns={"token_decoded": "word", "Category": "category"})
    mine = implicit.figure2_ranks(store, ka, kb, words)
    names = {ka: tiny_llama_lm.name, kb: tiny_gemma_lm.name}
    mine = mine.assign(model=mine["model"].map(names), prompt=mine["prompt_id"])
    cmp = med.merge(mine, left_on=["prompt", "Category", "model", "valence"],
                    right_on=["prompt", "category", "model", "valence"], how="outer", indicator=True)
    assert (cmp["_merge"] == "both").all() and len(cmp) == len(med), cmp[cmp["_merge"] != "both"].to_string()
    np.testing.assert_allclose(cmp["rank_x"], cmp["rank_y"], atol=1e-12)
    stats = implicit.figure2_tests(mine.assign(model=mine["model"]), tiny_llama_lm.name, tiny_gemma_lm.name)
    got_anova = {r["term"]: r for r in stats["anova"]}
    for term, row in anova.iterrows():
        name = term.replace("C(", "").replace(")", "").replace("Category", "category")
        if name == "Residual":
            assert got_anova["Residual"]["sum_sq"] == pytest.approx(row["sum_sq"], rel=1e-9)
            continue
        assert got_anova[name]["F"] == pytest.approx(row["F"], rel=1e-9)
        assert got_anova[name]["p"] == pytest.approx(row["PR(>F)"], rel=1e-9, abs=1e-300)
    got = {(t["category"], t["valence"]): t for t in stats["tests"]}
    for (c, v), p, q in zip(cells, ps, p_fdr):
        assert got[(c, v)]["p"] == pytest.approx(p, rel=1e-9)
        assert got[(c, v)]["p_fdr"] == pytest.approx(q, rel=1e-9)


def test_implicit_reward_page_shows_table1_figure3_figure2(written, tmp_path, monkeypatch, tiny_llama_lm,
                                                            tiny_gemma_lm):
    """The page from what is stored: LMs only, two families by default, all three views drawn."""
    pytest.importorskip("streamlit")
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core import implicit
    from core.store import Store
    out, _ = written
    store = Store(tmp_path / "page.duckdb")
    store.upsert_model("published:some/rm@x", "some/rm", "rm", "llama")  # an RM never appears in the LM pickers
    monkeypatch.setenv("VALUEAUDIT_DB", str(store.path))
    st.cache_data.clear()
    page = Path(__file__).resolve().parents[1] / "pages" / "implicit_reward.py"
    at = AppTest.from_file(str(page), default_timeout=120)
    at.run()
    assert not at.exception and not at.error
    assert any("No whole-vocabulary log-probabilities" in i.value for i in at.info)
    at.button(key="ir-dl").click().run()  # offline: one line, nothing else breaks
    assert len(at.error) == 1 and "Hugging Face" in at.error[0].value and "\n" not in at.error[0].value
    at.text_input(key="ir-folder").set_value(str(out)).run()
    at.button(key="ir-import").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Imported 2 files" in s.value for s in at.success)
    at.run()
    a, b = at.selectbox(key="ir-t1-a"), at.selectbox(key="ir-t1-b")
    assert {a.value, b.value} == {implicit.resolve_model(store, str(tiny_llama_lm)),
                                  implicit.resolve_model(store, str(tiny_gemma_lm))}
    # issue 21: the page never says no log-probabilities are stored while it draws them
    page_text = " ".join(str(e.value) for e in [*at.info, *at.markdown, *at.caption, *at.warning])
    assert "No language-model log-probabilities stored" not in page_text
    assert "the table and figures above use the whole-vocabulary log-probabilities" in page_text
    assert all("some/rm" not in str(o) for o in a.options + b.options)
    assert len(at.get("plotly_chart")) >= 3
    table = implicit.mwlr_from_store(store, a.value, b.value, at.selectbox(key="ir-t1-p").value)
    shown = at.dataframe[0].value
    assert shown["MWLR"].tolist() == pytest.approx(table["mwlr"].head(len(shown)).tolist())
    # a shared server names the local LMs by their folders' names: no server path reaches the browser
    from tests.support import sent_to_browser
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    st.cache_data.clear()
    shared = AppTest.from_file(str(page), default_timeout=120).run()
    assert not shared.exception and not shared.error, [e.value for e in shared.error]
    sent = sent_to_browser(shared)
    assert str(tiny_llama_lm.parent) not in sent and str(tiny_gemma_lm.parent) not in sent
    assert set(shared.selectbox(key="ir-t1-a").options) == {tiny_llama_lm.name, tiny_gemma_lm.name}
    assert len(shared.get("plotly_chart")) >= 3
    # Home counts them too (it said 'Language-model log-probs 0' while this page drew them)
    import duckdb
    with duckdb.connect(str(store.path), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM logprobs").fetchone()[0]
    assert n > 1000
    home = AppTest.from_file(str(page.with_name("home.py")), default_timeout=120).run()
    assert next(m.value for m in home.metric if m.label == "Language-model log-probs") == f"{n:,}"


def test_dataset_commit_is_pinned_on_first_download(tmp_path, monkeypatch):
    """Every model comes from one commit of the paper's dataset: the first download resolves
    the newest commit and keeps it; later downloads use it even after the dataset moves on;
    the operator's setting overrides. (A stand-in hub: the real one is unreachable here.)"""
    import huggingface_hub

    from core import logprobs
    newest, asked = ["c0ffee1"], []

    class Api:
        def dataset_info(self, repo):
            return type("Info", (), {"sha": newest[0]})()

    def fetch(repo, filename, repo_type, revision, local_dir):
        asked.append((filename, revision))
        (Path(local_dir) / filename).write_text("token_id,token_name,token_decoded\n")
        return str(Path(local_dir) / filename)
    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fetch)
    monkeypatch.delenv("VALUEAUDIT_LOGPROBS_REVISION", raising=False)
    rev, files = logprobs.download(["google/gemma-2-2b"], tmp_path)
    assert rev == "c0ffee1" and files[0].name == "google--gemma-2-2b.csv"
    newest[0] = "beef222"  # the dataset gets a new commit
    assert logprobs.download(["meta-llama/Llama-3.2-1B"], tmp_path)[0] == "c0ffee1"
    monkeypatch.setenv("VALUEAUDIT_LOGPROBS_REVISION", "abc1234")
    assert logprobs.download(["meta-llama/Llama-3.2-1B"], tmp_path)[0] == "abc1234"
    assert [r for _, r in asked] == ["c0ffee1", "c0ffee1", "abc1234"]
