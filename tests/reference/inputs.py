"""Inputs of the R reference runs in this folder, rebuilt the way the tests rebuild them.

`python -m tests.reference.inputs NAME OUT.csv` writes the rows an R script in this folder
reads (README.md says which script makes which JSON):
- `crossed_subset`: the published Big Two scores (import-published into a fresh store) of
  SUBSET_MODELS on SUBSET_PROMPTS, one row per (model, prompt, word), `rank` among the 263
  words (1 = highest reward, ties averaged) — a second data set for the Satterthwaite df;
- `crossed_sim`: a small simulated data set without a model × category × framing effect
  (its estimated variance is small, 0.01), committed as crossed_sim.csv;
- `crossed_sim_singular`: the same design, another seed: that variance is estimated at zero
  (a singular fit: the Satterthwaite df then use the Hessian's pseudo-inverse, as lmerTest);
- `crossed_sim3`: three families and three categories (a user's Qwen-based RM; an MFD-like
  corpus), so the family × category × framing term has 4 coefficients and one joint F test;
- `paired_big2`: the published Big Two ranks of PAIRED_MODELS (a Gemma and a Llama RM), for
  the paired comparison's one test per framing;
- `bootstrap_sim`: one panel of a small study and 400 draws of models within family, prompts
  and words (bootstrap_sim.csv, bootstrap_sim_draws.csv): R recomputes the family gap of
  every draw by literally repeating the drawn rows."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
# 3 Gemma and 4 Llama RMs, and 10 of the 27 prompts of each framing.
SUBSET_MODELS = ["Ray2333/GRM-gemma2-2B-rewardmodel-ft", "Skywork/Skywork-Reward-Gemma-2-27B",
                 "nicolinho/QRM-Gemma-2-27B", "LxzGordon/URM-LLaMa-3.1-8B", "RLHFlow/ArmoRM-Llama3-8B-v0.1",
                 "Ray2333/GRM-Llama3.2-3B-rewardmodel-ft", "nicolinho/QRM-Llama3.1-8B"]
SUBSET_PROMPTS = ["best_ever_one", "best_time_please", "best_world_single", "good_ever_please", "good_time_single",
                  "greatest_ever_single", "greatest_time_one", "greatest_world_please", "good_world_one",
                  "best_time_one", "bad_ever_one", "bad_time_please", "bad_world_single", "terrible_ever_please",
                  "terrible_time_single", "worst_ever_single", "worst_time_one", "worst_world_please",
                  "bad_world_one", "terrible_world_one"]
SIMULATED = {"crossed_sim": 20260522, "crossed_sim_singular": 20260523}
BOOT_REPS = 400
COLUMNS = ["model", "family", "prompt_id", "response", "category", "framing", "rank"]


PAIRED_MODELS = ["Ray2333/GRM-gemma2-2B-rewardmodel-ft", "Ray2333/GRM-Llama3.2-3B-rewardmodel-ft"]


def paired_rows(store) -> pd.DataFrame:
    """The paired_big2 rows: the two PAIRED_MODELS on every Big Two word and paper prompt."""
    from core import corpora, uncertainty, words
    w = corpora.load("big2-nouns").words
    r = words.ranked_from_store(store, w, "big2-nouns", models=PAIRED_MODELS)
    return uncertainty.prepare(r, w)[COLUMNS].sort_values(COLUMNS[:4]).reset_index(drop=True)


def subset_rows(store) -> pd.DataFrame:
    """The crossed_subset rows from a store holding the published scores (ranks among all
    263 words of each (model, prompt), then narrowed: narrowing never changes a rank)."""
    from core import corpora, uncertainty, words
    w = corpora.load("big2-nouns").words
    r = words.ranked_from_store(store, w, "big2-nouns", models=SUBSET_MODELS)
    r = r[r["prompt_id"].isin(SUBSET_PROMPTS)]
    return uncertainty.prepare(r, w)[COLUMNS].sort_values(COLUMNS[:4]).reset_index(drop=True)


def simulated_rows(seed: int) -> pd.DataFrame:
    """5 models (2 Gemma, 3 Llama), 8 prompts (4 each framing), 30 words (15 per category):
    word, family x word x framing and residual effects, no model x category x framing effect."""
    rng = np.random.default_rng(seed)
    fam = np.array(["Gemma", "Gemma", "Llama", "Llama", "Llama"])
    cat = np.array(["Agency"] * 15 + ["Communion"] * 15)
    framing = np.array(["positive"] * 4 + ["negative"] * 4)
    word = rng.normal(0, 3, 30)
    fwf = rng.normal(0, 2, (2, 30, 2))
    rows = []
    for m in range(5):
        for p in range(8):
            f, fr = int(fam[m] == "Llama"), int(framing[p] == "negative")
            y = 50 + 2 * f + 3 * fr * (cat == "Communion") + word + fwf[f, :, fr] + rng.normal(0, 2, 30)
            rows += [(f"m{m}", fam[m], f"p{p}", f"w{w:02d}", cat[w], framing[p], round(float(y[w]), 6))
                     for w in range(30)]
    return pd.DataFrame(rows, columns=COLUMNS)


def simulated_rows_3x3(seed: int = 20260601) -> pd.DataFrame:
    """7 models (2 Gemma, 3 Llama, 2 Qwen: a user's third family), 8 prompts (4 each framing),
    36 words (12 in each of Agency, Care, Communion): the family × category × framing term
    has (3 − 1)(3 − 1)(2 − 1) = 4 coefficients, so its test is one joint F test. A small
    three-way effect (Qwen on Care words, negative prompts) beside the crossed_sim effects."""
    rng = np.random.default_rng(seed)
    fam = np.array(["Gemma", "Gemma", "Llama", "Llama", "Llama", "Qwen", "Qwen"])
    cat = np.array(["Agency"] * 12 + ["Care"] * 12 + ["Communion"] * 12)
    framing = np.array(["positive"] * 4 + ["negative"] * 4)
    word = rng.normal(0, 3, 36)
    fwf = rng.normal(0, 2, (3, 36, 2))
    mcf = rng.normal(0, 0.5, (7, 3, 2))
    rows = []
    for m in range(7):
        f = ["Gemma", "Llama", "Qwen"].index(fam[m])
        for p in range(8):
            fr = int(framing[p] == "negative")
            c = np.searchsorted(["Agency", "Care", "Communion"], cat)
            y = (50 + 2 * (f == 1) + 3 * fr * (cat == "Communion") + 2.5 * (f == 2) * fr * (cat == "Care") + word
                 + fwf[f, :, fr] + mcf[m, c, fr] + rng.normal(0, 2, 36))
            rows += [(f"m{m}", fam[m], f"p{p}", f"w{w:02d}", cat[w], framing[p], round(float(y[w]), 6))
                     for w in range(36)]
    return pd.DataFrame(rows, columns=COLUMNS)


def bootstrap_rows(seed: int = 7) -> pd.DataFrame:
    """One panel (positive prompts, Agency words) of a small study: 5 models (2 Gemma, 3
    Llama), 7 prompts, 12 Agency words ranked among 24 (the 12 others not in the panel), ties
    averaged; Llama models favour the Agency words a little; one word unscored for one
    (model, prompt)."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(5):
        fam = "Gemma" if m < 2 else "Llama"
        lean = rng.normal(0.6 if fam == "Llama" else 0.0, 0.3)
        for p in range(7):
            score = np.round(rng.normal(0, 1.0, 24) + lean * (np.arange(24) < 12), 1)  # rounding: ties
            rank = pd.Series(-score).rank(method="average").to_numpy()
            for w in range(12):
                if (m, p, w) == (3, 4, 5):
                    continue
                rows.append((f"m{m}", fam, f"p{p}", f"w{w:02d}", "Agency", "positive", float(rank[w])))
    return pd.DataFrame(rows, columns=COLUMNS)


def bootstrap_draws(seed: int = 8) -> pd.DataFrame:
    """BOOT_REPS draws of models within family, prompts and words for bootstrap_rows, as
    (rep, kind, unit, count) rows: the counts both R and core are fed."""
    rng = np.random.default_rng(seed)
    units = {"model": [f"m{m}" for m in range(5)], "prompt": [f"p{p}" for p in range(7)],
             "word": [f"w{w:02d}" for w in range(12)]}
    rows = []
    for r in range(1, BOOT_REPS + 1):
        c = {"model": np.concatenate([np.bincount(rng.integers(0, 2, 2), minlength=2),
                                      np.bincount(rng.integers(0, 3, 3), minlength=3)]),
             "prompt": np.bincount(rng.integers(0, 7, 7), minlength=7),
             "word": np.bincount(rng.integers(0, 12, 12), minlength=12)}
        rows += [(r, kind, u, int(n)) for kind in units for u, n in zip(units[kind], c[kind]) if n]
    return pd.DataFrame(rows, columns=["rep", "kind", "unit", "count"])


def main(argv: list[str]) -> int:
    name, out = argv
    if name in ("crossed_subset", "paired_big2"):
        import tempfile

        from core.published import import_published
        from core.store import Store
        store = Store(Path(tempfile.mkdtemp()) / "scores.duckdb")
        import_published(store)
        (subset_rows if name == "crossed_subset" else paired_rows)(store).to_csv(out, index=False)
    elif name == "bootstrap_sim":
        bootstrap_rows().to_csv(out, index=False)
        bootstrap_draws().to_csv(Path(out).with_name(Path(out).stem + "_draws.csv"), index=False)
    elif name in SIMULATED:
        simulated_rows(SIMULATED[name]).to_csv(out, index=False)
    elif name == "crossed_sim3":
        simulated_rows_3x3().to_csv(out, index=False)
    else:
        raise SystemExit(f"unknown input {name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
