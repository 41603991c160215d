"""An independent scorer written straight from METHOD.md, with no code from core: the reference
the engines are checked against. Every sequence is scored whole and unpadded, with no mask
and no cache; sequences of the same length are stacked into one forward (no padding is then
needed, so each row computes exactly what it would alone — only faster than one forward each).
Models run eager attention, the one implementation that computes every feature of the
architectures (Gemma 2's logit soft-capping; PyTorch's sdpa kernel drops it, and transformers
5.17 picks sdpa for Gemma 2 by default)."""
from __future__ import annotations

from collections import defaultdict

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

STACK = 64   # sequences per forward


def _same_length_stacks(seqs: list[list[int]]):
    """(indices, tensor) for each stack of up to STACK sequences of one length."""
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(seqs):
        by_len[len(s)].append(i)
    for idx in by_len.values():
        for k in range(0, len(idx), STACK):
            part = idx[k:k + STACK]
            yield part, torch.tensor([seqs[i] for i in part])


def plain_rm_scores(path, pairs):
    """{(prompt, word): reward} for each pair: the chat-templated conversation, its scalar head."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32,
                                                               attn_implementation="eager").eval()
    seqs = []
    for prompt, word in pairs:
        text = tok.apply_chat_template([{"role": "user", "content": prompt},
                                        {"role": "assistant", "content": word}], tokenize=False)
        seqs.append(tok(text, add_special_tokens=False)["input_ids"])
    out = {}
    with torch.inference_mode():
        for part, ids in _same_length_stacks(seqs):
            for i, v in zip(part, model(input_ids=ids).logits[:, 0].tolist()):
                out[pairs[i]] = float(v)
    return out


def plain_lm_logprobs(path, pairs):
    """{(prompt, word): log p(word | prompt)}: chat prefix with generation prompt, then the
    word's tokens one by one (teacher forcing), log-softmax over the vocabulary."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    contexts, steps = [], []   # one context per (pair, token of its word): predict `target` after it
    for n, (prompt, word) in enumerate(pairs):
        if tok.chat_template:
            text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                           add_generation_prompt=True)
            prefix = tok(text, add_special_tokens=False)["input_ids"]
        else:
            prefix = tok(prompt)["input_ids"]
        word_ids = tok(word, add_special_tokens=False)["input_ids"]
        for i, t in enumerate(word_ids):
            contexts.append(prefix + word_ids[:i])
            steps.append((n, i, t))
    terms: dict[int, dict[int, float]] = defaultdict(dict)
    with torch.inference_mode():
        for part, ids in _same_length_stacks(contexts):
            logp = torch.log_softmax(model(input_ids=ids).logits[:, -1].double(), -1)
            for row, j in enumerate(part):
                n, i, t = steps[j]
                terms[n][i] = float(logp[row, t])
    out = {}
    for n, pair in enumerate(pairs):
        out[pair] = sum(terms[n][i] for i in sorted(terms[n]))   # the word's tokens in order
    return out
