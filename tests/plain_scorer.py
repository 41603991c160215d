"""An independent, one-sequence-at-a-time scorer written straight from METHOD.md, with
no code from core: the reference the engines are checked against. Models run eager
attention, the one implementation that computes every feature of the architectures
(Gemma 2's logit soft-capping; PyTorch's sdpa kernel drops it, and transformers 5.17 picks
sdpa for Gemma 2 by default)."""
from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer


def plain_rm_scores(path, pairs):
    """{(prompt, word): reward} for each pair, one unpadded forward each."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32,
                                                               attn_implementation="eager").eval()
    out = {}
    with torch.inference_mode():
        for prompt, word in pairs:
            text = tok.apply_chat_template([{"role": "user", "content": prompt},
                                            {"role": "assistant", "content": word}], tokenize=False)
            ids = tok(text, add_special_tokens=False, return_tensors="pt")
            out[(prompt, word)] = float(model(**ids).logits[0, 0])
    return out


def plain_lm_logprobs(path, pairs):
    """{(prompt, word): log p(word | prompt)}: chat prefix with generation prompt, then the
    word's tokens one by one (teacher forcing), log-softmax over the vocabulary."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    out = {}
    with torch.inference_mode():
        for prompt, word in pairs:
            if tok.chat_template:
                text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                               add_generation_prompt=True)
                prefix = tok(text, add_special_tokens=False)["input_ids"]
            else:
                prefix = tok(prompt)["input_ids"]
            word_ids = tok(word, add_special_tokens=False)["input_ids"]
            total = 0.0
            for i, t in enumerate(word_ids):
                ctx = torch.tensor([prefix + word_ids[:i]])
                logits = model(input_ids=ctx).logits[0, -1]
                total += float(torch.log_softmax(logits.double(), -1)[t])
            out[(prompt, word)] = total
    return out
