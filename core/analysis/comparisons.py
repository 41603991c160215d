"""Family comparisons per (category, framing) panel: Welch t-test, two-sided permutation
t-test, Hedges' g with a bootstrap 95 % interval, Bonferroni over all panels (METHOD.md section 4)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .levels import json_float, sorted_levels
from .result import FamilyTest


def _welch_t_rows(S1, Q1, n1, S, Q, n):
    """Welch t for many splits at once from group sums (rows = permutations)."""
    n2 = n - n1
    m1, m2 = S1 / n1, (S - S1) / n2
    v1 = (Q1 - n1 * m1 ** 2) / (n1 - 1)
    v2 = ((Q - Q1) - n2 * m2 ** 2) / (n2 - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (m1 - m2) / np.sqrt(v1 / n1 + v2 / n2)


def permutation_labels(n: int, n1: int, permutations: int, seed: int) -> np.ndarray:
    """`permutations` random splits of n rows into n1 + (n - n1), as a 0/1 float matrix.
    Seeded by (seed, n, n1) so that panels of the same shape share one matrix: each
    panel's test stays exact, and a balanced design draws the matrix only once."""
    rng = np.random.default_rng([seed, n, n1])
    labels = np.zeros((permutations, n), dtype=bool)
    labels[:, :n1] = True
    return rng.permuted(labels, axis=1).astype(float)


def permutation_p(a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> float:
    """Two-sided permutation p of the Welch t: family labels shuffled over the rows,
    p = (1 + #{|t*| >= |t|}) / (1 + permutations)."""
    return float(permutation_p_many(np.atleast_2d(a), np.atleast_2d(b), labels)[0])


def permutation_p_many(A: np.ndarray, B: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """permutation_p for k panels of the same shape at once (rows of A and B): one matrix
    product of the (permutations x n) label matrix with the (n x k) data gives every
    permuted group sum, so 10,000 permutations of 10 panels cost milliseconds."""
    x = np.concatenate([A, B], axis=1).astype(float)
    x = x - x.mean(axis=1, keepdims=True)  # centring keeps the sum-of-squares formula accurate
    n1, n = A.shape[1], x.shape[1]
    S, Q = x.sum(axis=1), (x ** 2).sum(axis=1)
    t_obs = _welch_t_rows(x[:, :n1].sum(axis=1), (x[:, :n1] ** 2).sum(axis=1), n1, S, Q, n)
    if labels is None or len(labels) == 0:
        return np.full(len(x), np.nan)
    t = _welch_t_rows(labels @ x.T, labels @ (x ** 2).T, n1, S, Q, n)  # permutations x k
    hits = np.sum(np.abs(t) >= np.abs(t_obs) * (1 - 1e-12), axis=0)
    return np.where(np.isfinite(t_obs), (1 + hits) / (1 + len(labels)), np.nan)


def hedges_g(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hedges' g of a minus b (pooled SD, small-sample correction); works on rows of 2-D arrays."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    n1, n2 = a.shape[1], b.shape[1]
    sp = np.sqrt(((n1 - 1) * a.var(axis=1, ddof=1) + (n2 - 1) * b.var(axis=1, ddof=1)) / (n1 + n2 - 2))
    j = 1 - 3 / (4 * (n1 + n2) - 9)
    with np.errstate(divide="ignore", invalid="ignore"):
        return j * (a.mean(axis=1) - b.mean(axis=1)) / sp


def bootstrap_ci(a, b, reps: int, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile 95% CI of Hedges' g, resampling rows within each family."""
    if reps <= 0:
        return float("nan"), float("nan")
    ia = rng.integers(0, len(a), size=(reps, len(a)))
    ib = rng.integers(0, len(b), size=(reps, len(b)))
    g = hedges_g(a[ia], b[ib])
    g = g[np.isfinite(g)]
    if len(g) == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(g, [2.5, 97.5])
    return float(lo), float(hi)


def family_tests(med: pd.DataFrame, permutations=10000, seed=0, bootstrap=2000) -> list[FamilyTest]:
    """Per (category, framing) panel: each non-reference family vs the reference family over
    the (model, prompt) median ranks (the rows R's Welch test used). effect_size = Hedges' g
    of (family − reference): negative means the family ranks the category's words higher
    (nearer rank 1) than the reference family does."""
    d = med.dropna(subset=["family"])
    fams = sorted_levels(d["family"])
    ref, others = fams[0], fams[1:]
    rows, data = [], []
    for i, ((cat, fr), panel) in enumerate(d.groupby(["category", "framing"], sort=True)):
        for j, fam in enumerate(others):
            a = panel.loc[panel["family"] == fam, "median_rank"].to_numpy(float)
            b = panel.loc[panel["family"] == ref, "median_rank"].to_numpy(float)
            rows.append(_one_test(cat, fr, fam, ref, a, b, bootstrap, np.random.default_rng([seed, i, j])))
            data.append((a, b))
    _add_permutation_p(rows, data, int(permutations), seed)
    m = len(rows)
    for r in rows:
        r["welch_p_bonferroni"] = _bonf(r["welch_p"], m)
        r["permutation_p_bonferroni"] = _bonf(r["permutation_p"], m)
    numbers = ["welch_p", "welch_p_bonferroni", "permutation_p", "permutation_p_bonferroni",
               "effect_size", "effect_ci_low", "effect_ci_high"]
    return [FamilyTest(str(r["category"]), str(r["framing"]), r["comparison"], *(json_float(r[k]) for k in numbers))
            for r in rows]


def _add_permutation_p(rows: list[dict], data: list[tuple], permutations: int, seed: int) -> None:
    """Permutation p for every test, batching tests of the same shape into one matrix product."""
    by_shape: dict[tuple, list[int]] = {}
    for idx, (a, b) in enumerate(data):
        rows[idx]["permutation_p"] = float("nan")
        if min(len(a), len(b)) >= 2 and permutations > 0:
            by_shape.setdefault((len(a) + len(b), len(a)), []).append(idx)
    for (n, n1), idxs in by_shape.items():
        labels = permutation_labels(n, n1, permutations, seed)
        ps = permutation_p_many(np.stack([data[i][0] for i in idxs]), np.stack([data[i][1] for i in idxs]), labels)
        for i, p in zip(idxs, ps):
            rows[i]["permutation_p"] = float(p)


def _one_test(cat, fr, fam, ref, a, b, bootstrap, rng) -> dict:
    if len(a) >= 2 and len(b) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            welch = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
        g = float(hedges_g(a, b)[0])
        lo, hi = bootstrap_ci(a, b, bootstrap, rng)
    else:
        welch = g = lo = hi = float("nan")
    return {"category": cat, "framing": fr, "comparison": f"{fam} vs {ref}", "welch_p": welch,
            "effect_size": g, "effect_ci_low": lo, "effect_ci_high": hi}


def _bonf(p: float, m: int) -> float:
    return min(1.0, p * m) if np.isfinite(p) else float("nan")

