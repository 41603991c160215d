"""Plain functions the cached engine is made of: which prefix to share, how a batch of
suffixes is laid out, how rows are cut into batches, and how out-of-memory is survived.
No model in here; each is tested directly (tests/test_engines.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

log = logging.getLogger(__name__)

SELF_CHECK_ROWS = 16  # rows per self-check, spread over the batch (precision.NOISE_FACTOR was measured at 12-16)


# -- the shared prefix ------------------------------------------------------------------------
def lcp(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def choose_prefix_length(ref: Sequence[int], seqs: Sequence[Sequence[int]]) -> int:
    """How many tokens of `ref` (the conversation up to the answer, tokenized alone) to
    share. Tokens run for a length L: L once, the rest of each sequence that starts with
    those L tokens, every other sequence in full. A BPE merge across the template/answer
    boundary in many words makes a shorter prefix cheaper; each sequence keeps >= 1 token."""
    lcps = [min(lcp(ref, s), len(s) - 1) for s in seqs]
    best, best_cost = 0, None
    for L in sorted(set(lcps) | {len(ref)}):
        if L <= 0:
            continue
        cost = L + sum(len(s) - L if c >= L else len(s) for s, c in zip(seqs, lcps))
        if best_cost is None or cost < best_cost:
            best, best_cost = L, cost
    return best


def pooled_length(seq: Sequence[int], pad_id: int | None) -> int:
    """Length up to the token a classification head pools: the rightmost token that is not
    the model's pad token (some RMs use end-of-turn as pad). Later tokens cannot change that
    token's hidden state under causal attention, so the cached path may drop them."""
    if pad_id is None:
        return len(seq)
    n = len(seq)
    while n > 0 and seq[n - 1] == pad_id:
        n -= 1
    return n


# -- one batch of suffixes --------------------------------------------------------------------
@dataclass
class SuffixLayout:
    """B suffixes (rows) after a shared prefix of P tokens, as ONE packed sequence of
    N = sum(lengths) tokens: no padding in the model's linear layers, each token at the
    position it has in its own full sequence (P + offset in its row). The attention reads
    a token's own keys as the `offsets[n] + 1` packed tokens ending at it (at most `width`,
    the longest suffix); `last[b]` is row b's last token, `starts[b]` its first."""
    prefix_len: int
    lengths: list[int]
    ids: object        # (1, N) long
    positions: object  # (1, N) long
    offsets: object    # (N,) long: index of each token within its row
    last: object       # (B,) long
    starts: list[int]
    max_position: int = 0

    @property
    def width(self) -> int:
        return max(self.lengths)

    @property
    def n_tokens(self) -> int:
        return sum(self.lengths)


def pack_suffixes(suffixes: Sequence[Sequence[int]], prefix_len: int, device="cpu") -> SuffixLayout:
    import torch
    lengths = [len(s) for s in suffixes]
    if not lengths or min(lengths) < 1:
        raise ValueError("every suffix needs at least one token")
    lens = torch.tensor(lengths, dtype=torch.long)
    starts = torch.cumsum(lens, 0) - lens
    offsets = torch.arange(int(lens.sum())) - torch.repeat_interleave(starts, lens)
    ids = torch.tensor([[t for s in suffixes for t in s]], dtype=torch.long)
    return SuffixLayout(prefix_len=prefix_len, lengths=lengths, ids=ids.to(device),
                        positions=(offsets + prefix_len)[None].to(device), offsets=offsets.to(device),
                        last=(starts + lens - 1).to(device), starts=starts.tolist(),
                        max_position=prefix_len + max(lengths) - 1)


# -- batches ----------------------------------------------------------------------------------
def plan_batches(lengths: Sequence[int], token_budget: int, max_rows: int | None = None) -> list[tuple[int, int]]:
    """Consecutive [start, end) slices of rows, each with at most `token_budget` tokens
    (a longer single row gets a batch of its own) and at most `max_rows` rows."""
    out, start, tokens = [], 0, 0
    for i, n in enumerate(lengths):
        if i > start and (tokens + n > token_budget or (max_rows is not None and i - start >= max_rows)):
            out.append((start, i))
            start, tokens = i, 0
        tokens += n
    if start < len(lengths):
        out.append((start, len(lengths)))
    return out


@dataclass
class MemoryLimit:
    """What a job has learnt about its device's memory: the largest batch to try, in rows
    (an engine's batch size, `with_oom_backoff`) and in tokens (a packed cached batch,
    `run_batches`). Each engine keeps one for its whole job, so after out-of-memory every
    later batch and prompt starts from the halved size that worked: a GPU too small for the
    batch size asked pays one failure per job, not one per prompt. No step back up: the
    prompts of a job are about as long as each other, so a size that ran out of memory
    would again, and each failure costs a forward and a flush of the allocator's cache,
    while halving a batch that large costs a GPU little."""
    rows: int | None = None
    tokens: int | None = None
    failures: int = 0

    def fit_rows(self, n: int) -> int:
        return n if self.rows is None else max(1, min(n, self.rows))

    def fit_tokens(self, n: int) -> int:
        return n if self.tokens is None else max(1, min(n, self.tokens))

    def rows_failed(self, n: int) -> int:
        """Record that a batch of n rows ran out of memory; the size to use from now on."""
        self.failures += 1
        self.rows = max(1, min(n, self.rows or n) // 2)
        return self.rows

    def tokens_failed(self, n: int) -> int:
        self.failures += 1
        self.tokens = max(1, min(n, self.tokens or n) // 2)
        return self.tokens


def release_memory() -> None:
    """After out-of-memory: hand the allocator's cached blocks back before the retry."""
    import torch
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_batches(order: Sequence, lengths: Sequence[int], token_budget: int, fn: Callable[[list], list],
                max_rows: int | None = None, memory: MemoryLimit | None = None) -> Iterator[tuple[list, list]]:
    """Yield (rows, fn(rows)) over `order` in planned batches of at most `token_budget` tokens
    (less where `memory` learnt that less fits). On out-of-memory the failed batch's tokens
    are halved, kept in `memory` for the rest of the job, and the rest re-planned from the
    failed batch; a single row that does not fit re-raises."""
    import torch
    memory = memory if memory is not None else MemoryLimit()
    pos = 0
    while pos < len(order):
        start, end = plan_batches(lengths[pos:], memory.fit_tokens(token_budget), max_rows)[0]
        rows = list(order[pos + start:pos + end])
        try:
            values = fn(rows)
        except torch.OutOfMemoryError:
            if len(rows) == 1:
                raise
            budget = memory.tokens_failed(sum(lengths[pos:pos + end]))
            max_rows = max(1, len(rows) // 2) if max_rows is not None else None
            log.warning("out of memory in a cached batch of %d rows: token budget halved to %d for the rest "
                        "of the job", len(rows), budget)
            release_memory()
            continue
        pos += end
        yield rows, values


def with_oom_backoff(engine, prompt: str, words: Sequence[str], batch_size: int):
    """Run `engine.score`; on out-of-memory halve the batch size and go on from where it
    failed. The size that worked is kept in the engine's `memory` (a MemoryLimit), so the
    job's later prompts start from it; an engine without one starts each call afresh."""
    import torch

    from .base import ScoringError
    memory = getattr(engine, "memory", None)
    memory = memory if isinstance(memory, MemoryLimit) else MemoryLimit()
    batch_size = memory.fit_rows(batch_size)
    remaining = list(words)
    while remaining:
        done: set[str] = set()  # by word, not position: an engine may score words in any order
        try:
            for batch_words, values in engine.score(prompt, remaining, batch_size):
                done.update(batch_words)
                yield batch_words, values
            remaining = []
        except torch.OutOfMemoryError:
            remaining = [w for w in remaining if w not in done]
            if batch_size == 1:
                raise ScoringError("CUDA out of memory even at batch size 1; use a smaller model, "
                                   "dtype bfloat16, or device cpu") from None
            batch_size = memory.rows_failed(batch_size)
            log.warning("CUDA out of memory: batch size halved to %d for the rest of the job", batch_size)
            release_memory()


# -- the self-check ---------------------------------------------------------------------------
def self_check_picks(n: int, k: int = SELF_CHECK_ROWS) -> list[int]:
    """Up to k positions spread over a batch of n rows (first and last included)."""
    m = min(n, k)
    if m <= 0:
        return []
    return sorted({round(i * (n - 1) / max(1, m - 1)) for i in range(m)})


def tolerance(dtype) -> float:
    """Self-check tolerance relative to max(1, |value|): float rounding, not a bug. In half
    precision the least of the rounding bound, which grows with the noise the dtype is
    measured to have on the model (precision.rounding_bound); None: float32."""
    import torch
    return 1e-3 if dtype in (None, torch.float32, torch.float64) else 2e-2


def worst_difference(values: Sequence[float], reference: Sequence[float]) -> float:
    return max((abs(v - r) / max(1.0, abs(r)) for v, r in zip(values, reference)), default=0.0)
