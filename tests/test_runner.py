"""One ScoreRequest, one `runner.score` for the CLI, the jobs and Ray: Ray progress reaches a
job shard by shard, and Ray runs record their measurement checks (exit 3 when they fail).

Ray itself is replaced by an in-process stand-in (tests/fake_ray.py) so the driver's logic
runs in seconds on a real tiny model and a real DuckDB; test_ray.py runs the real Ray."""
from __future__ import annotations

import os

import pytest

from core import checks, distributed, jobs, prompts, request, runner, scoring
from core.cli import _parser, main
from core.store import Store
from tests.fake_ray import FakeRay

WORDS = ["love", "freedom", "power", "kindness", "success", "family", "truth", "wisdom", "benevolence",
         "trustworthiness", "courage", "honesty", "peace", "joy", "health", "wealth", "fame", "beauty",
         "justice", "mercy"]


@pytest.fixture()
def fake_ray(monkeypatch):
    """distributed.import_ray answers with the stand-in; what the driver changes in this
    process (PYTHONPATH, torch threads) is put back."""
    import torch
    fake = FakeRay(cpus=2)
    monkeypatch.setattr(distributed, "import_ray", lambda: fake)
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    threads = torch.get_num_threads()
    yield fake
    torch.set_num_threads(threads)


def _rows(db, model) -> int:
    return len(Store(db).scores(kind="rm", models=[str(model)]))


def test_cli_and_job_spell_the_same_request(tmp_path):
    ps = prompts.paper_prompts()[:2]
    args = _parser().parse_args(["score", "--model", "org/m", "--kind", "rm", "--corpus", "big2-nouns", "--db",
                                 str(tmp_path / "x.duckdb"), "--batch-size", "8", "--engine", "naive",
                                 "--device", "cpu", "--dtype", "float32", "--revision", "abc", "--family", "llama"])
    from_cli = request.from_args(args, WORDS, ps, "big2-nouns")
    spec = jobs.JobSpec([jobs.ModelRequest("org/m", "rm", revision="abc", family="llama")], ps, WORDS,
                        corpus="big2-nouns", db_path=str(tmp_path / "x.duckdb"), engine="naive", batch_size=8,
                        device="cpu", dtype="float32")
    assert spec.request(spec.models[0]) == from_cli
    assert isinstance(spec.backend_for(None), runner.Local)
    assert runner.backend_named("ray", address="h:1", workers=3) == runner.Ray("h:1", 3)


def test_ray_progress_reaches_the_job_shard_by_shard(fake_ray, tiny_llama_rm, tmp_path):
    db = tmp_path / "j.duckdb"
    ps = prompts.paper_prompts()[:4]
    spec = jobs.JobSpec([jobs.ModelRequest(str(tiny_llama_rm), "rm")], ps, WORDS, corpus="mini", db_path=str(db),
                        batch_size=4, device="cpu", backend="ray", workers=2)
    seen = []  # (rows shown on the page, rows to do, rows in the database) each time the driver waits for a shard
    job = None

    def look():
        s = job.statuses[0]
        seen.append((s.done, s.total, _rows(db, tiny_llama_rm)))
    fake_ray.on_wait = look
    reg = jobs.JobRegistry()
    job = reg.submit(spec)
    assert job.wait(timeout=300)
    status = job.statuses[0]
    assert job.state == "done" and status.state == "done", status.message
    n = len(WORDS) * len(ps)
    assert status.device == "Ray cluster" and (status.done, status.total, status.new) == (n, n, n)
    assert len(seen) >= 4, seen  # several shards
    assert seen[0] == (0, n, 0)  # the total is known before the first shard returns
    done = [d for d, _, _ in seen]
    assert done == sorted(set(done)), "progress moves forward at every shard"
    assert all(d == stored for d, _, stored in seen), "progress counts exactly the rows saved so far"
    assert _rows(db, tiny_llama_rm) == n
    # the run's measurement checks were recorded, as for a local job
    row = checks.latest(Store(db))
    assert len(row) == 1 and row.iloc[0]["status"] == "passed" and row.iloc[0]["corpus"] == "mini"
    assert "measurement checks passed" in status.message


def _score_cli(tiny_llama_rm, tmp_path, db, capsys):
    corpus = tmp_path / "w.csv"
    corpus.write_text("word,category\n" + "\n".join(f"{w},A" for w in WORDS) + "\n")
    ps = tmp_path / "p.yaml"
    ps.write_text("best_ever_one: What, in one word, is the best thing ever?\n"
                  "worst_ever_one: What, in one word, is the worst thing ever?\n")
    code = main(["score", "--model", str(tiny_llama_rm), "--kind", "rm", "--corpus", str(corpus), "--prompts",
                 str(ps), "--db", str(db), "--backend", "ray", "--workers", "2", "--device", "cpu",
                 "--batch-size", "4", "--quiet"])
    return code, capsys.readouterr()


def test_cli_ray_run_records_its_checks(fake_ray, tiny_llama_rm, tmp_path, capsys):
    db = tmp_path / "ok.duckdb"
    code, out = _score_cli(tiny_llama_rm, tmp_path, db, capsys)
    assert code == 0, out.err
    assert out.out.strip().splitlines()[-1] == f"scored {2 * len(WORDS)} new, 0 cached"
    assert "measurement checks passed" in out.err
    rec = checks.latest(Store(db)).iloc[0]
    assert rec["status"] == "passed" and rec["n_words"] == len(WORDS) and rec["max_abs_diff"] < 1e-4
    assert rec["model_key"] == Store(db).models()["model_key"].item()


def test_cli_ray_run_whose_checks_fail_exits_3_and_keeps_rows(fake_ray, tiny_llama_rm, tmp_path, capsys,
                                                               monkeypatch):
    """The workers store values that a recomputation does not reproduce (every stored value
    shifted by 0.5): the check must flag the run, the CLI exit 3, and no row be lost."""
    real = scoring.with_oom_backoff

    def shifted(eng, text, words, batch_size):
        for ws, vs in real(eng, text, words, batch_size):
            yield ws, [v + 0.5 for v in vs]
    monkeypatch.setattr(scoring, "with_oom_backoff", shifted)
    db = tmp_path / "bad.duckdb"
    code, out = _score_cli(tiny_llama_rm, tmp_path, db, capsys)
    assert code == 3, out.err
    assert "MEASUREMENT CHECK FAILED" in out.err
    assert checks.latest(Store(db)).iloc[0]["status"] == "failed"
    assert _rows(db, tiny_llama_rm) == 2 * len(WORDS)


def test_ray_run_stops_between_shards_without_checks(fake_ray, tiny_llama_rm, tmp_path):
    db = tmp_path / "s.duckdb"
    req = request.ScoreRequest(str(tiny_llama_rm), "rm", WORDS, prompts.paper_prompts()[:4], corpus="mini",
                               batch_size=4, device="cpu", db=str(db))
    progress = []
    result = runner.score(req, backend=runner.Ray(workers=2), on_progress=progress.append,
                          should_stop=lambda: len(progress) >= 2)
    assert result.stopped and result.check is None
    assert result.new == progress[-1].done == _rows(db, tiny_llama_rm) < len(WORDS) * 4
    assert checks.latest(Store(db)).empty
    assert fake_ray.killed == 2  # both workers released
