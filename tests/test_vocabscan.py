"""Vocabulary scans of reward models: the word tokens, the cost line, streaming and resume,
and the top/bottom tokens — checked against computations written here."""
from __future__ import annotations

import re

import duckdb
from transformers import AutoTokenizer

from core import cli


def test_vocabulary_scan_scores_every_word_token_and_resumes(tiny_llama_rm, tmp_path, capsys):
    pfile = tmp_path / "one.yaml"
    pfile.write_text('greatest_ever_one: "What, in one word, is the greatest thing ever?"\n')
    db = tmp_path / "v.duckdb"
    expect = _word_tokens_here(tiny_llama_rm)
    assert any(t.startswith(" ") for t in expect) and len(expect) > 100
    args = ["score", "--model", str(tiny_llama_rm), "--kind", "rm", "--corpus", "vocabulary", "--prompts", str(pfile),
            "--db", str(db), "--quiet"]
    assert cli.main(args) == 0
    out = capsys.readouterr()
    assert f"{len(expect):,} word tokens x 1 prompts = {len(expect):,} rows to score" in out.err
    assert f"scored {len(expect)} new, 0 cached" in out.out
    con = duckdb.connect(str(db), read_only=True)
    got = con.execute("SELECT response, value FROM scores ORDER BY value DESC, response").fetchall()
    con.close()
    assert sorted(r for r, _ in got) == sorted(expect)
    # the CLI's scan is a runner request like any other: its checks and provenance are recorded
    import json as _json

    from core import checks
    from core.store import Store as _Store
    assert "measurement checks passed" in out.err
    rec = checks.latest(_Store(db)).iloc[0]
    assert (rec["corpus"], rec["status"], rec["n_words"]) == ("vocabulary", "passed", len(expect))
    prov = _json.loads(rec["provenance"])
    assert (prov["corpus"], prov["n_prompts"], prov["model_key"]) == ("vocabulary", 1, rec["model_key"])
    assert cli.main(args) == 0  # a rerun scores nothing
    out = capsys.readouterr()
    assert "= 0 rows to score" in out.err and f"scored 0 new, {len(expect)} cached" in out.out

    from core import vocabscan
    from core.store import Store
    store = Store(db)
    m = vocabscan.scanned_models(store)
    assert m["n_words"].tolist() == [len(expect)]
    top, bottom = vocabscan.top_bottom(store, m["model_key"].iloc[0], "What, in one word, is the greatest thing ever?", 7)
    assert top["token"].tolist() == [r for r, _ in got[:7]]
    assert bottom["token"].tolist() == [r for r, _ in sorted(got, key=lambda x: (x[1], x[0]))[:7]]

    # the Words page shows the same top and bottom tokens
    import json
    from pathlib import Path

    import pytest
    pytest.importorskip("streamlit")
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    import os
    os.environ["VALUEAUDIT_DB"] = str(db)
    try:
        st.cache_data.clear()
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "words.py"), default_timeout=120)
        at.run()
        assert not at.exception and not at.error
        at.number_input(key="w-scan-n").set_value(7).run()
        frames = [d.value for d in at.dataframe if "token" in d.value.columns]
        assert [json.loads(t) for t in frames[0]["token"]] == top["token"].tolist()
        assert [json.loads(t) for t in frames[1]["token"]] == bottom["token"].tolist()
    finally:
        os.environ.pop("VALUEAUDIT_DB", None)


def _word_tokens_here(path) -> list[str]:
    """The scan's words, computed here from the tokenizer (not by core)."""
    tok = AutoTokenizer.from_pretrained(path)
    specials = set(tok.all_special_ids) | set(tok.added_tokens_decoder)
    out = []
    for i in sorted(tok.get_vocab().values()):
        t = tok.decode([i])
        if i not in specials and re.fullmatch(r" ?[^\W\d_]+", t) and t not in out:
            out.append(t)
    return out


def test_score_page_starts_a_vocabulary_scan_with_its_cost_first(tiny_llama_rm, tmp_path, monkeypatch):
    """Score page: 'Scan the model's vocabulary' shows rows and (after timing one batch) a time
    before the Start button is enabled; the job streams every word token into the store."""
    import pytest
    pytest.importorskip("streamlit")
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core import jobs, vocabscan
    from core.store import Store
    db = tmp_path / "score.duckdb"
    monkeypatch.setenv("VALUEAUDIT_DB", str(db))
    page = str(Path(__file__).resolve().parents[1] / "pages" / "score.py")
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")  # visitors: no scan unless the operator allows it
    st.cache_data.clear()
    at = AppTest.from_file(page, default_timeout=120).run()
    assert not [r for r in at.radio if r.key == "score-answers"]
    assert any("not enabled on this server" in c.value for c in at.caption)
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    expect = _word_tokens_here(tiny_llama_rm)
    at = AppTest.from_file(page, default_timeout=120)
    at.run()
    at.text_input(key="score-extra").set_value(str(tiny_llama_rm))
    at.radio(key="score-answers").set_value(vocabscan.NAME)
    at.radio(key="score-prompts").set_value("Some of the paper's prompts")
    at.run()
    at.multiselect(key="score-prompt-ids").set_value(["greatest_ever_one", "worst_ever_one"])
    at.selectbox(key="opt-device").set_value("cpu")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    cost = at.dataframe[0].value.iloc[0]
    assert (cost["word tokens"], cost["rows"], cost["to do"]) == (len(expect), 2 * len(expect), 2 * len(expect))
    assert cost["time"] == "not timed yet"
    assert at.button(key="score-start").disabled  # no start before the time is known
    at.button(key="score-vocab-time").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    cost = at.dataframe[0].value.iloc[0]
    assert cost["rows/s"] > 0 and cost["time"] not in ("", "not timed yet")
    assert not at.button(key="score-start").disabled
    assert len(Store(db).scores()) == 0  # timing stores nothing
    at.button(key="score-start").click().run()
    job = jobs.REGISTRY.get(at.session_state["job_id"])
    assert job.wait(300) and job.state == "done", [(s.state, s.message) for s in job.statuses]
    got = Store(db).scores(kind="rm")
    assert sorted(got.loc[got["prompt_id"] == "greatest_ever_one", "response"]) == sorted(expect)
    assert len(got) == 2 * len(expect)
    assert vocabscan.scanned_models(Store(db))["n_words"].tolist() == [len(expect)]
    at.run()
    cost = at.dataframe[0].value.iloc[0]
    assert (cost["already stored"], cost["to do"], cost["time"]) == (2 * len(expect), 0, "nothing to do")


def test_vocabulary_job_resumes_after_a_stop_and_is_refused_where_not_allowed(tiny_llama_rm, tmp_path, monkeypatch):
    import time

    import pytest

    from core import jobs, prompts, settings, vocabscan
    from core.store import Store
    db = tmp_path / "resume.duckdb"
    expect = _word_tokens_here(tiny_llama_rm)
    plist = prompts.paper_prompts()[:2]
    spec = jobs.JobSpec([jobs.ModelRequest(str(tiny_llama_rm), "rm")], plist, expect[:1], corpus=vocabscan.NAME,
                        db_path=str(db), engine="naive", batch_size=8, device="cpu")
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.delenv("VALUEAUDIT_VOCAB_SCANS", raising=False)
    with pytest.raises(settings.SettingsError, match="not enabled"):
        jobs.JobRegistry().submit(spec)
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    monkeypatch.setenv("VALUEAUDIT_VOCAB_SCANS", "off")
    with pytest.raises(settings.SettingsError):
        jobs.JobRegistry().submit(spec)
    monkeypatch.setenv("VALUEAUDIT_VOCAB_SCANS", "allow")
    reg = jobs.JobRegistry()
    job = reg.submit(spec)
    deadline = time.time() + 120
    while job.statuses[0].done < 40 and time.time() < deadline and job.active:
        time.sleep(0.02)
    job.cancel()  # a stop at any moment keeps every committed batch
    assert job.wait(120)
    n = len(Store(db).scores(kind="rm"))
    assert 0 < n < 2 * len(expect)
    job2 = reg.submit(spec)
    assert job2.wait(300) and job2.state == "done", [(s.state, s.message) for s in job2.statuses]
    assert job2.statuses[0].cached == n and job2.statuses[0].new == 2 * len(expect) - n  # only missing rows
    got = Store(db).scores(kind="rm")
    assert len(got) == 2 * len(expect) and set(got["response"]) == set(expect)


def test_shared_server_scan_of_an_operator_model_when_allowed(tiny_llama_rm, tmp_path, monkeypatch):
    """Shared mode with VALUEAUDIT_VOCAB_SCANS=allow: an operator model (by folder name) can be
    scanned; its cost is shown under its name, and no server path reaches the page."""
    import pytest
    pytest.importorskip("streamlit")
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core import vocabscan
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "shared.duckdb"))
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.setenv("VALUEAUDIT_VOCAB_SCANS", "allow")
    monkeypatch.setenv("VALUEAUDIT_MODELS_DIR", str(tiny_llama_rm.parent))
    st.cache_data.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "score.py"), default_timeout=120)
    at.run()
    at.multiselect(key="score-models").set_value([tiny_llama_rm.name])
    at.radio(key="score-answers").set_value(vocabscan.NAME)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    cost = at.dataframe[0].value.iloc[0]
    assert cost["model"] == tiny_llama_rm.name
    assert cost["word tokens"] == len(_word_tokens_here(tiny_llama_rm)) and cost["prompts"] == 54
    shown = " ".join(str(e.value) for e in at.markdown) + " ".join(str(c.value) for c in at.caption)
    assert str(tiny_llama_rm.parent) not in shown and str(tiny_llama_rm.parent) not in at.dataframe[0].value.to_string()


class _Vocab:
    """A tokenizer stand-in: each token decodes to its own text (what a byte-level BPE gives
    for these), with one special and one added token."""
    def __init__(self, texts, special=(), added=()):
        self.texts = list(texts)
        self.all_special_ids = [self.texts.index(t) for t in special]
        self.added_tokens_decoder = {self.texts.index(t): t for t in added}

    def get_vocab(self):
        return {t: i for i, t in enumerate(self.texts)}

    def batch_decode(self, ids, skip_special_tokens=False):
        return [self.texts[i[0]] for i in ids]


def test_word_tokens_are_letters_in_any_script_after_at_most_one_space():
    """A word token is letters (any script: 'café', ' naïve', 'Straße'), optionally after ONE
    space; two spaces, digits, underscores, punctuation, specials and added tokens are not.
    The expected list is written out by hand, in token-id order, repeats once."""
    from core import vocabscan
    texts = ["café", " naïve", "  two", "a1", "_x", "love", " Power", "é", "<s>", "<extra>", "Straße", " ",
             "love ", "x-y", "Ωmega", " love", "\tlove", "  ", "ẞ", "12"]
    tok = _Vocab(texts, special=["<s>"], added=["<extra>"])
    assert vocabscan.word_tokens(tok) == ["café", " naïve", "love", " Power", "é", "Straße", "Ωmega", " love", "ẞ"]


def test_a_scan_word_list_hides_offensive_tokens_on_request_with_a_content_note(tmp_path, monkeypatch):
    """Issue 21: a vocabulary scan's top and bottom tokens get the corpora's content note and
    toggle; hidden tokens leave the lists (the next tokens fill them), never the store."""
    import pandas as pd
    import pytest
    pytest.importorskip("streamlit")
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core import offensive, vocabscan
    from core.store import Store
    store = Store(tmp_path / "scan.duckdb")
    bad = sorted(offensive.words())[:2]
    tokens = [f" {bad[0]}", bad[1].upper(), " love", " peace", " war", "hate"]
    values = [9.0, -9.0, 5.0, 4.0, -4.0, -5.0]  # the offensive ones at both ends
    key = "hub:org/m@x~float32"
    store.upsert_model(key, "org/m", "rm", "llama")
    store.save_corpus(vocabscan.corpus_name("org/m"), pd.DataFrame({"word": tokens, "category": "Token",
                                                                     "subcategory": ""}))
    prompt = "What, in one word, is the greatest thing ever?"
    store.add_scores(key, "rm", pd.DataFrame({"prompt_id": "greatest_ever_one", "prompt": prompt,
                                              "response": tokens, "value": values}))
    with store.transaction() as con:
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [f"vocabscan:{key}", str(len(tokens))]).fetchall()
    top, bottom = vocabscan.top_bottom(store, key, prompt, 2)
    assert top["token"].tolist() == [f" {bad[0]}", " love"] and bottom["token"].tolist() == [bad[1].upper(), "hate"]
    top, bottom = vocabscan.top_bottom(store, key, prompt, 2, hide=offensive.words())
    assert top["token"].tolist() == [" love", " peace"] and bottom["token"].tolist() == ["hate", " war"]

    monkeypatch.setenv("VALUEAUDIT_DB", str(store.path))
    st.cache_data.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "words.py"), default_timeout=120)
    at.run()
    assert not at.exception and not at.error
    assert any("Content note: this model's vocabulary contains 2 offensive words" in c.value for c in at.caption)
    shown = " ".join(" ".join(d.value["token"]) for d in at.dataframe if "token" in d.value.columns)
    assert bad[0] not in shown and bad[1].upper() not in shown and "love" in shown
    at.toggle(key="w-scan-hide-offensive").set_value(False).run()
    shown = " ".join(" ".join(d.value["token"]) for d in at.dataframe if "token" in d.value.columns)
    assert bad[0] in shown and bad[1].upper() in shown
