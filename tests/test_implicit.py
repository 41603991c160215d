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
