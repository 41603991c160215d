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
