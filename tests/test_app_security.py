"""Issue 13 in the app's own code (Streamlit AppTest and the job registry): a visitor on a
shared server cannot cancel another visitor's job, cannot get remote code, pickle or a server
path past the job registry, and the report names no server path."""
from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import jobs, prompts, report, settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _spec(name: str, **req) -> jobs.JobSpec:
    return jobs.JobSpec([jobs.ModelRequest(name, "rm", **req)], prompts.paper_prompts()[:1], ["love"], device="cpu")


def test_shared_registry_refuses_remote_code_pickle_and_paths(monkeypatch, tiny_llama_rm):
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    reg = jobs.JobRegistry(loader=lambda *a, **k: pytest.fail("nothing may load"))
    for spec in (_spec("org/name", trust_remote_code=True), _spec("org/name", allow_pickle=True),
                 _spec(str(tiny_llama_rm))):
        with pytest.raises(settings.SettingsError):
            reg.submit(spec)
    assert reg.jobs() == []


def _score_page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "score.py"), default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, at.exception
    return at


def test_only_the_owner_and_the_operator_cancel_a_job_also_after_a_reload(monkeypatch, tmp_path, paper_data):
    """Issue 25: ownership is a visitor token kept in the page address, so the owner's reload
    (a new browser session) still cancels their job; another visitor cannot; the operator
    (VALUEAUDIT_OPERATOR_KEY) can, and the key leaves the address at once."""
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "s.duckdb"))
    release = threading.Event()

    def slow_loader(*a, **k):
        release.wait(60)
        raise RuntimeError("stopped by the test")

    owner_page = _score_page()
    owner = owner_page.query_params["visitor"]  # the owner's first visit got a random token in its address
    assert len(owner) >= 22 and owner_page.session_state["visitor"] == owner
    job = jobs.REGISTRY.submit(_spec("org/someone-elses-model"), loader=slow_loader, owner=owner)
    cancel = f"cancel-{job.id}"
    try:
        other = _score_page()
        assert other.query_params["visitor"] != owner
        assert not [b for b in other.button if b.key == cancel]
        assert any("Started by another visitor" in c.value for c in other.caption)
        forged = _score_page({"visitor": "not a token!"})  # a malformed token is replaced, never adopted
        assert forged.query_params["visitor"] != "not a token!" and not [b for b in forged.button if b.key == cancel]
        reloaded = _score_page({"visitor": owner})  # the owner reloads: a new session, the same address
        assert reloaded.query_params["visitor"] == owner
        monkeypatch.setenv("VALUEAUDIT_OPERATOR_KEY", "k" * 24)
        wrong = _score_page({"operator": "x" * 24})
        assert "operator" not in wrong.query_params and not [b for b in wrong.button if b.key == cancel]
        op = _score_page({"operator": "k" * 24})
        assert "operator" not in op.query_params  # never left in the address bar or a copied link
        assert [b for b in op.button if b.key == cancel]
        [b for b in reloaded.button if b.key == cancel][0].click()
        reloaded.run()
        assert job.cancel_requested
    finally:
        release.set()
        job.wait(60)
    assert job.state == "cancelled"


def test_the_report_names_no_server_path():
    med = pd.DataFrame({"model": ["/srv/secret/models/my-rm", "org/hub-rm"],
                        "model_key": ["local:/srv/secret/models/my-rm#ab12~float32", "hub:org/hub-rm@main~bfloat16"]})
    got = report.public_models(med)
    assert got["model"].tolist() == ["my-rm", "org/hub-rm"]
    assert got["model_key"].tolist() == ["local:my-rm#ab12~float32", "hub:org/hub-rm@main~bfloat16"]
    assert "/srv" not in report.report_html("t", "s", [], [("Median ranks", got)], {"Database": "x.duckdb"}).decode()
    src = (ROOT / "pages" / "report.py").read_text()
    assert "store().path)" not in src and "report.public_models(med)" in src


def test_family_legend_is_plain_markdown(monkeypatch):
    import appkit
    calls = []
    monkeypatch.setattr(appkit.st, "markdown", lambda *a, **k: calls.append((a, k)))
    appkit.family_legend(["llama", "<img src=x onerror=alert(1)>", "gemma"])
    (args, kwargs), = calls
    assert not kwargs.get("unsafe_allow_html")
    assert "<" not in args[0] and "img" not in args[0]
    assert args[0].count("●") == 3 and "Unknown" in args[0] and "Llama" in args[0]


PAGES = sorted(p.name for p in (ROOT / "pages").glob("*.py"))


@pytest.mark.parametrize("page", PAGES)
def test_a_mode_typo_closes_every_page_with_one_operator_error(page, monkeypatch, tmp_path, paper_data):
    """Issue 25: a VALUEAUDIT_MODE typo failed closed on Home, Models and Score while Compare,
    Corpora and Implicit reward kept running; now every page shows one error and nothing else."""
    import streamlit as st
    monkeypatch.setenv("VALUEAUDIT_MODE", "sahred")
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "t.duckdb"))
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert [e.value.count("VALUEAUDIT\\_MODE") for e in at.error] == [1], [e.value for e in at.error]
    assert "closed until its operator fixes a server setting" in at.error[0].value
    assert not at.get("plotly_chart") and not at.button and not at.selectbox and not at.title and not at.caption


def test_local_mode_shows_the_remote_code_warning_when_the_box_is_ticked(monkeypatch, tmp_path, paper_data):
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "t.duckdb"))
    at = _score_page()
    at.multiselect(key="score-models").set_value(["nicolinho/QRM-Gemma-2-27B"]).run()
    box = at.checkbox(key="trust-nicolinho/QRM-Gemma-2-27B")
    assert not any("will run on this machine" in w.value for w in at.warning)
    box.check().run()
    assert any("will run on this machine, with your permissions" in w.value for w in at.warning)


def test_an_unknown_setting_is_shown_once_to_the_person_at_a_local_server(monkeypatch, tmp_path, paper_data):
    from core import settings
    monkeypatch.setenv("VALUEAUDIT_" + "MODLES_DIR", "/srv/models")
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "t.duckdb"))
    monkeypatch.setattr(settings, "_WARNED", set())
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    shared = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=120)
    shared.run()
    assert not [w for w in shared.warning if "MODLES" in w.value]  # visitors are not told; the log is
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    local = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=120)
    local.run()
    said = [w.value for w in local.warning if "MODLES" in w.value]
    assert len(said) == 1 and "did you mean VALUEAUDIT\\_MODELS\\_DIR" in said[0]
    local.run()
    assert not [w for w in local.warning if "MODLES" in w.value]  # once per session


def test_models_page_says_a_stored_model_is_left_as_it_is(monkeypatch, tmp_path, paper_data):
    from core.store import Store
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "m.duckdb"))
    Store(tmp_path / "m.duckdb").upsert_model("hub:org/old-rm@main", "org/old-rm", "rm", "gemma", source="scored")
    at = AppTest.from_file(str(ROOT / "pages" / "models.py"), default_timeout=120)
    at.run()
    at.text_input(key="add-name").set_value("org/old-rm")
    at.selectbox[[s.label for s in at.selectbox].index("Kind")].set_value("lm")
    at.selectbox[[s.label for s in at.selectbox].index("Base family")].set_value("qwen")
    [b for b in at.button if b.label == "Add model"][0].click().run()
    assert any("already in the catalogue as a reward model of the gemma family; nothing was changed" in i.value
               for i in at.info), [i.value for i in at.info]
    row = Store(tmp_path / "m.duckdb").models().iloc[0]
    assert (row["kind"], row["family"], row["source"]) == ("rm", "gemma", "scored")
