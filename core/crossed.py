"""A mixed model that respects the design: word-level ranks with crossed random effects.

The paper's model (analysis.mixed_model) fits one median rank per (model, prompt, category)
with a random intercept per model. This model keeps every word's rank and gives models,
prompts and words each their own random level, plus each model's own leaning on each
(category, framing) — so a family gap carried by a few words, a few prompts or one or two
models widens the interval instead of counting as evidence. It is an option beside the
paper's model, never a replacement.

Fit: REML by the penalised least-squares formulation lme4 uses (Bates et al. 2015). All
it needs are cross-products (Z'Z, Z'X, X'X, Z'y, X'y, y'y), computed once; each evaluation
of the REML criterion is one Cholesky factorisation of a (q x q) matrix, q = number of
random levels (a few hundred), so 10^5 word ranks fit in seconds."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import linalg, optimize, sparse, stats

from . import analysis

DEFAULT_TERMS = ("model", "prompt_id", "response", "model:category:framing")
TERM_LABELS = {"model": "model", "prompt_id": "prompt", "response": "word",
               "model:category:framing": "model × category × framing"}

WHAT_IT_ADDS = ("Beside the paper's model (one median per model and prompt, models as the only random level), "
                "this model keeps every word's rank and lets models, prompts and words each have their own "
                "random level, plus each model's own leaning per category and framing — so a gap carried by a "
                "few words, prompts or models shows up as a wider interval instead of as significance.")


def random_design(d: pd.DataFrame, terms=DEFAULT_TERMS) -> tuple[sparse.csr_matrix, list[int], list[str]]:
    """Z = [Z_1 | Z_2 | ...], one indicator block per grouping term ('a:b' = the combination)."""
    blocks, sizes = [], []
    for t in terms:
        codes = d.groupby(t.split(":"), sort=True, dropna=False).ngroup().to_numpy()
        n_levels = int(codes.max()) + 1 if len(codes) else 0
        blocks.append(sparse.csr_matrix((np.ones(len(d)), (np.arange(len(d)), codes)), shape=(len(d), n_levels)))
        sizes.append(n_levels)
    return sparse.hstack(blocks, format="csr"), sizes, list(terms)


def reml_fit(y: np.ndarray, X: np.ndarray, Z: sparse.spmatrix, sizes: list[int]) -> dict:
    """REML fit of y = X b + sum_k Z_k u_k + e, u_k ~ N(0, theta_k^2 sigma^2 I).
    Returns beta, its covariance, sigma2 and the variance of each random term."""
    n, p = X.shape
    ZtZ = (Z.T @ Z).toarray()
    ZtX = np.asarray(Z.T @ X)
    Zty = np.asarray(Z.T @ y).ravel()
    XtX, Xty, yty = X.T @ X, X.T @ y, float(y @ y)
    blocks = np.repeat(np.arange(len(sizes)), sizes)
    q = ZtZ.shape[0]

    def pieces(theta):
        lam = theta[blocks]
        A = lam[:, None] * ZtZ * lam[None, :] + np.eye(q)
        L = linalg.cholesky(A, lower=True, check_finite=False)
        cu = linalg.solve_triangular(L, lam * Zty, lower=True, check_finite=False)
        RZX = linalg.solve_triangular(L, lam[:, None] * ZtX, lower=True, check_finite=False)
        XtVX = XtX - RZX.T @ RZX
        RX = linalg.cholesky(XtVX, lower=True, check_finite=False)
        cb = linalg.solve_triangular(RX, Xty - RZX.T @ cu, lower=True)
        r2 = yty - cu @ cu - cb @ cb
        return L, RX, cb, r2, XtVX

    def deviance(theta):
        try:
            L, RX, _, r2, _ = pieces(np.abs(theta))
        except linalg.LinAlgError:
            return np.inf
        if r2 <= 0:
            return np.inf
        return (2 * np.sum(np.log(np.diag(L))) + 2 * np.sum(np.log(np.diag(RX)))
                + (n - p) * (1 + math.log(2 * math.pi * r2 / (n - p))))

    k = len(sizes)
    best = optimize.minimize(deviance, np.full(k, 0.5), method="L-BFGS-B", bounds=[(0, None)] * k,
                             options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2000})
    theta = np.abs(best.x)
    L, RX, cb, r2, XtVX = pieces(theta)
    beta = linalg.solve_triangular(RX.T, cb, lower=False)
    sigma2 = r2 / (n - p)
    cov = sigma2 * np.linalg.inv(XtVX)
    return {"beta": beta, "cov": cov, "sigma2": sigma2, "variances": sigma2 * theta ** 2,
            "reml_deviance": float(best.fun), "converged": bool(best.success)}


def crossed_model(ranks: pd.DataFrame, words: pd.DataFrame, terms=DEFAULT_TERMS) -> dict:
    """rank ~ family * category * framing + crossed random intercepts (default: model,
    prompt, word, model:category:framing) on word-level ranks, REML. Wald z p-values
    (normal reference: with crossed random effects exact denominator df are not defined)."""
    from .uncertainty import prepare
    d = prepare(ranks, words).reset_index(drop=True)
    fams = d["family"].nunique()
    if fams < 2:
        return {"message": "needs RMs from at least two families"}
    factors = [f for f in ("family", "category", "framing") if d[f].nunique() > 1]
    X, names = analysis.design_matrix(d, factors)
    X, names, dropped = analysis.drop_aliased(X, names)
    terms = [t for t in terms if all(c in d.columns for c in t.split(":"))]
    Z, sizes, terms = random_design(d, terms)
    fit = reml_fit(d["rank"].to_numpy(float), X, Z, sizes)
    se = np.sqrt(np.diag(fit["cov"]))
    z = fit["beta"] / se
    p = 2 * stats.norm.sf(np.abs(z))
    out = {"terms": [{"term": nm, "estimate": float(b), "se": float(s), "z": float(zz), "p": float(pp)}
                     for nm, b, s, zz, pp in zip(names, fit["beta"], se, z, p)],
           "variance_components": [{"term": TERM_LABELS.get(t, t), "levels": n_lv, "variance": float(v)}
                                   for t, n_lv, v in zip(terms, sizes, fit["variances"])]
           + [{"term": "residual", "levels": len(d), "variance": float(fit["sigma2"])}],
           "n_rows": len(d), "converged": fit["converged"], "what_it_adds": WHAT_IT_ADDS}
    if dropped:
        out["dropped_terms"] = dropped
    return out


def crossed_sentence(result: dict) -> str:
    """The three-way family term in one plain sentence, with its interval."""
    if "message" in result:
        return f"Crossed mixed model not fitted: {result['message']}."
    terms = {t["term"]: t for t in result["terms"]}
    t = next((v for k, v in terms.items() if k.startswith("family") and k.count(":") == 2), None) \
        or next((v for k, v in terms.items() if k.startswith("family")), None)
    if t is None:
        return "Crossed mixed model: no family term could be estimated."
    lo, hi = t["estimate"] - 1.96 * t["se"], t["estimate"] + 1.96 * t["se"]
    ptxt = f"{t['p']:.2g}" if t["p"] < 0.001 else f"{t['p']:.3f}"
    return (f"Word-level crossed mixed model: {t['term']} = {t['estimate']:+.1f} ranks "
            f"(95% CI {lo:+.1f} to {hi:+.1f}, p = {ptxt}, Wald z).")
