import pytest
import yaml

from core import corpora, prompts


def test_builtin_big2_nouns(paper_data):
    c = corpora.load("big2-nouns")
    assert len(c.vocabulary) == 263
    counts = dict(zip(c.counts()["category"], c.counts()["n_words"]))
    assert counts == {"Agency": 104, "Communion": 159}


def test_builtin_big2_expanded(paper_data):
    c = corpora.load("big2-expanded")
    import pandas as pd
    raw = pd.read_csv(paper_data / "corpora/dict_big2_expanded.csv", dtype=str, keep_default_na=False)
    assert len(c.vocabulary) == raw["DicTerm"].str.strip().nunique()
    assert set(c.categories) == {"Agency", "Communion"}
    assert "common good" in c.vocabulary  # multi-word terms are answers too


def test_builtin_mfd2_merges_virtue_and_vice(paper_data):
    c = corpora.load("mfd2")
    assert c.categories == ["Authority", "Care", "Fairness", "Loyalty", "Sanctity"]
    assert set(c.words["subcategory"]) == {"virtue", "vice"}
    assert len(c.vocabulary) == 2040
    row = c.words[c.words["word"] == "abused"].iloc[0]
    assert (row["category"], row["subcategory"]) == ("Care", "vice")


def test_builtin_mfd2_paper_is_the_scripts_column_range(paper_data):
    """R's pivot_longer(c(Care_Virtue:Sanctity_Virtue)): every column but the last, Sanctity_Vice."""
    import pandas as pd
    raw = pd.read_csv(paper_data / "corpora/moral-foundations-dictionary-20.dicx", dtype=str, keep_default_na=False)
    cols = list(raw.columns)
    assert cols[-1] == "Sanctity_Vice"
    marked = raw[cols[1:-1]].eq("X")
    paper = corpora.load("mfd2-paper")
    assert paper.ranking == "row" and corpora.load("mfd2").ranking == "word"
    assert len(paper.vocabulary) == int(marked.any(axis=1).sum()) == 1652
    assert len(paper.words) == int(marked.to_numpy().sum())  # one row per (word, column) marked X
    assert not (paper.words["category"].eq("Sanctity") & paper.words["subcategory"].eq("vice")).any()
    assert list(corpora.BUILTINS).index("mfd2-paper") < list(corpora.BUILTINS).index("mfd2")
    assert "1,652" in corpora.NOTES["mfd2-paper"] and "2,040" in corpora.NOTES["mfd2"]


def test_csv_upload_strips_dedupes_and_allows_several_categories():
    data = b"word,category\n love ,Communion\nlove,Communion\nlove,Agency\npower,\n"
    c = corpora.parse_upload("my words.csv", data)
    assert c.name == "my-words"
    assert sorted(c.words[c.words.word == "love"]["category"]) == ["Agency", "Communion"]
    assert c.words[c.words.word == "power"]["category"].item() == corpora.UNCATEGORISED
    assert c.vocabulary == ["love", "power"]


def test_dic_upload():
    data = b"%\n1\tCare\n2\tFairness\n%\nkind\t1\nfair\t2\njust\t1\t2\nabus*\t1\n"
    c = corpora.parse_upload("liwc.dic", data)
    assert sorted(c.words[c.words.word == "just"]["category"]) == ["Care", "Fairness"]
    assert "abus*" not in c.vocabulary and c.notes  # wildcards are not answers


def test_dicx_upload():
    data = b"DicTerm,Good,Bad\nnice,X,\nnasty,,X\nboth,X,X\n"
    c = corpora.parse_upload("x.dicx", data)
    assert c.categories == ["Bad", "Good"]
    assert sorted(c.words[c.words.word == "both"]["category"]) == ["Bad", "Good"]


@pytest.mark.parametrize("name,data,fragment", [
    ("g.csv", bytes(range(256)) * 4, "binary"),
    ("l.csv", "word,category\ncafé,x\n".encode("latin-1"), "UTF-8"),
    ("e.csv", b"", "empty"),
    ("c.csv", b"term,cat\nlove,x\n", "'word' column"),
    ("n.csv", b"word,category\n  ,x\n", "no words"),
    ("x.txt", b"word\nlove\n", "unsupported"),
    ("d.dic", b"love 1\n", "LIWC"),
])
def test_bad_uploads_get_one_line_errors(name, data, fragment):
    with pytest.raises(corpora.CorpusError) as e:
        corpora.parse_upload(name, data)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_oversize_upload_refused():
    with pytest.raises(corpora.CorpusError, match="larger than"):
        corpora.parse_upload("big.csv", b"word\n" + b"a\n" * (corpora.MAX_BYTES // 2 + 1))


def test_paper_prompts_equal_prompts_yaml(paper_data):
    ref = yaml.safe_load((paper_data / "config/prompts.yaml").read_text())
    mine = prompts.paper_prompts()
    assert [(p.prompt_id, p.text) for p in mine] == list(ref.items())
    assert len(mine) == 54
    assert {p.framing for p in mine if p.prompt_id.split("_")[0] in ("best", "greatest", "good")} == {"positive"}
    assert {p.framing for p in mine if p.prompt_id.split("_")[0] in ("worst", "bad", "terrible")} == {"negative"}


def test_custom_prompts_yaml_and_csv(tmp_path):
    y = tmp_path / "p.yaml"
    y.write_text('best_ever_one: "What, in one word, is the best thing ever?"\nmine: What is the worst idea?\n')
    ps = prompts.load(y)
    assert [(p.prompt_id, p.framing) for p in ps] == [("best_ever_one", "positive"), ("mine", "negative")]
    c = tmp_path / "p.csv"
    c.write_text("prompt_id,prompt\na,What is good?\n")
    assert prompts.load(c)[0].text == "What is good?"


@pytest.mark.parametrize("name,text,fragment", [
    ("p.yaml", "a: [unclosed", "not valid YAML"),
    ("p.yaml", "- just\n- a list\n", "mapping"),
    ("p.csv", "id,text\na,b\n", "prompt_id,prompt"),
    ("p.yaml", "", "no prompts"),
])
def test_malformed_prompts(tmp_path, name, text, fragment):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(prompts.PromptError, match=fragment):
        prompts.load(f)


def test_duplicate_ids_are_found_in_a_large_yaml_file(tmp_path):
    """Issue 25: the parser hashes ids instead of comparing each with every earlier one
    (timing: bench/prompt_parse_speed.py); it still finds an id written twice and ids YAML
    reads as one value, however far apart, and keeps ids as written."""
    body = "".join(f"p{i}: Best thing {i}?\n" for i in range(10_000))
    ps = prompts.parse("big.yaml", body.encode())
    assert len(ps) == 10_000 and ps[-1] == prompts.Prompt("p9999", "Best thing 9999?", "positive")
    for extra, line, first in (("p7: again\n", 10_001, 8), ("01: a\n1: b\n", 10_002, 10_001),
                               ("yes: a\nTrue: b\n", 10_002, 10_001), ("1.0: a\n1: b\n", 10_002, 10_001)):
        with pytest.raises(prompts.PromptError, match=f"line {line}: .*\\(line {first}\\)"):
            prompts.parse("big.yaml", (body + extra).encode())
    assert [p.prompt_id for p in prompts.parse("q.yaml", b"'01': a\n'1': b\n")] == ["01", "1"]


def test_a_prompt_csv_row_with_an_unquoted_comma_is_refused_with_its_line(tmp_path, capsys):
    """Issue 25: `p1,What is the best thing, in one word?` was stored as 'What is the best thing'."""
    data = 'prompt_id,prompt\np0,"Quoted, fine?"\np1,What is the best thing, in one word?\n'
    with pytest.raises(prompts.PromptError, match=r"p\.csv line 3: 3 fields where the header has 2 \(a prompt "
                                                   r"holding a comma must be in double quotes\)"):
        prompts.parse("p.csv", data.encode())
    assert prompts.parse("p.csv", data.split("p1,")[0].encode())[0].text == "Quoted, fine?"
    with pytest.raises(prompts.PromptError, match="line 2: 1 field where"):
        prompts.parse("p.csv", b"prompt_id,prompt\np1\n")
    from tests.support import one_line_error, run_cli
    f = tmp_path / "p.csv"
    f.write_text(data)
    rc, _, err = run_cli(capsys, "score", "--model", "org/name", "--kind", "rm", "--corpus", "big2-nouns",
                         "--prompts", f, "--db", tmp_path / "c.duckdb")
    one_line_error(rc, err, "line 3", "double quotes")


@pytest.mark.parametrize("name,data", [("p.csv", "prompt_id,prompt\n{id},What is best?\n"),
                                       ("p.yaml", "? {id}\n: What is best?\n")])  # an explicit key: any length
def test_prompt_ids_are_short_names(name, data):
    ok = "i" * prompts.MAX_ID_CHARS
    assert prompts.parse(name, data.format(id=ok).encode())[0].prompt_id == ok
    with pytest.raises(prompts.PromptError, match="130,000 characters long; ids are at most 100"):
        prompts.parse(name, data.format(id="i" * 130_000).encode())


def test_a_prompt_file_over_one_megabyte_is_refused_before_it_is_read():
    with pytest.raises(prompts.PromptError, match="larger than 1 MB"):
        prompts.parse("p.yaml", b"a: " + b"x" * prompts.MAX_BYTES)


def test_the_score_page_parses_an_upload_once_not_on_every_rerun(monkeypatch, tmp_path, paper_data):
    pytest.importorskip("streamlit")
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "p.duckdb"))
    st.cache_data.clear()
    calls = []
    real = prompts.parse
    monkeypatch.setattr(prompts, "parse", lambda *a: calls.append(a[0]) or real(*a))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "score.py"), default_timeout=120)
    at.run()
    at.radio(key="score-prompts").set_value("Upload a prompt file").run()
    at.file_uploader(key="score-prompt-file").set_value(("mine.yaml", b"a: What is best?\nb: What is worst?\n",
                                                          "application/x-yaml"))
    at.run()
    for _ in range(3):
        at.text_input(key="score-extra").set_value(f"org/m{_}").run()
    assert not at.exception and calls == ["mine.yaml"]
    assert any("2 prompts" in c.value for c in at.caption), [c.value for c in at.caption]


def test_a_saved_corpus_name_is_plain_new_and_not_built_in():
    from core import corpora
    assert corpora.check_saved_name(" my_values ", ["x"]) == "my_values"
    for bad, msg in (("a b", "letters"), ("mfd2", "built-in"), ("x", "already saved")):
        with pytest.raises(corpora.CorpusError, match=msg):
            corpora.check_saved_name(bad, ["x"])
    assert corpora.check_saved_name("x", ["x"], may_replace=True) == "x"


def test_a_dic_word_without_a_category_is_refused_with_its_line():
    """Issue 25: a .dic word line with no category id used to become 'Uncategorized'."""
    with pytest.raises(corpora.CorpusError, match=r"liwc\.dic line 5: word 'lonely' has no category id"):
        corpora.parse_upload("liwc.dic", b"%\n1\tCare\n%\nkind\t1\nlonely\n")


@pytest.mark.parametrize("name", ["vocabulary", "Vocabulary", "vocabulary:org/model", "vocabulary:x"])
def test_vocabulary_is_not_a_saved_corpus_name(name):
    with pytest.raises(corpora.CorpusError, match="names a scan of a model's own vocabulary"):
        corpora.check_saved_name(name)
    assert corpora.check_saved_name("vocabulary-list") == "vocabulary-list"
