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


def _rank_changes_by_hand(df: pd.DataFrame, nouns: list[tuple[str, str]]) -> dict[str, tuple]:
    """generate_figure_5_and_A6.py's rule in plain loops (no pandas groupby, rank or merge):
    token text kept as ASCII, stripped and lower-cased; a normalised word's variants
    averaged per checkpoint; ranked per checkpoint, 1 = highest score, ties averaged.
    Returns word -> (category, rank at the lowest step, rank at the highest step)."""
    category = dict((w, c) for c, w in nouns)
    steps = [c for c in df.columns if c.startswith("step-")]
    first, last = min(steps, key=lambda c: int(c[5:])), max(steps, key=lambda c: int(c[5:]))
    sums: dict[str, list[float]] = {}
    for tok, a, b in zip(df["token_decoded"], df[first], df[last]):
        norm = "".join(ch for ch in tok if ord(ch) < 128).strip().lower()
        if norm and norm in category:
            acc = sums.setdefault(norm, [0.0, 0.0, 0])
            acc[0], acc[1], acc[2] = acc[0] + a, acc[1] + b, acc[2] + 1
    mean = {w: (a / n, b / n) for w, (a, b, n) in sums.items()}

    def rank(i: int, w: str) -> float:  # 1 + the words scored higher + half the others tied with it
        v = mean[w][i]
        higher = sum(1 for x in mean.values() if x[i] > v)
        tied = sum(1 for x in mean.values() if x[i] == v) - 1
        return 1 + higher + tied / 2

    return {w: (category[w], rank(0, w), rank(1, w)) for w in mean}


def _assert_figure_5(got: pd.DataFrame, want: dict[str, tuple], n: int) -> None:
    """`got` holds the n biggest and the n smallest rank changes of `want`, each word with its
    own category and ranks (the order among equal changes is the sort's, so not compared)."""
    changes = sorted((r0 - r1 for _, r0, r1 in want.values()), reverse=True)
    up, down = got[got["direction"] == "up"], got[got["direction"] == "down"]
    assert list(up["rank_change"]) == changes[:n] and list(down["rank_change"]) == changes[-n:]
    for row in got.itertuples():
        assert (row.category, row.rank_first, row.rank_last) == want[row.word], row.word
        assert row.rank_change == row.rank_first - row.rank_last
    assert up["word"].is_unique and down["word"].is_unique
    # every word whose change is strictly above the n-th biggest (below the n-th smallest) is listed
    assert {w for w, (_, r0, r1) in want.items() if r0 - r1 > changes[n - 1]} <= set(up["word"])
    assert {w for w, (_, r0, r1) in want.items() if r0 - r1 < changes[-n]} <= set(down["word"])
    assert got.attrs["n_words"] == len(want)


def test_figure_5_as_the_python_script_computes_it():
    df = _synthetic(3)
    nouns = pd.read_csv(PAPER_DATA / "corpora" / "dict_big2_nouns.csv")
    want = _rank_changes_by_hand(df, list(zip(nouns["Category"], nouns["token_decoded"])))
    assert len(want) > 40  # variants (" care", "Care") folded into one word each
    got = training.figure_5(df)
    _assert_figure_5(got, want, 10)
    assert got.attrs["first"] == "step-50" and got.attrs["last"] == "step-1000"


def test_figure_5_on_a_hand_computed_example():
    """Four words; step columns out of order (the script sorts them by number); 'care' has
    two variants whose scores are averaged; a non-ASCII character is dropped, blank and
    unlisted tokens are not ranked; a tie shares the average rank.
    step-50:   skill 5, care (1+3)/2 = 2, trust 2, pwer 0  -> ranks 1, 2.5, 2.5, 4
    step-1000: pwer 5, care (3+5)/2 = 4, trust 3, skill 1  -> ranks 1, 2, 3, 4
    rank change (first - last): pwer +3, care +0.5, trust -0.5, skill -3."""
    df = pd.DataFrame({"token_decoded": ["care", " Care", "skill", "p\u00f6wer", "Trust ", "", "zzqx"],
                       "step-1000": [3.0, 5.0, 1.0, 5.0, 3.0, 9.0, 9.0],
                       "step-200": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                       "step-50": [1.0, 3.0, 5.0, 0.0, 2.0, 9.0, 9.0]})
    nouns = pd.DataFrame({"Category": ["Communion", "Agency", "Agency", "Communion"],
                          "token_decoded": ["care", "skill", "pwer", "trust"]})
    got = training.figure_5(df, nouns, n=2)
    cols = ["word", "category", "rank_first", "rank_last", "rank_change", "direction"]
    assert got[cols].values.tolist() == [["pwer", "Agency", 4.0, 1.0, 3.0, "up"],
                                         ["care", "Communion", 2.5, 2.0, 0.5, "up"],
                                         ["trust", "Communion", 2.5, 3.0, -0.5, "down"],
                                         ["skill", "Agency", 1.0, 4.0, -3.0, "down"]]
    assert (got.attrs["first"], got.attrs["last"], got.attrs["n_words"]) == ("step-50", "step-1000", 4)
    assert _rank_changes_by_hand(df, list(zip(nouns["Category"], nouns["token_decoded"]))) == {
        w: (c, r0, r1) for w, c, r0, r1, *_ in got[cols].values.tolist()}


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
