"""Issue 12: a model scored on a few prompts never silently joins the family statistics.
AppTest on Home with the published Big Two results plus a Llama RM scored on 2 of 54
prompts: the family gap is the published-only gap until the user includes that model,
and the page says the model is left out. The gap is checked against an independent
computation from the published CSV files."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import prompts  # noqa: E402
from core.store import Store  # noqa: E402
from tests.support import shown  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PARTIAL = "local/partial-llama-rm"
SHOWN = "partial-llama-rm"  # its short display name on the pages


def _gap_from_files(paper_data: Path, category: str = "Agency") -> float:
    """Positive prompts: |Gemma - Llama| family mean rank of a category, from the CSVs."""
    words = pd.read_csv(paper_data / "corpora" / "dict_big2_nouns.csv", keep_default_na=False)
    cat = dict(zip(words["token_decoded"], words["Category"]))
    pos = [p.prompt_id for p in prompts.paper_prompts() if prompts.framing_of(p.prompt_id) == "positive"]
    fam_means = {}
    for f in sorted((paper_data / "reward_model_scores" / "dict_big2_nouns").glob("*.csv")):
        df = pd.read_csv(f, keep_default_na=False).drop_duplicates("response")
        df = df[df["response"].isin(cat)]
        per_prompt = []
        for pid in pos:
            r = pd.to_numeric(df[pid]).rank(ascending=False, method="average")
            per_prompt.append(np.median(r[df["response"].map(cat) == category]))
        fam = "Gemma" if "gemma" in f.name.lower() else "Llama"
        fam_means.setdefault(fam, []).append(np.mean(per_prompt))
    return abs(np.mean(fam_means["Gemma"]) - np.mean(fam_means["Llama"]))


@pytest.fixture()
def partial_db(tmp_path_factory, paper_data, monkeypatch) -> Path:
    from core.published import import_published
    base = tmp_path_factory.getbasetemp() / "coverage-published.duckdb"
    if not base.exists():
        import_published(Store(base))
    db = tmp_path_factory.mktemp("cov") / "partial.duckdb"
    shutil.copy(base, db)
    words = pd.read_csv(paper_data / "corpora" / "dict_big2_nouns.csv", keep_default_na=False)["token_decoded"]
    rng = np.random.default_rng(0)
    store = Store(db)
    store.upsert_model(PARTIAL, PARTIAL, "rm", "llama")
    two = prompts.paper_prompts()[:2]
    rows = pd.DataFrame([{"prompt_id": p.prompt_id, "prompt": p.text, "response": w, "value": rng.normal()}
                         for p in two for w in words])
    store.add_scores(PARTIAL, "rm", rows)
    monkeypatch.setenv("VALUEAUDIT_DB", str(db))
    import streamlit as st
    st.cache_data.clear()
    return db


def _page_text(at) -> str:
    return " ".join(shown(str(getattr(e, "value", ""))) for e in [*at.markdown, *at.caption, *at.info, *at.warning,
                                                                   *at.text])


def _agency_gap(at) -> float:
    m = re.search(r"rank Agency words (\d+\.\d) places higher", _page_text(at))
    assert m, _page_text(at)[:2000]
    return float(m.group(1))


def test_partial_model_left_out_of_home_until_included(partial_db, paper_data):
    at = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=180).run()
    assert not at.exception and not at.error
    text = _page_text(at)
    assert "Left out of the family statistics" in text and SHOWN in text and "2 of 54 prompts" in text
    expected = _gap_from_files(paper_data)
    assert _agency_gap(at) == pytest.approx(round(expected, 1), abs=0.051)
    at.checkbox(key="home-incomplete").check().run()
    assert not at.exception and not at.error
    assert "Included although incompletely scored" in _page_text(at)
    assert abs(_agency_gap(at) - expected) > 0.1  # the partial model now moves the number


def test_compare_leaves_partial_model_out_by_default(partial_db):
    """Every scored model is offered (and chosen); the one rule leaves the partial one out of
    the statistics and says so, until it is included."""
    at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=180).run()
    assert not at.exception and not at.error
    assert PARTIAL in at.multiselect(key="cmp-models").value
    used = at.session_state["comparison"]["models"]
    assert PARTIAL not in used and len(used) == 10
    text = _page_text(at)
    assert "10 reward models in the family statistics" in text
    assert f"Left out of the family statistics: {SHOWN} (incomplete coverage: 2 of 54 prompts" in text
    at.checkbox(key="cmp-incomplete").check().run()
    assert PARTIAL in at.session_state["comparison"]["models"]
    assert "Included although incompletely scored" in _page_text(at)
