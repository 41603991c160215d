"""core/engines: the cached engine equals an independent scorer (tests/plain_scorer.py)
for Llama and Gemma 2, RM and LM; its plain parts (cascade attention, packing, batch
planning, out-of-memory back-off, prefix choice) are tested directly. Faults are injected
through the engine's public `runner` argument, never by patching private methods."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import torch

from core import corpora, models, prompts, scoring
from core.engines import cascade, make_engine, planning
from core.engines.cached import CachedEngine, CascadeRunner, PrefixBlock
from core.engines.naive import NaiveEngine
from core.store import Store
from tests.plain_scorer import plain_lm_logprobs, plain_rm_scores
from tests.tiny_models import GEMMA2_TEMPLATE, make_tiny

PROMPTS = prompts.paper_prompts()
TOL = 1e-4
# single- and multi-token words, a phrase, punctuation, a non-ASCII word: mixed suffix lengths
EXTRA = ["love", "freedom", "kindness", "wisdom and power", "self-respect", "Zyx", "naïveté"]


def words_for(n: int) -> list[str]:
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


def worst(a: dict, b: dict) -> float:
    return max(abs(a[w] - b[w]) for w in b)


_LOADED: dict = {}


def load(path, kind):
    key = (str(path), kind)
    if key not in _LOADED:
        _LOADED[key] = models.load(str(path), kind, device="cpu", dtype="float32")
    return _LOADED[key]


# -- the engine against the independent scorer ------------------------------------------------------
@pytest.mark.parametrize("fixture,kind", [("tiny_llama_rm", "rm"), ("tiny_gemma_rm", "rm"),
                                          ("tiny_llama_lm", "lm"), ("tiny_gemma_lm", "lm")])
def test_cached_equals_plain_scorer(request, fixture, kind):
    path = request.getfixturevalue(fixture)
    lm = load(path, kind)
    words = words_for(6)
    lens = {len(scoring.word_ids(lm.tokenizer, w)) for w in words}
    assert 1 in lens and max(lens) >= 3, "one-token and several-token words are covered"
    ps = [PROMPTS[0].text, PROMPTS[40].text]
    plain = (plain_rm_scores if kind == "rm" else plain_lm_logprobs)(path, [(p, w) for p in ps for w in words])
    eng = CachedEngine(lm)
    for p in ps:
        for bs in (1, 3, 64):   # batch boundaries inside and across suffix lengths; one batch
            got = collect(eng, p, words, bs)
            assert worst(got, {w: plain[(p, w)] for w in words}) <= TOL
    assert eng.name == "cached" and eng.notes == []
    assert eng.stats["cached_rows"] > 0 and eng.stats["full_rows"] == 0


def test_run_end_to_end_equals_naive_through_the_store(tmp_path, tiny_llama_rm):
    lm = load(tiny_llama_rm, "rm")
    words, ps = words_for(30), PROMPTS[:3]
    res_c = scoring.run(Store(tmp_path / "c.duckdb"), lm, ps, words, engine="cached", batch_size=4)
    res_n = scoring.run(Store(tmp_path / "n.duckdb"), lm, ps, words, engine="naive", batch_size=4)
    assert res_c.engine == "cached" and res_c.notes == [] and res_n.engine == "naive"
    assert res_c.new == res_n.new == len(words) * len(ps)
    a, b = (Store(tmp_path / f"{e}.duckdb").scores(kind="rm") for e in "cn")
    ka = {(r.prompt_id, r.response): r.value for r in a.itertuples()}
    kb = {(r.prompt_id, r.response): r.value for r in b.itertuples()}
    assert ka.keys() == kb.keys() and max(abs(ka[k] - kb[k]) for k in kb) <= 1e-5


def test_gemma2_sliding_window_shorter_than_the_prompt_is_exact(tmp_path):
    """A window shorter than prefix + suffix: the prefix keys out of a query's reach are
    masked by position, so every row still uses the cache and equals the model's own."""
    path = make_tiny(tmp_path / "g", "gemma2", "rm", seed=5)
    cfg = json.loads((path / "config.json").read_text())
    cfg["sliding_window"] = 12
    (path / "config.json").write_text(json.dumps(cfg))
    lm = load(path, "rm")
    assert "sliding_attention" in lm.model.config.layer_types
    words = words_for(10)
    eng = CachedEngine(lm)
    got = collect(eng, PROMPTS[0].text, words, 4)
    assert eng.stats["full_rows"] == 0 and eng.name == "cached"
    plain = plain_rm_scores(path, [(PROMPTS[0].text, w) for w in words])
    assert worst(got, {w: plain[(PROMPTS[0].text, w)] for w in words}) <= TOL
    # and the window matters: the same model with a wide window scores differently
    cfg["sliding_window"] = 512
    (path / "config.json").write_text(json.dumps(cfg))
    wide = plain_rm_scores(path, [(PROMPTS[0].text, w) for w in words])
    assert worst(got, {w: wide[(PROMPTS[0].text, w)] for w in words}) > 1e-3


@pytest.fixture(scope="module")
def merge_rm(tmp_path_factory):
    """Gemma 2 template whose answer follows 'the' directly, and a tokenizer without word
    boundaries: 'the' + 're...' tokenizes as 'th' 'er' ..., a merge across the boundary."""
    template = GEMMA2_TEMPLATE.replace("'<start_of_turn>' + role + '\\n' + message['content']",
                                       "'<start_of_turn>' + role + '\\nthe' + message['content']")
    assert template != GEMMA2_TEMPLATE
    return make_tiny(tmp_path_factory.mktemp("models") / "merge-rm", "gemma2", "rm", seed=4,
                     template=template, pre_tokenize=False)


def test_boundary_merge_takes_full_path(merge_rm):
    lm = load(merge_rm, "rm")
    tok, p = lm.tokenizer, PROMPTS[0].text
    text = scoring.rm_text(tok, p, "\uE000")
    prefix = tok(text[:text.index("\uE000")], add_special_tokens=False)["input_ids"]
    vocab = corpora.load("big2-nouns").vocabulary
    starts = {w: scoring.rm_ids(tok, p, w)[:len(prefix)] == prefix for w in vocab}
    merging = [w for w in vocab if not starts[w]]
    clean = [w for w in vocab if starts[w]]
    assert merging and len(clean) > 100, (len(merging), len(clean))
    words = clean[:40] + merging[:2]   # few merges: cheaper to score those two in full
    eng = CachedEngine(lm)
    got = collect(eng, p, words, 16)
    assert eng.stats["full_rows"] == 2 and eng.stats["cached_rows"] == len(words) - 2
    plain = plain_rm_scores(merge_rm, [(p, w) for w in words])
    assert worst(got, {w: plain[(p, w)] for w in words}) <= TOL
    # many merges: the prefix is cut back before the merged token, all words use the cache
    eng2 = CachedEngine(lm)
    assert worst(collect(eng2, p, vocab, 16), collect(NaiveEngine(lm), p, vocab, 16)) <= 1e-5
    assert eng2.stats["full_rows"] == 0 and eng2.name == "cached"


def test_end_of_turn_as_pad_token_pools_like_the_model(tmp_path):
    """Some RMs set pad_token_id to the end-of-turn token; the model then pools the token
    before it. The cached path must do the same (without a self-check fallback)."""
    path = make_tiny(tmp_path / "eot-pad-rm", "llama", "rm", seed=5)
    cfg = json.loads((path / "config.json").read_text())
    eot = cfg["eos_token_id"]
    cfg["pad_token_id"] = eot if isinstance(eot, int) else eot[0]
    (path / "config.json").write_text(json.dumps(cfg))
    lm = load(path, "rm")
    words = words_for(20)
    eng = CachedEngine(lm)
    got = collect(eng, PROMPTS[3].text, words, 8)
    assert worst(got, collect(NaiveEngine(lm), PROMPTS[3].text, words, 8)) <= 1e-5
    assert eng.name == "cached" and eng.notes == [] and eng.stats["cached_rows"] == len(words)


def test_model_attention_implementation_is_restored(tiny_gemma_rm):
    lm = load(tiny_gemma_rm, "rm")
    before = lm.model.config._attn_implementation
    collect(CachedEngine(lm), PROMPTS[0].text, words_for(5), 4)
    assert lm.model.config._attn_implementation == before != cascade.ATTENTION_NAME


# -- fallbacks and faults, through the public runner argument -----------------------------------------
class OffRunner(CascadeRunner):
    """Rewards / log-probs shifted by a constant: a wrong cached path."""
    def rm_scores(self, block, suffixes):
        return [v + 0.5 for v in super().rm_scores(block, suffixes)]

    def lm_logprobs(self, block, suffixes, targets):
        return [v - 1.0 for v in super().lm_logprobs(block, suffixes, targets)]


class BrokenRunner(CascadeRunner):
    def rm_scores(self, block, suffixes):
        raise RuntimeError("no cache here")


class SmallMemoryRunner(CascadeRunner):
    """Out of memory for batches of more than 5 rows, like a small GPU."""
    def __init__(self, loaded):
        super().__init__(loaded)
        self.sizes = []

    def rm_scores(self, block, suffixes):
        self.sizes.append(len(suffixes))
        if len(suffixes) > 5:
            raise torch.OutOfMemoryError("fake")
        return super().rm_scores(block, suffixes)


@pytest.mark.parametrize("fixture,kind", [("tiny_llama_rm", "rm"), ("tiny_gemma_lm", "lm")])
def test_self_check_failure_falls_back_to_naive(request, fixture, kind):
    lm = load(request.getfixturevalue(fixture), kind)
    words = words_for(20)
    eng = CachedEngine(lm, runner=OffRunner(lm))
    got = collect(eng, PROMPTS[0].text, words, 4)
    assert eng.name == "naive" and len(eng.notes) == 1 and "self-check" in eng.notes[0]
    assert worst(got, collect(NaiveEngine(lm), PROMPTS[0].text, words, 4)) <= 1e-5


def test_self_check_off_keeps_the_cached_values_and_a_job_takes_a_made_engine(tiny_llama_rm):
    """CachedEngine(self_check=False) (diagnosis only) never recomputes with naive, so a wrong
    cached path is not caught: its values come out as they are. scoring.run takes such an
    engine instance as well as a name."""
    lm = load(tiny_llama_rm, "rm")
    words = words_for(12)
    naive = collect(NaiveEngine(lm), PROMPTS[0].text, words, 4)
    eng = CachedEngine(lm, runner=OffRunner(lm), self_check=False)
    sink = scoring.MemorySink()
    res = scoring.run(sink, lm, PROMPTS[:1], words, engine=eng, batch_size=4)
    assert res.engine == "cached" and res.notes == [] and res.new == len(words)
    got = dict(zip(sink.scores()["response"], sink.scores()["value"]))
    assert max(abs(got[w] - naive[w] - 0.5) for w in words) <= 1e-5  # OffRunner's +0.5, unchecked


def test_exception_in_cached_forward_falls_back(tiny_gemma_rm):
    lm = load(tiny_gemma_rm, "rm")
    eng = CachedEngine(lm, runner=BrokenRunner(lm))
    words = words_for(10)
    got = collect(eng, PROMPTS[0].text, words, 4)
    assert eng.name == "naive" and "no cache here" in eng.notes[0]
    assert worst(got, collect(NaiveEngine(lm), PROMPTS[0].text, words, 4)) <= 1e-5


def test_out_of_memory_halves_and_retries(tiny_llama_rm):
    lm = load(tiny_llama_rm, "rm")
    runner = SmallMemoryRunner(lm)
    eng = CachedEngine(lm, runner=runner)
    words = words_for(30)
    got = collect(eng, PROMPTS[0].text, words, 4)
    assert eng.name == "cached" and max(runner.sizes) > 5 and runner.sizes[-1] <= 5
    assert worst(got, collect(NaiveEngine(lm), PROMPTS[0].text, words, 4)) <= 1e-5


class RowCap:
    """A device too small for more than `cap` rows per forward: the model's first decoder
    layer raises torch's out-of-memory above that (a forward pre-hook, as bench/gpu.py's
    simulated cap); counts the refusals."""

    def __init__(self, model, cap: int):
        self.cap, self.refused = cap, 0

        def hook(_module, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            if x.shape[0] > self.cap:
                self.refused += 1
                raise torch.OutOfMemoryError(f"fake: {x.shape[0]} rows")
        self.handle = model.base_model.layers[0].register_forward_pre_hook(hook, with_kwargs=True)


def test_out_of_memory_back_off_holds_for_the_rest_of_the_job(tiny_llama_rm):
    """Once batch size 8 ran out of memory (8 -> 4 -> 2), every later prompt of the job
    starts from the size that worked: two refusals in the whole job, not two per prompt."""
    lm = load(tiny_llama_rm, "rm")
    words, ps = words_for(12), PROMPTS[:4]
    free = scoring.MemorySink()
    scoring.run(free, lm, ps, words, engine="naive", batch_size=8)
    cap = RowCap(lm.model, 2)
    try:
        sink = scoring.MemorySink()
        res = scoring.run(sink, lm, ps, words, engine="naive", batch_size=8)
    finally:
        cap.handle.remove()
    assert cap.refused == 2 and res.new == len(words) * len(ps)
    a, b = (dict(zip(zip(s.scores()["prompt"], s.scores()["response"]), s.scores()["value"])) for s in (sink, free))
    assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in b) <= 1e-5


def test_cached_token_budget_back_off_holds_for_the_rest_of_the_job(tiny_llama_rm):
    """The cached engine halves its packed batches on out-of-memory; later prompts start
    from the budget that worked, so only the first prompt meets a refusal."""
    lm = load(tiny_llama_rm, "rm")
    runner = SmallMemoryRunner(lm)
    eng = CachedEngine(lm, runner=runner)
    words, ps = words_for(30), PROMPTS[:3]
    per_prompt = []
    for p in ps:
        before = len(runner.sizes)
        got = collect(eng, p.text, words, 4)
        per_prompt.append(sum(n > 5 for n in runner.sizes[before:]))
        assert worst(got, collect(NaiveEngine(lm), p.text, words, 4)) <= 1e-5
    assert per_prompt[0] >= 1 and per_prompt[1:] == [0, 0] and eng.name == "cached"


class NoFirstPrefixKey(CascadeRunner):
    """A wrong mask: the suffix queries never see the prefix's first key (BOS), in every layer."""
    def prefix(self, ids):
        block = super().prefix(ids)
        return PrefixBlock(block.length, [(k[:, :, 1:], v[:, :, 1:]) for k, v in block.layers], block.next_logp)


class LongSuffixOff(CascadeRunner):
    """Wrong only for the longest suffixes (the last batch of a prompt): a first batch alone
    never shows it."""
    def rm_scores(self, block, suffixes):
        out = super().rm_scores(block, suffixes)
        return [v + 0.5 if len(s) >= 5 else v for v, s in zip(out, suffixes)]


def _bf16(path):
    return models.load(str(path), "rm", device="cpu", dtype="bfloat16")


def test_bf16_rounding_is_not_taken_for_a_bug(bf16_gemma_rm):
    """In bfloat16 correct engines differ by the dtype's rounding, here by more than the old
    fixed 2e-2: the self-check finds both paths equal in exact arithmetic and their bf16
    difference within the dtype's noise on this model, so the engine keeps its speed. And
    the cached values are as close to the model's exact values (a float32 copy of the same
    weights, computed by transformers alone) as the naive engine's are."""
    import copy
    import dataclasses
    lm = _bf16(bf16_gemma_rm)
    words = words_for(30)
    ps = [PROMPTS[40].text]
    eng = CachedEngine(lm)
    got = {p: collect(eng, p, words, 4) for p in ps}
    naive = {p: collect(NaiveEngine(lm), p, words, 4) for p in ps}
    assert eng.name == "cached" and eng.notes == [], eng.notes
    rel = [abs(got[p][w] - naive[p][w]) / max(1.0, abs(naive[p][w])) for p in ps for w in words]
    assert max(rel) > 2e-2, "the premise: bf16 rounding alone exceeds the old fixed tolerance"
    assert {c["batch"] for c in eng.self_checks} == {"first", "longest suffixes"}
    assert eng.self_checks[0]["rows"] == planning.SELF_CHECK_ROWS, eng.self_checks
    assert all(c["passed"] and c["exact_max_difference"] <= 1e-4 for c in eng.self_checks), eng.self_checks
    exact = dataclasses.replace(lm, model=copy.deepcopy(lm.model).float(), dtype=torch.float32)
    x = {p: collect(NaiveEngine(exact), p, words, 4) for p in ps}
    rms = {name: (sum((v[p][w] - x[p][w]) ** 2 / max(1.0, abs(x[p][w])) ** 2 for p in ps for w in words)
                  / (len(ps) * len(words))) ** 0.5 for name, v in (("cached", got), ("naive", naive))}
    assert 0 < rms["cached"] <= 2 * rms["naive"], rms


def test_bf16_wrong_mask_still_falls_back(bf16_gemma_rm):
    """A real bug (a key missing from the mask) is caught in bfloat16 too, by the exact-
    arithmetic half of the check, and the values come from naive."""
    lm = _bf16(bf16_gemma_rm)
    words = words_for(20)
    eng = CachedEngine(lm, runner=NoFirstPrefixKey(lm))
    got = collect(eng, PROMPTS[0].text, words, 4)
    assert eng.name == "naive" and "exact arithmetic" in eng.notes[0], eng.notes
    assert worst(got, collect(NaiveEngine(lm), PROMPTS[0].text, words, 4)) == 0


def test_the_self_check_sees_the_longest_suffixes_too(tiny_llama_rm):
    """Rows are batched by suffix length: the first batch holds the shortest. The last batch
    of the first prompt is checked too, so a fault of long suffixes only is caught, and no
    wrong value is yielded (the check runs before its batch is)."""
    lm = load(tiny_llama_rm, "rm")
    words = words_for(60)
    eng = CachedEngine(lm, runner=LongSuffixOff(lm))
    got = collect(eng, PROMPTS[0].text, words, 2)
    assert eng.name == "naive" and "longest suffixes" in eng.notes[0], eng.notes
    assert [c["batch"] for c in eng.self_checks] == ["first", "longest suffixes"]
    assert worst(got, collect(NaiveEngine(lm), PROMPTS[0].text, words, 2)) <= 1e-5


def test_float32_arithmetic_is_the_model_in_float32(bf16_gemma_rm):
    """precision.float32_arithmetic computes a bf16 model as a float32 copy of its weights
    would, without touching the model; an LM-head-sized weight is upcast in slices."""
    import copy
    import dataclasses

    from core.engines import precision
    from core.engines.forward import rm_forward
    lm = _bf16(bf16_gemma_rm)
    seqs = scoring.rm_ids_batch(lm.tokenizer, PROMPTS[0].text, words_for(8))
    copy32 = dataclasses.replace(lm, model=copy.deepcopy(lm.model).float(), dtype=torch.float32)
    want = rm_forward(copy32, seqs)
    for chunk in (precision.LINEAR_CHUNK, 1000):
        with precision.float32_arithmetic(linear_chunk=chunk):
            got = rm_forward(lm, seqs)
        assert max(abs(a - b) for a, b in zip(got, want)) <= 1e-5
    assert max(abs(a - b) for a, b in zip(rm_forward(lm, seqs), want)) > 1e-3   # bf16 itself is not that
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    assert torch.get_float32_matmul_precision() == "highest"


def test_remote_code_model_uses_naive(tiny_llama_rm):
    lm = load(tiny_llama_rm, "rm")
    model = lm.model
    cls = type(model)
    model.__class__ = type("CustomRewardModel", (cls,), {"__module__": "transformers_modules.someone.rm"})
    try:
        eng = make_engine("cached", lm)
        assert eng.name == "naive" and "own model code" in eng.notes[0]
        words = words_for(5)
        assert worst(collect(eng, PROMPTS[0].text, words, 4), collect(NaiveEngine(lm), PROMPTS[0].text, words, 4)) == 0
    finally:
        model.__class__ = cls


def test_job_reports_the_engine_that_ran_and_its_note(tmp_path, tiny_llama_rm):
    lm = load(tiny_llama_rm, "rm")
    words = words_for(10)
    eng = CachedEngine(lm, runner=OffRunner(lm))
    collect(eng, PROMPTS[0].text, words, 4)
    assert eng.name == "naive"
    res = scoring.run(Store(tmp_path / "x.duckdb"), lm, PROMPTS[:2], words, engine="cached", batch_size=4)
    assert res.engine == "cached" and res.notes == [] and res.new == 2 * len(words)


# -- cascade attention on random tensors ---------------------------------------------------------------
def plain_attention(q, keys, values, allowed, scaling, softcap=None):
    """Softmax attention of each query over the keys it is allowed to see, one query at a
    time in float64: the definition, nothing shared with the code under test."""
    H, N, D = q.shape
    g = H // keys.shape[0]
    out = torch.zeros(H, N, D, dtype=torch.float64)
    for h in range(H):
        for n in range(N):
            idx = [j for j in range(keys.shape[1]) if allowed[n][j]]
            s = keys[h // g, idx].double() @ q[h, n].double() * scaling
            if softcap:
                s = torch.tanh(s / softcap) * softcap
            w = torch.exp(s - s.max())
            out[h, n] = (w / w.sum()) @ values[h // g, idx].double()
    return out


@pytest.mark.parametrize("softcap,window", [(None, None), (5.0, None), (None, 7), (3.0, 4)])
def test_cascade_attention_equals_plain_softmax_attention(softcap, window):
    torch.manual_seed(0)
    H, Hkv, D, P = 4, 2, 8, 9
    lengths = [3, 1, 4, 2]
    layout = planning.pack_suffixes([[0] * n for n in lengths], P)
    N = layout.n_tokens
    q = torch.randn(1, H, N, D)
    k, v = torch.randn(1, Hkv, N, D), torch.randn(1, Hkv, N, D)
    pk, pv = torch.randn(1, Hkv, P, D), torch.randn(1, Hkv, P, D)
    got = cascade.cascade_attention(q, k, v, pk, pv, layout, 0.3, softcap, window)
    assert got.shape == (1, N, H, D)
    # the reference: one key list per query, prefix then every packed token, with the mask
    # written from the definition (row, position)
    row = [r for r, n in enumerate(lengths) for _ in range(n)]
    pos = [P + j for n in lengths for j in range(n)]
    keys, values = torch.cat([pk[0], k[0]], 1), torch.cat([pv[0], v[0]], 1)
    key_pos = list(range(P)) + pos
    allowed = [[(j < P or (row[j - P] == row[n] and key_pos[j] <= pos[n]))
                and (window is None or pos[n] - key_pos[j] < window) for j in range(P + N)] for n in range(N)]
    ref = plain_attention(q[0], keys, values, allowed, 0.3, softcap)
    assert torch.allclose(got[0].transpose(0, 1).double(), ref, atol=1e-5)


def test_cascade_attention_is_exact_with_scores_in_the_thousands():
    """Scores q.k around 1e3 (no soft-capping): exp of such a score overflows float32, so
    each part's softmax must subtract its max. Output finite and equal to the float64
    definition."""
    torch.manual_seed(2)
    H, Hkv, D, P = 4, 2, 8, 6
    lengths = [2, 3, 1]
    layout = planning.pack_suffixes([[0] * n for n in lengths], P)
    N = layout.n_tokens
    q = torch.randn(1, H, N, D) * 20
    k, v = torch.randn(1, Hkv, N, D) * 20, torch.randn(1, Hkv, N, D)
    pk, pv = torch.randn(1, Hkv, P, D) * 20, torch.randn(1, Hkv, P, D)
    s = torch.cat([pk[0], k[0]], 1).repeat_interleave(H // Hkv, 0) @ q[0].transpose(1, 2)
    assert s.abs().max() > 1500 and s.abs().median() > 400  # raw scores in the thousands
    got = cascade.cascade_attention(q, k, v, pk, pv, layout, 1.0)
    assert torch.isfinite(got).all()
    row = [r for r, n in enumerate(lengths) for _ in range(n)]
    pos = [P + j for n in lengths for j in range(n)]
    key_pos = list(range(P)) + pos
    allowed = [[j < P or (row[j - P] == row[n] and key_pos[j] <= pos[n]) for j in range(P + N)] for n in range(N)]
    ref = plain_attention(q[0], torch.cat([pk[0], k[0]], 1), torch.cat([pv[0], v[0]], 1), allowed, 1.0)
    assert torch.allclose(got[0].transpose(0, 1).double(), ref, atol=1e-4)


def test_merge_of_two_softmax_parts_is_the_softmax_of_the_union():
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 5, 8), torch.randn(3, 11, 8), torch.randn(3, 11, 8)
    o1, l1 = cascade.softmax_part(q, k[:, :4], v[:, :4], 0.5)
    o2, l2 = cascade.softmax_part(q, k[:, 4:], v[:, 4:], 0.5)
    s = (q.double() @ k.double().transpose(1, 2)) * 0.5
    ref = torch.softmax(s, -1) @ v.double()
    assert torch.allclose(cascade.merge_softmax_parts(o1, l1, o2, l2).double(), ref, atol=1e-6)
    assert torch.allclose(torch.logaddexp(l1, l2).double(), torch.logsumexp(s, -1), atol=1e-5)
    # a part where a query sees no key at all contributes nothing
    none = torch.zeros(3, 5, 4, dtype=torch.bool)
    o3, l3 = cascade.softmax_part(q, k[:, :4], v[:, :4], 0.5, mask=none)
    assert torch.isneginf(l3).all() and (o3 == 0).all()
    assert torch.allclose(cascade.merge_softmax_parts(o3, l3, o2, l2), o2)


# -- planning functions ----------------------------------------------------------------------------------
def test_pack_suffixes_positions_and_rows():
    lay = planning.pack_suffixes([[5, 6], [7], [8, 9, 10]], 40)
    assert lay.ids.tolist() == [[5, 6, 7, 8, 9, 10]]
    assert lay.positions.tolist() == [[40, 41, 40, 40, 41, 42]]
    assert lay.offsets.tolist() == [0, 1, 0, 0, 1, 2]
    assert lay.last.tolist() == [1, 2, 5] and lay.starts == [0, 2, 3]
    assert (lay.width, lay.n_tokens) == (3, 6)
    with pytest.raises(ValueError):
        planning.pack_suffixes([[1], []], 3)


def test_plan_batches_respects_budget_and_rows():
    assert planning.plan_batches([2, 2, 2, 3, 3], 6) == [(0, 3), (3, 5)]
    assert planning.plan_batches([2, 2, 2, 3, 4], 6) == [(0, 3), (3, 4), (4, 5)]
    assert planning.plan_batches([2, 2, 2, 3, 3], 100, max_rows=2) == [(0, 2), (2, 4), (4, 5)]
    assert planning.plan_batches([9, 1, 1], 4) == [(0, 1), (1, 3)]   # a row over budget runs alone
    assert planning.plan_batches([], 4) == []
    lengths = [1, 3, 2, 2, 4, 1, 1, 5]
    slices = planning.plan_batches(lengths, 5)
    assert [i for a, b in slices for i in range(a, b)] == list(range(len(lengths)))
    assert all(sum(lengths[a:b]) <= 5 or b - a == 1 for a, b in slices)


def test_run_batches_halves_on_out_of_memory():
    calls = []

    def fn(rows):
        calls.append(list(rows))
        if sum(lengths[r] for r in rows) > 4:
            raise torch.OutOfMemoryError("fake")
        return [r * 10 for r in rows]
    lengths = [2] * 7
    got = list(planning.run_batches(list(range(7)), lengths, 100, fn))
    assert [r for rows, _ in got for r in rows] == list(range(7))
    assert all(vals == [r * 10 for r in rows] for rows, vals in got)
    assert len(calls[0]) == 7 and all(len(rows) <= 2 for rows, _ in got)

    def never(rows):
        raise torch.OutOfMemoryError("fake")
    with pytest.raises(torch.OutOfMemoryError):
        list(planning.run_batches([0], [3], 100, never))


def test_with_oom_backoff_halves_the_engine_batch_size():
    class Flaky:
        name, notes = "naive", []

        def __init__(self):
            self.seen = []

        def score(self, prompt, words, batch_size):
            for i in range(0, len(words), batch_size):
                if batch_size > 2:
                    raise torch.OutOfMemoryError("CUDA out of memory")
                self.seen.append(batch_size)
                yield words[i:i + batch_size], [1.0] * len(words[i:i + batch_size])
    eng = Flaky()
    got = list(planning.with_oom_backoff(eng, "p", list("abcdefg"), 8))
    assert [w for ws, _ in got for w in ws] == list("abcdefg") and set(eng.seen) == {2}
    assert scoring.with_oom_backoff is planning.with_oom_backoff


def test_choose_prefix_length():
    ref = [1, 2, 3, 4]
    assert planning.choose_prefix_length(ref, [[1, 2, 3, 4, 9, 9], [1, 2, 3, 4, 8]]) == 4
    # most words merge with the last template token: sharing 3 tokens beats 4
    seqs = [[1, 2, 3, 7, 9]] * 10 + [[1, 2, 3, 4, 9]]
    assert planning.choose_prefix_length(ref, seqs) == 3
    assert planning.choose_prefix_length(ref, [[5, 6]]) == 0 or planning.choose_prefix_length(ref, [[5, 6]]) == 4
    # a sequence never gives up its last token to the prefix
    assert planning.choose_prefix_length([1, 2], [[1, 2]]) == 1


def test_pooled_length_and_self_check_picks():
    assert planning.pooled_length([1, 2, 3, 0, 0], 0) == 3
    assert planning.pooled_length([1, 2, 3], None) == 3
    assert planning.self_check_picks(1) == [0]
    assert planning.self_check_picks(10, 4) == [0, 3, 6, 9]
    assert planning.self_check_picks(3) == [0, 1, 2]
    assert planning.self_check_picks(0) == []
    assert planning.self_check_picks(10) == list(range(10))   # a small batch: every row
    many = planning.self_check_picks(200)
    assert len(many) == planning.SELF_CHECK_ROWS == 16 and many[0] == 0 and many[-1] == 199
    assert planning.worst_difference([1.0, 10.5], [1.0, 10.0]) == pytest.approx(0.05)
    assert planning.tolerance(torch.float32) < planning.tolerance(torch.bfloat16)


# -- structure -------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def _core_imports(path: Path, package: str) -> set[str]:
    """Modules of `core` a file imports at module level (relative or absolute)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("core"):
                out.add(mod)
                out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("core"))
    return out


def test_no_import_cycle_among_core_modules():
    files = {}
    for f in (ROOT / "core").rglob("*.py"):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = f
    graph = {}
    for mod, f in files.items():
        package = mod if f.name == "__init__.py" else mod.rsplit(".", 1)[0]
        graph[mod] = {m for m in _core_imports(f, package) if m in files and m != mod}
    state: dict = {}

    def visit(m, stack):
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [m, n]))
            if not state.get(n):
                visit(n, stack + [m])
        state[m] = 2
    for m in graph:
        if not state.get(m):
            visit(m, [])
    assert "core.scoring" not in graph["core.engines.cached"]


def test_no_test_patches_private_engine_methods():
    pattern = re.compile(r"setattr\(\s*([\w.]+)\s*,\s*['\"](_\w+)['\"]")
    bad = []
    for f in (ROOT / "tests").glob("test_*.py"):
        for target, attr in pattern.findall(f.read_text()):
            if re.search(r"engine|Engine|scoring|cascade|planning|prefix", target):
                bad.append(f"{f.name}: {target}.{attr}")
    assert not bad, bad
