"""Issue 21: `audit-model`, where one reward model sits among the paper's families.

The check: the panels of `audit-model --json` equal the model's own median ranks computed
here from `export` (scipy ranks, not core's), each inside its bootstrap interval, with a
closest family; the tiny random-weight models are called out as ignoring the question, and
a model scored on 6 prompts says so."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from core import corpora, prompts
from tests.support import one_line_error, run_cli


def _figure1_values(csv_path, corpus: str = "big2-nouns") -> dict:
    """(framing, category) -> mean over the framing's prompts of the median rank of the
    category's words, ranked among the corpus words within each prompt (1 = highest score)."""
    df = pd.read_csv(csv_path, keep_default_na=False)
    words = corpora.load(corpus).words
    cats = words.groupby("word")["category"].apply(set).to_dict()
    out: dict = {}
    for pid, g in df.groupby("prompt_id"):
        g = g[g["response"].isin(cats)]
        r = rankdata(-g["value"].to_numpy(float), method="average")
        for cat in sorted({c for s in cats.values() for c in s}):
            mask = np.array([cat in cats[w] for w in g["response"]])
            out.setdefault((prompts.framing_of(pid), cat), []).append(float(np.median(r[mask])))
    return {k: float(np.mean(v)) for k, v in out.items()}


@pytest.mark.parametrize("which", ["llama", "six"])
def test_panels_equal_the_models_own_median_ranks_from_export(own_models_db, which, tmp_path, capsys):
    db, names = own_models_db
    model = names[which]
    rc, _, err = run_cli(capsys, "export", "--db", db, "--model", model, "--corpus", "big2-nouns",
                         "--out", tmp_path / "mine.csv")
    assert rc == 0, err
    want = _figure1_values(tmp_path / "mine.csv")
    rc, out, err = run_cli(capsys, "audit-model", "--db", db, "--model", model, "--corpus", "big2-nouns", "--json",
                           "--reps", "400")
    assert rc == 0, err
    res = json.loads(out)
    assert {(p["framing"], p["category"]) for p in res["panels"]} == set(want) and len(want) == 4
    for p in res["panels"]:
        assert p["value"] == pytest.approx(want[(p["framing"], p["category"])], abs=1e-9)
        assert p["ci_low"] <= p["value"] <= p["ci_high"] and p["ci_low"] < p["ci_high"]
        assert set(p["family_means"]) == {"Gemma", "Llama"}  # the paper's ten models beside it
        assert p["reference_min"] <= min(p["family_means"].values()) <= p["reference_max"]
        assert len(p["reference_values"]) == 10
    assert res["closest_family"] in ("Gemma", "Llama") and set(res["distances"]) == {"Gemma", "Llama"}
    assert res["reference"]["kind"] == "the paper's published models"
    assert res["model"] == model and res["n_prompts"] == (54 if which == "llama" else 6)
    # random weights: the same ranking for 'best' and 'worst' questions, and the audit says so
    assert res["consistency"]["model"]["best_vs_worst"] > 0.8 > res["consistency"]["reference_best_vs_worst"]["max"]
    assert res["clarity"] == "not meaningful" and "ignores the question" in res["sentence"]
    if which == "six":
        assert any("few prompts (3 negative, 3 positive" in c for c in res["caveats"])
        assert any("not completely scored (6 of 54 prompts" in c for c in res["caveats"])


def test_a_published_model_is_placed_among_the_others_and_the_text_reads_plainly(own_models_db, capsys):
    """One of the paper's models audited against the other nine (it is left out of its own
    reference): its values are consistent (no caveat about the question), and the text
    output is the sentence then a table."""
    db, _ = own_models_db
    rc, out, err = run_cli(capsys, "audit-model", "--db", db, "--model", "Skywork/Skywork-Reward-Gemma-2-27B",
                           "--corpus", "big2-nouns", "--json", "--reps", "300")
    res = json.loads(out)
    assert rc == 0 and len(res["reference"]["models"]) == 9
    assert "Skywork/Skywork-Reward-Gemma-2-27B" not in res["reference"]["models"]
    assert res["clarity"] in ("clearly", "somewhat", "not clearly", "unlike any") and not res["caveats"]
    assert res["consistency"]["model"]["within"] > 0.8
    rc, out, _ = run_cli(capsys, "audit-model", "--db", db, "--model", "Skywork/Skywork-Reward-Gemma-2-27B",
                         "--corpus", "big2-nouns", "--reps", "300")
    assert rc == 0 and out.startswith("On big2-nouns (263 words), Skywork/Skywork-Reward-Gemma-2-27B ranks")
    # how few models the placement rests on: the other 3 Gemma and the 6 Llama RMs
    assert "the placement rests on 3 Gemma and 6 Llama models for reference)" in res["sentence"]
    assert res["sentence"] in out
    assert "95% interval" in out and "Gemma mean" in out and "reference range" in out


def test_a_model_not_scored_on_the_corpus_is_one_line(own_models_db, capsys):
    db, _ = own_models_db
    rc, _, err = run_cli(capsys, "audit-model", "--db", db, "--model", "no/such-rm", "--corpus", "big2-nouns")
    one_line_error(rc, err, "no scores of no/such-rm on big2-nouns")
