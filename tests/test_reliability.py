"""Issue 6: nothing lost after a kill, readers during writes, one-line errors for bad
input, safe model loading, safe exports. Real subprocesses, real files, real DuckDB."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from core import corpora, models, prompts, scoring
from core.export import neutralise_formulas
from core.store import Store, StoreError
from tests.plain_scorer import plain_rm_scores
from tests.support import ROOT, cli, last_line
from tests.tiny_models import make_tiny

EVIL_MODEL = """
import pathlib, os
pathlib.Path(os.environ["EVIL_MARKER"]).write_text("remote code ran")
from transformers import LlamaConfig, LlamaForSequenceClassification
class EvilModel(LlamaForSequenceClassification):
    config_class = LlamaConfig
"""


@pytest.fixture(scope="module")
def remote_code_model(tmp_path_factory):
    """A model whose config asks for its own code; importing that code leaves a marker file."""
    import json
    path = make_tiny(tmp_path_factory.mktemp("evil") / "evil-rm", "llama", "rm")
    (path / "modeling_evil.py").write_text(EVIL_MODEL)
    cfg = json.loads((path / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.EvilModel"}
    (path / "config.json").write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def pickle_model(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("pickle") / "pickle-rm", "llama", "rm", safetensors=False)


def one_line_error(res, fragment):
    assert res.returncode != 0, res.stdout
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0] == lines[-1] and fragment in errors[0], res.stderr


# -- safe loading --------------------------------------------------------------------------
def test_remote_code_refused_and_never_run(remote_code_model, tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    res = cli("score", "--model", remote_code_model, "--kind", "rm", "--corpus", "big2-nouns",
              "--db", tmp_path / "x.duckdb", check=False)
    one_line_error(res, "--trust-remote-code")
    assert not marker.exists()


def test_remote_code_runs_with_explicit_opt_in(remote_code_model, tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    loaded = models.load(str(remote_code_model), "rm", device="cpu", trust_remote_code=True)
    assert marker.exists() and type(loaded.model).__name__ == "EvilModel"


def test_pickle_only_refused_unless_allowed(pickle_model, tmp_path):
    db = tmp_path / "x.duckdb"
    res = cli("score", "--model", pickle_model, "--kind", "rm", "--corpus", "big2-nouns", "--db", db, check=False)
    one_line_error(res, "--allow-pickle")
    assert not db.exists()
    yml = tmp_path / "one.yaml"
    yml.write_text('best_ever_one: "What, in one word, is the best thing ever?"\n')
    ok = cli("score", "--model", pickle_model, "--kind", "rm", "--corpus", "big2-nouns", "--prompts", yml,
             "--db", db, "--allow-pickle", "--quiet")
    assert last_line(ok) == "scored 263 new, 0 cached"


# -- bad input: one line, non-zero exit, stored results intact -----------------------------
@pytest.fixture()
def seeded_db(tiny_llama_rm, tmp_path):
    """A database already holding results, to prove failures never lose them."""
    db = tmp_path / "seeded.duckdb"
    loaded = models.load(str(tiny_llama_rm), "rm", device="cpu")
    scoring.run(Store(db), loaded, prompts.paper_prompts()[:2], ["love", "power"], engine="naive")
    return db


def _rows(db):
    return Store(db).scores().sort_values(["prompt", "response"]).reset_index(drop=True)


def test_bad_inputs_refused_with_one_line(tiny_llama_rm, tiny_llama_lm, seeded_db, tmp_path):
    before = _rows(seeded_db)
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(os.urandom(4096) + b"\x00")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("word,category\ncafé,x\n".encode("latin-1"))
    empty = tmp_path / "empty.csv"
    empty.write_text("word,category\n")
    nocols = tmp_path / "nocols.csv"
    nocols.write_text("term,cat\nlove,x\n")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("a: [unclosed\n")
    notemplate = tmp_path / "notemplate"
    shutil.copytree(tiny_llama_rm, notemplate)
    (notemplate / "chat_template.jinja").unlink()
    base = ["score", "--kind", "rm", "--db", seeded_db]
    cases = [
        (["--model", "nobody/no-such-model", "--corpus", "big2-nouns"], "not found"),
        (["--model", tmp_path / "missing-folder", "--corpus", "big2-nouns"], "not found"),
        (["--model", tiny_llama_lm, "--corpus", "big2-nouns"], "no reward (classification) head"),
        (["--model", notemplate, "--corpus", "big2-nouns"], "chat template"),
        (["--model", tiny_llama_rm, "--corpus", garbage], "binary"),
        (["--model", tiny_llama_rm, "--corpus", latin], "UTF-8"),
        (["--model", tiny_llama_rm, "--corpus", empty], "no words"),
        (["--model", tiny_llama_rm, "--corpus", nocols], "'word' column"),
        (["--model", tiny_llama_rm, "--corpus", "big2-nouns", "--prompts", bad_yaml], "not valid YAML"),
    ]
    for args, fragment in cases:
        one_line_error(cli(*base, *args, check=False), fragment)
    pd.testing.assert_frame_equal(_rows(seeded_db), before)


def test_corrupt_database_is_refused_not_overwritten(tiny_llama_rm, tmp_path):
    db = tmp_path / "corrupt.duckdb"
    db.write_bytes(b"this is not a database" * 1000)
    before = db.read_bytes()
    one_line_error(cli("export", "--db", db, "--out", tmp_path / "x.csv", check=False), "DuckDB")
    one_line_error(cli("score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", "big2-nouns",
                       "--db", db, check=False), "DuckDB")
    assert db.read_bytes() == before


def test_locked_database_waits_then_says_so(seeded_db, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)"),
        str(seeded_db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        env_wait = dict(os.environ, VALUEAUDIT_LOCK_WAIT="1")
        res = subprocess.run([sys.executable, "-m", "core", "export", "--db", str(seeded_db), "--out",
                              str(tmp_path / "x.csv")], cwd=ROOT, env=env_wait, capture_output=True, text=True)
        one_line_error(res, "locked")
    finally:
        holder.kill()
        holder.wait()
    assert len(_rows(seeded_db)) == 4


def test_cuda_oom_backs_off_and_continues():
    import torch

    class Flaky:
        """Raises out-of-memory for batches above 2, like a GPU that is too small."""
        name, notes, seen = "naive", [], []

        def score(self, prompt, words, batch_size):
            for i in range(0, len(words), batch_size):
                if batch_size > 2:
                    raise torch.OutOfMemoryError("CUDA out of memory")
                self.seen.append(batch_size)
                yield words[i:i + batch_size], [float(len(w)) for w in words[i:i + batch_size]]

    eng = Flaky()
    got = list(scoring.with_oom_backoff(eng, "p", list("abcdefg"), 8))
    assert [w for ws, _ in got for w in ws] == list("abcdefg") and set(eng.seen) == {2}


def _can_mount_tmpfs(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(path)], capture_output=True)
    return ok.returncode == 0


@pytest.mark.slow
def test_full_disk_rolls_back_batch_and_stops_cleanly(tiny_llama_rm, tmp_path):
    disk = tmp_path / "small-disk"
    if not _can_mount_tmpfs(disk):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        db = disk / "x.duckdb"
        res = cli("score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", "big2-nouns",
                  "--db", db, "--quiet", check=False, timeout=600)
        one_line_error(res, "full")
        kept = _rows(db)
        assert len(kept) > 0 and not kept.duplicated(["prompt", "response"]).any()
        # after space is freed, a rerun completes without losing or repeating a row
        moved = tmp_path / "moved.duckdb"
        shutil.copy(db, moved)  # with its write-ahead log: committed rows may still sit there
        wal = db.with_name(db.name + ".wal")
        if wal.exists():
            shutil.copy(wal, moved.with_name(moved.name + ".wal"))
    finally:
        subprocess.run(["umount", str(disk)])
    again = cli("score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", "big2-nouns",
                "--db", moved, "--quiet")
    assert last_line(again) == f"scored {14202 - len(kept)} new, {len(kept)} cached"


# -- kill at any moment, readers during writes ------------------------------------------------
@pytest.mark.slow
def test_sigkill_then_rerun_keeps_every_row_once(tmp_path):
    model = make_tiny(tmp_path / "slow-rm", "llama", "rm", hidden=256, layers=4, heads=8, kv_heads=4)
    db, out_during, out = tmp_path / "k.duckdb", tmp_path / "during.csv", tmp_path / "final.csv"
    yml = tmp_path / "p18.yaml"
    ps = [p for p in prompts.paper_prompts() if p.prompt_id.split("_")[0] in ("best", "greatest")]
    yml.write_text("".join(f'{p.prompt_id}: "{p.text}"\n' for p in ps))
    args = [sys.executable, "-m", "core", "score", "--model", str(model), "--kind", "rm", "--corpus",
            "big2-nouns", "--prompts", str(yml), "--db", str(db), "--engine", "naive", "--batch-size", "8",
            "--quiet"]
    job = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not db.exists() or Store(db).stats()["n_scores"] < 300):
        time.sleep(0.5)
    during = cli("export", "--db", db, "--out", out_during)  # a reader while the job writes
    assert job.poll() is None, "the job finished before it could be killed; make it slower"
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    n_during = len(pd.read_csv(out_during))
    kept = Store(db).stats()["n_scores"]
    assert 0 < n_during <= kept < len(ps) * 263
    # The killed run was slowed down (a bigger model, the naive engine, small batches) so that
    # it could be killed mid-job; rows are keyed without the engine, so the rerun takes the
    # default engine, several times faster.
    rerun = cli("score", "--model", model, "--kind", "rm", "--corpus", "big2-nouns", "--prompts", yml,
                "--db", db, "--quiet")
    assert last_line(rerun) == f"scored {len(ps) * 263 - kept} new, {kept} cached"
    cli("export", "--db", db, "--out", out)
    got = pd.read_csv(out, keep_default_na=False)
    words = corpora.load("big2-nouns").vocabulary
    assert len(got) == len(ps) * len(words) and not got.duplicated(["prompt", "response"]).any()
    assert set(zip(got.prompt, got.response)) == {(p.text, w) for p in ps for w in words}
    # values: a seeded sample from both runs (before and after the kill) against the plain scorer
    sample = got.sample(300, random_state=0)
    ref = plain_rm_scores(model, list(zip(sample.prompt, sample.response)))
    assert max(abs(v - ref[(p, r)]) for p, r, v in zip(sample.prompt, sample.response, sample.value)) < 1e-4


# -- exports -----------------------------------------------------------------------------------
def test_csv_export_neutralises_formulas_and_keeps_numbers(tiny_llama_rm, tmp_path):
    corpus = tmp_path / "risky.csv"
    corpus.write_text('word,category\n"=HYPERLINK(""http://x"")",a\n+1,a\n-x,a\n@cmd,a\nsafe,a\n')
    yml = tmp_path / "one.yaml"
    yml.write_text('best_ever_one: "What, in one word, is the best thing ever?"\n')
    db, out = tmp_path / "x.duckdb", tmp_path / "x.csv"
    cli("score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", corpus, "--prompts", yml, "--db", db, "--quiet")
    cli("export", "--db", db, "--corpus", corpus, "--out", out)
    got = pd.read_csv(out, keep_default_na=False)
    assert sorted(got["response"]) == sorted(["'=HYPERLINK(\"http://x\")", "'+1", "'-x", "'@cmd", "safe"])
    assert pd.api.types.is_float_dtype(got["value"])
    df = neutralise_formulas(pd.DataFrame({"t": ["-1", "ok"], "v": [-1.5, 2.0]}))
    assert df["t"].tolist() == ["'-1", "ok"] and df["v"].tolist() == [-1.5, 2.0]


def test_upload_names_never_become_paths():
    c = corpora.parse_upload("../../etc/passwd.csv", b"word,category\nlove,x\n")
    assert "/" not in c.name and ".." not in c.name.split("-")
