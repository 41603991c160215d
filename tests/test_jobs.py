"""Tests for core.jobs, the dashboard's background scoring jobs (moved from test_app.py):
a cancel keeps committed rows and a rerun completes; a bad model fails its row, not the app."""
from __future__ import annotations

from core import jobs
from core.store import Store


def test_jobs_cancel_keeps_committed_rows(db, tiny_llama_rm):
    """Cancel from another thread mid-run: the job stops, rows so far stay, a rerun completes."""
    from core import prompts
    words = [f"word{i}" for i in range(400)]
    spec = jobs.JobSpec([jobs.ModelRequest(str(tiny_llama_rm), "rm")], prompts.paper_prompts()[:3], words,
                        corpus="t", db_path=str(db), engine="naive", batch_size=8, device="cpu")
    reg = jobs.JobRegistry()
    job = reg.submit(spec)
    import time
    deadline = time.time() + 120
    while job.statuses[0].done < 16 and time.time() < deadline and job.active:
        time.sleep(0.05)
    job.cancel()
    assert job.wait(120)
    assert job.state in ("cancelled", "done")
    n = len(Store(db).scores(kind="rm"))
    assert n > 0
    job2 = reg.submit(spec)
    assert job2.wait(300) and job2.state == "done"
    assert len(Store(db).scores(kind="rm")) == 3 * 400
    assert job2.statuses[0].cached == n


def test_jobs_report_a_bad_model_without_raising(db):
    from core import prompts
    spec = jobs.JobSpec([jobs.ModelRequest("/no/such/folder", "rm")], prompts.paper_prompts()[:1], ["love"],
                        db_path=str(db), device="cpu")
    job = jobs.JobRegistry().submit(spec)
    assert job.wait(60)
    assert job.state == "failed" and job.statuses[0].state == "failed"
    assert "not found" in job.statuses[0].message


# -- issue 25: limits on work, a fair queue, ownership ------------------------------------
def _gated(order: list, gates: dict):
    """A loader that records which model it was asked for, waits for that model's gate,
    then fails the model (nothing is scored): the test decides when each job ends."""
    import threading

    def load(name, *a, **k):
        order.append(name)
        gates.setdefault(name, threading.Event()).wait(60)
        raise RuntimeError("ended by the test")
    return load


def _one(name: str, db, words=("love",), n_prompts: int = 1) -> jobs.JobSpec:
    from core import prompts
    return jobs.JobSpec([jobs.ModelRequest(name, "rm")], prompts.paper_prompts()[:n_prompts], list(words),
                        db_path=str(db), device="cpu")


def _wait_for(cond, timeout: float = 30) -> bool:
    import time
    deadline = time.time() + timeout
    while not cond() and time.time() < deadline:
        time.sleep(0.02)
    return cond()


def test_jobs_run_first_come_first_served_and_a_queued_cancel_ends_at_once(db):
    import threading
    order, gates = [], {n: threading.Event() for n in ("org/a", "org/b", "org/c", "org/d")}
    reg = jobs.JobRegistry(loader=_gated(order, gates))
    a, b, c, d = (reg.submit(_one(n, db)) for n in ("org/a", "org/b", "org/c", "org/d"))
    assert _wait_for(lambda: order == ["org/a"])
    c.cancel()
    assert c.wait(5) and c.state == "cancelled"  # left the queue while org/a still runs
    assert a.active and b.state == "queued"
    for name, job in (("org/a", a), ("org/b", b), ("org/d", d)):
        gates[name].set()
        assert job.wait(30)
    assert order == ["org/a", "org/b", "org/d"]  # in the order submitted, the cancelled one never loaded


def test_a_visitor_has_at_most_the_quota_of_jobs_queued_or_running(db, monkeypatch):
    import threading

    import pytest
    from core import limits
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    gates = {n: threading.Event() for n in ("org/a", "org/b", "org/c")}
    reg = jobs.JobRegistry(loader=_gated([], gates))
    first = reg.submit(_one("org/a", db), owner="visitor-one")
    with pytest.raises(limits.LimitError, match="VALUEAUDIT_MAX_JOBS_PER_VISITOR=1"):
        reg.submit(_one("org/b", db), owner="visitor-one")
    other = reg.submit(_one("org/c", db), owner="visitor-two")  # another visitor is not held back
    assert [j.owner for j in reg.jobs()] == ["visitor-two", "visitor-one"]
    gates["org/a"].set()
    assert first.wait(30)
    again = reg.submit(_one("org/b", db), owner="visitor-one")  # the first ended: room again
    monkeypatch.setenv("VALUEAUDIT_MAX_JOBS_PER_VISITOR", "3")
    reg.submit(_one("org/a", db), owner="visitor-two")
    for g in gates.values():
        g.set()
    assert other.wait(30) and again.wait(30)
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")  # the person at the machine: no quota unless set
    monkeypatch.delenv("VALUEAUDIT_MAX_JOBS_PER_VISITOR")
    local_gates = {n: threading.Event() for n in ("org/x", "org/y")}
    held = jobs.JobRegistry(loader=_gated([], local_gates))
    mine = [held.submit(_one("org/x", db), owner="me"), held.submit(_one("org/y", db), owner="me")]
    for g in local_gates.values():
        g.set()
    assert all(j.wait(30) for j in mine)


def test_the_server_takes_at_most_its_cap_of_jobs_whatever_the_visitor_tokens(db, monkeypatch):
    """A visitor's token is theirs to choose (a new tab without ?visitor= is a fresh one), so
    a per-visitor quota alone holds nobody back: the server counts everyone's jobs too."""
    import threading

    import pytest
    from core import limits
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.delenv("VALUEAUDIT_MAX_QUEUED_JOBS", raising=False)
    names = [f"org/m{i}" for i in range(6)]
    gates = {n: threading.Event() for n in names}
    reg = jobs.JobRegistry(loader=_gated([], gates))
    held = [reg.submit(_one(n, db), owner=f"tab-{i}") for i, n in enumerate(names[:4])]  # 4 tabs, one job each
    with pytest.raises(limits.LimitError, match=r"^this server already has 4 job\(s\) queued or running.*"
                                                r"VALUEAUDIT_MAX_QUEUED_JOBS=4\): wait until one ends .* or ask "
                                                r"the server's operator$"):
        reg.submit(_one(names[4], db), owner="tab-5")
    assert len(reg.jobs()) == 4  # the refused job was never queued
    gates[names[0]].set()
    assert held[0].wait(30)
    later = reg.submit(_one(names[4], db), owner="tab-5")  # one ended: room for one more
    with pytest.raises(limits.LimitError, match="VALUEAUDIT_MAX_QUEUED_JOBS=4"):
        reg.submit(_one(names[5], db), owner="tab-6")
    monkeypatch.setenv("VALUEAUDIT_MAX_QUEUED_JOBS", "5")  # the operator's setting, read when a job comes
    extra = reg.submit(_one(names[5], db), owner="tab-6")
    reg.submit(_one(names[5], db))  # a script's job (no visitor token) is not the dashboard's to limit
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")  # the person at the machine: no cap unless set
    monkeypatch.delenv("VALUEAUDIT_MAX_QUEUED_JOBS")
    reg.submit(_one(names[5], db), owner="me")
    monkeypatch.setenv("VALUEAUDIT_MAX_QUEUED_JOBS", "2")
    with pytest.raises(limits.LimitError, match="VALUEAUDIT_MAX_QUEUED_JOBS=2"):
        reg.submit(_one(names[5], db), owner="me-again")
    for g in gates.values():
        g.set()
    assert all(j.wait(30) for j in reg.jobs()) and later.state == extra.state == "failed"


def test_a_job_over_the_row_limit_is_refused_with_its_cost_before_it_is_queued(db, monkeypatch):
    import pytest
    from core import limits
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    reg = jobs.JobRegistry(loader=lambda *a, **k: pytest.fail("nothing may load"))
    words = [f"w{i}" for i in range(1000)]
    monkeypatch.setenv("VALUEAUDIT_MAX_JOB_ROWS", "2999")
    with pytest.raises(limits.LimitError) as e:
        reg.submit(_one("org/a", db, words, n_prompts=3), owner="v")
    assert "3,000 rows (1 model(s) x 3 prompts x 1,000 words)" in str(e.value) and "2,999" in str(e.value)
    assert reg.jobs() == []
    monkeypatch.delenv("VALUEAUDIT_MAX_JOB_ROWS")  # the shared default: 2,000,000
    limits.check_job_rows(2, 54, 18_518)
    with pytest.raises(limits.LimitError, match="50,760,000 rows"):
        limits.check_job_rows(2, 54, 470_000)  # the 470,000-word corpus
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    limits.check_job_rows(2, 54, 470_000)  # local mode: no limit unless the operator sets one


def test_who_may_cancel_a_job(monkeypatch):
    from core import prompts
    spec = jobs.JobSpec([jobs.ModelRequest("org/a", "rm")], prompts.paper_prompts()[:1], ["love"])
    job = jobs.Job(1, spec, [], owner="token-of-the-owner-123456")
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    assert jobs.may_cancel(job, "token-of-the-owner-123456")
    assert not jobs.may_cancel(job, "token-of-someone-else-1234") and not jobs.may_cancel(job, None)
    assert jobs.may_cancel(job, None, operator=True)
    assert not jobs.may_cancel(jobs.Job(2, spec, []), "token-of-the-owner-123456")  # a script's job: no owner
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    assert jobs.may_cancel(job, None)


def test_the_bar_shows_the_whole_job_then_the_model_now_running(db, monkeypatch):
    """Issue 21: the bar followed the model now running (50 % while model 1 of 2 was half done;
    100 -> 89 -> 100 % as model 2 started; a cancelled job showed its model's 70 %). The job's
    fraction counts every model the same, so it only moves forward. Scoring is replaced by
    a stand-in that reports progress as a run does, and the fraction is read at each report."""
    from core import prompts, scoring
    seen: list[tuple[str, float, str]] = []
    reg = jobs.JobRegistry()

    def fake_score(request, store, backend, on_start, on_progress, should_stop):
        job = reg.jobs()[0]
        on_start(type("S", (), {"device": "cpu"})())
        total = {"a": 100, "b": 90, "c": 50}[request.model]
        for done in range(0, total + 1, 10 if request.model != "c" else 20):
            if request.model == "c" and done >= 20:  # the user cancels model 3 at 40 %
                job.cancel()
            on_progress(scoring.Progress(done, total, done, 0, 1.0))
            seen.append((request.model, job.fraction, job.progress_text()))
            if should_stop():
                return scoring.ScoreResult(new=done, cached=0, stopped=True, model_name=request.model)
        return scoring.ScoreResult(new=total, cached=0, model_name=request.model)

    monkeypatch.setattr(jobs.runner, "score", fake_score)
    spec = jobs.JobSpec([jobs.ModelRequest(m, "rm") for m in "abc"], prompts.paper_prompts()[:1], ["love"],
                        db_path=str(db), device="cpu")
    job = reg.submit(spec)
    assert job.wait(60)
    fractions = [f for _, f, _ in seen]
    assert fractions == sorted(fractions)  # never backwards
    assert any(m == "a" and abs(f - 0.5 / 3) < 1e-12 for m, f, _ in seen)  # model 1 of 3 half done: 1/6 of the job
    start_b = next((f, t) for m, f, t in seen if m == "b")
    assert start_b[0] == 1 / 3 and start_b[1] == "33% of the job · model 2 of 3 (b): 0%"
    assert job.state == "cancelled" and job.fraction == (1 + 1 + 0.4) / 3
    assert job.progress_text() == "cancelled at 80% of the job"
    # the Score page draws the same: the job's bar and line, each model's own rows in its row
    import pytest
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from tests.support import ROOT
    monkeypatch.setattr(jobs, "REGISTRY", reg)
    monkeypatch.setenv("VALUEAUDIT_DB", str(db))
    at = AppTest.from_file(str(ROOT / "pages" / "score.py"), default_timeout=120).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [p.value for p in at.get("progress")] == [80]  # st.progress shows whole per cent
    assert "cancelled at 80% of the job" in [t.value for t in at.text]
    rows = at.table[0].value
    assert rows["Status"].str.endswith("cancelled").tolist() == [False, False, True]
    assert rows["Rows scored"].tolist() == ["100 of 100", "90 of 90", "20 of 50"]
