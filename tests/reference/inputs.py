"""Inputs of the R reference runs in this folder, rebuilt the way the tests rebuild them.

`python -m tests.reference.inputs NAME OUT.csv` writes the rows an R script in this folder
reads (README.md says which script makes which JSON):
- `crossed_subset`: the published Big Two scores (import-published into a fresh store) of
  SUBSET_MODELS on SUBSET_PROMPTS, one row per (model, prompt, word), `rank` among the 263
  words (1 = highest reward, ties averaged) — a second data set for the Satterthwaite df;
- `crossed_sim`: a small simulated data set without a model × category × framing effect
  (its estimated variance is small, 0.01), committed as crossed_sim.csv;
- `crossed_sim_singular`: the same design, another seed: that variance is estimated at zero
  (a singular fit: the Satterthwaite df then use the Hessian's pseudo-inverse, as lmerTest)."""
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
COLUMNS = ["model", "family", "prompt_id", "response", "category", "framing", "rank"]


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


def main(argv: list[str]) -> int:
    name, out = argv
    if name == "crossed_subset":
        import tempfile

        from core.published import import_published
        from core.store import Store
        store = Store(Path(tempfile.mkdtemp()) / "scores.duckdb")
        import_published(store)
        subset_rows(store).to_csv(out, index=False)
    elif name in SIMULATED:
        simulated_rows(SIMULATED[name]).to_csv(out, index=False)
    else:
        raise SystemExit(f"unknown input {name!r}: crossed_subset or one of {', '.join(SIMULATED)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
