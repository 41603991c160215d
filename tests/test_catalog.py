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
    assert catalog.add_model(store, str(tiny_gemma_rm), "lm", family="Llama")["family"] == "llama"
    with pytest.raises(ValueAuditError, match="org/name"):
        catalog.add_model(store, "justaword", "rm", family="llama")
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    with pytest.raises(ValueAuditError):
        catalog.add_model(store, str(tiny_gemma_rm), "rm", family="gemma")

