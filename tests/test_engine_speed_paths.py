"""Issue 16's changes to the shared scoring path: `naive` batches rows of similar token
length (no padding waste, same values as one-at-a-time), and commits are spaced so a slow
commit cannot eat the job's time; nothing stored is lost."""
from __future__ import annotations

import time

import pytest

from core import corpora, models, prompts, scoring
from core.engines.naive import NaiveEngine
from core.store import Store
from tests.plain_scorer import plain_lm_logprobs, plain_rm_scores

WORDS = list(dict.fromkeys(corpora.load("big2-nouns").vocabulary[:23]
                           + ["wisdom and power", "self-respect", "Zyx", "naïveté", "love"]))
PROMPT = prompts.paper_prompts()[0].text


def _lengths(tok, words):
    """Full-sequence token counts, from the template and tokenizer directly (not core)."""
    texts = [tok.apply_chat_template([{"role": "user", "content": PROMPT}, {"role": "assistant", "content": w}],
                                     tokenize=False) for w in words]
    return {w: len(tok(t, add_special_tokens=False)["input_ids"]) for w, t in zip(words, texts)}


def test_naive_rm_batches_by_length_and_equals_plain_scorer(tiny_llama_rm):
    loaded = models.load(str(tiny_llama_rm), "rm", device="cpu")
    length = _lengths(loaded.tokenizer, WORDS)
    assert len(set(length.values())) >= 3  # the test needs rows of different lengths
    batches = list(NaiveEngine(loaded).score(PROMPT, WORDS, 4))
    seen = [w for ws, _ in batches for w in ws]
    assert sorted(seen) == sorted(WORDS)  # every word exactly once
    flat = [length[w] for w in seen]
    assert flat == sorted(flat)  # shortest first: a batch spans as few lengths as possible
    ref = plain_rm_scores(tiny_llama_rm, [(PROMPT, w) for w in WORDS])
    for ws, vs in batches:
        for w, v in zip(ws, vs):
            assert v == pytest.approx(ref[(PROMPT, w)], abs=1e-5)


def test_naive_lm_batches_by_length_and_equals_plain_scorer(tiny_llama_lm):
    loaded = models.load(str(tiny_llama_lm), "lm", device="cpu")
    batches = list(NaiveEngine(loaded).score(PROMPT, WORDS, 3))
    seen = [w for ws, _ in batches for w in ws]
    assert sorted(seen) == sorted(WORDS)
    n_tok = [len(loaded.tokenizer(w, add_special_tokens=False)["input_ids"]) for w in seen]
    assert n_tok == sorted(n_tok)
    ref = plain_lm_logprobs(tiny_llama_lm, [(PROMPT, w) for w in WORDS])
    for ws, vs in batches:
        for w, v in zip(ws, vs):
            assert v == pytest.approx(ref[(PROMPT, w)], abs=1e-4)


def test_commit_gap_bounds_the_share_of_time_in_commits():
    assert scoring.commit_gap(0.5, 0.001) == 0.5                  # fast commits: the asked interval
    assert scoring.commit_gap(0.5, 0.1) == pytest.approx(0.1 * 19)  # 0.1 s of every 2.0 s: 5 %
    assert scoring.commit_gap(0.5, 2.0) == scoring.COMMIT_GAP_MAX  # never holds work longer than this
    assert scoring.commit_gap(0, 2.0) == 0                         # 0: every batch, as asked


class SlowStore(Store):
    """A real store whose commits take 0.2 s, counted."""
    commits = 0

    def add_scores(self, *a, **k):
        SlowStore.commits += 1
        time.sleep(0.2)
        return super().add_scores(*a, **k)


def test_slow_commits_are_spaced_and_nothing_is_lost(tiny_llama_rm, tmp_path):
    loaded = models.load(str(tiny_llama_rm), "rm", device="cpu")
    ps = prompts.paper_prompts()[:2]
    store = SlowStore(tmp_path / "s.duckdb")
    res = scoring.run(store, loaded, ps, WORDS, engine="naive", batch_size=2, commit_interval=0.01)
    batches = len(ps) * -(-len(WORDS) // 2)
    assert res.new == len(ps) * len(WORDS) == len(Store(tmp_path / "s.duckdb").scores())
    assert SlowStore.commits <= batches // 4, (SlowStore.commits, batches)  # ~one per 3.8 s, not per batch
