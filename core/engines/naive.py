"""The `naive` engine: every full sequence in padded batches — simple, the paper's way,
and the oracle the `cached` engine is checked against.

Rows are batched in order of token length (shortest first) so a batch pads to almost
nothing: in corpus order a batch of 32 runs its longest row's length for every row
(about 7 % more tokens on the Big Two nouns). Each row is still one full sequence in one
plain forward; only the grouping changes, and values are per row."""
from __future__ import annotations

from typing import Iterator, Sequence

from ..models import LoadedModel
from .forward import lm_forward, rm_forward
from .planning import MemoryLimit
from .tokens import Tokenize


def by_length(seqs: Sequence[Sequence[int]]) -> list[int]:
    """Row indices sorted by token length (stable: equal lengths keep their order)."""
    return sorted(range(len(seqs)), key=lambda i: len(seqs[i]))


class NaiveEngine:
    name = "naive"

    def __init__(self, loaded: LoadedModel, tokens: Tokenize | None = None):
        self.loaded = loaded
        self.notes: list[str] = []
        self.memory = MemoryLimit()  # the job's out-of-memory back-off (planning.with_oom_backoff)
        self.tokens = tokens or Tokenize()  # a TokenMemo: one tokenization for a whole training run

    def score(self, prompt: str, words: Sequence[str], batch_size: int) -> Iterator[tuple[list[str], list[float]]]:
        tok = self.loaded.tokenizer
        words = list(words)
        if self.loaded.kind == "rm":
            seqs = self.tokens.rm_ids_batch(tok, prompt, words)
            order = by_length(seqs)
            for i in range(0, len(order), batch_size):
                idx = order[i:i + batch_size]
                yield [words[j] for j in idx], rm_forward(self.loaded, [seqs[j] for j in idx])
        else:
            prefix = self.tokens.lm_prefix_ids(tok, prompt)
            wids = self.tokens.word_ids_batch(tok, words)
            order = by_length(wids)
            for i in range(0, len(order), batch_size):
                idx = order[i:i + batch_size]
                yield [words[j] for j in idx], lm_forward(self.loaded, [prefix] * len(idx), [wids[j] for j in idx])
