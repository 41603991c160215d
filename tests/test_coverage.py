"""Issue 21: which models an analysis uses, counted against the corpus and the compared
prompts (core/coverage.py), the same in `analyze` and on the pages.

The road a researcher takes: the paper's published results imported, two tiny local RMs
scored on Big Two x the 54 prompts and a third on 6 prompts (conftest's own_models_db).
Published MFD files (written in the paper's format, as tests/test_fidelity.py does) add
the 45 words the two corpora share to a published model's other run: those must not count."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from core import corpora, coverage, paperdata, prompts
from core.store import Store
from tests.support import run_cli, sent_to_browser, shown

PUBLISHED = 10


def _analyze(capsys, db, *extra):
    rc, out, err = run_cli(capsys, "analyze", "--corpus", "big2-nouns", "--db", db, "--json", "--permutations", "50",
                           *extra)
    assert rc == 0, err
    return json.loads(out)


def test_analyze_uses_the_complete_models_and_names_the_one_left_out(own_models_db, capsys):
    db, names = own_models_db
    res = _analyze(capsys, db)
    used = res["models_used"]
    assert len(used) == PUBLISHED + 2 and names["llama"] in used and names["gemma"] in used
    assert res["models_left_out"] == [{"model": names["six"],
                                       "reason": "incomplete coverage: 6 of 54 prompts, 263 of 263 words"}]
    # the numbers rest on exactly those models
    assert sorted({r["model"] for r in res["median_ranks"]}) == sorted(used)
    # the text output says the same
    rc, out, _ = run_cli(capsys, "analyze", "--corpus", "big2-nouns", "--db", db, "--permutations", "50")
    assert rc == 0 and "Models used (12):" in out and f"Left out (1): {names['six']} (incomplete coverage" in out
    # with the user's own models in, the paper's analysis is applied, not 'reproduced exactly'
    assert ("The paper's analysis applied to these 12 reward models, 2 of them yours (5 Gemma-based and 7 "
            "Llama-based ones; one median rank per model and prompt;") in out and "reproduced exactly" not in out
    # one flag lets it in
    res = _analyze(capsys, db, "--include-incomplete")
    assert names["six"] in res["models_used"] and res["models_left_out"] == []
    assert len({r["prompt_id"] for r in res["median_ranks"] if r["model"] == names["six"]}) == 6


@pytest.fixture(scope="module")
def with_mfd(own_models_db, tmp_path_factory):
    """own_models_db plus four published MFD runs (files in the paper's format, as
    tests/test_fidelity.py writes them): four of the paper's models then hold two runs."""
    from unittest import mock

    from core import paperdata, published
    from tests.test_fidelity import write_mfd_files
    db, names = own_models_db
    root = tmp_path_factory.mktemp("with-mfd")
    copy = root / "with-mfd.duckdb"
    shutil.copy(db, copy)
    mfd = root / "paper" / "reward_model_scores" / "dict_MFD_20"
    write_mfd_files(mfd)
    original = paperdata.path
    with mock.patch.object(paperdata, "listdir", lambda folder: sorted(p.name for p in mfd.glob("*.csv"))
                           if folder.endswith("dict_MFD_20") else []), \
            mock.patch.object(paperdata, "path", lambda rel: mfd / rel.rsplit("/", 1)[-1] if "dict_MFD_20/" in rel
                              else original(rel)):
        assert published.import_published(Store(copy))["models"] == 4
    return copy, names


def test_words_are_counted_against_the_corpus_not_every_stored_word(with_mfd):
    """Published MFD runs hold the 45 MFD words that are Big Two nouns too: a tiny model with all
    263 Big Two nouns is still complete (it was '263 of 308 words'), and on mfd2 the
    reference is the dictionary's 2,040 words (it was 'of 2085')."""
    copy, names = with_mfd
    big2 = corpora.load("big2-nouns")
    sel = coverage.select(Store(copy), "big2-nouns", big2.words)
    assert len(sel.used) == PUBLISHED + 2 and [r["model"] for r in sel.left_out] == [names["six"]]
    assert set(sel.table["ref_words"]) == {263} and sel.table.loc[sel.table["used"], "n_words"].eq(263).all()
    mfd2 = corpora.load("mfd2")
    n = mfd2.words["word"].nunique()
    sel = coverage.select(Store(copy), "mfd2", mfd2.words)
    assert n == 2040 and set(sel.table["ref_words"]) == {n}
    assert len(sel.used) == 4  # the four published MFD runs
    reasons = {r["model"]: r["reason"] for r in sel.left_out}
    assert reasons[names["llama"]] == "incomplete coverage: 54 of 54 prompts, 45 of 2040 words"
    # a published model whose MFD files are not there: its Big Two run is not read, and it says so
    assert reasons["LxzGordon/URM-LLaMa-3.1-8B"].startswith("no published MFD 2.0 run imported")


def test_a_published_models_runs_are_one_model(with_mfd, monkeypatch):
    """The paper's 10 models showed as 20 (Home 'Models 20'; the Models page listed each twice,
    one row at 'big2-nouns 17 %'): each is one model holding its runs."""
    from core import catalog
    copy, names = with_mfd
    s = Store(copy)
    keys = s.models()
    assert (keys["source"] == "published").sum() == PUBLISHED + 4  # stored: one key per run
    assert s.stats()["n_models"] == PUBLISHED + 3  # counted: one per model (+ the three tiny ones)
    cat = catalog.model_catalog(keys)
    pub = cat[cat["source"] == "published"]
    assert len(pub) == PUBLISHED and pub["name"].is_unique
    qrm = pub.set_index("name").loc["nicolinho/QRM-Gemma-2-27B"]
    assert qrm["runs"] == "Big Two run, MFD 2.0 run" and len(qrm["keys"]) == 2
    assert qrm["n_scores"] == keys.loc[keys["name"] == "nicolinho/QRM-Gemma-2-27B", "n_scores"].sum()
    assert pub.set_index("name").loc["LxzGordon/URM-LLaMa-3.1-8B", "runs"] == "Big Two run"
    # and so on the pages: Home counts 13 models, the Models page lists each published one once
    home = _app("home.py", copy, monkeypatch).run()
    assert not home.exception and next(m.value for m in home.metric if m.label == "Models") == str(PUBLISHED + 3)
    table = _app("models.py", copy, monkeypatch).run().dataframe[0].value
    shown_pub = table[table["source"] == "published"]
    assert len(shown_pub) == PUBLISHED and shown_pub["name"].is_unique
    assert shown_pub.set_index("name").loc["nicolinho/QRM-Gemma-2-27B", "runs"] == "Big Two run, MFD 2.0 run"


def test_prompts_are_counted_against_the_compared_set(own_models_db):
    db, names = own_models_db
    words = corpora.load("big2-nouns").words
    six = [p.text for p in prompts.paper_prompts()[:3] + prompts.paper_prompts()[27:30]]
    sel = coverage.select(Store(db), "big2-nouns", words, prompt_texts=six)
    assert len(sel.used) == PUBLISHED + 3 and sel.left_out == [] and sel.prompt_texts == six
    only = coverage.select(Store(db), "big2-nouns", words, models=[names["six"], "no/such-model"])
    assert only.used == [names["six"]] and len(only.prompt_texts) == 6  # alone, its own prompts are compared
    assert only.left_out == [{"model": "no/such-model", "reason": "no scores on big2-nouns"}]


def test_a_model_with_extra_prompts_is_complete_and_read_on_the_compared_ones(own_models_db, tmp_path):
    db, names = own_models_db
    copy = tmp_path / "extra.duckdb"
    shutil.copy(db, copy)
    s = Store(copy)
    key = s.query("SELECT model_key FROM models WHERE name = ?", [names["llama"]])["model_key"].iloc[0]
    s.add_scores(key, "rm", pd.DataFrame({"prompt_id": "mine", "prompt": "What, in one word, is mine?",
                                          "response": corpora.load("big2-nouns").vocabulary, "value": 1.0}))
    sel = coverage.select(s, "big2-nouns", corpora.load("big2-nouns").words)
    assert names["llama"] in sel.used and len(sel.prompt_texts) == 54 and "mine" not in sel.prompt_ids


# -- the pages ---------------------------------------------------------------------------
def _app(page: str, db, monkeypatch):
    pytest.importorskip("streamlit")
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    from tests.support import ROOT
    monkeypatch.setenv("VALUEAUDIT_DB", str(db))
    st.cache_data.clear()
    return AppTest.from_file(str(ROOT / "pages" / page), default_timeout=300)


def _text(at) -> str:
    return " ".join(str(getattr(e, "value", "")) for e in [*at.markdown, *at.caption, *at.info, *at.warning, *at.text])


def test_compare_counts_the_complete_models_and_names_the_one_left_out(own_models_db, monkeypatch):
    db, names = own_models_db
    at = _app("compare.py", db, monkeypatch).run()
    assert not at.exception and not at.error
    sel = at.session_state["comparison"]
    assert sorted(sel["models"]) == sorted(json_models(db))
    text = _text(at)
    assert "12 reward models in the family statistics" in text
    assert "Left out of the family statistics: six-prompt-rm (incomplete coverage: 6 of 54 prompts, 263 of 263 words)" \
        in text
    assert "llama-rm (" not in text and "gemma-rm (" not in text  # the complete ones are never called incomplete


def json_models(db) -> list[str]:
    """models_used of `analyze --json`: the page and the CLI name the same models."""
    from core import analysis
    words = corpora.load("big2-nouns").words
    return analysis.figure1_from_store(Store(db), words, "big2-nouns", permutations=0, bootstrap=0).models_used


@pytest.mark.slow  # a long run: its file starts first under xdist (conftest)
def test_pages_render_after_a_vocabulary_scan_and_name_an_odd_item(own_models_db, tmp_path, monkeypatch, capsys):
    """A scan (`score --corpus vocabulary`, here on one prompt) saves its words as corpus
    'vocabulary:<folder or hub id>' (a '/' in the name): Home, Models and Corpora render in
    both modes; on a shared server no page sends a local model's server path to the browser
    (pickers, tables, measurement checks, chart hover data, the Your model sentence); a
    stored item that cannot be read is named and the rest shown."""
    db, names = own_models_db
    copy = tmp_path / "scan.duckdb"
    shutil.copy(db, copy)
    one = tmp_path / "one.yaml"
    one.write_text('greatest_ever_one: "What, in one word, is the greatest thing ever?"\n')
    rc, _, err = run_cli(capsys, "score", "--model", names["llama"], "--kind", "rm", "--corpus", "vocabulary",
                         "--prompts", one, "--db", copy, "--quiet")
    assert rc == 0 and "measurement checks passed" in err, err
    scan = f"vocabulary:{names['llama']}"
    assert scan in Store(copy).corpus_names()
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")  # before the scan, a visitor is not offered one
    assert [i.value for i in _app("words.py", db, monkeypatch).run().info if "vocabulary scan" in i.value] == \
        ["No vocabulary scan stored. On this server the operator starts them (from the command line)."]
    folders = {Path(p).parent.name for p in names.values()}  # only in a server path: never on a visitor's page
    folders |= {str(paperdata.local_root() or paperdata.cache_dir())}  # nor where the paper's data lies
    for mode in ("local", "shared"):
        monkeypatch.setenv("VALUEAUDIT_MODE", mode)
        pages = ("home.py", "models.py", "corpora.py") + (
            ("compare.py", "words.py", "your_model.py", "implicit_reward.py", "score.py", "training_dynamics.py")
            if mode == "shared" else ())
        for page in pages:
            at = _app(page, copy, monkeypatch).run()
            assert not at.exception and not at.error, (mode, page, [e.value for e in at.error])
            sent = sent_to_browser(at)
            assert mode == "local" or not [f for f in folders if f in sent], (page, sent[:300])
            # nor is a visitor told to do what a shared server forbids (a folder, a server setting)
            assert mode == "local" or not [w for w in ("VALUEAUDIT_", "local folder", "run folder", "import the file")
                                           if w in sent], page
        at = _app("corpora.py", copy, monkeypatch).run()
        at.selectbox(key="corpus-browse").set_value(scan).run()
        assert not at.exception and not at.error
        shown_name = scan if mode == "local" else "vocabulary:llama-rm"  # a visitor never sees a server path
        assert any(t.value.startswith(shown_name + " — ") and "distinct words" in t.value for t in at.text)
        table = _app("models.py", copy, monkeypatch).run().dataframe[0].value
        assert (f"{shown_name} %" in table.columns) and (mode == "local" or names["llama"] not in table.to_csv())
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    # one odd saved corpus: the Models page shows everything else and says which one
    from core import corpora as core_corpora
    resolve = core_corpora.resolve

    def odd(name, *a, **k):
        if name == scan:
            raise core_corpora.CorpusError("this saved corpus is damaged")
        return resolve(name, *a, **k)
    monkeypatch.setattr(core_corpora, "resolve", odd)
    at = _app("models.py", copy, monkeypatch).run()
    assert not at.exception and not at.error
    assert any("could not be read" in w.value for w in at.warning)
    assert any(f"corpus {scan}: this saved corpus is damaged" in t.value for t in at.text)
    assert len(at.dataframe[0].value) >= PUBLISHED + 3


def test_your_model_page_and_the_report_place_the_model(own_models_db, monkeypatch):
    """The Your model page opens on the user's own model (not one of the paper's) and shows its
    sentence and chart; the Report page's HTML then carries the placement."""
    db, names = own_models_db
    at = _app("your_model.py", db, monkeypatch).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="ym-model").value in {names["llama"], names["gemma"], names["six"]}
    assert any(t.value.startswith("On big2-nouns (263 words), ") for t in at.text)
    assert len(at.get("plotly_chart")) == 1 and at.metric[0].value in ("Gemma", "Llama")
    assert any("ignores the question" in t.value for t in at.text)  # random weights: said, not hidden
    rep = _app("report.py", db, monkeypatch)
    rep.session_state["your-model-choice"] = names["gemma"]
    rep.run()
    assert not rep.exception and not rep.error, [e.value for e in rep.error]
    assert rep.selectbox(key="rep-placement").value == names["gemma"]
    from core import model_audit, report
    audit = model_audit.audit_model(Store(db), names["gemma"], "big2-nouns", corpora.load("big2-nouns").words,
                                    reps=2000).renamed(report.public_model_name)
    assert audit.model == "gemma-rm"  # a report names a local folder by its last part, never its path
    assert any(shown(m.value) == "Where one model sits: " + audit.sentence for m in rep.markdown)


def test_a_model_lacking_one_corpus_word_is_left_out_with_the_count(own_models_db, tmp_path):
    """Complete = every corpus word on every compared prompt (issue 21): a model's ranks are among
    the words it was scored on, so one lacking 5% of the corpus ranks among fewer words (its
    ranks shift by about the size of the family gaps). One word missing, on one prompt only, is
    enough to leave it out, and the reason names the count; --include-incomplete lets it in."""
    db, names = own_models_db
    copy = tmp_path / "one-word-short.duckdb"
    shutil.copy(db, copy)
    s = Store(copy)
    key = s.query("SELECT model_key FROM models WHERE name = ?", [names["gemma"]])["model_key"].iloc[0]
    word = corpora.load("big2-nouns").vocabulary[0]
    prompt = prompts.paper_prompts()[5].text
    with s.transaction() as con:
        con.execute("DELETE FROM scores WHERE model_key = ? AND response = ? AND prompt = ?", [key, word, prompt])
    sel = coverage.select(s, "big2-nouns", corpora.load("big2-nouns").words)
    assert names["gemma"] not in sel.used and len(sel.used) == PUBLISHED + 1
    assert {"model": names["gemma"], "reason": "incomplete coverage: 54 of 54 prompts, 262 of 263 words"} \
        in sel.left_out
    assert len(sel.prompt_texts) == 54  # the prompt set compared is still the paper's 54
    loose = coverage.select(s, "big2-nouns", corpora.load("big2-nouns").words, include_incomplete=True)
    assert names["gemma"] in loose.used and names["gemma"] in loose.included_incomplete()
