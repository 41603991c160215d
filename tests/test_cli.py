"""The CLI contract, end to end in subprocesses, as the acceptance checks run it."""
import pandas as pd
import pytest

from core import corpora, prompts
from tests.plain_scorer import plain_lm_logprobs, plain_rm_scores
from tests.support import cli, last_line


@pytest.mark.slow  # a long run: its file starts first under xdist (conftest)
def test_score_rm_paper_prompts_then_export_equals_plain_scorer(tiny_llama_rm, tmp_path):
    db, out = tmp_path / "a.duckdb", tmp_path / "a.csv"
    first = cli("score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", "big2-nouns",
                "--prompts", "paper", "--db", db, "--quiet")
    assert last_line(first) == "scored 14202 new, 0 cached"
    again = cli("score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", "big2-nouns",
                "--prompts", "paper", "--db", db, "--quiet")
    assert last_line(again) == "scored 0 new, 14202 cached"
    cli("export", "--db", db, "--model", tiny_llama_rm, "--out", out)
    got = pd.read_csv(out, keep_default_na=False)
    assert list(got.columns) == ["model", "kind", "prompt_id", "prompt", "response", "value"]
    words = corpora.load("big2-nouns").vocabulary
    paper = prompts.paper_prompts()
    assert len(got) == 14202 and set(zip(got.prompt, got.response)) == {(p.text, w) for p in paper for w in words}
    # Values against the independent scorer on every sixth prompt (9 prompts, both framings,
    # 2,367 pairs): the engine batches across prompts the same way for all 54.
    ref = plain_rm_scores(tiny_llama_rm, [(p.text, w) for p in paper[::6] for w in words])
    got = got[got.prompt.isin({p.text for p in paper[::6]})]
    assert len(got) == len(ref) == 9 * 263
    diff = max(abs(v - ref[(p, r)]) for p, r, v in zip(got.prompt, got.response, got.value))
    assert diff < 1e-4


def test_score_lm_custom_yaml_then_export(tiny_gemma_lm, tmp_path):
    ps = prompts.paper_prompts()[::9]
    assert len(ps) == 6
    yml = tmp_path / "six.yaml"
    yml.write_text("".join(f'{p.prompt_id}: "{p.text}"\n' for p in ps))
    db, out = tmp_path / "b.duckdb", tmp_path / "b.parquet"
    res = cli("score", "--model", tiny_gemma_lm, "--kind", "lm", "--corpus", "big2-nouns",
              "--prompts", yml, "--db", db, "--quiet")
    assert last_line(res) == f"scored {6 * 263} new, 0 cached"
    cli("export", "--db", db, "--kind", "lm", "--out", out)
    got = pd.read_parquet(out)
    words = corpora.load("big2-nouns").vocabulary
    ref = plain_lm_logprobs(tiny_gemma_lm, [(p.text, w) for p in ps for w in words])
    assert len(got) == len(ref)
    diff = max(abs(v - ref[(p, r)]) for p, r, v in zip(got.prompt, got.response, got.value))
    assert diff < 1e-3


def test_lists():
    assert "mfd2" in cli("corpora").stdout
    listing = cli("models").stdout
    assert "RLHFlow/ArmoRM-Llama3-8B-v0.1" in listing and "google/gemma-2-2b-it" in listing
    assert len(listing.strip().splitlines()) == 22


@pytest.mark.parametrize("args,fragment", [
    (["score", "--model", "no/such-model-here", "--kind", "rm", "--corpus", "big2-nouns"], "not found"),
    (["score", "--model", "/no/such/folder", "--kind", "rm", "--corpus", "big2-nouns"], "not found"),
    (["score", "--model", "x", "--kind", "rm", "--corpus", "nope"], "no corpus"),
    (["export", "--db", "/nonexistent/x.duckdb", "--out", "x.csv"], "no database"),
])
def test_errors_are_one_line(args, fragment, tmp_path):
    res = cli(*args, check=False)
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and "Traceback" not in res.stderr
