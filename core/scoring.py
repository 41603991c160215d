"""Scoring: the reward of each (prompt, word) answer, or an LM's log-probability of the word.

RM (METHOD.md §1): the conversation [user: prompt, assistant: word] is formatted with the
model's own chat template and tokenized once, without adding special tokens again (the
template already holds BOS). LM (§4): log p(word | prompt formatted for generation), summed
over the word's tokens under teacher forcing; the end-of-turn token is not counted.

Engines compute the same values in different ways: `naive` runs every full sequence in
padded batches (the paper's way); `cached` reuses the prompt's key/value cache."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import pandas as pd

from .models import LoadedModel, ModelError
from .prompts import Prompt

log = logging.getLogger(__name__)

ENGINES = ("naive", "cached")


class ScoringError(RuntimeError):
    """Scoring cannot go on; the message says what to do."""


@dataclass
class Progress:
    """What a progress bar needs: rows done of rows to do in this run, and the pace."""
    done: int
    total: int
    new: int
    cached: int
    elapsed: float
    prompt_id: str = ""
    engine: str = ""
    batch_size: int = 0

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


@dataclass
class ScoreResult:
    new: int
    cached: int
    skipped: list[str] = field(default_factory=list)  # words that cannot be scored
    engine: str = "naive"
    stopped: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# -- tokenization ----------------------------------------------------------------------
def rm_text(tokenizer, prompt: str, word: str) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError("the tokenizer has no chat template, which reward scoring needs; add the base "
                         "model's chat_template to tokenizer_config.json (or chat_template.jinja) in the model folder")
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": word}], tokenize=False)


def rm_ids(tokenizer, prompt: str, word: str) -> list[int]:
    """Token ids of the formatted conversation, tokenized once, no second BOS."""
    return tokenizer(rm_text(tokenizer, prompt, word), add_special_tokens=False)["input_ids"]


def lm_prefix_ids(tokenizer, prompt: str) -> list[int]:
    """The context an LM answers in: chat template with the generation prompt, or the raw
    prompt (with the tokenizer's usual BOS) for pretrained models without a template."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]


def word_ids(tokenizer, word: str) -> list[int]:
    return tokenizer(word, add_special_tokens=False)["input_ids"]


# -- batching helpers --------------------------------------------------------------------
def _pad_right(seqs: Sequence[Sequence[int]], pad_id: int):
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


def rm_forward(loaded: LoadedModel, seqs: Sequence[Sequence[int]]) -> list[float]:
    """Rewards of full sequences in one right-padded batch."""
    import torch
    pad = pooling_pad_id(loaded, seqs)
    ids, mask = _pad_right(seqs, pad)
    cfg = text_config(loaded.model)
    old = getattr(cfg, "pad_token_id", None)
    cfg.pad_token_id = pad
    try:
        with torch.inference_mode():
            out = loaded.model(input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device))
    finally:
        cfg.pad_token_id = old
    return reward_from_output(out, loaded.score_head)


def reward_from_output(out, score_head: str = "logits") -> list[float]:
    """The scalar reward: the output's `.score` where the model has one (ArmoRM, QRM), else logits[:, 0]."""
    score = getattr(out, "score", None)
    if score is None:
        score = out.logits[:, 0]
    return score.float().reshape(len(score), -1)[:, 0].cpu().tolist()


def lm_forward(loaded: LoadedModel, prefixes: Sequence[Sequence[int]], words: Sequence[Sequence[int]]) -> list[float]:
    """Sum of log p(word token | everything before) over each word's tokens, one padded batch."""
    import torch
    seqs = [list(p) + list(w) for p, w in zip(prefixes, words)]
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    ids, mask = _pad_right(seqs, pad)
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device)).logits
    logp = torch.log_softmax(logits.float(), dim=-1)
    out = []
    for i, (p, w) in enumerate(zip(prefixes, words)):
        pos = torch.arange(len(p) - 1, len(p) + len(w) - 1, device=logp.device)
        tgt = torch.tensor(w, device=logp.device)
        out.append(float(logp[i, pos, tgt].sum()))
    return out


# -- engines -------------------------------------------------------------------------------
class NaiveEngine:
    """Every full sequence in padded batches: simple and the paper's way."""
    name = "naive"

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded

    def score(self, prompt: str, words: Sequence[str], batch_size: int) -> Iterator[tuple[list[str], list[float]]]:
        tok = self.loaded.tokenizer
        if self.loaded.kind == "rm":
            seqs = [rm_ids(tok, prompt, w) for w in words]
            for i in range(0, len(words), batch_size):
                yield list(words[i:i + batch_size]), rm_forward(self.loaded, seqs[i:i + batch_size])
        else:
            prefix = lm_prefix_ids(tok, prompt)
            wids = [word_ids(tok, w) for w in words]
            for i in range(0, len(words), batch_size):
                chunk = wids[i:i + batch_size]
                yield list(words[i:i + batch_size]), lm_forward(self.loaded, [prefix] * len(chunk), chunk)


def make_engine(name: str, loaded: LoadedModel):
    if name == "naive":
        return NaiveEngine(loaded)
    if name == "cached":
        try:
            from .prefix_cache import CachedEngine
        except ImportError:
            log.warning("engine 'cached' is not available in this build; using 'naive'")
            return NaiveEngine(loaded)
        return CachedEngine(loaded)
    raise ScoringError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")


# -- the job -------------------------------------------------------------------------------
def scorable(loaded: LoadedModel, words: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split words into those a model can score and those it cannot (no tokens at all)."""
    ok, bad = [], []
    if not words:
        return ok, bad
    ids = loaded.tokenizer(list(words), add_special_tokens=False)["input_ids"]  # one call: fast on 1M words
    for w, i in zip(words, ids):
        (ok if i else bad).append(w)
    return ok, bad


def missing_pairs(store, key: str, kind: str, prompts: Sequence[Prompt], words: Sequence[str]):
    """Per prompt, the words not yet stored for this model and kind (what a rerun must do)."""
    have = store.existing(key, kind)
    todo = {p.prompt_id: [w for w in words if (p.text, w) not in have] for p in prompts}
    cached = sum(len(words) - len(todo[p.prompt_id]) for p in prompts)
    return todo, cached


def run(store, loaded: LoadedModel, prompts: Sequence[Prompt], words: Sequence[str], *,
        engine: str = "cached", batch_size: int = 32, on_progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None, commit_interval: float = 0.5) -> ScoreResult:
    """Score every missing (prompt, word) pair and commit as batches finish.

    Rows are written in short transactions (batches finishing within `commit_interval`
    seconds share one), so a job stopped at any moment keeps all committed work and a
    rerun computes only what is missing."""
    from . import limits
    limits.check_request(words, prompts, batch_size)  # before any tokenizing: one line, no heavy work
    words = list(dict.fromkeys(words))
    words, skipped = scorable(loaded, words)
    if not words:
        raise ScoringError("none of the corpus words can be scored by this model's tokenizer; check the corpus")
    limits.check_context(loaded, prompts, words)
    store.upsert_model(loaded.key, loaded.name, loaded.kind, loaded.family, loaded.display_name,
                       loaded.revision, "scored", loaded.n_params)
    todo, cached = missing_pairs(store, loaded.key, loaded.kind, prompts, words)
    total = sum(len(v) for v in todo.values())
    result = ScoreResult(new=0, cached=cached, skipped=skipped, engine=engine)
    eng = make_engine(engine, loaded)
    result.engine = eng.name
    start = time.monotonic()
    if on_progress:  # a large corpus takes a while to prepare: show the total at once
        on_progress(Progress(0, total, 0, cached, 0.0, "preparing", eng.name, batch_size))
    pending: list[pd.DataFrame] = []
    last_commit = time.monotonic()
    done = 0

    def flush():
        nonlocal last_commit
        if pending:
            result.new += store.add_scores(loaded.key, loaded.kind, pd.concat(pending, ignore_index=True))
            pending.clear()
        last_commit = time.monotonic()

    try:
        for p in prompts:
            if not todo[p.prompt_id]:
                continue
            for batch_words, values in _with_oom_backoff(eng, p.text, todo[p.prompt_id], batch_size):
                pending.append(pd.DataFrame({"prompt_id": p.prompt_id, "prompt": p.text,
                                             "response": batch_words, "value": values}))
                done += len(batch_words)
                if time.monotonic() - last_commit >= commit_interval:
                    flush()
                if on_progress:
                    on_progress(Progress(done, total, result.new, cached, time.monotonic() - start,
                                         p.prompt_id, eng.name, batch_size))
                if should_stop and should_stop():
                    result.stopped = True
                    break
            if result.stopped:
                break
        flush()
    finally:
        pending.clear()  # an exception mid-batch leaves committed rows only
    result.engine = eng.name  # 'naive' if the cached engine fell back
    result.notes.extend(getattr(eng, "notes", []))
    result.seconds = time.monotonic() - start
    return result


def _with_oom_backoff(eng, prompt: str, words: list[str], batch_size: int):
    """Run the engine; on CUDA out-of-memory halve the batch size and go on from where it failed."""
    import torch
    remaining = list(words)
    while remaining:
        done: set[str] = set()  # by word, not position: an engine may score words in any order
        try:
            for batch_words, values in eng.score(prompt, remaining, batch_size):
                done.update(batch_words)
                yield batch_words, values
            remaining = []
        except torch.OutOfMemoryError:
            remaining = [w for w in remaining if w not in done]
            if batch_size == 1:
                raise ScoringError("CUDA out of memory even at batch size 1; use a smaller model, "
                                   "--dtype bfloat16, or --device cpu") from None
            batch_size = max(1, batch_size // 2)
            log.warning("CUDA out of memory: batch size halved to %d", batch_size)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
