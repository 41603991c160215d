"""Measurement checks recorded with every run: invariance, tokenization coverage, template text."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import checks, models, prompts, scoring
from core.store import Store

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["love", "freedom", "power", "kindness", "success", "family", "truth", "wisdom", "benevolence",
         "trustworthiness", "Love", "warm-heartedness"]


@pytest.fixture(scope="module")
def llama_rm(tiny_llama_rm):
    return models.load(str(tiny_llama_rm), "rm", device="cpu")


@pytest.fixture(scope="module")
def gemma_rm(tiny_gemma_rm):
    return models.load(str(tiny_gemma_rm), "rm", device="cpu")


def _batch_dependent(name, loaded):
    """A real engine made deliberately batch-dependent: every score shifts with the batch size."""
    inner = scoring.make_engine(name, loaded)

    class Shifted:
        def __init__(self):
            self.name = inner.name

        def score(self, prompt, words, batch_size):
            for ws, vs in inner.score(prompt, words, batch_size):
                yield ws, [v + 0.01 * (batch_size - 1) for v in vs]
    return Shifted()


@pytest.fixture(scope="module")
def gemma_lm(tiny_gemma_lm):
    return models.load(str(tiny_gemma_lm), "lm", device="cpu")


@pytest.mark.parametrize("which", ["llama_rm", "gemma_rm", "gemma_lm"])
def test_real_engines_pass_and_store_a_passed_row(which, request, tmp_path):
    loaded = request.getfixturevalue(which)
    store = Store(tmp_path / "c.duckdb")
    ps = prompts.paper_prompts()[:2]
    scoring.run(store, loaded, ps, WORDS, batch_size=5)
    rec = checks.run_checks(store, loaded, ps, WORDS, "mini", "cached", 5)
    assert rec["status"] == "passed", rec["message"]
    inv = json.loads(rec["invariance"])
    assert {v["vs"] for v in inv} == {"stored"}
    # one re-scoring per axis: batch size (the run's engine at 1), engine (the other one), padding side
    assert {v["variant"] for v in inv} == {"cached, batch size 1", "naive, batch size 5", "naive, left padding"}
    assert rec["bos_ok"] and rec["max_abs_diff"] < 1e-4
    row = checks.latest(store)
    assert len(row) == 1 and row.iloc[0]["status"] == "passed" and row.iloc[0]["model_key"] == loaded.key


def test_batch_dependent_engine_is_flagged(llama_rm, tmp_path):
    store = Store(tmp_path / "c.duckdb")
    ps = prompts.paper_prompts()[:2]
    scoring.run(store, llama_rm, ps, WORDS, batch_size=4)
    rec = checks.run_checks(store, llama_rm, ps, WORDS, "mini", "cached", 4, make_engine=_batch_dependent)
    assert rec["status"] == "failed" and "batch size" in rec["message"]
    assert checks.latest(store).iloc[0]["status"] == "failed"
    assert checks.summary_line(rec).startswith("MEASUREMENT CHECK FAILED")
    bad = [v for v in json.loads(rec["invariance"]) if not v["passed"]]
    assert bad and all("batch size 1" not in v["variant"] for v in bad)  # batch size 1 is unshifted


def test_bf16_rounding_passes_and_a_wrong_mask_fails(bf16_gemma_rm, tmp_path):
    """In bfloat16 the stored values and their re-scorings differ by the dtype's rounding
    (here more than the fixed 5e-2 + 2e-2 |value|): the check passes them, having found every
    way equal in exact arithmetic. An engine with a wrong mask is flagged, by exact arithmetic."""
    from core.engines.cached import CachedEngine, CascadeRunner, PrefixBlock

    class NoFirstPrefixKey(CascadeRunner):
        def prefix(self, ids):
            block = super().prefix(ids)
            return PrefixBlock(block.length, [(k[:, :, 1:], v[:, :, 1:]) for k, v in block.layers], block.next_logp)

    def wrong_mask(name, loaded):
        return CachedEngine(loaded, runner=NoFirstPrefixKey(loaded), self_check=False) if name == "cached" \
            else scoring.make_engine(name, loaded)
    lm = models.load(str(bf16_gemma_rm), "rm", device="cpu", dtype="bfloat16")
    store = Store(tmp_path / "c.duckdb")
    ps = prompts.paper_prompts()[:2]
    scoring.run(store, lm, ps, WORDS, batch_size=5)
    rec = checks.run_checks(store, lm, ps, WORDS, "mini", "cached", 5)
    inv = json.loads(rec["invariance"])
    fixed = [v for v in inv if v["max_abs_diff"] > 5e-2 + 2e-2 * 1.0]
    assert fixed, "the premise: bf16 rounding alone exceeds the fixed tolerance somewhere"
    assert rec["status"] == "passed", rec["message"]
    assert all(v["exact_passed"] and v["exact_max_abs_diff"] < 1e-4 for v in inv)
    assert "bfloat16 rounding" in rec["message"]
    bad = checks.run_checks(store, lm, ps, WORDS, "mini", "cached", 5, make_engine=wrong_mask)
    assert bad["status"] == "failed" and "cached, batch size 1" in bad["message"]
    assert "exact arithmetic" in bad["message"], bad["message"]


def test_a_second_bos_is_detected(llama_rm):
    import copy
    import dataclasses
    p = prompts.paper_prompts()[0]
    assert checks.bos_count(llama_rm, p.text, "love") == 1
    tok = copy.deepcopy(llama_rm.tokenizer)
    tok.chat_template = "{{ bos_token }}" + tok.chat_template  # a template that adds BOS again
    doubled = dataclasses.replace(llama_rm, tokenizer=tok)
    assert checks.bos_count(doubled, p.text, "love") == 2
    inv = checks.invariance(doubled, [p], ["love", "power"], variants=(("naive", 1),), left_padding=False)
    assert not inv["bos_ok"] and not inv["passed"]


def test_coverage_lists_exactly_the_words_the_tokenizer_splits(llama_rm):
    tok = llama_rm.tokenizer
    vocab = tok.get_vocab()
    cov = checks.coverage(tok, WORDS + [""])
    # Independent: a byte-level BPE keeps an ASCII word whole exactly when the word is a vocabulary entry.
    split = {w for w in WORDS if w not in vocab}
    assert split and split != set(WORDS)
    assert set(cov.loc[cov["status"] == "multi-token", "word"]) == split
    assert set(cov.loc[cov["status"] == "one-token", "word"]) == set(WORDS) - split
    assert cov.loc[cov["word"] == "", "status"].item() == "dropped"
    assert (cov.loc[cov["word"] != "", "changed"] == "").all()


def test_template_text_is_what_is_tokenized(gemma_rm):
    p = prompts.paper_prompts()[0]
    text = checks.template_text(gemma_rm, p.text, "love")
    tok = gemma_rm.tokenizer
    assert text.startswith(tok.bos_token) and text.count(tok.bos_token) == 1
    assert p.text in text and "love" in text
    assert tok(text, add_special_tokens=False)["input_ids"] == scoring.rm_ids(tok, p.text, "love")


def test_cli_score_records_checks(tiny_gemma_rm, tmp_path):
    words = tmp_path / "w.csv"
    words.write_text("word,category\n" + "\n".join(f"{w},A" for w in WORDS) + "\n")
    db, ps = tmp_path / "cli.duckdb", tmp_path / "p.yaml"
    ps.write_text("best_ever_one: What, in one word, is the best thing ever?\nworst_ever_one: What, in one word, is the worst thing ever?\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "core", "score", "--model", str(tiny_gemma_rm), "--kind", "rm",
                           "--corpus", str(words), "--prompts", str(ps), "--db", str(db), "--quiet", "--batch-size", "4"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "measurement checks passed" in proc.stderr
    row = checks.latest(Store(db)).iloc[0]
    assert row["status"] == "passed" and row["n_words"] == len(WORDS)
    prov = json.loads(row["provenance"])
    assert prov["engine"] == "cached" and prov["dtype"] == "float32" and prov["device"] == "cpu"
    assert prov["model_key"].startswith("local:") and len(prov["corpus_sha256"]) == 64
