"""Figure 1's ranks inside DuckDB, as the paper's R script computes them (METHOD.md §3).

One query ranks the corpus within each (model, prompt) — 1 = highest score, ties averaged
as R's `rank(-score)` — and returns the three things Figure 1 needs from those ranks:
the median rank per (model, prompt, category), the paper's "average ranks" (the median
of a model's ranks over all words and prompts of one framing, per category), and the
number of distinct words ranked.

Two ways of ranking a corpus (`ranking`):
- "word": each word once per (model, prompt), counted in every category it belongs to;
- "row": each corpus row (word, category, subcategory) is ranked, so a word in two rows is
  ranked twice — what the paper's script does for MFD 2.0 (it pivots the dictionary's
  foundation columns to rows before ranking)."""
from __future__ import annotations

import pandas as pd

from . import prompts as _prompts


def corpus_items(words: pd.DataFrame, ranking: str = "word") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items to rank: item, word) and (item -> category) for a corpus table."""
    w = words.astype(str)
    if ranking == "row":
        cols = ["word", "category"] + (["subcategory"] if "subcategory" in w.columns else [])
        rows = w[cols].drop_duplicates().reset_index(drop=True)
        items = pd.DataFrame({"item": range(len(rows)), "word": rows["word"]})
        cats = pd.DataFrame({"item": range(len(rows)), "category": rows["category"]})
        return items, cats
    if ranking != "word":
        raise ValueError(f"ranking must be 'word' or 'row', not {ranking!r}")
    vocab = list(dict.fromkeys(w["word"]))
    items = pd.DataFrame({"item": range(len(vocab)), "word": vocab})
    pairs = w[["word", "category"]].drop_duplicates().merge(items, on="word")
    return items, pairs[["item", "category"]]


def rank_summaries(store, words: pd.DataFrame, ranking: str = "word", kind: str = "rm",
                   model_keys=None, prompt_texts=None) -> dict:
    """{'medians': per (model, prompt, category), 'average': per (model, framing, category),
    'n_words': distinct words ranked}. `model_keys` are exact keys (None = every model)."""
    items, cats = corpus_items(words, ranking)
    where, params = ["s.kind = ?", "isfinite(s.value)"], [kind]
    frames = {"rank_items": items, "item_cats": cats, "prompt_framing": _framings(store, kind)}
    if model_keys is not None:
        frames["want_keys"] = pd.DataFrame({"k": list(model_keys)}, dtype=str)
        where.append("s.model_key IN (SELECT k FROM want_keys)")
    if prompt_texts is not None:
        frames["want_prompts"] = pd.DataFrame({"p": list(prompt_texts)}, dtype=str)
        where.append("s.prompt IN (SELECT p FROM want_prompts)")
    # One window sorted once gives both the first and the last rank of a tie group (rank()
    # and the count of rows scoring at least as high); their mean is R's average rank.
    sql = f"""
        WITH ranked AS MATERIALIZED (
            SELECT g, model_key, prompt, prompt_id, item, word,
                   (rank() OVER w + count(*) OVER (w RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) / 2.0 AS rank
            FROM (SELECT hash(s.model_key, s.prompt) AS g, s.model_key, s.prompt, s.prompt_id, i.item, i.word, s.value
                  FROM scores s JOIN rank_items i ON s.response = i.word
                  WHERE {' AND '.join(where)})
            WINDOW w AS (PARTITION BY g ORDER BY value DESC)),
        with_cat AS (SELECT r.*, c.category FROM ranked r JOIN item_cats c USING (item))
        SELECT 'prompt' AS part, any_value(model_key) AS model_key, any_value(prompt_id) AS prompt_id,
               any_value(prompt) AS prompt, NULL AS framing, category, median(rank) AS median_rank, count(*) AS n
        FROM with_cat GROUP BY g, category
        UNION ALL
        SELECT 'framing', model_key, NULL, NULL, f.framing, category, median(rank), count(*)
        FROM with_cat JOIN prompt_framing f USING (prompt) GROUP BY model_key, f.framing, category
        UNION ALL
        SELECT 'n_words', NULL, NULL, NULL, NULL, NULL, NULL, count(DISTINCT word) FROM ranked"""
    out = store.query(sql, params, **frames)
    models = store.query("SELECT model_key, name AS model, family FROM models")
    med = out[out["part"] == "prompt"].merge(models, on="model_key")
    avg = out[out["part"] == "framing"].merge(models, on="model_key")
    n = out.loc[out["part"] == "n_words", "n"]
    return {
        "medians": med[["model", "model_key", "family", "prompt_id", "prompt", "category", "median_rank", "n"]]
        .rename(columns={"n": "n_words"}).sort_values(["model", "category", "prompt_id"]).reset_index(drop=True),
        "average": avg[["model", "model_key", "family", "framing", "category", "median_rank"]]
        .sort_values(["model", "framing", "category"]).reset_index(drop=True),
        "n_words": int(n.iloc[0]) if len(n) else 0,
    }


def word_means(store, words: pd.DataFrame, model_keys, prompt_ids=None, kind: str = "rm") -> pd.DataFrame:
    """Each corpus word's mean rank (1 = highest reward, ranked within each (model, prompt)
    among the corpus words, ties averaged) and mean score over the chosen prompts, best
    first — a model's most and least preferred words, computed in DuckDB so a 2,040-word
    corpus does not travel to pandas row by row."""
    frames = {"rank_vocab": pd.DataFrame({"word": list(dict.fromkeys(words["word"].astype(str)))}),
              "want_keys": pd.DataFrame({"k": list(model_keys)}, dtype=str)}
    where = ["s.kind = ?", "isfinite(s.value)", "s.model_key IN (SELECT k FROM want_keys)",
             "s.response IN (SELECT word FROM rank_vocab)"]
    if prompt_ids is not None:
        frames["want_ids"] = pd.DataFrame({"p": list(prompt_ids)}, dtype=str)
        where.append("s.prompt_id IN (SELECT p FROM want_ids)")
    sql = f"""
        WITH ranked AS (
            SELECT s.response AS word, s.prompt, s.value,
                   (rank() OVER w + count(*) OVER (w RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) / 2.0 AS rank
            FROM scores s WHERE {' AND '.join(where)}
            WINDOW w AS (PARTITION BY s.model_key, s.prompt ORDER BY s.value DESC))
        SELECT word, avg(rank) AS rank, avg(value) AS score, count(DISTINCT prompt) AS n_prompts
        FROM ranked GROUP BY word ORDER BY rank, word"""
    return store.query(sql, [kind], **frames)


def _framings(store, kind: str) -> pd.DataFrame:
    """Framing of every stored prompt (from its paper id, else its words)."""
    p = store.query("SELECT DISTINCT prompt, prompt_id FROM scores WHERE kind = ?", [kind])
    fr = [_prompts.framing_of(str(i), str(t)) for i, t in zip(p["prompt_id"], p["prompt"])]
    return pd.DataFrame({"prompt": p["prompt"].astype(str), "framing": fr}).drop_duplicates("prompt")
