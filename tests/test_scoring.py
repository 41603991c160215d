"""Engines against the independent plain scorer; resume; identity."""
import math

import pytest

from core import models, prompts, scoring
from core.store import Store
from tests.plain_scorer import plain_lm_logprobs, plain_rm_scores

WORDS = ["love", "freedom", "affection", "accuracy", "power", "x", "zestfulness"]


def _prompt_subset(n=3):
    ps = prompts.paper_prompts()
    return [ps[0], ps[20], ps[40]][:n]


@pytest.mark.parametrize("fixture", ["tiny_llama_rm", "tiny_gemma_rm"])
def test_naive_rm_equals_plain_scorer(fixture, request, db):
    path = request.getfixturevalue(fixture)
    loaded = models.load(str(path), "rm", device="cpu")
    ps = _prompt_subset()
    res = scoring.run(Store(db), loaded, ps, WORDS, engine="naive", batch_size=4)
    assert (res.new, res.cached) == (len(ps) * len(WORDS), 0)
    got = Store(db).scores()
    ref = plain_rm_scores(path, [(p.text, w) for p in ps for w in WORDS])
    assert len(got) == len(ref)
    for r in got.itertuples():
        assert r.value == pytest.approx(ref[(r.prompt, r.response)], abs=1e-5)
    assert got["value"].nunique() > len(WORDS)  # a random head still separates answers


def test_rm_tokenized_once_without_second_bos(tiny_llama_rm):
    loaded = models.load(str(tiny_llama_rm), "rm", device="cpu")
    ids = scoring.rm_ids(loaded.tokenizer, "What is best?", "love")
    assert ids.count(loaded.tokenizer.bos_token_id) == 1 and ids[0] == loaded.tokenizer.bos_token_id


@pytest.mark.parametrize("fixture", ["tiny_gemma_lm", "tiny_llama_lm"])
def test_naive_lm_logprobs_equal_hand_computation(fixture, request, db):
    path = request.getfixturevalue(fixture)
    loaded = models.load(str(path), "lm", device="cpu")
    lengths = {w: len(scoring.word_ids(loaded.tokenizer, w)) for w in WORDS}
    assert min(lengths.values()) == 1 and max(lengths.values()) > 1  # single- and multi-token words
    ps = _prompt_subset(2)
    scoring.run(Store(db), loaded, ps, WORDS, engine="naive", batch_size=3)
    got = Store(db).scores(kind="lm")
    ref = plain_lm_logprobs(path, [(p.text, w) for p in ps for w in WORDS])
    for r in got.itertuples():
        assert r.value == pytest.approx(ref[(r.prompt, r.response)], abs=1e-4)
        assert r.value < 0


def test_single_token_logprob_is_next_token_log_softmax(tiny_gemma_lm):
    """A one-token word's log-prob is the log-softmax of the logits right after the prefix."""
    import torch
    loaded = models.load(str(tiny_gemma_lm), "lm", device="cpu")
    tok = loaded.tokenizer
    word = next(w for w in WORDS if len(scoring.word_ids(tok, w)) == 1)
    prefix = scoring.lm_prefix_ids(tok, "What is best?")
    assert tok.decode(prefix).endswith("<start_of_turn>model\n")
    with torch.inference_mode():
        logits = loaded.model(input_ids=torch.tensor([prefix])).logits[0, -1].double()
    z = logits.max() + math.log(float(torch.exp(logits - logits.max()).sum()))
    hand = float(logits[scoring.word_ids(tok, word)[0]] - z)
    assert scoring.lm_forward(loaded, [prefix], [scoring.word_ids(tok, word)])[0] == pytest.approx(hand, abs=1e-5)


def test_pretrained_lm_without_template_gets_raw_prompt(tiny_llama_lm):
    loaded = models.load(str(tiny_llama_lm), "lm", device="cpu")
    loaded.tokenizer.chat_template = None
    prefix = scoring.lm_prefix_ids(loaded.tokenizer, "What is best?")
    assert loaded.tokenizer.decode(prefix, skip_special_tokens=True) == "What is best?"


def test_resume_after_interrupted_job(tiny_llama_rm, db):
    loaded = models.load(str(tiny_llama_rm), "rm", device="cpu")
    ps = _prompt_subset()
    calls = {"n": 0}

    def stop_after_two_batches():
        calls["n"] += 1
        return calls["n"] >= 2

    first = scoring.run(Store(db), loaded, ps, WORDS, engine="naive", batch_size=4,
                        should_stop=stop_after_two_batches, commit_interval=0)
    assert first.stopped and first.new == len(WORDS)  # batches of 4 and 3 words: the first prompt
    second = scoring.run(Store(db), loaded, ps, WORDS, engine="naive", batch_size=4)
    assert (second.new, second.cached) == (len(ps) * len(WORDS) - len(WORDS), len(WORDS))
    third = scoring.run(Store(db), loaded, ps, WORDS, engine="naive", batch_size=5)
    assert (third.new, third.cached) == (0, len(ps) * len(WORDS))
    got = Store(db).scores()
    ref = plain_rm_scores(tiny_llama_rm, [(p.text, w) for p in ps for w in WORDS])
    assert sorted(zip(got.prompt, got.response)) == sorted(ref)
    for r in got.itertuples():
        assert r.value == pytest.approx(ref[(r.prompt, r.response)], abs=1e-5)


def test_memory_sink_takes_a_job_as_the_store_does(tiny_llama_rm):
    """scoring.run into scoring.MemorySink (no database): every row once, values equal to the
    plain scorer, a stopped job resumed into the same sink adds exactly what is missing."""
    loaded = models.load(str(tiny_llama_rm), "rm", device="cpu")
    ps = _prompt_subset(2)
    sink = scoring.MemorySink()
    calls = {"n": 0}

    def stop_after_one_batch():
        calls["n"] += 1
        return True

    first = scoring.run(sink, loaded, ps, WORDS, engine="cached", batch_size=4, should_stop=stop_after_one_batch)
    assert first.stopped and 0 < first.new == len(sink) < len(ps) * len(WORDS)
    second = scoring.run(sink, loaded, ps, WORDS, engine="cached", batch_size=4)
    assert (second.new, second.cached) == (len(ps) * len(WORDS) - first.new, first.new)
    assert scoring.run(sink, loaded, ps, WORDS, engine="naive", batch_size=3).new == 0
    got = sink.scores()
    assert set(got["model_key"]) == {loaded.key} and set(got["kind"]) == {"rm"}
    assert sink.models[loaded.key]["name"] == loaded.name
    ref = plain_rm_scores(tiny_llama_rm, [(p.text, w) for p in ps for w in WORDS])
    assert sorted(zip(got.prompt, got.response)) == sorted(ref)
    for r in got.itertuples():
        assert r.value == pytest.approx(ref[(r.prompt, r.response)], abs=1e-5)
        assert r.prompt_id == {p.text: p.prompt_id for p in ps}[r.prompt]


def test_identity_is_path_plus_weights_hash(tiny_llama_rm, tmp_path):
    import shutil
    k1 = models.model_key(str(tiny_llama_rm))
    assert k1.startswith(f"local:{tiny_llama_rm.resolve()}#")
    copy = tmp_path / "copy"
    shutil.copytree(tiny_llama_rm, copy)
    assert models.model_key(str(copy)).split("#")[1] == k1.split("#")[1]
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes()[:-1] + b"\x01")
    assert models.model_key(str(copy)).split("#")[1] != k1.split("#")[1]


def test_family_detected_and_overridable(tiny_gemma_rm, tiny_llama_lm):
    assert models.load(str(tiny_gemma_rm), "rm", device="cpu").family == "gemma"
    assert models.load(str(tiny_llama_lm), "lm", device="cpu", family="Qwen").family == "qwen"


def test_corpus_of_unscorable_words_is_refused(tiny_llama_rm, db):
    loaded = models.load(str(tiny_llama_rm), "rm", device="cpu")
    with pytest.raises(scoring.ScoringError, match="none of the corpus words"):
        scoring.run(Store(db), loaded, _prompt_subset(1), ["<|eot_id|>"] * 0 + [""], engine="naive")
