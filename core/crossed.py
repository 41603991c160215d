"""The stricter mixed model: every word's rank, with the words and the families' way of ranking
them as random samples — the model a family claim must pass.

    rank ~ family*category*framing + (1|response) + (1|family:response:framing)
                                   + (1|model:category:framing)

Why these terms (METHOD.md section 7): every (model, prompt) ranks the same words, so model
and prompt intercepts of a word-level model are zero by construction. What a family claim
must be tested against is how differently the two families rank the same words
(`family:response:framing`, 2,883 on the published Big Two scores: more than the words' own
variance) and each model's own leaning per category and framing (`model:category:framing`).
Without the family × word term the three-way family term looks significant (p = 0.024);
with it, it is p = 0.36 (R lme4 + lmerTest: `paper-data/reference/crossed_big2.json`).

Fit: REML by the penalised least-squares form lme4 uses (Bates et al. 2015), from
cross-products computed once (Z'Z, Z'X, X'X, Z'y, X'y, y'y). The random levels (q = 1,355 on
Big Two) are factored in two blocks: the largest term's levels never share a row, so their
block of Z'Z is diagonal and only the other levels (a few hundred) need a dense Cholesky.

Degrees of freedom: Satterthwaite, as lmerTest computes them — df = 2 (l'Cl)^2 / (g' A g),
C = vcov(beta) as a function of the variance parameters (theta, sigma), g its gradient, A =
2 x the inverse Hessian of the REML deviance (pseudo-inverse, as lmerTest, when a variance
sits at zero). Here the derivatives are exact (closed forms through the same cross-products),
not numerical; at an interior optimum the df do not depend on how the variances are
parameterised. p from t(df), intervals from t quantiles."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import linalg, optimize, sparse, stats

from . import analysis

TERMS = ("response", "family:response:framing", "model:category:framing")
FIXED = ("family", "category", "framing")
VARIANCE_LABELS = {"response": "word", "family:response:framing": "family × word × framing",
                   "model:category:framing": "model × category × framing", "Residual": "residual",
                   "model": "model", "prompt_id": "prompt"}

WHAT_IT_ADDS = ("This stricter model keeps every word's rank and treats the words, and how each family ranks "
                "the same words, as samples: a family gap that rests on a few words, or that the two families "
                "show only on some words, widens the interval instead of counting as evidence. The paper's "
                "model (one median per model and prompt) treats those medians as independent.")


def formula(terms=TERMS, factors=FIXED) -> str:
    """The model in R's notation (what `crossed_big2.R` fits for the default terms)."""
    fixed = "*".join(factors) if factors else "1"
    return f"rank ~ {fixed} + " + " + ".join(f"(1|{t})" for t in terms)


def random_design(d: pd.DataFrame, terms=TERMS) -> tuple[sparse.csr_matrix, list[int], list[str]]:
    """Z = [Z_1 | Z_2 | ...], one indicator block per grouping term ('a:b' = the combination)."""
    blocks, sizes = [], []
    for t in terms:
        codes = d.groupby(t.split(":"), sort=True, dropna=False).ngroup().to_numpy()
        n_levels = int(codes.max()) + 1 if len(codes) else 0
        blocks.append(sparse.csr_matrix((np.ones(len(d)), (np.arange(len(d)), codes)), shape=(len(d), n_levels)))
        sizes.append(n_levels)
    return sparse.hstack(blocks, format="csr"), sizes, list(terms)


# ----------------------------------------------------------------------------------
# REML from cross-products
# ----------------------------------------------------------------------------------
class _Factor:
    """Cholesky factor of A = Lambda Z'Z Lambda + I in two blocks: b (the largest term: diagonal,
    its levels never share a row) and s (the rest, dense). L = [[D^1/2, 0], [Lsb, Lss]]."""

    def __init__(self, cp: dict, lam: np.ndarray):
        nb = cp["nb"]
        lb, ls = lam[:nb], lam[nb:]
        self.a_b = lb * lb * cp["g_b"] + 1.0
        self.rb = 1.0 / np.sqrt(self.a_b)
        self.Lsb = (sparse.diags(ls) @ cp["G_sb"] @ sparse.diags(lb * self.rb)).tocsr()
        S = ls[:, None] * cp["G_ss"] * ls[None, :] + np.eye(len(ls)) - (self.Lsb @ self.Lsb.T).toarray()
        self.Lss = linalg.cholesky(S, lower=True, check_finite=False)
        self.logdet = float(np.sum(np.log(self.a_b)) + 2 * np.sum(np.log(np.diag(self.Lss))))
        self.nb = nb

    def lower(self, v):
        """L^{-1} v for a vector or a (q x m) array (dense, or sparse for the b rows)."""
        vb, vs = v[:self.nb], v[self.nb:]
        if sparse.issparse(v):
            xb = sparse.diags(self.rb) @ vb
            rhs = vs.toarray() - (self.Lsb @ xb).toarray() if sparse.issparse(vs) else vs - self.Lsb @ xb
            return xb, linalg.solve_triangular(self.Lss, rhs, lower=True, check_finite=False)
        xb = vb * (self.rb if v.ndim == 1 else self.rb[:, None])
        xs = linalg.solve_triangular(self.Lss, vs - self.Lsb @ xb, lower=True, check_finite=False)
        return np.concatenate([xb, xs])


def _crossprods(y: np.ndarray, X: np.ndarray, Z: sparse.csr_matrix, sizes: list[int]) -> dict:
    """The cross-products, with the largest term's levels moved first (block b)."""
    k_big = int(np.argmax(sizes))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    order = [k_big] + [k for k in range(len(sizes)) if k != k_big]
    perm = np.concatenate([np.arange(starts[k], starts[k + 1]) for k in order]).astype(int)
    Zp = Z[:, perm].tocsc()
    G = (Zp.T @ Zp).tocsr()
    nb = sizes[k_big]
    g_b = G.diagonal()[:nb]
    off = G[:nb, :nb] - sparse.diags(g_b)
    if off.count_nonzero():
        raise ValueError("the largest random term's levels share rows; cannot use the block factor")
    blocks = np.concatenate([np.full(sizes[k], k) for k in order]).astype(int)
    return {"n": len(y), "p": X.shape[1], "G": G, "nb": nb, "g_b": g_b, "G_sb": G[nb:, :nb].tocsr(),
            "G_ss": G[nb:, nb:].toarray(), "B": np.asarray(Zp.T @ X), "Zy": np.asarray(Zp.T @ y).ravel(),
            "XtX": X.T @ X, "Xy": X.T @ y, "yy": float(y @ y), "blocks": blocks, "K": len(sizes)}


def _solve(cp: dict, theta: np.ndarray) -> dict:
    """Everything the profiled REML criterion needs at theta (relative standard deviations)."""
    lam = theta[cp["blocks"]]
    f = _Factor(cp, lam)
    cu = f.lower(lam * cp["Zy"])
    RZX = f.lower(lam[:, None] * cp["B"])
    XtVX = cp["XtX"] - RZX.T @ RZX
    RX = linalg.cholesky(XtVX, lower=True, check_finite=False)
    cb = linalg.solve_triangular(RX, cp["Xy"] - RZX.T @ cu, lower=True, check_finite=False)
    r2 = cp["yy"] - cu @ cu - cb @ cb
    return {"lam": lam, "f": f, "cu": cu, "RZX": RZX, "XtVX": XtVX, "RX": RX, "cb": cb, "r2": r2}


def _deviance(cp: dict, s: dict) -> float:
    """lme4's profiled REML criterion."""
    n, p = cp["n"], cp["p"]
    if not s["r2"] > 0:
        return np.inf
    return (s["f"].logdet + 2 * np.sum(np.log(np.diag(s["RX"])))
            + (n - p) * (1 + math.log(2 * math.pi * s["r2"] / (n - p))))


def _dev_theta(cp: dict, theta: np.ndarray) -> float:
    try:
        return _deviance(cp, _solve(cp, np.abs(theta)))
    except (linalg.LinAlgError, ValueError):
        return np.inf


def _derivatives(cp: dict, s: dict) -> dict:
    """At the solution s: beta, C = vcov(beta), and exact first and second derivatives of the
    (unprofiled) REML deviance and first derivatives of C in the variances phi = (tau_1^2, ...,
    tau_K^2, sigma^2). With V = sigma^2 I + sum_k tau_k^2 Z_k Z_k', P = V^-1 - V^-1 X C X' V^-1:
    d dev/d phi_i = tr(P V_i) - y'P V_i P y,  d2 dev = -tr(P V_i P V_j) + 2 y'P V_i P V_j P y,
    dC/d phi_i = C X'V^-1 V_i V^-1 X C; every product reduces to q x q terms through Z'PZ and
    sigma^2 P^2 = P - P Z D Z' P."""
    n, p, K, nb = cp["n"], cp["p"], cp["K"], cp["nb"]
    lam, f = s["lam"], s["f"]
    s2 = s["r2"] / (n - p)
    beta = linalg.solve_triangular(s["RX"].T, s["cb"], lower=False, check_finite=False)
    C = s2 * linalg.cho_solve((s["RX"], True), np.eye(p), check_finite=False)
    LG = sparse.diags(lam) @ cp["G"]
    Wb, Ws = f.lower(LG.tocsr())  # W = L^-1 Lambda G: sparse b rows, dense s rows
    WtW = (Wb.T @ Wb).toarray() + Ws.T @ Ws  # G Lambda A^-1 Lambda G
    RZX, cu = s["RZX"], s["cu"]
    WtR = Wb.T @ RZX[:nb] + Ws.T @ RZX[nb:]
    Wtc = Wb.T @ cu[:nb] + Ws.T @ cu[nb:]
    ZVZ = (cp["G"].toarray() - WtW) / s2
    ZVX = (cp["B"] - WtR) / s2
    ZVy = (cp["Zy"] - np.asarray(Wtc).ravel()) / s2
    u = ZVy - ZVX @ beta  # Z'Py
    M = ZVZ - ZVX @ C @ ZVX.T  # Z'PZ
    d = s2 * lam * lam  # variance of each random level
    yPy = s["r2"] / s2
    Md = M * M @ d  # row sums of M_ij^2 d_j
    trP = (n - p - d @ np.diag(M)) / s2
    yP2y = (yPy - u @ (d * u)) / s2
    t = (u - M @ (d * u)) / s2  # Z'P^2 y
    trDN = (d @ np.diag(M) - d @ Md) / s2
    trP2 = (trP - trDN) / s2
    yP3y = (yP2y - t @ (d * u)) / s2
    idx = [np.flatnonzero(cp["blocks"] == k) for k in range(K)]
    S = np.zeros(K + 1)
    H = np.zeros((K + 1, K + 1))
    dC = []
    for k, Ik in enumerate(idx):
        S[k] = np.trace(M[np.ix_(Ik, Ik)]) - u[Ik] @ u[Ik]
        for j in range(k, K):
            Mkj = M[np.ix_(Ik, idx[j])]
            H[k, j] = H[j, k] = -np.sum(Mkj * Mkj) + 2 * u[Ik] @ Mkj @ u[idx[j]]
        trNkk = (np.trace(M[np.ix_(Ik, Ik)]) - Md[Ik].sum()) / s2
        H[k, K] = H[K, k] = -trNkk + 2 * u[Ik] @ t[Ik]
        Q = ZVX[Ik].T @ ZVX[Ik]
        dC.append(C @ Q @ C)
    S[K] = trP - yP2y
    H[K, K] = -trP2 + 2 * yP3y
    XV2X = (linalg.inv(C) - ZVX.T @ (d[:, None] * ZVX)) / s2
    dC.append(C @ XV2X @ C)
    return {"beta": beta, "C": C, "sigma2": s2, "score": S, "hessian": H, "dC": np.array(dC)}


def _to_theta_sigma(theta: np.ndarray, sigma: float, der: dict) -> tuple[np.ndarray, np.ndarray]:
    """Hessian of the deviance and the Jacobian of C in lmerTest's parameters (theta, sigma),
    from those in phi (tau_k^2 = theta_k^2 sigma^2, sigma^2) by the chain rule, with the
    gradient term (it matters where a variance sits at zero)."""
    K = len(theta)
    J = np.zeros((K + 1, K + 1))  # J[i, a] = d phi_i / d psi_a
    for k in range(K):
        J[k, k] = 2 * theta[k] * sigma ** 2
        J[k, K] = 2 * theta[k] ** 2 * sigma
    J[K, K] = 2 * sigma
    S = der["score"]
    H = J.T @ der["hessian"] @ J
    for k in range(K):
        H[k, k] += S[k] * 2 * sigma ** 2
        H[k, K] += S[k] * 4 * theta[k] * sigma
        H[K, k] = H[k, K]
    H[K, K] += S[K] * 2 + sum(S[k] * 2 * theta[k] ** 2 for k in range(K))
    dC = np.einsum("ia,ipq->apq", J, der["dC"])
    return H, dC


def _pinv_hessian(H: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """Moore-Penrose inverse over the eigenvalues above tol, as lmerTest."""
    vals, vecs = np.linalg.eigh(H)
    pos = vals > tol
    return (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T


def satterthwaite_df(L: np.ndarray, C: np.ndarray, dC: np.ndarray, A: np.ndarray) -> np.ndarray:
    """df of each contrast row l of L: 2 (l'Cl)^2 / (g'Ag), g_a = l' dC_a l."""
    L = np.atleast_2d(L)
    var = np.einsum("ij,jk,ik->i", L, C, L)
    g = np.einsum("ij,ajk,ik->ia", L, dC, L)
    return 2 * var ** 2 / np.einsum("ia,ab,ib->i", g, A, g)


def _polish(cp: dict, theta: np.ndarray, steps: int = 6):
    """Newton steps on the variances with the exact score and Hessian (the search above uses
    finite differences and stops a little short), variances at zero held there; a step is
    kept only if it lowers the criterion. Returns (theta, solution, derivatives)."""
    K = cp["K"]
    s = _solve(cp, theta)
    der = _derivatives(cp, s)
    for _ in range(steps):
        free = np.append(theta > 1e-7, True)
        phi = np.append(der["sigma2"] * theta ** 2, der["sigma2"])
        try:
            step = np.zeros(K + 1)
            step[free] = np.linalg.solve(der["hessian"][np.ix_(free, free)], der["score"][free])
        except np.linalg.LinAlgError:
            break
        new = phi - step
        if np.any(new[free] <= 0):
            break
        th_new = np.sqrt(np.maximum(new[:K], 0) / new[K])
        s_new = _solve(cp, th_new)
        if not _deviance(cp, s_new) <= _deviance(cp, s) + 1e-9:
            break
        theta, s = th_new, s_new
        der = _derivatives(cp, s)
        if np.max(np.abs(step[free]) / phi[free]) < 1e-12:
            break
    return theta, s, der


def reml_fit(y: np.ndarray, X: np.ndarray, Z: sparse.spmatrix, sizes: list[int]) -> dict:
    """REML fit of y = X b + sum_k Z_k u_k + e, u_k ~ N(0, theta_k^2 sigma^2 I). Returns beta,
    its covariance, Satterthwaite df per coefficient, sigma2, each term's variance (in the
    order of `sizes`) and lme4's REML criterion."""
    from .uncertainty import one_blas_thread
    # One BLAS thread: the matrices are small (a few hundred), and on a busy machine OpenBLAS's
    # threads make each small Cholesky 30x slower, not faster.
    with one_blas_thread():
        return _reml_fit(np.asarray(y, float), X, Z.tocsr(), sizes)


def _reml_fit(y: np.ndarray, X: np.ndarray, Z: sparse.csr_matrix, sizes: list[int]) -> dict:
    cp = _crossprods(y, X, Z, sizes)
    K = cp["K"]
    # Optimise over rho = theta^2 (relative variances): the criterion is even in theta, so at
    # theta = 0 its theta-gradient vanishes and a bounded search can stall there; in rho the
    # boundary has a true one-sided slope.
    best = optimize.minimize(lambda r: _dev_theta(cp, np.sqrt(np.maximum(r, 0))), np.ones(K), method="L-BFGS-B",
                             bounds=[(0, None)] * K, options={"ftol": 1e-12, "gtol": 1e-6, "maxiter": 2000})
    theta = np.sqrt(np.maximum(best.x, 0))
    theta, s, der = _polish(cp, theta)
    sigma = math.sqrt(der["sigma2"])
    H, dC = _to_theta_sigma(theta, sigma, der)
    A = 2 * _pinv_hessian(H)
    df = satterthwaite_df(np.eye(cp["p"]), der["C"], dC, A)
    var = der["sigma2"] * theta ** 2  # theta is in the order of `sizes` (only the factor reorders levels)
    return {"beta": der["beta"], "cov": der["C"], "df": df, "sigma2": der["sigma2"], "variances": var,
            "reml_deviance": _deviance(cp, s), "converged": bool(best.success), "vcov_varpar": A, "dC": dC}


# ----------------------------------------------------------------------------------
# The model on word ranks
# ----------------------------------------------------------------------------------
def crossed_model(ranks: pd.DataFrame, words: pd.DataFrame, terms=TERMS, level: float = 0.95) -> dict:
    """rank ~ family*category*framing + the random terms (default: word, family × word ×
    framing, model × category × framing) on every word's rank, REML, in the paper's coding
    (reference levels Gemma, Agency, positive prompts) and R's term names; Satterthwaite df,
    p from t(df), `level` intervals from t quantiles."""
    from .uncertainty import prepare
    d = prepare(ranks, words).reset_index(drop=True)
    if d["family"].nunique() < 2:
        return {"message": "needs RMs from at least two families"}
    factors = [f for f in FIXED if d[f].nunique() > 1]
    present = {f: d[f].unique() for f in FIXED}
    levels = {"family": analysis.sorted_levels(present["family"]),
              "category": analysis.sorted_levels(present["category"]),
              "framing": analysis.framing_levels(present["framing"])}
    X, names = analysis.design_matrix(d, factors, levels=levels)
    X, names, dropped = analysis.drop_aliased(X, names)
    terms = [t for t in terms if all(c in d.columns for c in t.split(":"))]
    Z, sizes, terms = random_design(d, terms)
    fit = reml_fit(d["rank"].to_numpy(float), X, Z, sizes)
    se = np.sqrt(np.diag(fit["cov"]))
    tval = fit["beta"] / se
    p = 2 * stats.t.sf(np.abs(tval), fit["df"])
    q = stats.t.ppf(0.5 + level / 2, fit["df"])
    out = {"formula": formula(terms, factors),
           "terms": [{"term": nm, "estimate": float(b), "se": float(s_), "df": float(df), "t": float(tv),
                      "p": float(pp), "ci_low": float(b - qq * s_), "ci_high": float(b + qq * s_)}
                     for nm, b, s_, df, tv, pp, qq in zip(names, fit["beta"], se, fit["df"], tval, p, q)],
           "variances": {**{t: float(v) for t, v in zip(terms, fit["variances"])}, "Residual": float(fit["sigma2"])},
           "levels": {**dict(zip(terms, sizes)), "Residual": len(d)},
           "reml": fit["reml_deviance"], "n_rows": len(d), "converged": fit["converged"], "level": level,
           "reference": {f: levels[f][0] for f in factors},
           "n_models": {fam: int(g["model"].nunique()) for fam, g in d.groupby("family")},
           "what_it_adds": WHAT_IT_ADDS}
    if dropped:
        out["dropped_terms"] = dropped
    return out


def variance_table(result: dict) -> pd.DataFrame:
    """The variance components in words, largest first."""
    v = result.get("variances") or {}
    lv = result.get("levels") or {}
    rows = [{"source": VARIANCE_LABELS.get(k, k), "term": k, "levels": lv.get(k), "variance": val}
            for k, val in v.items()]
    return pd.DataFrame(rows).sort_values("variance", ascending=False, kind="stable").reset_index(drop=True)


def three_way_term(result: dict) -> dict | None:
    """The family term the claim rests on: the family × category × framing term, else the
    family × category one, else the family main effect."""
    if "terms" not in result:
        return None
    fam = [t for t in result["terms"] if t["term"].startswith("family")]
    return max(fam, key=lambda t: t["term"].count(":"), default=None)


def crossed_sentence(result: dict) -> str:
    """The family term in one plain sentence, with its interval and Satterthwaite df."""
    from .wording import p_text, term_in_words
    if "message" in result:
        return f"Stricter mixed model not fitted: {result['message']}."
    t = three_way_term(result)
    if t is None:
        return "Stricter mixed model: no family term could be estimated."
    ref = (result.get("reference") or {}).get("family", "the reference family")
    pct = f"{result.get('level', 0.95) * 100:.0f}%"
    return (f"Stricter mixed model (every word's rank; words and how each family ranks them as samples): "
            f"{term_in_words(t['term'], ref)}: {t['estimate']:+.1f} ranks "
            f"({pct} CI {t['ci_low']:+.1f} to {t['ci_high']:+.1f}, {p_text(t['p'])}, t with {t['df']:.0f} "
            f"Satterthwaite df).")
