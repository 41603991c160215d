"""The issue-15 sections in the app (AppTest): uncertainty toggle on Compare, the Paired page,
measurement checks on Models (a failed run flagged), the audit report on Report."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import checks  # noqa: E402
from core.store import Store  # noqa: E402
from tests.support import shown  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def db(tmp_path_factory, paper_data) -> Path:
    from core.published import import_published
    path = tmp_path_factory.mktemp("ui") / "pub.duckdb"
    import_published(Store(path))
    return path


@pytest.fixture()
def app_db(db, monkeypatch):
    import streamlit as st
    monkeypatch.setenv("VALUEAUDIT_DB", str(db))
    st.cache_data.clear()
    return db


def _page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


def test_compare_uncertainty_toggle(app_db):
    at = _page("compare.py")
    assert not any("on average than the" in shown(m.value) for m in at.markdown)  # the details are opt-in
    at.toggle(key="cmp-unc").set_value(True).run()
    assert not at.exception, at.exception
    text = " ".join(shown(m.value) for m in at.markdown)
    assert "95% interval" in text and "places higher" in text and "Bonferroni-adjusted" in text
    assert "the 6 Llama-based reward models" in text and "10,000 draws" in text
    at.radio(key="cmp-corr").set_value("holm").run()
    assert not at.exception
    assert "Holm-adjusted" in " ".join(shown(m.value) for m in at.markdown)


def test_paired_page(app_db):
    at = _page("paired.py")
    assert len(at.dataframe) >= 2
    summary, tests = at.dataframe[0].value, at.dataframe[1].value
    assert list(summary.columns) == ["Prompts", "Category", "Mean rank difference (A − B)", "95% interval",
                                     "A ranks higher on", "Words"]
    assert len(summary) == 4  # 2 categories x 2 framings
    assert list(tests.columns) == ["Prompts", "Test", "Contrast", "95% interval", "p (prompts and words)",
                                   "p (Holm over the 2 tests)", "p (prompts only)", "Prompts used"]
    assert list(tests["Prompts"]) == ["positive", "negative"]  # one test per framing, not per category
    import re  # issue 21: no raw '0.00000000000009' in a cell a reader sees
    cells = [*tests["p (prompts and words)"], *tests["p (Holm over the 2 tests)"], *tests["p (prompts only)"]]
    assert all(re.fullmatch(r"< 0\.001|0\.\d{2,3}|1\.00", c) for c in cells), cells
    assert all(re.fullmatch(r"-?\d+\.\d to -?\d+\.\d", c) for c in [*summary["95% interval"], *tests["95% interval"]])
    assert list(at.dataframe[2].value.columns) == ["Word", "Rank in A", "Rank in B", "Difference (A − B)", "Prompts"]


def test_models_page_flags_a_failed_run(app_db):
    store = Store(app_db)
    checks.save(store, {"run_id": "r1", "model_key": "local:/x#abc", "model": "my-rm", "kind": "rm",
                        "corpus": "big2-nouns", "created_at": dt.datetime(2026, 1, 1), "status": "failed",
                        "message": "scores change with cached, batch size 8 (max diff 0.07)",
                        "invariance": "[]", "coverage": "[]", "template_text": "<bos>hi"})
    at = _page("models.py")
    assert any("my-rm" in shown(e.value) and "flagged" in e.value for e in at.error)


def test_report_builds_the_audit_download(app_db):
    at = _page("report.py")
    at.button(key="rep-audit").click().run()
    assert not at.exception, at.exception
    assert at.session_state["audit-doc"].startswith(b"<!doctype html>")
    assert b"Provenance" in at.session_state["audit-doc"]


def test_model_pickers_show_short_unique_names_with_the_full_ids_on_hover(app_db):
    """Issue 21: three chips read 'Skywork/Skywork-…'. The sidebar picker labels each model by
    its short name (the values stay the full ids) and its help lists the full id behind each."""
    from tests.support import shown
    at = _page("compare.py")
    picker = at.multiselect(key="cmp-models")
    labels = picker.options  # as the browser lists them (format_func applied)
    assert len(set(labels)) == len(labels) == 10
    assert len({lb[:17] for lb in labels}) == 10  # distinct within what a chip shows
    assert "Skywork/Skywork-Reward-Gemma-2-27B-v0.2" in picker.value
    assert "Skywork v0.2 Gemma 2 27B" in labels and not any("/" in lb for lb in labels)
    help_text = shown(picker.help)
    assert "- Skywork v0.2 Gemma 2 27B: Skywork/Skywork-Reward-Gemma-2-27B-v0.2" in help_text
    assert "- Skywork Gemma 2 27B: Skywork/Skywork-Reward-Gemma-2-27B" in help_text
