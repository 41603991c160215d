"""Issue 21: which models an analysis uses, counted against the corpus and the compared
prompts (core/coverage.py), the same in `analyze` and on the pages.

The road a researcher takes: the paper's published results imported, two tiny local RMs
scored on Big Two x the 54 prompts and a third on 6 prompts (conftest's own_models_db).
Published MFD files (written in the paper's format, as tests/test_fidelity.py does) add
the 45 words the two corpora share to a published model's other run: those must not count."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from core import corpora, coverage, prompts
from core.store import Store
from tests.support import run_cli

PUBLISHED = 10


def _analyze(capsys, db, *extra):
    rc, out, err = run_cli(capsys, "analyze", "--corpus", "big2-nouns", "--db", db, "--json", "--permutations", "50",
                           *extra)
    assert rc == 0, err
    return json.loads(out)


def test_analyze_uses_the_complete_models_and_names_the_one_left_out(own_models_db, capsys):
    db, names = own_models_db
    res = _analyze(capsys, db)
    used = res["models_used"]
    assert len(used) == PUBLISHED + 2 and names["llama"] in used and names["gemma"] in used
    assert res["models_left_out"] == [{"model": names["six"],
                                       "reason": "incomplete coverage: 6 of 54 prompts, 263 of 263 words"}]
    # the numbers rest on exactly those models
    assert sorted({r["model"] for r in res["median_ranks"]}) == sorted(used)
    # the text output says the same
    rc, out, _ = run_cli(capsys, "analyze", "--corpus", "big2-nouns", "--db", db, "--permutations", "50")
    assert rc == 0 and "Models used (12):" in out and f"Left out (1): {names['six']} (incomplete coverage" in out
    # one flag lets it in
    res = _analyze(capsys, db, "--include-incomplete")
    assert names["six"] in res["models_used"] and res["models_left_out"] == []
    assert len({r["prompt_id"] for r in res["median_ranks"] if r["model"] == names["six"]}) == 6


def test_words_are_counted_against_the_corpus_not_every_stored_word(own_models_db, tmp_path, monkeypatch):
    """Published MFD runs hold the 45 MFD words that are Big Two nouns too: a tiny model with all
    263 Big Two nouns is still complete (it was '263 of 308 words'), and on mfd2 the
    reference is the dictionary's 2,040 words (it was 'of 2085')."""
    from tests.test_fidelity import write_mfd_files
    from core import paperdata, published
    db, names = own_models_db
    copy = tmp_path / "with-mfd.duckdb"
    shutil.copy(db, copy)
    mfd = tmp_path / "paper" / "reward_model_scores" / "dict_MFD_20"
    write_mfd_files(mfd)
    monkeypatch.setattr(paperdata, "listdir", lambda folder: sorted(p.name for p in mfd.glob("*.csv"))
                        if folder.endswith("dict_MFD_20") else [])
    original = paperdata.path
    monkeypatch.setattr(paperdata, "path", lambda rel: mfd / rel.rsplit("/", 1)[-1] if "dict_MFD_20/" in rel
                        else original(rel))
    assert published.import_published(Store(copy))["models"] == 4
    big2 = corpora.load("big2-nouns")
    sel = coverage.select(Store(copy), "big2-nouns", big2.words)
    assert len(sel.used) == PUBLISHED + 2 and [r["model"] for r in sel.left_out] == [names["six"]]
    assert set(sel.table["ref_words"]) == {263} and sel.table.loc[sel.table["used"], "n_words"].eq(263).all()
    mfd2 = corpora.load("mfd2")
    n = mfd2.words["word"].nunique()
    sel = coverage.select(Store(copy), "mfd2", mfd2.words)
    assert n == 2040 and set(sel.table["ref_words"]) == {n}
    assert len(sel.used) == 4  # the four published MFD runs
    reasons = {r["model"]: r["reason"] for r in sel.left_out}
    assert reasons[names["llama"]] == "incomplete coverage: 54 of 54 prompts, 45 of 2040 words"
    # a published model whose MFD files are not there: its Big Two run is not read, and it says so
    assert reasons["LxzGordon/URM-LLaMa-3.1-8B"].startswith("no published MFD 2.0 run imported")


def test_prompts_are_counted_against_the_compared_set(own_models_db):
    db, names = own_models_db
    words = corpora.load("big2-nouns").words
    six = [p.text for p in prompts.paper_prompts()[:3] + prompts.paper_prompts()[27:30]]
    sel = coverage.select(Store(db), "big2-nouns", words, prompt_texts=six)
    assert len(sel.used) == PUBLISHED + 3 and sel.left_out == [] and sel.prompt_texts == six
    only = coverage.select(Store(db), "big2-nouns", words, models=[names["six"], "no/such-model"])
    assert only.used == [names["six"]] and len(only.prompt_texts) == 6  # alone, its own prompts are compared
    assert only.left_out == [{"model": "no/such-model", "reason": "no scores on big2-nouns"}]


def test_a_model_with_extra_prompts_is_complete_and_read_on_the_compared_ones(own_models_db, tmp_path):
    db, names = own_models_db
    copy = tmp_path / "extra.duckdb"
    shutil.copy(db, copy)
    s = Store(copy)
    key = s.query("SELECT model_key FROM models WHERE name = ?", [names["llama"]])["model_key"].iloc[0]
    s.add_scores(key, "rm", pd.DataFrame({"prompt_id": "mine", "prompt": "What, in one word, is mine?",
                                          "response": corpora.load("big2-nouns").vocabulary, "value": 1.0}))
    sel = coverage.select(s, "big2-nouns", corpora.load("big2-nouns").words)
    assert names["llama"] in sel.used and len(sel.prompt_texts) == 54 and "mine" not in sel.prompt_ids
