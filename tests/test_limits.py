"""core.limits and the operator's limits on visitors' work (issue 25): rows per job, jobs per
visitor, categories per corpus, space for saved corpora — safe defaults in shared mode, the
cost shown and a refusal in one line before any work starts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import limits, prompts, settings
from core.store import Store
from tests.support import shown

ROOT = Path(__file__).resolve().parents[1]


def test_limits_hold_in_shared_mode_and_in_local_mode_only_when_set(monkeypatch):
    names = ("VALUEAUDIT_MAX_JOB_ROWS", "VALUEAUDIT_MAX_JOBS_PER_VISITOR", "VALUEAUDIT_MAX_QUEUED_JOBS",
             "VALUEAUDIT_MAX_CATEGORIES", "VALUEAUDIT_MAX_SAVED_WORDS")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    assert [settings.limit(n) for n in names] == [2_000_000, 1, 4, 50, 200_000]
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    assert [settings.limit(n) for n in names] == [None, None, None, 50, None]
    monkeypatch.setenv("VALUEAUDIT_MAX_QUEUED_JOBS", "0")
    with pytest.raises(settings.SettingsError, match="VALUEAUDIT_MAX_QUEUED_JOBS='0' must be at least 1"):
        settings.check()  # a wrong value closes every page with one operator error
    monkeypatch.delenv("VALUEAUDIT_MAX_QUEUED_JOBS")
    assert settings.limit("VALUEAUDIT_MAX_CATEGORIES") == 50  # a statistics limit, in both modes
    monkeypatch.setenv("VALUEAUDIT_MAX_JOB_ROWS", "5000")
    assert settings.limit("VALUEAUDIT_MAX_JOB_ROWS") == 5000
    monkeypatch.setenv("VALUEAUDIT_MAX_JOB_ROWS", "lots")
    with pytest.raises(settings.SettingsError, match="VALUEAUDIT_MAX_JOB_ROWS='lots' is not a whole number"):
        settings.limit("VALUEAUDIT_MAX_JOB_ROWS")


def test_categories_and_saved_space(monkeypatch):
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    limits.check_categories(50, "c")
    with pytest.raises(limits.LimitError, match="corpus 'c' has 263 categories; .* at most 50"):
        limits.check_categories(263, "c")
    limits.check_saved_space(199_000, 1_000)
    with pytest.raises(limits.LimitError, match=r"saving 470,000 words .* \(0 of 200,000 words used"):
        limits.check_saved_space(0, 470_000)


def _app(page: str, query: dict | None = None):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=180)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture()
def shared_db(tmp_path, monkeypatch, paper_data):
    pytest.importorskip("streamlit")
    import streamlit as st
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "limits.duckdb"))
    st.cache_data.clear()
    return tmp_path / "limits.duckdb"


def test_score_page_shows_the_cost_and_refuses_a_job_over_the_limit_before_it_starts(shared_db, monkeypatch):
    at = _app("score.py")
    at.text_input(key="score-extra").set_value("org/some-rm").run()
    cost = [shown(c.value) for c in at.caption if "Cost:" in c.value]
    assert cost and "1 model(s) × 54 prompts × 263 words = **14,202 rows**" in cost[0] and "2,000,000" in cost[0]
    assert not at.button(key="score-start").disabled
    monkeypatch.setenv("VALUEAUDIT_MAX_JOB_ROWS", "10000")
    at.run()
    errors = [shown(e.value) for e in at.error]
    assert any("this job asks for 14,202 rows" in e and "at most 10,000 per job" in e for e in errors), errors
    assert at.button(key="score-start").disabled


def test_score_page_says_when_the_visitor_already_has_a_job(shared_db):
    import threading

    from core import jobs
    release = threading.Event()
    at = _app("score.py")
    token = at.query_params["visitor"]
    spec = jobs.JobSpec([jobs.ModelRequest("org/a", "rm")], prompts.paper_prompts()[:1], ["love"], device="cpu")
    job = jobs.REGISTRY.submit(spec, loader=lambda *a, **k: release.wait(60) and None, owner=token)
    try:
        again = _app("score.py", {"visitor": token})
        again.text_input(key="score-extra").set_value("org/other-rm").run()
        assert any("you already have 1 job(s) queued or running" in shown(e.value) for e in again.error)
        assert again.button(key="score-start").disabled
    finally:
        release.set()
        job.wait(60)


def test_score_page_says_when_the_server_is_full_whatever_the_visitor_token(shared_db, monkeypatch):
    """A new tab (no ?visitor=, so a fresh token and a fresh per-visitor quota) still meets
    the server's cap, in one plain line that says what to do."""
    import threading

    from core import jobs
    monkeypatch.setenv("VALUEAUDIT_MAX_QUEUED_JOBS", "2")
    release = threading.Event()
    spec = jobs.JobSpec([jobs.ModelRequest("org/a", "rm")], prompts.paper_prompts()[:1], ["love"], device="cpu")
    held = []
    try:
        while len(jobs.REGISTRY.active()) < 2:  # two other visitors' jobs fill the server
            held.append(jobs.REGISTRY.submit(spec, loader=lambda *a, **k: release.wait(60) and None,
                                             owner=f"other-visitor-{len(held)}"))
        at = _app("score.py")  # a new tab: its own new token
        at.text_input(key="score-extra").set_value("org/other-rm").run()
        errors = [shown(e.value) for e in at.error]
        assert errors == ["this server already has 2 job(s) queued or running, the most it takes at once "
                          "(VALUEAUDIT_MAX_QUEUED_JOBS=2): wait until one ends and start this one again, or ask "
                          "the server's operator"], errors
        assert at.button(key="score-start").disabled
    finally:
        release.set()
        assert all(j.wait(60) for j in held)
    at.run()  # the jobs ended: the same visitor may start theirs
    assert not at.error and not at.button(key="score-start").disabled


def test_corpora_page_refuses_too_many_categories_or_words_before_saving(shared_db, monkeypatch):
    many = "word,category\n" + "".join(f"w{i},c{i}\n" for i in range(60))
    at = _app("corpora.py")
    at.file_uploader(key="corpus-upload").set_value(("many.csv", many.encode(), "text/csv"))
    at.run()
    at.text_input(key="corpus-name").set_value("many").run()
    at.button[-1].click().run()  # the form's Save corpus
    assert any("has 60 categories" in shown(e.value) for e in at.error)
    assert Store(shared_db).corpus_names() == []
    monkeypatch.setenv("VALUEAUDIT_MAX_CATEGORIES", "100")
    monkeypatch.setenv("VALUEAUDIT_MAX_SAVED_WORDS", "59")
    at.button[-1].click().run()
    assert any("saving 60 words would pass" in shown(e.value) for e in at.error)
    assert Store(shared_db).corpus_names() == []
    monkeypatch.setenv("VALUEAUDIT_MAX_SAVED_WORDS", "60")
    at.button[-1].click().run()
    assert Store(shared_db).corpus_names() == ["many"] and Store(shared_db).saved_words() == 60


def test_compare_refuses_a_corpus_with_too_many_categories_in_one_line(shared_db):
    """The issue's case: one category per word made the statistics run 215 s, then fail."""
    store = Store(shared_db)
    words = [f"w{i}" for i in range(60)]
    store.save_corpus("one-per-word", pd.DataFrame({"word": words, "category": [f"c{i}" for i in range(60)],
                                                    "subcategory": ""}))
    rng = np.random.default_rng(0)
    plist = prompts.paper_prompts()[:4]
    for name, fam in (("org/l1", "llama"), ("org/l2", "llama"), ("org/g1", "gemma"), ("org/g2", "gemma")):
        key = f"hub:{name}@x~float32"
        store.upsert_model(key, name, "rm", fam)
        store.add_scores(key, "rm", pd.DataFrame([{"prompt_id": p.prompt_id, "prompt": p.text, "response": w,
                                                   "value": float(rng.normal())} for p in plist for w in words]))
    at = _app("compare.py")
    at.selectbox(key="cmp-corpus").set_value("one-per-word").run()
    assert not at.exception
    errors = [shown(e.value) for e in at.error]
    assert len(errors) == 1 and "has 60 categories" in errors[0] and "\n" not in errors[0], errors
    assert not at.get("plotly_chart")
