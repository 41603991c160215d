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
