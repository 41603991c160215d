"""core.training: the paper's training-run files (Figure 4) read and labelled by its own
manifest, checked against the files themselves and an independent transcription of the
script's final-checkpoint filter."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from core import training

PAPER_DATA = Path(os.environ["VALUEAUDIT_PAPER_DATA"])


def test_training_dynamics_labelled_by_the_paper_manifest():
    d = training.training_dynamics()
    assert not d.duplicated().any()
    assert {"model_id", "base_model", "category", "checkpoint", "median_rank", "data_source", "data_size",
            "method", "run", "identical_to"} <= set(d.columns)
    assert d["base_model"].notna().all() and set(d["base_model"]) == {"Gemma", "Llama", "Qwen"}
    runs = dict(zip(d["file"], d["run"]))
    # generate_figure_4_and_A5.R's manifest, not the file names
    assert runs == {"rank_results_uf_13.csv": "UltraFeedback 13K · Bradley-Terry",
                    "rank_results_uf_27.csv": "UltraFeedback 27K · Bradley-Terry",
                    "rank_results_uf_54.csv": "UltraFeedback 53K · Bradley-Terry",
                    "rank_results_uf_100.csv": "UltraFeedback 106K · Bradley-Terry",
                    "rank_results_sky_80k.csv": "Skywork 77K · Bradley-Terry",
                    "rank_results_grm_80k.csv": "UltraFeedback + Skywork 550K · GRM"}
    uf100 = d[d["file"] == "rank_results_uf_100.csv"]
    assert len(uf100) == 84  # 60,956 rows in the file, mostly exact duplicates
    same = dict(zip(d["file"], d["identical_to"]))
    folder = PAPER_DATA / "reward_model_training"
    b13, b27 = (folder / "rank_results_uf_13.csv").read_bytes(), (folder / "rank_results_uf_27.csv").read_bytes()
    assert (b13 == b27) and same["rank_results_uf_13.csv"] == "rank_results_uf_27.csv"
    assert same["rank_results_uf_27.csv"] == "rank_results_uf_13.csv" and pd.isna(same["rank_results_sky_80k.csv"])


def test_figure_4b_final_checkpoints_as_the_script():
    """Independent: the script's filter(checkpoint == max(checkpoint)) per run, Qwen left out."""
    sizes = {"rank_results_uf_13.csv": 13, "rank_results_uf_27.csv": 27, "rank_results_uf_54.csv": 53,
             "rank_results_uf_100.csv": 106, "rank_results_sky_80k.csv": 77, "rank_results_grm_80k.csv": 550}
    expected = []
    for f, size in sizes.items():
        raw = pd.read_csv(PAPER_DATA / "reward_model_training" / f)
        raw["checkpoint"] = 1 if size == 550 else raw["checkpoint"]
        raw = raw[~raw["model_id"].str.contains("qwe|Qwe")]
        last = raw[raw["checkpoint"] == raw["checkpoint"].max()].drop_duplicates(["model_id", "Category"])
        expected += [(size, m, c, v) for m, c, v in zip(last["model_id"], last["Category"], last["sum_value"])]
    got = training.figure_4b(training.training_dynamics())
    assert sorted(zip(got["data_size_k"], got["model_id"], got["category"], got["median_rank"])) == sorted(expected)
    assert len(got) == 6 * 2 * 2 and set(got["base_model"]) == {"Gemma", "Llama"}


