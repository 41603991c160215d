"""The paper's mixed model: lme(median_rank ~ family*category*framing, random = ~1|model),
REML, with nlme's t-test p-values (METHOD.md section 4)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from .levels import framing_levels, json_float, sorted_levels
from .result import MixedModel, Term


def design_matrix(df: pd.DataFrame, factors: list[str], levels: dict | None = None) -> tuple[np.ndarray, list[str]]:
    """R-style `a*b*c` model matrix with treatment contrasts: reference = first level
    (alphabetical unless `levels` gives a factor's order); columns and names in R's order
    (first factor varies fastest)."""
    n = len(df)
    dummies = {}
    for f in factors:
        given = (levels or {}).get(f)
        order = list(given) if given is not None else sorted_levels(df[f])
        vals = df[f].astype(str).to_numpy()
        dummies[f] = [(f"{f}{lv}", (vals == lv).astype(float)) for lv in order[1:]]
    cols, names = [np.ones(n)], ["(Intercept)"]
    for r in range(1, len(factors) + 1):
        for combo in itertools.combinations(factors, r):
            # R: the first factor varies fastest, so iterate the last factor outermost.
            for parts in itertools.product(*[dummies[f] for f in reversed(combo)]):
                parts = parts[::-1]
                names.append(":".join(p[0] for p in parts))
                cols.append(np.prod([p[1] for p in parts], axis=0))
    return np.column_stack(cols), names


def drop_aliased(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop columns that are linear combinations of earlier ones (empty design cells), by
    Gram-Schmidt in column order as R's lm does; R's lme would stop with an error instead."""
    basis, keep, dropped = [], [], []
    for j in range(X.shape[1]):
        x = X[:, j].astype(float)
        r = x.copy()
        for q in basis:
            r -= (q @ r) * q
        norm = np.linalg.norm(r)
        if norm > 1e-7 * max(np.linalg.norm(x), 1.0):
            basis.append(r / norm)
            keep.append(j)
        else:
            dropped.append(names[j])
    return X[:, keep], [names[j] for j in keep], dropped


def _group_sums(X: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Column sums of X per group (bincount per column: much faster than np.add.at)."""
    return np.column_stack([np.bincount(codes, weights=X[:, j], minlength=k) for j in range(X.shape[1])])


def nlme_df(X: np.ndarray, names: list[str], groups: np.ndarray) -> np.ndarray:
    """Denominator df as nlme assigns them for one grouping level: a column constant within
    every group is a between-group term (df = groups - 1 - between columns); the intercept
    and within-group columns get N - groups - within columns."""
    n, p = X.shape
    codes, uniq = pd.factorize(groups)
    n_groups = len(uniq)
    means = _group_sums(X, codes, n_groups) / np.bincount(codes)[:, None]
    between = np.all(np.abs(X - means[codes]) < 1e-9, axis=0)
    between[0] = False  # the intercept is reported at the innermost level
    n_between = int(between.sum())
    n_within = p - 1 - n_between
    df_between = n_groups - 1 - n_between
    df_within = n - n_groups - n_within
    return np.where(between, df_between, df_within).astype(float)


def reml_random_intercept(y: np.ndarray, X: np.ndarray, groups: np.ndarray) -> dict:
    """REML fit of y = X b + u[group] + e (one random intercept), as nlme's lme does.
    Why not statsmodels' mixedlm: on the published Big Two data its optimiser stops at a
    wrong optimum (intercept 8.8 instead of 97.5). With one random intercept the REML
    criterion has a closed form in the variance ratio g = tau^2/sigma^2 (V_i = I + g J),
    so a 1-D bounded search over log g is exact and fast."""
    from scipy.optimize import minimize_scalar

    codes, uniq = pd.factorize(groups)
    n, p = X.shape
    n_i = np.bincount(codes).astype(float)
    Sx = _group_sums(X, codes, len(uniq))
    Sy = np.bincount(codes, weights=y)
    XtX, Xty, yty = X.T @ X, X.T @ y, y @ y

    def solve(g):
        c = g / (1 + g * n_i)
        A = XtX - (Sx * c[:, None]).T @ Sx
        b = Xty - Sx.T @ (c * Sy)
        beta = np.linalg.solve(A, b)
        rss = yty - 2 * beta @ Xty + beta @ XtX @ beta - np.sum(c * (Sy - Sx @ beta) ** 2)
        return beta, A, rss

    def neg_reml(log_g):
        g = math.exp(log_g)
        beta, A, rss = solve(g)
        rss = max(rss, 1e-12 * max(yty, 1.0))  # an exact fit (rss 0) would stop the search, not end it
        return 0.5 * ((n - p) * math.log(rss / (n - p)) + np.sum(np.log1p(g * n_i))
                      + np.linalg.slogdet(A)[1])

    opt = minimize_scalar(neg_reml, bounds=(-30.0, 15.0), method="bounded",
                          options={"xatol": 1e-10, "maxiter": 500})
    log_g = opt.x if neg_reml(opt.x) <= neg_reml(-30.0) else -30.0
    g = math.exp(log_g)
    beta, A, rss = solve(g)
    sigma2 = rss / (n - p)
    cov = sigma2 * np.linalg.inv(A)
    return {"beta": beta, "se": np.sqrt(np.diag(cov)), "sigma2": sigma2, "tau2": g * sigma2}


def mixed_model(med: pd.DataFrame) -> MixedModel:
    """Fixed effects of median_rank ~ family*category*framing with a random intercept per
    model (REML), with nlme-style t-test p-values; factors with one level are left out."""
    d = med.dropna(subset=["family"]).reset_index(drop=True)
    factors = [f for f in ("family", "category", "framing") if d[f].nunique() > 1]
    X, names = design_matrix(d, factors, levels={"framing": framing_levels(d["framing"])})
    X, names, dropped = drop_aliased(X, names)
    y = d["median_rank"].to_numpy(float)
    groups = d["_key"].astype(str).to_numpy()
    if len(y) <= X.shape[1]:  # e.g. one model per family on one prompt per framing: nothing left to estimate error
        return MixedModel([], {}, list(dropped), f"not fitted: {len(y)} medians for {X.shape[1]} terms leave no "
                          "residual degrees of freedom; score more prompts or models")
    fit = reml_random_intercept(y, X, groups)
    est, se = fit["beta"], fit["se"]
    df = nlme_df(X, names, groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / se
        p = np.where(df > 0, 2 * stats.t.sf(np.abs(t), np.maximum(df, 1)), np.nan)
    terms = [Term(nm, float(e), json_float(pv)) for nm, e, pv in zip(names, est, p)]
    levels = {"family": sorted_levels(d["family"]), "category": sorted_levels(d["category"]),
              "framing": framing_levels(d["framing"])}
    left_out = [f for f in ("family", "category", "framing") if f not in factors]
    return MixedModel(terms, {f: levels[f][0] for f in factors}, list(dropped),
                      "left out (one level only): " + ", ".join(left_out) if left_out else None)

