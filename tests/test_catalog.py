"""core.catalog: what the Models page lists and adds."""
from __future__ import annotations

import pytest


def test_adding_a_model_reads_its_family_and_refuses_what_a_visitor_may_not_name(tiny_gemma_rm, tmp_path, monkeypatch):
    """catalog.add_model (the Models page's rule, now in core): family from config.json,
    a server path refused on a shared server, a bare word refused everywhere."""
    from core import catalog
    from core.errors import ValueAuditError
    from core.store import Store
    store = Store(tmp_path / "c.duckdb")
    added = catalog.add_model(store, f" {tiny_gemma_rm} ", "rm")
    assert added["family"] == "gemma" and added["display_name"] == tiny_gemma_rm.name
    row = store.models().set_index("model_key").loc[added["model_key"]]
    assert (row["kind"], row["family"], row["source"]) == ("rm", "gemma", "added")
    again = catalog.add_model(store, str(tiny_gemma_rm), "lm", family="Llama")  # stored: never rewritten
    assert not again["added"] and (again["kind"], again["family"]) == ("rm", "gemma")
    assert catalog.add_model(store, "org/some-rm", "rm", family="Llama")["family"] == "llama"  # given, not read
    with pytest.raises(ValueAuditError, match="org/name"):
        catalog.add_model(store, "justaword", "rm", family="llama")
    with pytest.raises(ValueAuditError, match="local folder has no revision"):  # issue 21: it was stored, unused
        catalog.add_model(store, str(tiny_gemma_rm), "rm", family="gemma", revision="v2")
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    with pytest.raises(ValueAuditError):
        catalog.add_model(store, str(tiny_gemma_rm), "rm", family="gemma")



def test_display_names_are_short_unique_and_never_a_server_path():
    """Issue 21: three 'Skywork/Skywork-…' chips read the same. One display name per model,
    everywhere: the registry's, else the id without its org or the folder's name; clashes keep
    the full hub id, then a number. A sidebar chip shows about 18 characters: the paper's ten
    must differ within them."""
    from core import catalog, models
    paper = [e.name for e in models.REGISTRY if e.kind == "rm"]
    names = paper + ["/srv/a/tiny-llama-rm", "/srv/b/tiny-llama-rm", "org1/my-rm", "org2/my-rm", "org3/solo-rm"]
    shown = catalog.display_names(names)
    assert len(set(shown.values())) == len(names)
    assert len({shown[n][:17] for n in paper}) == len(paper)
    assert shown["Skywork/Skywork-Reward-Gemma-2-27B-v0.2"] == "Skywork v0.2 Gemma 2 27B"
    assert shown["org3/solo-rm"] == "solo-rm" and shown["org1/my-rm"] == "org1/my-rm"
    assert {shown["/srv/a/tiny-llama-rm"], shown["/srv/b/tiny-llama-rm"]} == {"tiny-llama-rm (1)", "tiny-llama-rm (2)"}
    assert not any("/srv" in s for s in shown.values())
    assert catalog.model_label("solo-rm", "llama") == "solo-rm (Llama)"
    assert catalog.model_label("tiny-llama-rm (1)", "llama") == "tiny-llama-rm (1)"
    assert catalog.model_label("solo-rm", None) == catalog.model_label("solo-rm", float("nan")) == "solo-rm"


def test_adding_a_stored_model_never_rewrites_it(tmp_path, monkeypatch):
    """Issue 25: on a database holding rows from before the precision suffix, a shared-mode
    'Add model' of the same id with kind lm and family qwen turned the scored row into lm/qwen."""
    import pandas as pd

    from core import catalog, prompts
    from core.store import Store
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    store = Store(tmp_path / "old.duckdb")
    store.upsert_model("hub:org/old-rm@main", "org/old-rm", "rm", "gemma", "Old RM", source="scored")
    p = prompts.paper_prompts()[0]
    store.add_scores("hub:org/old-rm@main", "rm", pd.DataFrame([{"prompt_id": p.prompt_id, "prompt": p.text,
                                                                 "response": "love", "value": 1.5}]))
    before = store.models()
    got = catalog.add_model(store, "org/old-rm", "lm", family="qwen")
    assert got["added"] is False and (got["kind"], got["family"], got["n_scores"]) == ("rm", "gemma", 1)
    pd.testing.assert_frame_equal(store.models(), before)  # not one field changed
    assert len(store.scores()) == 1
    new = catalog.add_model(store, "org/new-rm", "rm", family="llama")
    assert new["added"] is True and new["model_key"] == "hub:org/new-rm@main"
    again = catalog.add_model(store, "org/new-rm", "lm", family="qwen")  # nor an added one's
    assert again["added"] is False and (again["kind"], again["family"]) == ("rm", "llama")
