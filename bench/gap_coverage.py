"""Calibration of the family-gap verdict (issue 22): how often a 95% interval covers the true
gap, and how often a gap is called clearly different when the families do not differ, for
the rule the product uses (`uncertainty.family_gaps`: the models' spread within each family
plus a bootstrap of prompts and words, t with Welch–Satterthwaite df) beside the rule it
replaced (a percentile bootstrap that draws models within family, prompts and words) and
that rule drawing n − 1 models per family.

Simulated studies shaped like the paper's: 4 Gemma and 6 Llama RMs, 27 prompts, 20 words per
category. A model's value on a (prompt, word) is

    shift·[Llama] + model + family×prompt + family×word + model×prompt + model×word
    + word + prompt + noise

with every effect normal and the model effect's SD drawn per study from 3 to 6 ranks.
Values are used as ranks (not re-ranked), so the true gap of the statistic (mean over a
family's models of each model's mean over prompts of its median over words) is `shift`
exactly; one more design ranks real scores among 40 words (both categories) under no
difference, where the true gap is 0 by symmetry. Each study runs the product's own code on
a word-rank table (`uncertainty.resample`, `uncertainty.family_gaps`).

Designs:
  models-differ   the reviewer's: models differ by 3-6 ranks, little else varies (1-rank
                  interactions, noise SD 5)
  families×words  the families also rank the same words and prompts differently (family ×
                  word SD 6, family × prompt SD 3): what the models' spread cannot see
  noisy           Big Two-like: large model × word and residual noise (SD 6 and 30)
  ranked          scores ranked among 40 words, the Agency panel, no difference

Run from the repository root: python -m bench.gap_coverage [--studies N] [--reps N] [--seed S]
(defaults 1000 studies per design and shift, 2000 draws each: about 40 min on one core)."""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from core import uncertainty

FAMILY = np.array(["Gemma"] * 4 + ["Llama"] * 6)
N_PROMPTS, N_WORDS = 27, 20
DESIGNS = {  # SDs: family×prompt, family×word, model×prompt, model×word, noise
    "models-differ": dict(fp=1.0, fw=1.0, mp=1.0, mw=1.0, e=5.0),
    "families×words": dict(fp=3.0, fw=6.0, mp=1.0, mw=1.0, e=5.0),
    "noisy": dict(fp=3.0, fw=4.0, mp=4.0, mw=6.0, e=30.0),
    "ranked": dict(fp=0.15, fw=0.3, mp=0.15, mw=0.3, e=1.0, model_scale=0.35),
}
SHIFT = 5.0  # ranks: the size of the Big Two gaps


def values(rng: np.random.Generator, sd: dict, shift: float, n_words: int) -> np.ndarray:
    """One study's values [model, prompt, word]; the model effect (and the shift) on the first
    N_WORDS words (the Agency panel) only, so it survives ranking among all the words."""
    M, P, W = len(FAMILY), N_PROMPTS, n_words
    f = (FAMILY == "Llama").astype(int)
    agency = (np.arange(W) < N_WORDS).astype(float)
    model = rng.normal(0, rng.uniform(3, 6) * sd.get("model_scale", 1.0), M)[:, None] * agency[None, :]
    fp, fw = rng.normal(0, sd["fp"], (2, P)), rng.normal(0, sd["fw"], (2, W))
    mp, mw = rng.normal(0, sd["mp"], (M, P)), rng.normal(0, sd["mw"], (M, W))
    word, prompt = rng.normal(0, 20 * sd["e"] / 5, W), rng.normal(0, 5, P)
    return (shift * f[:, None, None] * agency + model[:, None, :] + fp[f][:, :, None] + fw[f][:, None, :]
            + mp[:, :, None] + mw[:, None, :] + word[None, None, :] + prompt[None, :, None]
            + rng.normal(0, sd["e"], (M, P, W)))


def table(y: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The word-rank table and corpus the product reads (one framing; categories by word)."""
    M, P, W = y.shape
    m, p, w = np.meshgrid(np.arange(M), np.arange(P), np.arange(W), indexing="ij")
    ranks = pd.DataFrame({"model": [f"m{i}" for i in m.ravel()], "family": FAMILY[m.ravel()],
                          "prompt_id": [f"p{i:02d}" for i in p.ravel()], "framing": "positive",
                          "response": [f"w{i:02d}" for i in w.ravel()], "rank": y.ravel()})
    cats = ["Agency"] * N_WORDS + ["Communion"] * (W - N_WORDS)
    return ranks, pd.DataFrame({"word": [f"w{i:02d}" for i in range(W)], "category": cats})


def old_rule(x: dict, rng: np.random.Generator, reps: int, drop_one: bool = False) -> tuple[float, float]:
    """The replaced rule: percentile interval of the gap over draws of models within family
    (n of n, or n − 1 of n), prompts and words."""
    fam = x["panel"]["family"]
    if drop_one:
        counts = np.zeros((reps, len(fam)), np.int64)
        for f in ("Gemma", "Llama"):
            idx = np.flatnonzero(fam == f)
            draw = rng.integers(0, len(idx), size=(reps, len(idx) - 1)) + (np.arange(reps) * len(idx))[:, None]
            counts[:, idx] = np.bincount(draw.ravel(), minlength=reps * len(idx)).reshape(reps, len(idx))
    else:
        counts = uncertainty.model_draws(rng, reps, fam)  # the product's own former draws
    gap = (uncertainty.family_mean(x["boot"], fam, "Llama", counts)
           - uncertainty.family_mean(x["boot"], fam, "Gemma", counts))
    return uncertainty.percentile_ci(gap, 0.95)


def study(design: str, shift: float, rng: np.random.Generator, reps: int, seed: int) -> dict:
    sd = DESIGNS[design]
    if design == "ranked":  # scores ranked among both categories' words: 1 = highest score
        y = values(rng, sd, 0.0, 2 * N_WORDS)
        y = (-y).argsort(-1).argsort(-1) + 1.0
    else:
        y = values(rng, sd, shift, N_WORDS)
    ranks, words = table(y)
    rs = uncertainty.resample(ranks, words, reps=reps, seed=seed)
    new = uncertainty.family_gaps(resamples=rs)
    new = new[new["category"] == "Agency"].iloc[0]
    x = rs.panels[("positive", "Agency")]
    return {"new": (new["ci_low"], new["ci_high"]), "old": old_rule(x, rng, reps),
            "old, n − 1 models": old_rule(x, rng, reps, drop_one=True), "df": new["df"]}


RULES = ("old", "old, n − 1 models", "new")


def run(design: str, shift: float, studies: int, reps: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, list(DESIGNS).index(design), int(shift * 10)])
    covers = {r: 0 for r in RULES}
    clear = {r: 0 for r in RULES}
    dfs = []
    for i in range(studies):
        got = study(design, shift, rng, reps, seed + i)
        dfs.append(got["df"])
        for r in RULES:
            lo, hi = got[r]
            covers[r] += lo <= shift <= hi
            clear[r] += not lo <= 0 <= hi
    return {"design": design, "shift": shift, "studies": studies,
            **{f"coverage[{r}]": covers[r] / studies for r in RULES},
            **{f"clear[{r}]": clear[r] / studies for r in RULES}, "median df": float(np.median(dfs))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20260601)
    ap.add_argument("--designs", default=",".join(DESIGNS))
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    for design in args.designs.split(","):
        for shift in ((0.0,) if design == "ranked" else (0.0, SHIFT)):
            rows.append(run(design, shift, args.studies, args.reps, args.seed))
            r = rows[-1]
            print(f"{design:15s} shift {shift:3.0f}: coverage " + ", ".join(
                f"{k}: {r[f'coverage[{k}]']:.3f}" for k in RULES) + " | clearly different " + ", ".join(
                f"{k}: {r[f'clear[{k}]']:.3f}" for k in RULES) + f" | median df {r['median df']:.1f}", flush=True)
    se = math.sqrt(0.95 * 0.05 / args.studies)
    print(f"\n{args.studies} studies per row, {args.reps:,} draws each, seed {args.seed}; binomial SE of a "
          f"coverage near 0.95: {se:.3f}; {time.perf_counter() - t0:.0f} s")
    print("shift 0: 'clearly different' = false-positive rate (target <= 0.05); shift 5: power. "
          "Coverage target >= 0.94.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
