"""What every scoring engine is: a name, notes for the user, and `score()`.

An engine computes the values of METHOD.md §1 (RM reward) or §4 (LM log-probability) for
one prompt and many candidate words; engines differ only in how (and how fast)."""
from __future__ import annotations

from typing import Iterator, Protocol, Sequence, runtime_checkable
from ..errors import ValueAuditError


class ScoringError(ValueAuditError, RuntimeError):
    """Scoring cannot go on; the message says what to do."""


@runtime_checkable
class Engine(Protocol):
    name: str          # the engine that actually ran ('naive' after a fallback)
    notes: list[str]   # one line per fallback or caveat, shown to the user
    # optional: `memory`, a planning.MemoryLimit kept for the engine's job, so an
    # out-of-memory back-off holds for the job's later prompts (with_oom_backoff)

    def score(self, prompt: str, words: Sequence[str], batch_size: int) -> Iterator[tuple[list[str], list[float]]]:
        """Yield (words, values) batches covering every word exactly once, in any order."""
        ...
