"""core.models: revisions are checked wherever one is accepted (issue 25: a revision like
`../../models--evilorg--remote-rm/refs/main` was stored in a model's key)."""
from __future__ import annotations

import pytest

from core import catalog, jobs, logprobs, models, prompts, settings
from core.store import Store
from tests.support import one_line_error, run_cli

GOOD = ["main", "v1.0", "refs/pr/1", "0123456789abcdef0123456789abcdef01234567", "feature/x-y_z", "release-2.1"]
BAD = ["../../models--evilorg--remote-rm/refs/main", "/etc/passwd", "a b", "x\x00y", "x\ny", "x\x7f", "x..y",
       ".hidden", "dir/.hidden", "x.lock", "x/", "x.", "@", "a@{1}", "a//b", "~x", "a^", "a:b", "a?", "a*",
       "a[b", "a\\b", "r" * 256]


@pytest.mark.parametrize("rev", GOOD)
def test_branch_tag_and_commit_names_pass(rev):
    assert models.check_revision(rev) == rev
    assert models.check_revision(f"  {rev} ") == rev


def test_no_revision_is_none():
    assert models.check_revision(None) is None and models.check_revision("  ") is None


@pytest.mark.parametrize("rev", BAD)
def test_paths_and_odd_characters_are_refused(rev):
    with pytest.raises(models.ModelError, match="not a branch, tag or commit name"):
        models.check_revision(rev)


def test_a_bad_revision_never_reaches_a_key_a_catalogue_or_a_job(tmp_path):
    evil = BAD[0]
    with pytest.raises(models.ModelError):
        models.model_key("org/name", evil)
    with pytest.raises(models.ModelError):
        models.preflight("org/name", "rm", evil)
    store = Store(tmp_path / "r.duckdb")
    with pytest.raises(models.ModelError):
        catalog.add_model(store, "org/name", "rm", family="llama", revision=evil)
    assert store.models().empty
    reg = jobs.JobRegistry(loader=lambda *a, **k: pytest.fail("nothing may load"))
    spec = jobs.JobSpec([jobs.ModelRequest("org/name", "rm", revision=evil)], prompts.paper_prompts()[:1], ["love"])
    with pytest.raises(models.ModelError):
        reg.submit(spec)
    assert reg.jobs() == []
    assert models.model_key("org/name", "v1") == "hub:org/name@v1"


def test_the_cli_refuses_a_bad_revision_in_one_line(capsys, tmp_path):
    rc, _, err = run_cli(capsys, "score", "--model", "org/name", "--kind", "rm", "--corpus", "big2-nouns",
                         "--prompts", "paper", "--db", tmp_path / "c.duckdb", "--revision", BAD[0])
    one_line_error(rc, err, "not a branch, tag or commit name")
    assert not (tmp_path / "c.duckdb").exists() or Store(tmp_path / "c.duckdb").models().empty


def test_the_logprob_dataset_revision_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUEAUDIT_LOGPROBS_REVISION", "../evil")
    with pytest.raises(settings.SettingsError, match="VALUEAUDIT_LOGPROBS_REVISION"):
        logprobs.pinned_revision(tmp_path)
    monkeypatch.delenv("VALUEAUDIT_LOGPROBS_REVISION")
    (tmp_path / logprobs.REVISION_FILE).write_text("/abs/path\n")
    with pytest.raises(logprobs.LogprobError, match="delete it to pin again"):
        logprobs.download(["google/gemma-2-2b-it"], tmp_path)
    (tmp_path / logprobs.REVISION_FILE).write_text("abc123\n")
    assert logprobs.pinned_revision(tmp_path) == "abc123"


# -- attention: what the config defines, whatever transformers' default ---------------------------
def test_soft_capped_models_load_with_eager_attention():
    """Gemma 2 soft-caps its attention logits; sdpa cannot, and transformers 5.17 picks sdpa
    for Gemma 2 by default (5.25 forces eager): the loader asks for eager itself."""
    gemma2 = {"model_type": "gemma2", "attn_logit_softcapping": 50.0}
    assert models.attention_for(gemma2) == "eager"
    assert models.attention_for({"model_type": "x", "text_config": gemma2}) == "eager"  # multimodal wrapper
    assert models.attention_for({"model_type": "gemma2", "attn_logit_softcapping": None}) is None
    assert models.attention_for({"model_type": "llama"}) is None and models.attention_for(None) is None


def test_the_run_records_the_attention_that_ran(tiny_gemma_rm, tiny_llama_rm):
    from core import provenance
    gemma = models.load(str(tiny_gemma_rm), "rm", device="cpu")
    llama = models.load(str(tiny_llama_rm), "rm", device="cpu")
    assert gemma.model.config._attn_implementation == "eager"
    ps = prompts.paper_prompts()[:1]
    assert provenance.run_record(gemma, "c", ["love"], ps, "cached", 4)["attention"] == "eager"
    assert provenance.run_record(llama, "c", ["love"], ps, "cached", 4)["attention"] == \
        llama.model.config._attn_implementation == "sdpa"
