"""The cached engine (core/prefix_cache.py) gives the naive engine's values (issue 5)."""
from __future__ import annotations

import pytest

from core import corpora, models, prefix_cache, prompts, scoring
from core.prefix_cache import CachedEngine
from core.store import Store
from tiny_models import GEMMA2_TEMPLATE, make_tiny

PROMPTS = prompts.paper_prompts()
TOL = 1e-5
# single-token and multi-token words, a phrase, a word with a space and punctuation
EXTRA = ["love", "freedom", "kindness", "wisdom and power", "self-respect", "Zyx", "naïveté"]


def words_for(n: int = 40) -> list[str]:
    return list(dict.fromkeys(corpora.load("big2-nouns").vocabulary[:n] + EXTRA))


def collect(engine, prompt: str, words, batch_size: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for batch_words, values in engine.score(prompt, words, batch_size):
        assert len(batch_words) == len(values)
        for w, v in zip(batch_words, values):
            assert w not in out, f"{w} scored twice"
            out[w] = v
    assert sorted(out) == sorted(words), "every word exactly once"
    return out


def assert_close(a: dict, b: dict, tol: float = TOL) -> None:
    worst = max(abs(a[w] - b[w]) / max(1.0, abs(b[w])) for w in b)
    assert worst <= tol, worst


@pytest.fixture(scope="module")
def loaded(request):
    cache: dict = {}

    def get(path, kind):
        key = (str(path), kind)
        if key not in cache:
            cache[key] = models.load(str(path), kind, device="cpu", dtype="float32")
        return cache[key]
    return get


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("fixture,kind", [("tiny_llama_rm", "rm"), ("tiny_gemma_rm", "rm"),
                                          ("tiny_llama_lm", "lm"), ("tiny_gemma_lm", "lm")])
def test_cached_equals_naive(request, loaded, fixture, kind, pack, monkeypatch):
    """Both ways of running suffixes: packed into one sequence with a 4D mask (sdpa for
    Llama, eager for Gemma 2), and right-padded batches over the expanded cache."""
    monkeypatch.setattr(prefix_cache, "PACK", pack)
    lm = loaded(request.getfixturevalue(fixture), kind)
    words = words_for()
    tok = lm.tokenizer
    assert any(len(scoring.word_ids(tok, w)) > 1 for w in words), "multi-token words are covered"
    assert any(len(scoring.word_ids(tok, w)) == 1 for w in words), "single-token words are covered"
    eng = CachedEngine(lm)
    assert bool(eng._packed) == pack
    naive = scoring.NaiveEngine(lm)
    for p in (PROMPTS[0], PROMPTS[40]):
        for bs in (3, 16):  # several batches: the prefix cache is reused unchanged
            assert_close(collect(eng, p.text, words, bs), collect(naive, p.text, words, 7))
    assert eng.name == "cached" and eng.notes == []
    assert eng.stats["cached_rows"] > 0 and eng.stats["full_rows"] == 0


def test_run_end_to_end_equals_naive(tmp_path, tiny_llama_rm, loaded):
    lm = loaded(tiny_llama_rm, "rm")
    words = words_for(30)
    ps = PROMPTS[:3]
    res_c = scoring.run(Store(tmp_path / "c.duckdb"), lm, ps, words, engine="cached", batch_size=4)
    res_n = scoring.run(Store(tmp_path / "n.duckdb"), lm, ps, words, engine="naive", batch_size=4)
    assert res_c.engine == "cached" and res_c.notes == []
    assert res_c.new == res_n.new == len(words) * len(ps)
    a = Store(tmp_path / "c.duckdb").scores(kind="rm")
    b = Store(tmp_path / "n.duckdb").scores(kind="rm")
    ka = {(r.prompt_id, r.response): r.value for r in a.itertuples()}
    kb = {(r.prompt_id, r.response): r.value for r in b.itertuples()}
    assert ka.keys() == kb.keys()
    assert max(abs(ka[k] - kb[k]) for k in kb) <= TOL


def test_gemma_lm_end_to_end(tmp_path, tiny_gemma_lm, loaded):
    lm = loaded(tiny_gemma_lm, "lm")
    words = words_for(20)
    res = scoring.run(Store(tmp_path / "x.duckdb"), lm, PROMPTS[:2], words, engine="cached", batch_size=5)
    assert res.engine == "cached" and res.new == 2 * len(words)
    got = Store(tmp_path / "x.duckdb").scores(kind="lm")
    naive = scoring.NaiveEngine(lm)
    for p in PROMPTS[:2]:
        ref = collect(naive, p.text, words, 8)
        rows = got[got.prompt == p.text]
        assert_close(dict(zip(rows.response, rows.value)), ref)


@pytest.fixture(scope="module")
def merge_rm(tmp_path_factory):
    """Gemma 2 template whose answer follows 'the' directly, and a tokenizer without word
    boundaries: 'the' + 're...' tokenizes as 'th' 'er' ..., a merge across the boundary."""
    template = GEMMA2_TEMPLATE.replace("'<start_of_turn>' + role + '\\n' + message['content']",
                                       "'<start_of_turn>' + role + '\\nthe' + message['content']")
    assert template != GEMMA2_TEMPLATE
    path = make_tiny(tmp_path_factory.mktemp("models") / "merge-rm", "gemma2", "rm", seed=4,
                     template=template, pre_tokenize=False)
    return models.load(str(path), "rm", device="cpu", dtype="float32")


def test_boundary_merge_takes_full_path(merge_rm):
    tok = merge_rm.tokenizer
    p = PROMPTS[0].text
    text = scoring.rm_text(tok, p, "\uE000")
    prefix = tok(text[:text.index("\uE000")], add_special_tokens=False)["input_ids"]
    vocab = corpora.load("big2-nouns").vocabulary
    starts = {w: scoring.rm_ids(tok, p, w)[:len(prefix)] == prefix for w in vocab}
    merging = [w for w in vocab if not starts[w]]
    clean = [w for w in vocab if starts[w]]
    assert merging and len(clean) > 100, (len(merging), len(clean))
    words = clean + merging[:2]   # few merges: cheaper to score those two in full
    eng = CachedEngine(merge_rm)
    got = collect(eng, p, words, 16)
    assert eng.stats["full_rows"] >= 1, eng.stats
    assert eng.stats["cached_rows"] == len(words) - eng.stats["full_rows"]
    assert_close(got, collect(scoring.NaiveEngine(merge_rm), p, words, 16))
    # many merges: the prefix is cut back before the merged token, all words use the cache
    eng2 = CachedEngine(merge_rm)
    assert_close(collect(eng2, p, vocab, 16), collect(scoring.NaiveEngine(merge_rm), p, vocab, 16))
    assert eng2.stats["cached_rows"] > 0 and eng2.name == "cached"


def test_self_check_failure_falls_back(tmp_path, tiny_llama_rm, loaded, monkeypatch):
    lm = loaded(tiny_llama_rm, "rm")
    orig = CachedEngine._rm_suffix_batch

    def wrong(self, cache, P, suffixes):
        return [v + 0.5 for v in orig(self, cache, P, suffixes)]
    monkeypatch.setattr(CachedEngine, "_rm_suffix_batch", wrong)
    words = words_for(20)
    eng = CachedEngine(lm)
    got = collect(eng, PROMPTS[0].text, words, 4)
    assert eng.name == "naive"
    assert len(eng.notes) == 1 and "self-check" in eng.notes[0]
    assert_close(got, collect(scoring.NaiveEngine(lm), PROMPTS[0].text, words, 4))
    # through the job: the result names the engine that ran and carries the note
    res = scoring.run(Store(tmp_path / "x.duckdb"), lm, PROMPTS[:2], words, engine="cached", batch_size=4)
    assert res.engine == "naive" and any("self-check" in n for n in res.notes)
    assert res.new == 2 * len(words)


def test_lm_self_check_failure_falls_back(tiny_gemma_lm, loaded, monkeypatch):
    lm = loaded(tiny_gemma_lm, "lm")
    orig = CachedEngine._lm_suffix_batch
    monkeypatch.setattr(CachedEngine, "_lm_suffix_batch",
                        lambda self, *a: [v - 1.0 for v in orig(self, *a)])
    words = words_for(20)
    eng = CachedEngine(lm)
    got = collect(eng, PROMPTS[0].text, words, 4)
    assert eng.name == "naive" and "self-check" in eng.notes[0]
    assert_close(got, collect(scoring.NaiveEngine(lm), PROMPTS[0].text, words, 4))


def test_exception_in_cached_forward_falls_back(tiny_gemma_rm, loaded, monkeypatch):
    lm = loaded(tiny_gemma_rm, "rm")

    def boom(self, *a):
        raise RuntimeError("no cache here")
    monkeypatch.setattr(CachedEngine, "_rm_suffix_batch", boom)
    eng = CachedEngine(lm)
    words = words_for(10)
    got = collect(eng, PROMPTS[0].text, words, 4)
    assert eng.name == "naive" and "no cache here" in eng.notes[0]
    assert_close(got, collect(scoring.NaiveEngine(lm), PROMPTS[0].text, words, 4))


def test_remote_code_model_uses_naive(tiny_llama_rm, loaded):
    lm = loaded(tiny_llama_rm, "rm")
    model = lm.model
    cls = type(model)
    custom = type("CustomRewardModel", (cls,), {"__module__": "transformers_modules.someone.rm"})
    model.__class__ = custom
    try:
        eng = CachedEngine(lm)
        assert eng.name == "naive" and "own model code" in eng.notes[0]
        words = words_for(5)
        assert_close(collect(eng, PROMPTS[0].text, words, 4),
                     collect(scoring.NaiveEngine(lm), PROMPTS[0].text, words, 4))
    finally:
        model.__class__ = cls


def test_out_of_memory_halves_and_retries(tiny_llama_rm, loaded, monkeypatch):
    import torch
    lm = loaded(tiny_llama_rm, "rm")
    orig = CachedEngine._rm_suffix_batch
    sizes = []

    def limited(self, cache, P, suffixes):
        sizes.append(len(suffixes))
        if len(suffixes) > 5:
            raise torch.OutOfMemoryError("fake")
        return orig(self, cache, P, suffixes)
    monkeypatch.setattr(CachedEngine, "_rm_suffix_batch", limited)
    words = words_for(30)
    eng = CachedEngine(lm)
    got = collect(eng, PROMPTS[0].text, words, 4)
    assert eng.name == "cached" and max(sizes) > 5 and sizes[-1] <= 5
    assert_close(got, collect(scoring.NaiveEngine(lm), PROMPTS[0].text, words, 4))


def test_sliding_window_falls_back_to_full_sequences(tmp_path):
    """Sequences longer than Gemma 2's sliding window are scored in full, still exact."""
    path = make_tiny(tmp_path / "g", "gemma2", "rm", seed=5)
    lm = models.load(str(path), "rm", device="cpu", dtype="float32")
    lm.model.config.get_text_config().sliding_window = 24   # shorter than the prompt
    eng = CachedEngine(lm)
    words = words_for(10)
    got = collect(eng, PROMPTS[0].text, words, 4)
    assert eng.stats["full_rows"] == len(words)
    assert_close(got, collect(scoring.NaiveEngine(lm), PROMPTS[0].text, words, 4))


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "padded"])
def test_end_of_turn_as_pad_token_pools_like_the_model(tmp_path, pack, monkeypatch):
    """Some RMs set pad_token_id to the end-of-turn token; the model then pools the token
    before it. The cached path must do the same (without a self-check fallback)."""
    import json
    monkeypatch.setattr(prefix_cache, "PACK", pack)
    path = make_tiny(tmp_path / "eot-pad-rm", "llama", "rm", seed=5)
    cfg = json.loads((path / "config.json").read_text())
    eot = cfg["eos_token_id"]
    cfg["pad_token_id"] = eot if isinstance(eot, int) else eot[0]
    (path / "config.json").write_text(json.dumps(cfg))
    lm = models.load(str(path), "rm", device="cpu", dtype="float32")
    words = words_for(20)
    eng, naive = CachedEngine(lm), scoring.NaiveEngine(lm)
    assert_close(collect(eng, PROMPTS[3].text, words, 8), collect(naive, PROMPTS[3].text, words, 8))
    assert eng.name == "cached" and eng.notes == [] and eng.stats["cached_rows"] == len(words)
