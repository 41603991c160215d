"""Figure 1's entry points: scores (pandas) or a store (DuckDB) in, one typed `Figure1` out."""
from __future__ import annotations

import dataclasses

import pandas as pd

from .. import corpora, coverage, ranks
from .comparisons import family_tests
from .levels import framing_levels, json_float, sorted_levels
from .medians import (average_from_long, average_ranks, family_means, label_medians, median_ranks, n_ranked,
                      row_ranks, word_ranks)
from .mixed import mixed_model
from .result import Figure1, as_json


def figure1(scores: pd.DataFrame, words: pd.DataFrame, corpus: str = "corpus",
            permutations: int = 10000, seed: int = 0, bootstrap: int = 2000, ranking: str = "word") -> Figure1:
    """Everything Figure 1 shows (see METHOD.md section 3); `.to_json()` for the JSON form.
    `ranking` "row" ranks each corpus row as the paper's script does for MFD 2.0."""
    if ranking == "row":
        long = row_ranks(scores, words)
        med = label_medians(long.groupby(["model", "model_key", "family", "prompt_id", "prompt", "category"],
                                          dropna=False)["rank"].median().rename("median_rank").reset_index())
        n_words = int(long["response"].nunique())
    else:
        med = median_ranks(scores, words)
        long = word_ranks(scores, words).merge(words[["word", "category"]].astype(str).drop_duplicates(),
                                               left_on="response", right_on="word")
        n_words = n_ranked(scores, words)
    return _figure1(med, corpus, n_words, permutations, seed, bootstrap, average_from_long(long))



def figure1_from_store(store, words: pd.DataFrame, corpus: str = "corpus", models=None, prompt_texts=None,
                       permutations: int = 10000, seed: int = 0, bootstrap: int = 2000,
                       ranking: str | None = None, include_incomplete: bool = False,
                       selection: coverage.Selection | None = None) -> Figure1:
    """figure1 with ranks and medians computed inside DuckDB: the fast path for the CLI and
    the app (a million stored scores never travel to pandas). Which models and prompts it
    reads is the one rule of core/coverage.py (`coverage.select`, or the `selection` given):
    complete models only unless `include_incomplete`, each published model's run of this
    corpus, the compared prompts; the result names the models used and those left out.
    `ranking` defaults to the built-in corpus's own ("row" for mfd2-paper)."""
    if ranking is None:
        ranking = "row" if corpus in corpora.BUILTINS and corpora.load(corpus).ranking == "row" else "word"
    sel = selection or coverage.select(store, corpus, words, prompt_texts, models, include_incomplete)
    t = sel.table
    chosen = {"models_used": sel.used, "models_left_out": sel.left_out,
              "models_published": t.loc[t["used"] & (t["source"] == "published"), "model"].tolist()}
    if not sel.used_keys or not sel.prompt_texts:
        return Figure1(corpus=corpus, n_words=0, median_ranks=[], family_means=[],
                       reason="no model is scored completely on this corpus" if not sel.used_keys
                       else "no prompt to compare", **chosen)
    got = ranks.rank_summaries(store, words, ranking, "rm", sel.used_keys, sel.prompt_texts)
    result = _figure1(label_medians(got["medians"]), corpus, got["n_words"], permutations, seed, bootstrap,
                      got["average"])
    return dataclasses.replace(result, **chosen)



def _figure1(med: pd.DataFrame, corpus: str, n_words: int, permutations: int, seed: int,
             bootstrap: int, per_model_average: pd.DataFrame | None = None) -> Figure1:
    fm = family_means(med)
    fams = sorted_levels(med["family"].dropna())
    unknown = sorted(med.loc[med["family"].isna(), "model"].unique())
    reason = None
    if len(fams) < 2:
        reason = "needs RMs from at least two families; " + (f"found only {fams[0]}" if fams else "found none")
    return Figure1(
        corpus=corpus, n_words=n_words,
        median_ranks=[{k: (json_float(v) if k == "median_rank" else v) for k, v in r.items()}
                      for r in med.drop(columns="_key").to_dict("records")],
        family_means=[{**r, "mean_rank": json_float(r["mean_rank"])} for r in fm.to_dict("records")],
        average_ranks=average_ranks(per_model_average, med) if per_model_average is not None else None,
        mixed_model=None if reason else mixed_model(med),
        family_tests=None if reason else family_tests(med, permutations, seed, bootstrap),
        reason=reason,
        notes=[f"left out of the tests (family unknown): {', '.join(unknown)}"] if unknown else [])


def average_ranks_table(result) -> pd.DataFrame:
    """The "average ranks" table as the paper prints it: one column per family and, with two
    families, their difference (second minus first, e.g. Llama − Gemma)."""
    d = pd.DataFrame(as_json(result).get("average_ranks") or [])
    if d.empty:
        return d
    wide = d.pivot_table(index=["framing", "category"], columns="family", values="mean_rank").reset_index()
    wide.columns.name = None
    fams = sorted_levels(d["family"])
    if len(fams) == 2:
        wide[f"{fams[1]} − {fams[0]}"] = wide[fams[1]] - wide[fams[0]]
    order = {f: i for i, f in enumerate(framing_levels(wide["framing"]))}
    return wide.sort_values(["framing", "category"], key=lambda c: c.map(order) if c.name == "framing" else c
                            ).reset_index(drop=True)

