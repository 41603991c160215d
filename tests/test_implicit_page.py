"""The Implicit reward page compares language models only, and by default two families:
a Llama-family LM against a Gemma-family LM (issue 11, item 7)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import implicit, logprobs, prompts
from core.store import Store

ROOT = Path(__file__).resolve().parents[1]

# name, family: listed so that neither alphabetical nor stored order gives the Llama/Gemma pair.
LMS = [("a-gemma-2b", "gemma"), ("b-gemma-2b-it", "gemma"), ("c-llama-3b", "llama"),
       ("d-llama-3b-instruct", "llama"), ("e-qwen-chat", "qwen")]


@pytest.mark.parametrize("families,names,expect", [
    # Llama and Gemma both present: a Llama first, a Gemma second, instruction-tuned preferred.
    (["gemma", "gemma", "llama", "llama"], ["g", "g-it", "l", "l-instruct"], (3, 1)),
    (["gemma", "llama"], ["g", "l"], (1, 0)),
    # no Llama/Gemma pair: the first model and the first of another family.
    (["qwen", "qwen", "mistral"], ["q1", "q2", "m"], (0, 2)),
    # one family only: the first two (nothing else to compare).
    (["qwen", "qwen"], ["q1", "q2"], (0, 1)),
    (["llama"], ["l"], (0, 0)),
])
def test_default_pair_rule(families, names, expect):
    assert implicit.default_pair(families, names) == expect


def test_default_pair_is_always_two_families_when_there_are_two():
    rng = np.random.default_rng(0)
    pool = ["llama", "gemma", "qwen", "mistral", None]
    for _ in range(200):
        fams = list(rng.choice(pool, size=int(rng.integers(2, 7))))
        names = [f"m{i}{'-it' if rng.random() < .5 else ''}" for i in range(len(fams))]
        a, b = implicit.default_pair(fams, names)
        low = [str(f or "").lower() for f in fams]
        assert a != b
        if len(set(low)) > 1:
            assert low[a] != low[b]
        if "llama" in low and "gemma" in low:
            assert (low[a], low[b]) == ("llama", "gemma")


@pytest.fixture()
def lm_db(tmp_path, monkeypatch) -> Path:
    """Five LMs with word log-probs and whole-vocabulary log-probs, and an RM with scores."""
    db = tmp_path / "ir.duckdb"
    store = Store(db)
    plist = prompts.paper_prompts()[:2]
    words = ["love", "freedom", "power", "family", "kindness", "success"]
    rng = np.random.default_rng(1)
    for name, fam in LMS:
        key = f"hub:{name}@x~float32"
        store.upsert_model(key, name, "lm", fam)
        store.add_scores(key, "lm", pd.DataFrame([{"prompt_id": p.prompt_id, "prompt": p.text, "response": w,
                                                    "value": float(-rng.uniform(1, 10))}
                                                   for p in plist for w in words]))
        vocab = pd.DataFrame({"token_id": range(len(words)), "token_name": words, "token_decoded": words})
        logprobs.put_vocab(store, key, vocab)
        for p in plist:
            logprobs.put_prompt(store, key, p, np.arange(len(words)), -rng.uniform(1, 10, len(words)))
    store.upsert_model("hub:some/rm@x~float32", "some/rm", "rm", "llama")
    store.add_scores("hub:some/rm@x~float32", "rm", pd.DataFrame([{"prompt_id": p.prompt_id, "prompt": p.text,
                                                                   "response": w, "value": 1.0}
                                                                  for p in plist for w in words]))
    monkeypatch.setenv("VALUEAUDIT_DB", str(db))
    import streamlit as st
    st.cache_data.clear()
    return db


def test_page_defaults_to_llama_vs_gemma_and_never_offers_an_rm(lm_db):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "pages" / "implicit_reward.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    keys = {f"hub:{n}@x~float32": n for n, _ in LMS}
    fam = dict(LMS)
    # Scored words (names) and the whole-vocabulary views (keys): the instruction-tuned Llama vs Gemma.
    for a_key, b_key, show in (("ir-m1", "ir-m2", lambda v: v), ("ir-t1-a", "ir-t1-b", keys.get),
                               ("ir-f2-a", "ir-f2-b", keys.get)):
        a, b = at.selectbox(key=a_key), at.selectbox(key=b_key)
        assert (show(a.value), show(b.value)) == ("d-llama-3b-instruct", "b-gemma-2b-it"), a_key
        assert fam[show(a.value)] != fam[show(b.value)]
        offered = set(a.options + b.options)  # labels shown: the model names
        assert "some/rm" not in offered and offered <= set(fam)
    # No widget compares a reward model with a language model.
    labels = [w.label for w in at.selectbox]
    assert not any("Reward model" in lab for lab in labels), labels
    assert not any("reward model agree" in s.value for s in at.subheader)
