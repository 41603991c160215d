"""Scoring: the reward of each (prompt, word) answer, or an LM's log-probability of the word.

RM (METHOD.md §1): the conversation [user: prompt, assistant: word] is formatted with the
model's own chat template and tokenized once, without adding special tokens again (the
template already holds BOS). LM (§4): log p(word | prompt formatted for generation), summed
over the word's tokens under teacher forcing; the end-of-turn token is not counted.

Engines compute the same values in different ways (core/engines/): `naive` runs every full
sequence in padded batches (the paper's way); `cached` runs each prompt's prefix once and the
words' suffix tokens against it. This module runs a scoring job over a store; the names it
re-exports from core.engines stay public here for existing callers."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import pandas as pd

from .engines import ENGINES, Engine, ScoringError, make_engine, with_oom_backoff  # noqa: F401 - public here too
from .engines.forward import (lm_forward, pooling_pad_id, reward_from_output, rm_forward,  # noqa: F401
                              text_config)
from .engines.naive import NaiveEngine  # noqa: F401
from .engines.tokens import lm_prefix_ids, rm_ids, rm_ids_batch, rm_text, word_ids, word_ids_batch  # noqa: F401
from .models import LoadedModel, ModelError  # noqa: F401
from .prompts import Prompt

log = logging.getLogger(__name__)


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
    model_key: str = ""  # the scored model's identity (hub id@commit, or local folder + weight hash)
    model_name: str = ""
    check: dict | None = None  # the run's measurement checks (core.checks), when they ran


# -- where a job writes ----------------------------------------------------------------------
class ScoreSink(Protocol):
    """What `run` writes to: the three methods of core.store.Store that scoring needs.
    `Store` (the DuckDB file) is the sink of the CLI, the app and Ray; `MemorySink` keeps
    rows in memory, for a notebook or a machine without duckdb (bench/gpu.py)."""

    def upsert_model(self, model_key: str, name: str, kind: str, family: str | None,
                     display_name: str | None = None, revision: str | None = None,
                     source: str = "scored", n_params: int | None = None) -> None: ...

    def existing(self, model_key: str, kind: str) -> set[tuple[str, str]]: ...

    def add_scores(self, model_key: str, kind: str, rows: pd.DataFrame) -> int: ...


class MemorySink:
    """Scores in memory with the store's rules: keyed by (model key, kind, prompt text,
    answer), the first write wins, so a rerun into the same sink adds only what is missing."""

    def __init__(self):
        self.models: dict[str, dict] = {}
        self._rows: dict[tuple[str, str, str, str], tuple[str, float]] = {}

    def upsert_model(self, model_key, name, kind, family, display_name=None, revision=None, source="scored",
                      n_params=None) -> None:
        self.models[model_key] = dict(name=name, kind=kind, family=family, display_name=display_name,
                                      revision=revision, source=source, n_params=n_params)

    def existing(self, model_key: str, kind: str) -> set[tuple[str, str]]:
        return {(p, r) for k, kd, p, r in self._rows if k == model_key and kd == kind}

    def add_scores(self, model_key: str, kind: str, rows: pd.DataFrame) -> int:
        added = 0
        for pid, prompt, response, value in zip(rows["prompt_id"].astype(str), rows["prompt"].astype(str),
                                                rows["response"].astype(str), rows["value"].astype(float)):
            key = (model_key, kind, prompt, response)
            if key not in self._rows:
                self._rows[key] = (pid, float(value))
                added += 1
        return added

    def scores(self) -> pd.DataFrame:
        """Every row: model_key, kind, prompt_id, prompt, response, value."""
        return pd.DataFrame([(k, kd, pid, p, r, v) for (k, kd, p, r), (pid, v) in self._rows.items()],
                            columns=["model_key", "kind", "prompt_id", "prompt", "response", "value"])

    def __len__(self) -> int:
        return len(self._rows)


# -- the job -------------------------------------------------------------------------------
COMMIT_SHARE = 0.05     # at most this share of a job's time goes to commits ...
COMMIT_GAP_MAX = 5.0    # ... unless commits are so slow that work would wait longer than this (s)


def commit_gap(interval: float, last_commit_s: float) -> float:
    """Seconds to wait before the next commit: `interval`, or longer when a commit is slow,
    so commits take about COMMIT_SHARE of the time (never waiting over COMMIT_GAP_MAX).
    An interval of 0 asks for a commit after every batch, and gets it."""
    if interval <= 0:
        return 0.0
    return max(interval, min(COMMIT_GAP_MAX, last_commit_s * (1 - COMMIT_SHARE) / COMMIT_SHARE))


def scorable(loaded: LoadedModel, words: Sequence[str], tokens=None) -> tuple[list[str], list[str]]:
    """Split words into those a model can score and those it cannot (no tokens at all)."""
    ok, bad = [], []
    if not words:
        return ok, bad
    if tokens is not None:  # a training run's memo: the words were tokenized for an earlier checkpoint
        ids = tokens.word_ids_batch(loaded.tokenizer, list(words))
    else:
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


def run(store: ScoreSink, loaded: LoadedModel, prompts: Sequence[Prompt], words: Sequence[str], *,
        engine: str | Engine = "cached", batch_size: int = 32, on_progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None, commit_interval: float = 0.5,
        tokens=None) -> ScoreResult:
    """Score every missing (prompt, word) pair into `store` (a `ScoreSink`: the DuckDB
    `Store`, or `MemorySink`) and commit as batches finish.

    `tokens` (an engines.tokens.TokenMemo) is shared by the checkpoints of a training run
    (core/sweep.py): their token ids and prefix plans are computed once per run.

    Rows are written in short transactions (batches finishing within `commit_interval`
    seconds share one), so a job stopped at any moment keeps all committed work and a
    rerun computes only what is missing. `engine` is a name from ENGINES or an engine
    already made (e.g. `CachedEngine(loaded, self_check=False)`). A commit opens, writes and closes the file
    (tens of ms), so commits are also spaced to take at most ~5 % of the time
    (`commit_gap`): per batch they cost a fast engine a sixth of its time."""
    from . import limits
    limits.check_request(words, prompts, batch_size)  # before any tokenizing: one line, no heavy work
    words = list(dict.fromkeys(words))
    words, skipped = scorable(loaded, words, tokens)
    if not words:
        raise ScoringError("none of the corpus words can be scored by this model's tokenizer; check the corpus")
    limits.check_context(loaded, prompts, words, tokens)
    store.upsert_model(loaded.key, loaded.name, loaded.kind, loaded.family, loaded.display_name,
                       loaded.revision, "scored", loaded.n_params)
    todo, cached = missing_pairs(store, loaded.key, loaded.kind, prompts, words)
    total = sum(len(v) for v in todo.values())
    if not isinstance(engine, str):
        eng = engine
    else:
        eng = make_engine(engine, loaded) if tokens is None else make_engine(engine, loaded, tokens)
    result = ScoreResult(new=0, cached=cached, skipped=skipped, engine=eng.name, model_key=loaded.key,
                         model_name=loaded.name)
    start = time.monotonic()
    if on_progress:  # a large corpus takes a while to prepare: show the total at once
        on_progress(Progress(0, total, 0, cached, 0.0, "preparing", eng.name, batch_size))
    pending: list[pd.DataFrame] = []
    last_commit = time.monotonic()
    gap = commit_interval
    done = 0

    def flush():
        nonlocal last_commit, gap
        if pending:
            t = time.monotonic()
            result.new += store.add_scores(loaded.key, loaded.kind, pd.concat(pending, ignore_index=True))
            pending.clear()
            gap = commit_gap(commit_interval, time.monotonic() - t)
        last_commit = time.monotonic()

    try:
        for p in prompts:
            if not todo[p.prompt_id]:
                continue
            for batch_words, values in with_oom_backoff(eng, p.text, todo[p.prompt_id], batch_size):
                pending.append(pd.DataFrame({"prompt_id": p.prompt_id, "prompt": p.text,
                                             "response": batch_words, "value": values}))
                done += len(batch_words)
                if time.monotonic() - last_commit >= gap:
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

