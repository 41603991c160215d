"""Vocabulary scans of reward models: the word tokens, the cost line, streaming and resume,
and the top/bottom tokens — checked against computations written here."""
from __future__ import annotations

import re

import duckdb
from transformers import AutoTokenizer

from core import cli


def test_vocabulary_scan_scores_every_word_token_and_resumes(tiny_llama_rm, tmp_path, capsys):
    pfile = tmp_path / "one.yaml"
    pfile.write_text('greatest_ever_one: "What, in one word, is the greatest thing ever?"\n')
    db = tmp_path / "v.duckdb"
    tok = AutoTokenizer.from_pretrained(tiny_llama_rm)
    specials = set(tok.all_special_ids) | set(tok.added_tokens_decoder)
    expect = []
    for i in sorted(tok.get_vocab().values()):
        t = tok.decode([i])
        if i not in specials and re.fullmatch(r" ?[^\W\d_]+", t) and t not in expect:
            expect.append(t)
    assert any(t.startswith(" ") for t in expect) and len(expect) > 100
    args = ["score", "--model", str(tiny_llama_rm), "--kind", "rm", "--corpus", "vocabulary", "--prompts", str(pfile),
            "--db", str(db), "--quiet"]
    assert cli.main(args) == 0
    out = capsys.readouterr()
    assert f"{len(expect):,} word tokens x 1 prompts = {len(expect):,} rows to score" in out.err
    assert f"scored {len(expect)} new, 0 cached" in out.out
    con = duckdb.connect(str(db), read_only=True)
    got = con.execute("SELECT response, value FROM scores ORDER BY value DESC, response").fetchall()
    con.close()
    assert sorted(r for r, _ in got) == sorted(expect)
    assert cli.main(args) == 0  # a rerun scores nothing
    out = capsys.readouterr()
    assert "= 0 rows to score" in out.err and f"scored 0 new, {len(expect)} cached" in out.out

    from core import vocabscan
    from core.store import Store
    store = Store(db)
    m = vocabscan.scanned_models(store)
    assert m["n_words"].tolist() == [len(expect)]
    top, bottom = vocabscan.top_bottom(store, m["model_key"].iloc[0], "What, in one word, is the greatest thing ever?", 7)
    assert top["token"].tolist() == [r for r, _ in got[:7]]
    assert bottom["token"].tolist() == [r for r, _ in sorted(got, key=lambda x: (x[1], x[0]))[:7]]

    # the Words page shows the same top and bottom tokens
    import json
    from pathlib import Path

    import pytest
    pytest.importorskip("streamlit")
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    import os
    os.environ["VALUEAUDIT_DB"] = str(db)
    try:
        st.cache_data.clear()
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "words.py"), default_timeout=120)
        at.run()
        assert not at.exception and not at.error
        at.number_input(key="w-scan-n").set_value(7).run()
        frames = [d.value for d in at.dataframe if "token" in d.value.columns]
        assert [json.loads(t) for t in frames[0]["token"]] == top["token"].tolist()
        assert [json.loads(t) for t in frames[1]["token"]] == bottom["token"].tolist()
    finally:
        os.environ.pop("VALUEAUDIT_DB", None)
