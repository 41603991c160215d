"""Full-sequence forwards shared by the engines: padded batches, the naive way.

`rm_forward` and `lm_forward` are what the `naive` engine runs, what the `cached` engine
runs for the rows it cannot cache, and the reference of its self-check."""
from __future__ import annotations

from typing import Sequence

from ..models import LoadedModel


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int):
    """(ids, mask) of right-padded sequences."""
    import torch
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def text_config(model):
    """The config that holds pad_token_id (the text part of a multimodal config)."""
    cfg = model.config
    return cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg


def pooling_pad_id(loaded: LoadedModel, seqs: Sequence[Sequence[int]]) -> int:
    """A pad id under which a sequence-classification head pools each sequence's true last
    token: the model's own pad id when set (so batched = one-at-a-time), otherwise an id
    that no sequence ends with."""
    cfg = text_config(loaded.model)
    if getattr(cfg, "pad_token_id", None) is not None:
        return int(cfg.pad_token_id)
    last = {s[-1] for s in seqs}
    cand = loaded.tokenizer.pad_token_id
    if cand is None or cand in last:
        cand = next(i for i in range(len(loaded.tokenizer)) if i not in last)
    return int(cand)


def reward_from_output(out) -> list[float]:
    """The scalar reward: the output's `.score` where the model has one (ArmoRM, QRM), else logits[:, 0]."""
    score = getattr(out, "score", None)
    if score is None:
        score = out.logits[:, 0]
    return score.float().reshape(len(score), -1)[:, 0].cpu().tolist()


def rm_forward(loaded: LoadedModel, seqs: Sequence[Sequence[int]]) -> list[float]:
    """Rewards of full sequences in one right-padded batch."""
    import torch
    pad = pooling_pad_id(loaded, seqs)
    ids, mask = pad_right(seqs, pad)
    cfg = text_config(loaded.model)
    old = getattr(cfg, "pad_token_id", None)
    cfg.pad_token_id = pad
    try:
        with torch.inference_mode():
            out = loaded.model(input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device))
    finally:
        cfg.pad_token_id = old
    return reward_from_output(out)


def lm_forward(loaded: LoadedModel, prefixes: Sequence[Sequence[int]], words: Sequence[Sequence[int]]) -> list[float]:
    """Sum of log p(word token | everything before) over each word's tokens, one padded batch."""
    import torch
    seqs = [list(p) + list(w) for p, w in zip(prefixes, words)]
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    ids, mask = pad_right(seqs, pad)
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device)).logits
    logp = torch.log_softmax(logits.float(), dim=-1)
    out = []
    for i, (p, w) in enumerate(zip(prefixes, words)):
        pos = torch.arange(len(p) - 1, len(p) + len(w) - 1, device=logp.device)
        tgt = torch.tensor(w, device=logp.device)
        out.append(float(logp[i, pos, tgt].sum()))
    return out
