"""The dashboard under Streamlit's AppTest: every page with the paper's published results
imported and with an empty database, the one-click import, and a scoring run started from
the Score page on a tiny real model, checked in the store."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import jobs  # noqa: E402
from core.store import Store  # noqa: E402
from tests.support import shown  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p.name for p in (ROOT / "pages").glob("*.py") if not p.name.startswith("_"))
TIMEOUT = 180

# Pages that draw at least one chart once the published Big Two results are in.
CHARTS_WITH_DATA = {"home.py", "compare.py", "words.py", "corpora.py", "training_dynamics.py", "report.py"}
# Pages that draw a chart even on an empty database (the data comes from the paper's files).
CHARTS_WHEN_EMPTY = {"corpora.py", "training_dynamics.py"}


def _run(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=TIMEOUT)
    at.run()
    return at


def _clear_caches():
    """Each test has its own database; the caches are keyed on it, but clear for isolation."""
    import streamlit as st
    st.cache_data.clear()


@pytest.fixture(scope="session")
def published_db(tmp_path_factory, paper_data) -> Path:
    from core.published import import_published
    db = tmp_path_factory.mktemp("app") / "published.duckdb"
    counts = import_published(Store(db))
    assert counts["models"] == 10 and counts["rows_added"] > 100_000
    return db


@pytest.fixture()
def with_data(published_db, monkeypatch) -> Path:
    monkeypatch.setenv("VALUEAUDIT_DB", str(published_db))
    _clear_caches()
    return published_db


@pytest.fixture()
def empty(tmp_path, monkeypatch, paper_data) -> Path:
    db = tmp_path / "empty.duckdb"
    monkeypatch.setenv("VALUEAUDIT_DB", str(db))
    _clear_caches()
    return db


def test_at_least_four_pages():
    assert len(PAGES) >= 4


@pytest.mark.parametrize("page", PAGES)
def test_page_with_published_results(page, with_data):
    at = _run(page)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    charts = at.get("plotly_chart")
    if page in CHARTS_WITH_DATA:
        assert len(charts) >= 1, f"{page} drew no chart"


@pytest.mark.parametrize("page", PAGES)
def test_page_with_empty_database(page, empty):
    at = _run(page)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    if page in CHARTS_WHEN_EMPTY:
        assert len(at.get("plotly_chart")) >= 1
    elif page not in ("score.py", "models.py"):
        # An empty state that says what to do next, instead of an empty chart.
        text = " ".join(str(getattr(e, "value", "")) for e in [*at.info, *at.markdown])
        assert any(w in text for w in ("Import", "score", "Score")), f"{page} shows no next step"


def test_app_entry_runs(with_data):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 1  # Home is the default page: the headline chart


def test_home_import_button_fills_an_empty_database(empty):
    at = _run("home.py")
    assert not at.get("plotly_chart")
    at.button(key="import_published").click().run()
    assert not at.exception
    assert any("Imported" in s.value for s in at.success)
    assert Store(empty).stats()["n_rm_scores"] > 100_000
    assert len(at.get("plotly_chart")) >= 1


def test_compare_key_widgets_and_filters(with_data):
    at = _run("compare.py")
    assert at.multiselect(key="cmp-models").value  # all models chosen by default
    assert set(at.multiselect(key="cmp-framing").value) == {"positive", "negative"}
    at.multiselect(key="cmp-framing").set_value(["positive"]).run()
    assert not at.exception and len(at.get("plotly_chart")) >= 2
    gemma = [m for m in at.multiselect(key="cmp-models").value if "gemma" in m.lower()]
    at.multiselect(key="cmp-models").set_value(gemma).run()  # one family: no tests, still no error
    assert not at.exception and not at.error
    at.selectbox(key="cmp-word-model").set_value(gemma[0]).run()
    assert not at.exception


def test_models_page_lists_registry_and_coverage(with_data):
    at = _run("models.py")
    df = at.dataframe[0].value
    assert "Skywork/Skywork-Reward-Gemma-2-27B" in set(df["name"])
    assert any(c.endswith(" %") for c in df.columns)


def test_score_page_runs_a_tiny_model_into_the_store(empty, tiny_llama_rm):
    at = _run("score.py")
    assert any("Device" in i.value for i in at.info)
    at.text_input(key="score-extra").set_value(str(tiny_llama_rm))
    at.radio(key="score-prompts").set_value("Some of the paper's prompts")
    at.run()
    at.multiselect(key="score-prompt-ids").set_value(["greatest_ever_one", "worst_ever_one"])
    at.selectbox(key="opt-device").set_value("cpu")
    at.run()
    assert not at.exception
    at.button(key="score-start").click().run()
    assert not at.exception
    job = jobs.REGISTRY.get(at.session_state["job_id"])
    assert job is not None
    assert job.wait(timeout=300), "scoring job did not finish"
    assert job.state == "done", [(s.state, s.message) for s in job.statuses]
    scores = Store(empty).scores(kind="rm", models=[str(tiny_llama_rm)])
    assert len(scores) == 2 * 263
    assert set(scores["prompt_id"]) == {"greatest_ever_one", "worst_ever_one"}
    at.run()  # the page now shows the finished job and the rows as stored
    assert not at.exception
    table = at.dataframe[0].value
    assert table["stored (scored here)"].iloc[0] == len(scores)
    assert list(table["model"]) == [tiny_llama_rm.name]  # the folder's name, as every page names it
    jobs_table = at.table[0].value  # a static table, whose cells wrap at 768 px (a dataframe cut them)
    row = jobs_table.iloc[0]
    assert (shown(row["Model"]), row["Status"], row["Rows scored"], row["Already stored"]) == (
        tiny_llama_rm.name, "\u2714\u00a0done", f"{len(scores)} of {len(scores)}", "0")


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="kaleido needs Chromium for static images")
def test_report_offers_png_and_svg_on_request(with_data):
    at = _run("report.py")
    labels = [b.label for b in at.get("download_button")]
    assert "Download the report (HTML)" in labels and "PNG" not in labels  # images only on request
    at.toggle[0].set_value(True).run()
    assert not at.exception
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("PNG") == 2 and labels.count("SVG") == 2
