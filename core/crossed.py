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
    """Cholesky factor of A = Lambda Z'Z Lambda + I, eliminated in stages: a term whose block
    (of what is left) is diagonal is eliminated with a vector of square roots and a sparse
    update; the levels left over (40 on Big Two: model × category × framing) take a dense
    Cholesky. The plan (which term when) is made once from the sparsity pattern."""

    def __init__(self, cp: dict, lam: np.ndarray):
        R = (sparse.diags(lam) @ cp["G"] @ sparse.diags(lam) + sparse.identity(len(lam))).tocsr()
        self.stages, logdet = [], 0.0
        for s, e in cp["stages"]:
            k = e - s
            d = R[:k, :k].diagonal()
            r = 1.0 / np.sqrt(d)
            Lr = (R[k:, :k] @ sparse.diags(r)).tocsr()
            R = (R[k:, k:] - Lr @ Lr.T).tocsr()
            self.stages.append((s, e, r, Lr))
            logdet += float(np.sum(np.log(d)))
        self.Lss = linalg.cholesky(R.toarray(), lower=True, check_finite=False)
        self.logdet = logdet + 2 * float(np.sum(np.log(np.diag(self.Lss))))
        self.nb = cp["nb"]

    def lower(self, v):
        """L^{-1} v for a vector or a dense (q x m) array; for a sparse array, (the staged rows
        as one sparse matrix, the dense rows)."""
        if sparse.issparse(v):
            rem, parts = v.tocsr(), []
            for s, e, r, Lr in self.stages:
                x = (sparse.diags(r) @ rem[:e - s]).tocsr()
                rem = (rem[e - s:] - Lr @ x).tocsr()
                parts.append(x)
            xb = sparse.vstack(parts, format="csr") if parts else sparse.csr_matrix((0, v.shape[1]))
            return xb, linalg.solve_triangular(self.Lss, rem.toarray(), lower=True, check_finite=False)
        out = np.empty(v.shape, dtype=float)
        rem = np.asarray(v, float)
        for s, e, r, Lr in self.stages:
            x = rem[:e - s] * (r if v.ndim == 1 else r[:, None])
            out[s:e] = x
            rem = rem[e - s:] - Lr @ x
        out[self.nb:] = linalg.solve_triangular(self.Lss, rem, lower=True, check_finite=False)
        return out


def _stage_plan(G: sparse.spmatrix, sizes: list[int]) -> tuple[list[int], list[int]]:
    """Which terms to eliminate as diagonal stages, in order (the largest first among those whose
    block of what is left is diagonal), and the terms left for the dense part. The pattern's
    fill-in is followed exactly (values do not matter: no cancellation is assumed)."""
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    remaining = sorted(range(len(sizes)), key=lambda k: -sizes[k])
    cur = np.concatenate([np.arange(starts[k], starts[k + 1]) for k in remaining]).astype(int)
    P = ((abs(G) > 0).astype(float) + sparse.identity(G.shape[0])).tocsr()[cur][:, cur].tocsr()
    stages = []
    while remaining:
        offsets, o = {}, 0
        for k in remaining:
            offsets[k] = (o, o + sizes[k])
            o += sizes[k]
        pick = next((k for k in remaining
                     if P[offsets[k][0]:offsets[k][1], offsets[k][0]:offsets[k][1]].count_nonzero() == sizes[k]), None)
        if pick is None:
            break
        s, e = offsets[pick]
        keep = np.r_[0:s, e:P.shape[0]].astype(int)
        cross = P[keep][:, s:e]
        P = ((P[keep][:, keep] + cross @ cross.T) > 0).astype(float).tocsr()
        remaining.remove(pick)
        stages.append(pick)
    return stages, remaining


def _crossprods(y: np.ndarray, X: np.ndarray, Z: sparse.csr_matrix, sizes: list[int]) -> dict:
    """The cross-products, with the random levels ordered as the factor eliminates them
    (staged terms first, the dense rest last)."""
    staged, dense = _stage_plan((Z.T @ Z).tocsr(), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    order = staged + dense
    perm = np.concatenate([np.arange(starts[k], starts[k + 1]) for k in order]).astype(int)
    Zp = Z[:, perm].tocsc()
    G = (Zp.T @ Zp).tocsr()
    bounds = np.concatenate([[0], np.cumsum([sizes[k] for k in staged])]).astype(int)
    blocks = np.concatenate([np.full(sizes[k], k) for k in order]).astype(int)
    return {"n": len(y), "p": X.shape[1], "G": G, "nb": int(bounds[-1]),
            "stages": list(zip(bounds[:-1].tolist(), bounds[1:].tolist())), "B": np.asarray(Zp.T @ X),
            "Zy": np.asarray(Zp.T @ y).ravel(), "XtX": X.T @ X, "Xy": X.T @ y, "yy": float(y @ y),
            "blocks": blocks, "K": len(sizes)}


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


ANALYTIC_MAX_LEVELS = 3000  # above this many random levels the exact derivatives' q x q matrices
# would take too much memory: the derivatives are then taken numerically, as lmerTest does


def _dev_full(cp: dict, theta: np.ndarray, sigma: float) -> float:
    """The REML deviance with sigma not profiled out (lmerTest's devfun_vp)."""
    n, p = cp["n"], cp["p"]
    s = _solve(cp, np.asarray(theta, float))
    return (s["f"].logdet + 2 * np.sum(np.log(np.diag(s["RX"]))) + s["r2"] / sigma ** 2
            + (n - p) * math.log(2 * math.pi * sigma ** 2))


def _cov_beta(cp: dict, theta: np.ndarray, sigma: float) -> np.ndarray:
    s = _solve(cp, np.asarray(theta, float))
    return sigma ** 2 * linalg.cho_solve((s["RX"], True), np.eye(cp["p"]), check_finite=False)


def _numeric(cp: dict, theta: np.ndarray, sigma: float, rel: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Hessian of the deviance and Jacobian of C in (theta, sigma) by central differences with
    one Richardson step (steps h and h/2), as numDeriv does for lmerTest."""
    x0 = np.append(theta, sigma)
    k = len(x0)
    base = rel * np.maximum(np.abs(x0), 1e-2)

    def f(x):
        return _dev_full(cp, x[:-1], x[-1])

    def g(x):
        return _cov_beta(cp, x[:-1], x[-1])

    def once(h):
        H = np.zeros((k, k))
        f0 = f(x0)
        e = np.eye(k) * h
        fp = [f(x0 + e[i]) for i in range(k)]
        fm = [f(x0 - e[i]) for i in range(k)]
        for i in range(k):
            H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h[i] ** 2
            for j in range(i + 1, k):
                H[i, j] = H[j, i] = (f(x0 + e[i] + e[j]) - f(x0 + e[i] - e[j]) - f(x0 - e[i] + e[j])
                                     + f(x0 - e[i] - e[j])) / (4 * h[i] * h[j])
        dC = np.array([(g(x0 + e[i]) - g(x0 - e[i])) / (2 * h[i]) for i in range(k)])
        return H, dC

    H1, d1 = once(base)
    H2, d2 = once(base / 2)
    return (4 * H2 - H1) / 3, (4 * d2 - d1) / 3


def _polish_numeric(cp: dict, theta: np.ndarray, steps: int = 4, rel: float = 1e-3) -> np.ndarray:
    """Newton steps on the profiled criterion over the free theta (not at zero), gradient and
    Hessian by central differences; a step is kept only if it lowers the criterion."""
    theta = np.asarray(theta, float)
    for _ in range(steps):
        free = np.flatnonzero(theta > 1e-7)
        if not len(free):
            break
        h = rel * np.maximum(theta[free], 1e-2)

        def f(dx):
            t = theta.copy()
            t[free] += dx
            return _dev_theta(cp, t)
        f0 = f(np.zeros(len(free)))
        e = np.diag(h)
        g = np.array([(f(e[i]) - f(-e[i])) / (2 * h[i]) for i in range(len(free))])
        H = np.array([[(f(e[i] + e[j]) - f(e[i] - e[j]) - f(-e[i] + e[j]) + f(-e[i] - e[j])) / (4 * h[i] * h[j])
                       for j in range(len(free))] for i in range(len(free))])
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        t = theta.copy()
        t[free] = np.maximum(theta[free] - step, 0)
        if not _dev_theta(cp, t) <= f0:
            break
        theta = t
        if np.max(np.abs(step) / np.maximum(theta[free], 1e-8)) < 1e-9:
            break
    return theta


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
    # boundary has a true one-sided slope. With exact derivatives, Newton steps finish the search.
    exact = cp["G"].shape[0] <= ANALYTIC_MAX_LEVELS
    best = optimize.minimize(lambda r: _dev_theta(cp, np.sqrt(np.maximum(r, 0))), np.ones(K), method="L-BFGS-B",
                             bounds=[(0, None)] * K,
                             options={"ftol": 1e-9 if exact else 1e-14, "gtol": 1e-5 if exact else 1e-9, "maxiter": 2000})
    theta = np.sqrt(np.maximum(best.x, 0))
    if exact:
        theta, s, der = _polish(cp, theta)
        sigma = math.sqrt(der["sigma2"])
        H, dC = _to_theta_sigma(theta, sigma, der)
    else:
        theta = _polish_numeric(cp, theta)
        s = _solve(cp, theta)
        sigma2 = s["r2"] / (cp["n"] - cp["p"])
        beta = linalg.solve_triangular(s["RX"].T, s["cb"], lower=False, check_finite=False)
        der = {"beta": beta, "C": _cov_beta(cp, theta, math.sqrt(sigma2)), "sigma2": sigma2}
        H, dC = _numeric(cp, theta, math.sqrt(sigma2))
    A = 2 * _pinv_hessian(H)
    df = satterthwaite_df(np.eye(cp["p"]), der["C"], dC, A)
    var = der["sigma2"] * theta ** 2  # theta is in the order of `sizes` (only the factor reorders levels)
    return {"beta": der["beta"], "cov": der["C"], "df": df, "sigma2": der["sigma2"], "variances": var,
            "reml_deviance": _deviance(cp, s), "converged": bool(best.success), "vcov_varpar": A, "dC": dC}


# ----------------------------------------------------------------------------------
# The model on word ranks
# ----------------------------------------------------------------------------------
def joint_test(beta: np.ndarray, C: np.ndarray, dC: np.ndarray, A: np.ndarray, L: np.ndarray,
               tol: float = 1e-8) -> dict:
    """H0: L beta = 0 as lmerTest's contestMD tests it: F = mean of the squared t values of
    the eigen-directions of L C L', each with its Satterthwaite df nu_m, and the F's
    denominator df 2E / (E − q), E = sum nu_m / (nu_m − 2) (2 when some nu_m <= 2; their
    mean when they are all equal). With one row this is the t test squared. Why: a term with
    several coefficients (three families; a corpus with more than two categories) is one
    claim, and any one of its coefficients alone depends on the reference levels."""
    L = np.atleast_2d(np.asarray(L, float))
    vals, vecs = np.linalg.eigh(L @ C @ L.T)
    keep = vals > tol
    q = int(keep.sum())
    if q == 0:
        return {"F": float("nan"), "num_df": 0, "den_df": float("nan"), "p": float("nan")}
    PtL = vecs[:, keep].T @ L
    t2 = (PtL @ beta) ** 2 / vals[keep]
    nu = satterthwaite_df(PtL, C, dC, A)
    if q == 1:
        ddf = float(nu[0])
    elif np.all(np.abs(np.diff(nu)) < tol):
        ddf = float(np.mean(nu))
    elif np.any(nu <= 2):
        ddf = 2.0
    else:
        E = float(np.sum(nu / (nu - 2)))
        ddf = 2 * E / (E - q)
    F = float(np.sum(t2) / q)
    return {"F": F, "num_df": q, "den_df": ddf, "p": float(stats.f.sf(F, q, ddf))}


def family_term_names(names) -> list[str]:
    """The coefficients of the highest-order family term (family:category:framing when
    fitted): the term a family claim rests on, as a whole."""
    fam = [n for n in names if n.startswith("family")]
    top = max((n.count(":") for n in fam), default=-1)
    return [n for n in fam if n.count(":") == top]


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
    top = family_term_names(names)
    if top:
        L = np.array([[1.0 if nm == t else 0.0 for nm in names] for t in top])
        term = ":".join(f for f in FIXED if any(piece.startswith(f) for piece in top[0].split(":")))
        out["family_term"] = {"term": term, "coefficients": top,
                              **joint_test(fit["beta"], fit["cov"], fit["dC"], fit["vcov_varpar"], L)}
    if dropped:
        out["dropped_terms"] = dropped
    return out


def terms_table(result: dict) -> pd.DataFrame:
    """The fixed effects as a reader's table: R's term, what it compares, estimate, SE, df, p
    (as a reader writes it: '< 0.001') and the t interval, rounded."""
    from .wording import p_cell, term_in_words
    if "terms" not in result:
        return pd.DataFrame()
    ref = (result.get("reference") or {}).get("family", "Gemma")
    pct = f"{result.get('level', 0.95) * 100:.0f}%"
    return pd.DataFrame([{"term": t["term"], "compares": term_in_words(t["term"], ref),
                          "estimate": round(t["estimate"], 2), "SE": round(t["se"], 2), "df": round(t["df"], 1),
                          "p": p_cell(t["p"]), f"{pct} CI": f"{t['ci_low']:.1f} to {t['ci_high']:.1f}"}
                         for t in result["terms"]])


def variance_table(result: dict) -> pd.DataFrame:
    """The variance components in words, largest first."""
    v = result.get("variances") or {}
    lv = result.get("levels") or {}
    rows = [{"source": VARIANCE_LABELS.get(k, k), "term": k, "levels": lv.get(k), "variance": val}
            for k, val in v.items()]
    return pd.DataFrame(rows).sort_values("variance", ascending=False, kind="stable").reset_index(drop=True)


def three_way_term(result: dict) -> dict | None:
    """The family term the claim rests on: the family × category × framing term, else the
    family × category one, else the family main effect — its first coefficient; where the
    term has several (`joint_family_term`), test it as a whole instead."""
    if "terms" not in result:
        return None
    fam = [t for t in result["terms"] if t["term"].startswith("family")]
    return max(fam, key=lambda t: t["term"].count(":"), default=None)


def joint_family_term(result: dict) -> dict | None:
    """The highest-order family term's joint F test when it has several coefficients (three
    families, or more than two categories); None when one coefficient says it all."""
    j = (result or {}).get("family_term")
    return j if j and j.get("num_df", 0) > 1 else None


def term_label(term: str) -> str:
    """'family:category:framing' as 'family × category × framing'."""
    return " × ".join(term.split(":"))


def crossed_sentence(result: dict) -> str:
    """The family term in one plain sentence, with its interval and Satterthwaite df (a
    term of several coefficients: its joint F test)."""
    from .wording import p_text, term_in_words
    if "message" in result:
        return f"Stricter mixed model not fitted: {result['message']}."
    t = three_way_term(result)
    if t is None:
        return "Stricter mixed model: no family term could be estimated."
    if j := joint_family_term(result):
        return (f"Stricter mixed model (every word's rank; words and how each family ranks them as samples): "
                f"the {term_label(j['term'])} term ({j['num_df']} coefficients, tested together): "
                f"F = {j['F']:.2f} on {j['num_df']} and {j['den_df']:.0f} Satterthwaite df, {p_text(j['p'])}.")
    ref = (result.get("reference") or {}).get("family", "the reference family")
    pct = f"{result.get('level', 0.95) * 100:.0f}%"
    return (f"Stricter mixed model (every word's rank; words and how each family ranks them as samples): "
            f"{term_in_words(t['term'], ref)}: {t['estimate']:+.1f} ranks "
            f"({pct} CI {t['ci_low']:+.1f} to {t['ci_high']:+.1f}, {p_text(t['p'])}, t with {t['df']:.0f} "
            f"Satterthwaite df).")
