"""Vocabulary scans of reward models (the predecessor paper's "optimal and pessimal tokens").

The built-in corpus `vocabulary` is model-specific: every single token of the model's own
vocabulary whose decoded text is a word (letters only, optionally one leading space),
each scored as the one-word answer by the usual engines. Its rows are ordinary scores
(keyed by model, kind, prompt text and the decoded text), so a scan streams to the store
and resumes like any job; a meta entry marks the model as scanned for the Words page."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import pandas as pd

from .errors import ValueAuditError

NAME = "vocabulary"
DESCRIPTION = "every word token of the model's own vocabulary (letters, optional leading space)"
_WORD = re.compile(r" ?[^\W\d_]+")


def word_tokens(tokenizer) -> list[str]:
    """Distinct decoded texts of the vocabulary's word tokens, in token-id order; special
    and added tokens are left out."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    ids = sorted(i for i in tokenizer.get_vocab().values() if i not in special and i not in added)
    texts = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False)
    return list(dict.fromkeys(t for t in texts if _WORD.fullmatch(t)))


class VocabScanError(ValueAuditError, ValueError):
    """A vocabulary scan that cannot run as asked; the message says what to do."""


def plan_words(name: str, revision: str | None = None, trust_remote_code: bool = False,
               allow_pickle: bool = False) -> list[str]:
    """The word tokens a scan of this RM would score, from its tokenizer alone (no weights
    load), so the dashboard can say the rows before a job starts. The same refusals as a
    model load come first (remote code, no reward head, pickle-only weights)."""
    from . import models
    from .errors import one_line
    config, revision = models.preflight(name, "rm", revision, trust_remote_code, allow_pickle)
    from transformers import AutoTokenizer
    try:
        tok = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise models.ModelError(f"could not load the tokenizer of {name}: {one_line(e)}") from None
    words = word_tokens(tok)
    if not words:
        raise VocabScanError(f"{name}: no word tokens in its vocabulary; choose another model")
    return words


def stored_rows(store, model_name: str, kind: str, prompt_texts: Sequence[str], words: Sequence[str]) -> int:
    """Rows of this scan already stored under the model's name (the key with most of them:
    a scan resumes on its own key, i.e. the same weights and precision)."""
    if not prompt_texts or not words:
        return 0
    got = store.query("""SELECT s.model_key, count(*) AS n FROM scores s JOIN models m USING (model_key)
                         WHERE m.name = ? AND s.kind = ? AND s.prompt IN (SELECT p FROM pr)
                           AND s.response IN (SELECT w FROM wd) GROUP BY s.model_key""", [model_name, kind],
                      pr=pd.DataFrame({"p": list(prompt_texts)}, dtype=str),
                      wd=pd.DataFrame({"w": list(dict.fromkeys(words))}, dtype=str))
    return int(got["n"].max()) if not got.empty else 0


def check_allowed(corpus: str, backend: str = "local") -> None:
    """A dashboard job asking for a vocabulary scan where the operator did not allow one
    (VALUEAUDIT_VOCAB_SCANS) is refused before it is queued."""
    from . import settings
    if corpus != NAME:
        return
    if not settings.allow_vocab_scans():
        raise settings.SettingsError("vocabulary scans are not enabled on this server; ask the operator to run "
                                     "one, or to allow them")
    if backend != "local":
        raise VocabScanError("a vocabulary scan runs on this server's own device (backend local)")


def prepare(store, loaded) -> list[str]:
    """A scan's words for the loaded model (its own word tokens), saved as corpus
    `vocabulary:<model>` and marked as scanned before the first row, so the Words page
    finds a scan that is still running or was stopped."""
    from . import limits
    words = word_tokens(loaded.tokenizer)
    if not words:
        raise VocabScanError(f"{loaded.name}: no word tokens in its vocabulary; choose another model")
    limits.check_words(words)
    store.upsert_model(loaded.key, loaded.name, loaded.kind, loaded.family, loaded.display_name,
                       loaded.revision, "scored", loaded.n_params)
    mark_scanned(store, loaded, words)
    return words


@dataclass
class Cost:
    words: int
    prompts: int
    rows_to_do: int
    rows_per_s: float | None = None

    @property
    def seconds(self) -> float | None:
        return self.rows_to_do / self.rows_per_s if self.rows_per_s else None

    def line(self) -> str:
        est = ""
        if self.seconds is not None:
            s = self.seconds
            pretty = f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"
            est = f", about {pretty} at {self.rows_per_s:,.0f} rows/s (timed on one batch)"
        return (f"vocabulary scan: {self.words:,} word tokens x {self.prompts} prompts = "
                f"{self.rows_to_do:,} rows to score{est}")


def estimate(store, loaded, prompts: Sequence, words: Sequence[str], engine: str = "cached",
             batch_size: int = 32, sample: int = 64) -> Cost:
    """Rows still to score, and the rate measured on one small batch (not stored)."""
    from . import scoring
    todo, _ = scoring.missing_pairs(store, loaded.key, loaded.kind, prompts, words)
    rows = sum(len(v) for v in todo.values())
    rate = None
    if rows:
        eng = scoring.make_engine(engine, loaded)
        for _ in eng.score(prompts[0].text, list(words[:4]), batch_size):  # warm-up (prefix, self-check)
            pass
        few = list(words[4:4 + sample]) or list(words[:sample])
        t0 = time.monotonic()
        n = sum(len(b) for b, _ in eng.score(prompts[0].text, few, batch_size))
        rate = n / max(time.monotonic() - t0, 1e-9)
    return Cost(len(words), len(prompts), rows, rate)


def corpus_name(model_name: str) -> str:
    return f"{NAME}:{model_name}"


def mark_scanned(store, loaded, words: Sequence[str]) -> None:
    """Save the scanned words as the corpus `vocabulary:<model>` (so every page can rank
    them) and remember which model key was scanned."""
    store.save_corpus(corpus_name(loaded.name), pd.DataFrame({"word": list(words), "category": "Token",
                                                              "subcategory": ""}), DESCRIPTION)
    with store.transaction() as con:
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [f"vocabscan:{loaded.key}", str(len(words))]).fetchall()


def scanned_models(store) -> pd.DataFrame:
    """Models with a vocabulary scan: name, key, kind, family, words scanned."""
    return store.query("""SELECT m.name AS model, m.model_key, m.kind, m.family, CAST(t.value AS BIGINT) AS n_words
                          FROM meta t JOIN models m ON t.key = 'vocabscan:' || m.model_key
                          ORDER BY m.family, m.name""")


def scanned_prompts(store, model_key: str) -> pd.DataFrame:
    return store.query("""SELECT prompt_id, prompt, count(*) AS n FROM scores WHERE model_key = ?
                          GROUP BY prompt_id, prompt ORDER BY prompt_id""", [model_key])


def top_bottom(store, model_key: str, prompt_text: str, n: int = 20,
               hide: Iterable[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The n highest- and n lowest-scoring vocabulary tokens of a scan for one prompt
    (shown with quotes so a leading space is visible); tokens whose text (trimmed, lower
    case) is in `hide` are left out, e.g. the offensive list on request."""
    q = """SELECT s.response AS token, s.value AS score FROM scores s JOIN models m USING (model_key)
           WHERE s.model_key = ? AND s.prompt = ?
             AND s.response IN (SELECT word FROM corpora WHERE name = 'vocabulary:' || m.name)
             AND lower(trim(s.response)) NOT IN (SELECT w FROM hidden)
           ORDER BY s.value {}, s.response LIMIT ?"""
    hidden = pd.DataFrame({"w": sorted({str(w).strip().lower() for w in hide})}, dtype=str)
    top = store.query(q.format("DESC"), [model_key, prompt_text, n], hidden=hidden)
    bottom = store.query(q.format("ASC"), [model_key, prompt_text, n], hidden=hidden)
    return top, bottom


def scanned_words(store, model_name: str) -> list[str]:
    """The word tokens a model's scan ranks (its `vocabulary:<model>` corpus)."""
    return store.query("SELECT word FROM corpora WHERE name = ?", [corpus_name(model_name)])["word"].tolist()
