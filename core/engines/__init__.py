"""Scoring engines: the same values (METHOD.md §1, §4) computed in different ways.

- `naive` (naive.py): every full sequence in padded batches; the paper's way and the oracle.
- `cached` (cached.py): each prompt's prefix once, the words' suffix tokens against it with
  cascade attention (cascade.py); self-checks against `naive` and falls back when it cannot
  be exact.

Public: `Engine` (the protocol), `make_engine`, `ENGINES`, `ScoringError`,
`with_oom_backoff`; the tokenization (tokens.py) and full-sequence forwards (forward.py)
both engines share; the plain planning functions (planning.py). Imports go one way:
core.scoring -> core.engines -> core.models."""
from __future__ import annotations

import logging

from ..models import LoadedModel
from .base import Engine, ScoringError
from .planning import with_oom_backoff

log = logging.getLogger(__name__)

ENGINES = ("naive", "cached")

__all__ = ["ENGINES", "Engine", "ScoringError", "make_engine", "with_oom_backoff"]


def make_engine(name: str, loaded: LoadedModel, tokens=None) -> Engine:
    """The engine `name` for a loaded model; `tokens` (an engines.tokens.TokenMemo) shares
    token ids and prefix plans across models with one tokenizer (a training run's checkpoints)."""
    if name == "naive":
        from .naive import NaiveEngine
        return NaiveEngine(loaded, tokens)
    if name == "cached":
        from .cached import CachedEngine
        return CachedEngine(loaded, tokens=tokens)
    raise ScoringError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")
