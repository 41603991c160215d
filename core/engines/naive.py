"""The `naive` engine: every full sequence in padded batches — simple, the paper's way,
and the oracle the `cached` engine is checked against."""
from __future__ import annotations

from typing import Iterator, Sequence

from ..models import LoadedModel
from .forward import lm_forward, rm_forward
from .tokens import lm_prefix_ids, rm_ids_batch, word_ids_batch


class NaiveEngine:
    name = "naive"

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self.notes: list[str] = []

    def score(self, prompt: str, words: Sequence[str], batch_size: int) -> Iterator[tuple[list[str], list[float]]]:
        tok = self.loaded.tokenizer
        if self.loaded.kind == "rm":
            seqs = rm_ids_batch(tok, prompt, list(words))
            for i in range(0, len(words), batch_size):
                yield list(words[i:i + batch_size]), rm_forward(self.loaded, seqs[i:i + batch_size])
        else:
            prefix = lm_prefix_ids(tok, prompt)
            wids = word_ids_batch(tok, list(words))
            for i in range(0, len(words), batch_size):
                chunk = wids[i:i + batch_size]
                yield list(words[i:i + batch_size]), lm_forward(self.loaded, [prefix] * len(chunk), chunk)
