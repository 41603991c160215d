"""core.implicit's MWLR by hand: the formula, the highest-duplicate rule and the
per-prompt average of the scored-words view."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from core import implicit


def test_mwlr_hand_computation():
    lp1 = pd.Series({"love": math.log(0.5), "freedom": math.log(0.1), "only1": math.log(0.3)})
    lp2 = pd.Series({"love": math.log(0.25), "freedom": math.log(0.2), "only2": math.log(0.3)})
    out = implicit.mwlr_vocab(lp1, lp2).set_index("token_decoded")["mwlr"]
    assert set(out.index) == {"love", "freedom"}
    assert out["love"] == pytest.approx(0.5 * 0.75 * math.log(2))      # 0.259930...
    assert out["freedom"] == pytest.approx(0.5 * 0.3 * -math.log(2))  # -0.103972...
    assert out["love"] == pytest.approx(0.2599301927)
    back = implicit.mwlr_vocab(lp2, lp1).set_index("token_decoded")["mwlr"]
    assert (back == -out.loc[back.index]).all()


def test_mwlr_table_keeps_highest_duplicate_and_averages_prompts():
    rows = [  # model, prompt, response, logp
        ("A", "p1", "love", math.log(0.5)), ("A", "p1", "love", math.log(0.1)),  # duplicate decoding
        ("B", "p1", "love", math.log(0.25)),
        ("A", "p2", "love", math.log(0.2)), ("B", "p2", "love", math.log(0.2)),
        ("A", "p1", "war", math.log(0.01)), ("B", "p1", "war", math.log(0.04)),
        ("A", "p1", "solo", math.log(0.3)),
    ]
    lm = pd.DataFrame(rows, columns=["model", "prompt", "response", "value"]).assign(prompt_id=lambda d: d["prompt"])
    table = implicit.mwlr_table(lm, "A", "B").set_index("word")
    assert set(table.index) == {"love", "war"}
    assert table.loc["love", "mwlr"] == pytest.approx((0.5 * 0.75 * math.log(2) + 0.0) / 2)
    assert table.loc["love", "n_prompts"] == 2
    assert table.loc["war", "mwlr"] == pytest.approx(0.5 * 0.05 * math.log(0.25))
    assert table.loc["love", "prefers"] == "A" and table.loc["war", "prefers"] == "B"
    one = implicit.mwlr_table(lm, "A", "B", prompt="p2").set_index("word")
    assert one.loc["love", "mwlr"] == 0.0
    by_cat = implicit.mwlr_by_category(table.reset_index(), pd.DataFrame(
        {"word": ["love", "war"], "category": ["Communion", "Agency"]})).set_index("category")
    assert by_cat.loc["Communion", "mean_mwlr"] > 0 > by_cat.loc["Agency", "mean_mwlr"]
    tb = implicit.top_bottom(table.reset_index(), n=1)
    assert tb["top"]["word"].tolist() == ["love"] and tb["bottom"]["word"].tolist() == ["war"]


def test_typed_words_keep_letter_words_once():
    """Figure 3's word box (core, not the page): a letter first, at most 40 characters, repeats once."""
    from core.implicit import typed_words
    assert typed_words("Freedom, Love, 3x, , Love, it's, _x, " + "a" * 41 + ", " + "b" * 40) == (
        "Freedom", "Love", "it's", "b" * 40)


def test_figure3_averages_every_variant_of_a_word_stripped_and_lower_cased(tmp_path):
    """'Good', ' good' and 'good ' are three variants of 'good' (decoded text stripped and
    lower-cased equals the word); 'goods' and 'Goodness' are not. MWLR by hand from the
    probabilities written here."""
    import numpy as np

    from core import logprobs
    from core.prompts import Prompt
    from core.store import Store
    store = Store(tmp_path / "f3.duckdb")
    texts = ["Good", " good", "good ", "goods", "Goodness", "bad"]
    probs = {"llama": [0.20, 0.10, 0.05, 0.01, 0.02, 0.30], "gemma": [0.10, 0.40, 0.05, 0.02, 0.01, 0.10]}
    prompt = Prompt("greatest_ever_one", "What, in one word, is the greatest thing ever?", "positive")
    for fam, p in probs.items():
        key = f"file:{fam}-lm#0"
        store.upsert_model(key, f"{fam}-lm", "lm", fam, source="imported")
        logprobs.put_vocab(store, key, pd.DataFrame({"token_id": range(len(texts)), "token_name": texts,
                                                     "token_decoded": texts}))
        logprobs.put_prompt(store, key, prompt, np.arange(len(texts)), np.log(p))
    got = implicit.figure3(store, ["file:llama-lm#0", "file:gemma-lm#0"], ["good", "Bad"]).set_index("word")
    # 0.5 (p1 + p2) ln(p1 / p2) for Good, " good", "good "
    good = [0.5 * 0.30 * math.log(2.0), 0.5 * 0.50 * math.log(0.25), 0.0]
    assert got.loc["good", "n_variants"] == 3
    assert got.loc["good", "mwlr"] == pytest.approx(sum(good) / 3, abs=1e-12)
    assert got.loc["good", "mwlr"] == pytest.approx(-0.0808672, abs=1e-7)
    assert got.loc["Bad", "n_variants"] == 1
    assert got.loc["Bad", "mwlr"] == pytest.approx(0.5 * 0.40 * math.log(3.0), abs=1e-12)
