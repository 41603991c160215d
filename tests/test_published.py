"""Tests for core.published: the paper's published score files read and imported (one run per
(model, corpus folder), idempotent, 'NA'/'null' kept as words). Moved from test_analysis.py."""
from __future__ import annotations

from core import paperdata, prompts
from core.published import hub_id_from_filename, import_published, model_key
from core.store import Store


def test_hub_id_from_filename():
    assert hub_id_from_filename("big2_rewards_Ray2333_GRM-gemma2-2B-rewardmodel-ft.csv") == \
        "Ray2333/GRM-gemma2-2B-rewardmodel-ft"
    assert hub_id_from_filename("MFD20_rewards_nicolinho_QRM-Llama3.1-8B.csv") == "nicolinho/QRM-Llama3.1-8B"
    assert hub_id_from_filename("big2_rewards_RLHFlow_ArmoRM_Llama3.csv") == "RLHFlow/ArmoRM_Llama3"
    assert hub_id_from_filename("README.md") is None
    assert hub_id_from_filename("other_file.csv") is None


def test_import_published_counts_and_idempotent(big2_store):
    store, counts = big2_store
    assert counts["files"] == 10 and counts["models"] == 10
    assert counts["rows_added"] == 10 * 265 * 54
    again = import_published(store)
    assert again["rows_added"] == 0 and again["models"] == 10
    models = store.models()
    assert set(models["source"]) == {"published"}
    assert set(models["family"]) == {"gemma", "llama"}
    key = model_key("Ray2333/GRM-gemma2-2B-rewardmodel-ft", "big2-nouns")
    assert key == f"published:Ray2333/GRM-gemma2-2B-rewardmodel-ft@{paperdata.COMMIT[:12]}#big2-nouns"
    assert models.set_index("model_key").loc[key, "family"] == "gemma"


def test_import_reads_mfd_folder_and_keeps_na_words(tmp_path, monkeypatch):
    """A fake data folder with both score folders: 'NA'/'null' stay words, first duplicate wins."""
    ids = [p.prompt_id for p in prompts.paper_prompts()][:2]
    big2 = tmp_path / "reward_model_scores" / "dict_big2_nouns"
    mfd = tmp_path / "reward_model_scores" / "dict_MFD_20"
    big2.mkdir(parents=True)
    mfd.mkdir(parents=True)
    header = "response," + ",".join(ids) + "\n"
    (big2 / "big2_rewards_Owner_Some-gemma-RM.csv").write_text(header + "NA,1.0,2.0\nnull,3.0,4.0\nNA,9.0,9.0\n")
    (mfd / "MFD20_rewards_Owner_Some-gemma-RM.csv").write_text(header + "care,5.0,6.0\n")
    (mfd / "big2_rewards_Meta_Llama-RM.csv").write_text(header + "care,7.0,8.0\n")
    (mfd / "notes.txt").write_text("not a score file")
    monkeypatch.setenv("VALUEAUDIT_PAPER_DATA", str(tmp_path))
    store = Store(tmp_path / "s.duckdb")
    counts = import_published(store)
    assert counts == {"models": 3, "rows_added": 2 * 2 + 2 + 2, "files": 3,
                      "merged_rows_removed": 0, "merged_rows_kept": 0}  # one run per (model, corpus folder)
    s = store.scores(kind="rm")
    na = s[(s["response"] == "NA") & (s["prompt_id"] == ids[0])]
    assert na["value"].tolist() == [1.0]
    assert set(s["response"]) == {"NA", "null", "care"}
    assert set(zip(store.models()["model_key"].str.rsplit("#").str[1], store.models()["name"],
                   store.models()["family"])) == {
        ("big2-nouns", "Owner/Some-gemma-RM", "gemma"), ("mfd2", "Owner/Some-gemma-RM", "gemma"),
        ("mfd2", "Meta/Llama-RM", "llama")}
    assert import_published(store)["rows_added"] == 0


def test_missing_mfd_folder_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUEAUDIT_PAPER_DATA", str(tmp_path))
    assert import_published(Store(tmp_path / "s.duckdb")) == {"models": 0, "rows_added": 0, "files": 0,
                                                             "merged_rows_removed": 0, "merged_rows_kept": 0}
