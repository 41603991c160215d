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




# -- Figure 4a and Figure 5 from the paper's checkpoint-score files (synthetic, in their format) --
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from core import paperdata  # noqa: E402

STEPS = ["step-100", "step-1000", "step-50", "step-500"]  # out of order: the scripts sort by number


def _synthetic(seed: int) -> pd.DataFrame:
    """A checkpoint-score file as the paper's: one row per vocabulary token, a step-N column per
    checkpoint. Dictionary words in several spellings (variants), a word listed twice in the
    expanded dictionary (care, accurate), tokens outside the token intersection, non-ASCII
    and blank tokens, and words of no dictionary."""
    nouns = pd.read_csv(PAPER_DATA / "corpora" / "dict_big2_nouns.csv")["token_decoded"].tolist()[:40]
    tokens = []
    for w in nouns:
        tokens += [w, " " + w, w.capitalize()]
    tokens += ["care", " care", "accurate", " Accurate", "able", " able", "freedom", "\u00a0love", "love", " Love",
               "  able  ", "caf\u00e9", "", "   ", "zzqx", "!", "the"]
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"token_id": range(len(tokens)), "token_decoded": tokens})
    for s in STEPS:
        df[s] = rng.normal(size=len(tokens))
    return df


def _write(df: pd.DataFrame, path) -> bytes:
    df.to_parquet(path, index=False)
    return path.read_bytes()


def _r_median_ranks(frames: dict) -> dict:
    """generate_figure_4_and_A5.R's rank_results, transcribed row by row (no core code)."""
    ti = pd.read_csv(PAPER_DATA / "corpora" / "token_intersection.csv", keep_default_na=False, na_values=["NA"])
    allowed = set(ti["token_decoded"].dropna())
    dic = pd.read_csv(PAPER_DATA / "corpora" / "dict_big2_expanded.csv", keep_default_na=False, na_values=["NA"])
    model_ids = {"Llama": "meta-llama--Llama-3.2-3B", "Gemma": "google--gemma-2b-it", "Qwen": "qwen"}
    rows = []  # (model_id, checkpoint, category, score)
    for fam, df in frames.items():
        for _, r in df.iterrows():
            tok = r["token_decoded"]
            if tok not in allowed or len(tok) == 0:
                continue
            clean = "".join(ch for ch in tok if 0x20 <= ord(ch) <= 0x7E or ch in "\t\n\r")
            norm = clean.strip(" \t\r\n").lower()
            for _, d in dic[dic["DicTerm"] == norm].iterrows():
                for cat in ("Agency", "Communion"):
                    if d[cat] == "X":
                        for s in STEPS:
                            rows.append((model_ids[fam], float(s.split("-")[1]), cat, r[s]))
    long = pd.DataFrame(rows, columns=["model_id", "checkpoint", "category", "score"])
    long["rank"] = long.groupby(["model_id", "checkpoint"])["score"].rank(ascending=False, method="average")
    return long.groupby(["model_id", "category", "checkpoint"])["rank"].median().to_dict()


def test_figure_4a_as_the_r_script_computes_it():
    frames = {"Llama": _synthetic(1), "Gemma": _synthetic(2)}
    got, n_tokens = training.figure_4a(frames)
    want = _r_median_ranks(frames)
    assert len(got) == len(want) and len(want) == 2 * 2 * 4
    for m, c, ck, v in zip(got["model_id"], got["category"], got["checkpoint"], got["median_rank"]):
        assert v == pytest.approx(want[(m, c, ck)])
    assert set(got["base_model"]) == {"Llama", "Gemma"} and sorted(got["checkpoint"].unique()) == [50, 100, 500, 1000]
    assert n_tokens > 40


def test_r_rank_puts_missing_scores_last_in_order():
    # R: rank(-c(3, NA, 1, NA, 3)) == c(1.5, 4, 3, 5, 1.5)
    got = training._r_rank_desc(pd.Series([3.0, np.nan, 1.0, np.nan, 3.0]))
    assert got.tolist() == [1.5, 4.0, 3.0, 5.0, 1.5]


def _script_rank_changes(df: pd.DataFrame) -> pd.DataFrame:
    """generate_figure_5_and_A6.py's get_df_ranks_big2 and get_rank_changes_big2, as written there."""
    big2 = pd.read_csv(PAPER_DATA / "corpora" / "dict_big2_nouns.csv")
    df = df.copy()
    df["token_norm"] = (df["token_decoded"].str.encode("ascii", errors="ignore").str.decode("ascii")
                        .str.strip().str.lower())
    df = df[df["token_norm"].str.len() > 0]
    df = df.merge(big2, left_on="token_norm", right_on="token_decoded", suffixes=("", "_dict"), how="inner")
    df = df.rename(columns={"Category": "big2"})
    step_cols = sorted([c for c in df.columns if c.startswith("step-")], key=lambda x: int(x.split("-")[1]))
    agg_dict = {col: "mean" for col in step_cols}
    agg_dict["big2"] = "first"
    grouped = df.groupby("token_norm").agg(agg_dict).reset_index()
    for col in step_cols:
        grouped[f"rank_{col}"] = grouped[col].rank(ascending=False)
    rank_changes = grouped[["token_norm", "big2"]].copy()
    rank_changes["rank_change"] = grouped[f"rank_{step_cols[0]}"] - grouped[f"rank_{step_cols[-1]}"]
    return rank_changes.sort_values("rank_change", ascending=False)


def test_figure_5_as_the_python_script_computes_it():
    df = _synthetic(3)
    got = training.figure_5(df)
    ref = _script_rank_changes(df)
    up, down = got[got["direction"] == "up"], got[got["direction"] == "down"]
    assert list(zip(up["word"], up["category"], up["rank_change"])) == \
        list(zip(ref.head(10)["token_norm"], ref.head(10)["big2"], ref.head(10)["rank_change"]))
    assert list(zip(down["word"], down["rank_change"])) == list(zip(ref.tail(10)["token_norm"],
                                                                    ref.tail(10)["rank_change"]))
    assert got.attrs["first"] == "step-50" and got.attrs["last"] == "step-1000"
    assert (got["rank_change"] == got["rank_first"] - got["rank_last"]).all()


def test_checkpoint_files_imported_by_format(tmp_path, monkeypatch):
    """No sha256 is known for these files: a user's copy is accepted by its format, found
    afterwards, and its sha256 shown; anything else is refused in one line."""
    monkeypatch.setenv("VALUEAUDIT_CACHE", str(tmp_path / "cache"))
    files = training.checkpoint_files(download=False)
    assert all(f["frame"] is None and "not found" in f["message"] for f in files.values())
    data = _write(_synthetic(4), tmp_path / "llama.parquet")
    digest = training.import_checkpoint_file("Llama", data)
    files = training.checkpoint_files(download=False)
    assert files["Llama"]["sha256"] == digest and list(files["Llama"]["frame"].columns) == ["token_decoded"] + STEPS
    assert files["Gemma"]["frame"] is None
    with pytest.raises(paperdata.PaperDataError, match="not a parquet file"):
        training.import_checkpoint_file("Gemma", b"token_decoded,step-1\nlove,1\n")
    with pytest.raises(paperdata.PaperDataError, match="no step-N score columns"):
        training.import_checkpoint_file("Gemma", _write(pd.DataFrame({"token_decoded": ["a"], "x": [1.0]}),
                                                        tmp_path / "bad.parquet"))
    assert not paperdata.imported_path(training.CHECKPOINT_FILES["Gemma"]).exists()
