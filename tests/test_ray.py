"""`score --backend ray`: a local Ray instance (2 CPUs) on the tiny Llama RM equals the local
backend; a worker killed mid-job is retried; a driver killed mid-job resumes."""
import importlib.util
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from core import checks, corpora, distributed, prompts, request, runner
from core.cli import main
from core.store import Store
from tests.support import ROOT, cli, last_line

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (pip install -r requirements-ray.txt)")
pytestmark = pytest.mark.filterwarnings("ignore:.*accelerator visible devices:FutureWarning")
KEYS = ["model", "kind", "prompt_id", "prompt", "response"]


def ray_score(model, db, *extra):
    return cli("score", "--model", model, "--kind", "rm", "--corpus", "big2-nouns", "--prompts", "paper",
               "--db", db, "--backend", "ray", "--workers", 2, *extra)


def test_without_ray_one_line_install_hint(monkeypatch, capsys, paper_data, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    code = main(["score", "--model", "org/any", "--kind", "rm", "--corpus", "big2-nouns",
                 "--db", str(tmp_path / "x.duckdb"), "--backend", "ray"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "error: Ray is not installed; pip install -r requirements-ray.txt"


@needs_ray
@pytest.mark.slow
def test_ray_two_workers_equals_local_backend(tiny_llama_rm, tmp_path):
    t0 = time.monotonic()
    res = ray_score(tiny_llama_rm, tmp_path / "ray.duckdb", "--quiet")
    assert last_line(res) == "scored 14202 new, 0 cached"
    assert "measurement checks passed" in res.stderr  # a Ray run records its checks too
    rec = checks.latest(Store(tmp_path / "ray.duckdb")).iloc[0]
    assert rec["status"] == "passed" and rec["corpus"] == "big2-nouns" and rec["n_words"] == 263
    cli("score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", "big2-nouns", "--prompts", "paper",
        "--db", tmp_path / "local.duckdb", "--quiet")
    for name in ("ray", "local"):
        cli("export", "--db", tmp_path / f"{name}.duckdb", "--out", tmp_path / f"{name}.csv")
    got = pd.read_csv(tmp_path / "ray.csv", keep_default_na=False)
    ref = pd.read_csv(tmp_path / "local.csv", keep_default_na=False)
    assert list(got.columns) == list(ref.columns) and len(got) == len(ref) == 14202
    both = ref.merge(got, on=KEYS, how="inner", suffixes=("_local", "_ray"))
    assert len(both) == 14202
    assert (both["value_local"] - both["value_ray"]).abs().max() < 1e-5
    print(f"ray + local + exports: {time.monotonic() - t0:.0f}s")


@pytest.fixture()
def local_ray():
    import ray
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def crash_once_scorer(marker: str) -> type:
    """A Ray worker whose first shard attempt (over all restarts) exits the process, as a
    killed worker would; the marker file makes it once. Defined in a function so Ray ships
    the class itself to the workers (pickled by value)."""
    class CrashOnce(distributed.Scorer):
        def score(self, *args, **kwargs):
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                os._exit(1)
            except FileExistsError:
                pass
            return super().score(*args, **kwargs)
    return CrashOnce


@needs_ray
@pytest.mark.slow
def test_killed_worker_is_retried(tiny_llama_rm, tmp_path, local_ray):
    marker = tmp_path / "crashed"
    corpus = corpora.load("big2-nouns")
    plist = prompts.load("paper")[:6]
    req = request.ScoreRequest(str(tiny_llama_rm), "rm", corpus.vocabulary, plist, corpus=corpus.name, device="cpu")
    store = Store(tmp_path / "w.duckdb")
    result = runner.score(req, store, backend=runner.Ray(workers=2, scorer=crash_once_scorer(str(marker))),
                          checks=False)
    assert marker.exists(), "no worker was killed"
    n = len(corpus.vocabulary) * len(plist)
    assert (result.new, result.cached) == (n, 0)
    assert len(store.scores(kind="rm")) == n
    assert local_ray.is_initialized()  # an instance it did not start is left running


def kill_orphans(driver_pid: int) -> None:
    """The Ray processes a SIGKILLed driver started (its session folder ends in its pid) would
    linger about a minute; end them now, by pid."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if "/tmp/ray/session_" in cmd and f"_{driver_pid}/" in cmd:
            try:
                os.kill(int(d), signal.SIGKILL)
            except OSError:
                pass


@needs_ray
@pytest.mark.slow
def test_killed_driver_resumes(tiny_llama_rm, tmp_path):
    db = tmp_path / "k.duckdb"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "core", "score", "--model", str(tiny_llama_rm), "--kind", "rm",
                             "--corpus", "big2-nouns", "--db", str(db), "--backend", "ray", "--workers", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # progress lines: kill once a shard is committed
            if line.startswith("shard 2/"):
                break
        else:
            pytest.fail("the job ended before a shard was saved")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
        kill_orphans(proc.pid)
    stored = len(Store(db).scores(kind="rm"))
    assert 0 < stored < 14202
    res = ray_score(tiny_llama_rm, db, "--quiet")
    new, cached = (int(x) for x in last_line(res).replace("scored ", "").replace(" new,", "").split()[:2])
    assert cached == stored and new + cached == 14202
    rows = Store(db).scores(kind="rm")
    assert len(rows) == 14202 and not rows.duplicated(["prompt", "response"]).any()


@needs_ray
def test_score_page_runs_a_job_on_ray(tmp_path, monkeypatch, paper_data, tiny_llama_rm):
    import ray
    from streamlit.testing.v1 import AppTest

    from core import jobs
    db = tmp_path / "app.duckdb"
    monkeypatch.setenv("VALUEAUDIT_DB", str(db))
    at = AppTest.from_file(str(ROOT / "pages" / "score.py"), default_timeout=120)
    at.run()
    at.text_input(key="score-extra").set_value(str(tiny_llama_rm))
    at.radio(key="score-prompts").set_value("Some of the paper's prompts")
    at.run()
    at.multiselect(key="score-prompt-ids").set_value(["greatest_ever_one", "worst_ever_one"])
    at.radio(key="score-backend").set_value("Ray cluster").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Cluster resources: CPU 2" in c.value for c in at.caption)
    assert not ray.is_initialized()  # the resources probe shuts its instance down
    at.button(key="score-start").click().run()
    assert not at.exception
    job = jobs.REGISTRY.get(at.session_state["job_id"])
    assert job.wait(timeout=600), "Ray job did not finish"
    assert job.state == "done", [(s.state, s.message) for s in job.statuses]
    assert job.statuses[0].device == "Ray cluster"
    assert len(Store(db).scores(kind="rm", models=[str(tiny_llama_rm)])) == 2 * 263
