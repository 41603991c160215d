"""Single words: every (model, prompt, word) with its rank, a model's most and least
preferred words, one word across models, and the words that split two families most —
the word-level views behind Compare and the Words page."""
from __future__ import annotations

import pandas as pd

from . import analysis


def ranked_words(scores: pd.DataFrame, words: pd.DataFrame) -> pd.DataFrame:
    """Every (model, prompt, word) with its rank (1 = highest score), plus the prompt's framing."""
    if scores is None or scores.empty:
        return pd.DataFrame(columns=["model", "model_key", "family", "prompt_id", "response", "value", "rank",
                                     "framing"])
    r = analysis.word_ranks(scores, words)
    from .prompts import framing_of
    fr = {pid: framing_of(pid) for pid in r["prompt_id"].unique()}
    r["framing"] = r["prompt_id"].map(fr)
    return r


def ranked_from_store(store, words: pd.DataFrame, corpus: str | None = None, models=None,
                      prompt_texts=None, kind: str = "rm") -> pd.DataFrame:
    """ranked_words for the models stored on this corpus (of a published model, only the
    corpus's own run: published.keys_for_corpus), optionally narrowed to `models` (names or
    keys) and `prompt_texts`: the word-level table the stricter analysis works on."""
    from . import published
    vocab = list(dict.fromkeys(words["word"].astype(str)))
    keys = published.keys_for_corpus(store, corpus, vocab, kind, models)
    if not keys:
        return ranked_words(None, words)
    sc = store.scores(kind=kind, models=keys, words=vocab,
                      prompts=list(prompt_texts) if prompt_texts is not None else None)
    return ranked_words(sc, words)


def top_bottom_words(ranked: pd.DataFrame, model: str, prompt_ids=None, n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A model's most and least preferred words: mean rank over the chosen prompts."""
    d = ranked[ranked["model"] == model]
    if prompt_ids is not None:
        d = d[d["prompt_id"].isin(list(prompt_ids))]
    if d.empty:
        empty = pd.DataFrame(columns=["word", "rank", "score", "n_prompts"])
        return empty, empty
    g = d.groupby("response").agg(rank=("rank", "mean"), score=("value", "mean"), n_prompts=("rank", "size"))
    g = g.reset_index().rename(columns={"response": "word"}).sort_values(["rank", "word"])
    return g.head(n).reset_index(drop=True), g.tail(n).iloc[::-1].reset_index(drop=True)


def word_across_models(ranked: pd.DataFrame, word: str, prompt_ids=None) -> pd.DataFrame:
    """One word's mean rank (and spread over prompts) in each model."""
    d = ranked[ranked["response"] == word]
    if prompt_ids is not None:
        d = d[d["prompt_id"].isin(list(prompt_ids))]
    if d.empty:
        return pd.DataFrame(columns=["model", "family", "mean_rank", "sd", "best", "worst", "n_prompts"])
    g = d.groupby(["model", "family"], dropna=False)["rank"].agg(
        mean_rank="mean", sd="std", best="min", worst="max", n_prompts="size")
    return g.reset_index().sort_values("mean_rank").reset_index(drop=True)


def family_gaps(ranked: pd.DataFrame, fam_a: str, fam_b: str, prompt_ids=None, n: int = 15) -> pd.DataFrame:
    """Words whose rank differs most between two families. Per family: the mean over models of
    each model's mean rank (every model weighs the same). gap = rank in A - rank in B, so a
    negative gap means family A prefers the word; the n most extreme each way are kept."""
    d = ranked if prompt_ids is None else ranked[ranked["prompt_id"].isin(list(prompt_ids))]
    fam = d["family"].astype(str).str.lower()
    d = d[fam.isin([fam_a.lower(), fam_b.lower()])].assign(fam=fam)
    if d.empty:
        return pd.DataFrame(columns=["word", f"rank_{fam_a}", f"rank_{fam_b}", "gap"])
    per_model = d.groupby(["fam", "model", "response"])["rank"].mean()
    per_fam = per_model.groupby(["fam", "response"]).mean().unstack("fam")
    if fam_a.lower() not in per_fam or fam_b.lower() not in per_fam:
        return pd.DataFrame(columns=["word", f"rank_{fam_a}", f"rank_{fam_b}", "gap"])
    out = pd.DataFrame({"word": per_fam.index, f"rank_{fam_a}": per_fam[fam_a.lower()].values,
                        f"rank_{fam_b}": per_fam[fam_b.lower()].values})
    # gap > 0: family A gives a larger (worse) rank, i.e. family B prefers the word.
    out["gap"] = out[f"rank_{fam_a}"] - out[f"rank_{fam_b}"]
    out = out.dropna().sort_values("gap")
    return pd.concat([out.head(n), out.tail(n)]).drop_duplicates("word").reset_index(drop=True)
