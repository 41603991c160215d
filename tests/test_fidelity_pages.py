"""The Figure 1 and Figure 4 views of issue 10 under Streamlit's AppTest: the paper's
"average ranks" table and error-bar choice on Compare, the MFD variant note, and the
training-dynamics runs labelled by the paper's manifest with Figure 4b."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.store import Store  # noqa: E402
from tests.support import shown  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _run(page: str) -> AppTest:
    import streamlit as st
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=180)
    at.run()
    return at


@pytest.fixture(scope="module")
def published_db(tmp_path_factory, paper_data) -> Path:
    from core.published import import_published
    db = tmp_path_factory.mktemp("pages") / "published.duckdb"
    import_published(Store(db))
    return db


def test_compare_shows_average_ranks_beside_family_means_and_se_bars(published_db, monkeypatch):
    monkeypatch.setenv("VALUEAUDIT_DB", str(published_db))
    at = _run("compare.py")
    assert not at.exception and not at.error
    assert at.radio(key="cmp-interval").value == "se"  # the paper's bars by default
    tables = [d.value for d in at.dataframe]
    avg = next(t for t in tables if "Llama − Gemma" in t.columns)
    # the R script's avg-ranks table: Llama − Gemma of each model's median rank, per panel
    row = avg[(avg["framing"] == "positive") & (avg["category"] == "Agency")].iloc[0]
    assert row["Llama − Gemma"] == pytest.approx(row["Llama"] - row["Gemma"]) and row["Llama − Gemma"] < 0
    assert any("Gemma" in t.columns or "mean_rank" in t.columns for t in tables)
    at.radio(key="cmp-interval").set_value("ci95").run()
    assert not at.exception
    assert any("95% interval" in c.value for c in at.caption)
    assert any("reference levels as the paper codes them: Gemma, Agency, positive prompts" in shown(m.value)
               for m in at.markdown)


def test_compare_names_the_mfd_variant(published_db, monkeypatch):
    monkeypatch.setenv("VALUEAUDIT_DB", str(published_db))
    at = _run("compare.py")
    options = at.selectbox(key="cmp-corpus").options
    assert not any(o.startswith("mfd2") for o in options)  # one entry for MFD, then its variant
    at.selectbox(key="cmp-corpus").set_value(ak_mfd()).run()
    assert not at.exception
    assert at.radio(key="cmp-mfd-variant").value == "mfd2-paper"
    assert any("mfd2-paper" in c.value and "1,652" in c.value for c in at.caption)
    at.radio(key="cmp-mfd-variant").set_value("mfd2").run()
    assert not at.exception
    assert any("mfd2-paper" in c.value and "2,040" in c.value for c in at.caption)


def ak_mfd() -> str:
    import appkit
    return appkit.MFD_CHOICE


def test_training_dynamics_manifest_labels_identical_note_and_figure_4b(paper_data):
    at = _run("training_dynamics.py")
    assert not at.exception and not at.error
    labels = at.selectbox(key="td-run").options
    assert "UltraFeedback + Skywork 550K · GRM" in labels and "Skywork 77K · Bradley-Terry" in labels
    assert not any("80K" in lb for lb in labels)
    # Issue 21: it opens on the largest UltraFeedback run, not on one its own banner flags as a duplicate.
    assert at.selectbox(key="td-run").value == "UltraFeedback 106K · Bradley-Terry" and not at.warning
    at.selectbox(key="td-run").set_value("UltraFeedback 13K · Bradley-Terry").run()
    assert any("byte-identical" in w.value and "27K" in w.value for w in at.warning)
    at.radio(key="td-view").set_value("Against data size (Figure 4b)").run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    d = at.dataframe[0].value
    assert isinstance(d, pd.DataFrame) and set(d["base_model"]) == {"Gemma", "Llama"} and len(d) == 24
