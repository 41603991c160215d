"""core.words against explicit loops: a model's most and least preferred words, one word
across models, and the words that split two families (every model weighs the same)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from core import words


def ranked() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    models = {"g1": "gemma", "g2": "gemma", "l1": "llama", "l2": "llama", "l3": "llama"}
    vocab = [f"w{i}" for i in range(12)]
    for (m, fam), p in itertools.product(models.items(), ["best_ever_one", "worst_ever_one", "good_world_one"]):
        perm = rng.permutation(len(vocab)) + 1
        for w, r in zip(vocab, perm):
            if m == "l3" and p == "worst_ever_one" and w < "w6":  # unbalanced: pooling would differ
                continue
            rows.append({"model": m, "family": fam, "prompt_id": p, "response": w, "rank": float(r),
                         "value": -float(r)})
    return pd.DataFrame(rows)


def test_top_and_bottom_words_are_mean_ranks_over_the_chosen_prompts():
    r = ranked()
    top, bottom = words.top_bottom_words(r, "g1", ["best_ever_one", "good_world_one"], n=3)
    means = {}
    for _, x in r[(r["model"] == "g1") & r["prompt_id"].isin(["best_ever_one", "good_world_one"])].iterrows():
        means.setdefault(x["response"], []).append(x["rank"])
    order = sorted(means, key=lambda w: (np.mean(means[w]), w))
    assert list(top["word"]) == order[:3] and list(bottom["word"]) == order[::-1][:3]
    assert top["rank"].tolist() == [np.mean(means[w]) for w in order[:3]]


def test_one_word_across_models():
    r = ranked()
    out = words.word_across_models(r, "w3").set_index("model")
    for m, g in r[r["response"] == "w3"].groupby("model"):
        assert out.loc[m, "mean_rank"] == pytest.approx(g["rank"].mean())
        assert (out.loc[m, "best"], out.loc[m, "worst"], out.loc[m, "n_prompts"]) == \
            (g["rank"].min(), g["rank"].max(), len(g))
    assert list(out["mean_rank"]) == sorted(out["mean_rank"])


def test_family_gaps_weigh_every_model_equally():
    r = ranked()
    gaps = words.family_gaps(r, "Llama", "Gemma", n=20).set_index("word")
    for w in gaps.index:
        fam_rank = {}
        for fam in ("llama", "gemma"):
            per_model = [g["rank"].mean() for _, g in r[(r["family"] == fam) & (r["response"] == w)].groupby("model")]
            fam_rank[fam] = sum(per_model) / len(per_model)
        assert gaps.loc[w, "gap"] == pytest.approx(fam_rank["llama"] - fam_rank["gemma"])
    assert list(gaps["gap"]) == sorted(gaps["gap"])  # most Llama-preferred first
