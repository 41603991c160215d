"""Limits on a scoring request, checked before any heavy work (model load, scoring).

Why: one 1 MB "word" makes a sequence of hundreds of thousands of tokens; the model
either scores it past its context (a silent wrong value) or tries to allocate a huge
attention matrix and blocks the job queue for everyone. Each check raises one line that
says what to do. The engines never see a request that fails here."""
from __future__ import annotations

from typing import Sequence

from . import settings
from .errors import ValueAuditError

MAX_BATCH_SIZE = 4096
MAX_CHECKPOINTS = 100   # checkpoints in one sweep job of the dashboard (each one is a model load)


class LimitError(ValueAuditError, ValueError):
    """A request over a limit; the message names the offending item and the limit."""


def _show(text: str, n: int = 30) -> str:
    return repr(text[:n] + "…") if len(text) > n else repr(text)


def _check_lengths(texts: Sequence[str], setting: str, what: str, fix: str) -> None:
    limit = settings.get_int(setting)
    for t in texts:
        if len(t) > limit:
            raise LimitError(f"{what} {_show(t)} is {len(t):,} characters long; {what}s are at most {limit} "
                             f"({setting}): {fix}")


def check_words(words: Sequence[str]) -> None:
    """Every answer word at most VALUEAUDIT_MAX_WORD_CHARS characters."""
    _check_lengths(words, "VALUEAUDIT_MAX_WORD_CHARS", "word", "remove it from the corpus")


def check_prompts(texts: Sequence[str]) -> None:
    """Every prompt at most VALUEAUDIT_MAX_PROMPT_CHARS characters."""
    _check_lengths(texts, "VALUEAUDIT_MAX_PROMPT_CHARS", "prompt", "shorten it")


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise LimitError(f"batch size must be a whole number from 1 to {MAX_BATCH_SIZE}, not {batch_size!r}")
    return batch_size


def check_checkpoints(n: int) -> None:
    """A dashboard sweep loads one model per checkpoint: at most MAX_CHECKPOINTS per job."""
    if n < 1:
        raise LimitError("the sweep has no checkpoints to score")
    if n > MAX_CHECKPOINTS:
        raise LimitError(f"a sweep of {n} checkpoints is over the limit of {MAX_CHECKPOINTS} per job: "
                         "choose every K-th checkpoint or fewer steps")


# -- the amount of work a dashboard visitor may ask for (settings.limit: shared-mode defaults) --
def job_rows(n_models: int, n_prompts: int, n_words: int) -> int:
    """What a job costs, in rows to score: one per model, prompt and word."""
    return n_models * n_prompts * n_words


def check_job_rows(n_models: int, n_prompts: int, n_words: int) -> None:
    """A dashboard job within VALUEAUDIT_MAX_JOB_ROWS, refused with its cost before it is
    queued: a 470,000-word corpus x 54 prompts x 2 models is 50 million rows (hours, GBs)."""
    cap = settings.limit("VALUEAUDIT_MAX_JOB_ROWS")
    rows = job_rows(n_models, n_prompts, n_words)
    if cap is not None and rows > cap:
        raise LimitError(f"this job asks for {rows:,} rows ({n_models} model(s) x {n_prompts} prompts x "
                         f"{n_words:,} words); this server scores at most {cap:,} per job "
                         "(VALUEAUDIT_MAX_JOB_ROWS): choose fewer models, prompts or words")


def check_categories(n_categories: int, corpus: str) -> None:
    """At most VALUEAUDIT_MAX_CATEGORIES categories: every category is a panel of Figure 1
    with its own tests (263 one-word categories took 215 s, then failed to draw)."""
    cap = settings.limit("VALUEAUDIT_MAX_CATEGORIES")
    if cap is not None and n_categories > cap:
        raise LimitError(f"corpus {corpus!r} has {n_categories:,} categories; the family statistics take at most "
                         f"{cap} (VALUEAUDIT_MAX_CATEGORIES): merge categories or choose another corpus")


def check_saved_space(n_saved: int, n_new: int) -> None:
    """All corpora saved from the dashboard within VALUEAUDIT_MAX_SAVED_WORDS words (rows):
    saved corpora are kept for every visitor, and a shared server never deletes them."""
    cap = settings.limit("VALUEAUDIT_MAX_SAVED_WORDS")
    if cap is not None and n_saved + n_new > cap:
        raise LimitError(f"saving {n_new:,} words would pass this server's space for saved corpora "
                         f"({n_saved:,} of {cap:,} words used, VALUEAUDIT_MAX_SAVED_WORDS): save a smaller corpus "
                         "or ask the operator")


def check_request(words: Sequence[str], prompts: Sequence, batch_size: int = 32) -> None:
    """All checks that need no model: run before a model loads (CLI, app job submission)."""
    check_batch_size(batch_size)
    check_words(words)
    check_prompts([getattr(p, "text", p) for p in prompts])


def model_context(loaded) -> int | None:
    """The longest sequence the model was built for (max_position_embeddings), if it says."""
    cfg = loaded.model.config
    cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    n = getattr(cfg, "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else None


def check_context(loaded, prompts: Sequence, words: Sequence[str], tokens=None) -> None:
    """The longest (prompt, word) sequence fits the model's context. Only the word with the
    most tokens needs a full sequence per prompt: the template adds the same tokens to all.
    `tokens`: a training run's TokenMemo (the ids computed once for all its checkpoints)."""
    context = model_context(loaded)
    if context is None or not words:
        return
    from .engines.tokens import Tokenize
    tokens = tokens or Tokenize()
    tok = loaded.tokenizer
    lengths = [len(ids) for ids in tokens.word_ids_batch(tok, list(words))]
    longest = words[max(range(len(words)), key=lengths.__getitem__)]
    for p in prompts:
        if loaded.kind == "rm":
            n = len(tokens.rm_ids_batch(tok, p.text, [longest])[0])
        else:
            n = len(tokens.lm_prefix_ids(tok, p.text)) + max(lengths)
        if n > context:
            raise LimitError(f"word {_show(longest)} with prompt {p.prompt_id!r} makes {n:,} tokens, past this "
                             f"model's context of {context:,}: remove the word or shorten the prompt")
