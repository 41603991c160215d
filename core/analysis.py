"""Statistics behind the paper's figures (METHOD.md sections 3, 4 and 6).

Pure pandas/numpy/scipy/statsmodels: no UI imports, so the CLI, the dashboard and the
tests all call the same functions and get the same numbers."""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from . import family as _family
from . import prompts

# ----------------------------------------------------------------------------------
# Figure 1: ranks, median ranks, family means
# ----------------------------------------------------------------------------------
def _sorted_levels(values) -> list[str]:
    """Factor levels in R's default (alphabetical, case-insensitive) order: the first is the reference."""
    return sorted({str(v) for v in values}, key=lambda v: (v.casefold(), v))


# The paper's script sets `factor(..., levels = c("positive", "negative"))`: positive framing
# is the mixed model's reference level, so its terms read `framingnegative`.
FRAMING_LEVELS = ("positive", "negative")


def framing_levels(values) -> list[str]:
    """Framing levels in the paper's order (positive, negative), then any others alphabetically."""
    present = {str(v) for v in values}
    return [f for f in FRAMING_LEVELS if f in present] + _sorted_levels(present - set(FRAMING_LEVELS))


def _model_col(scores: pd.DataFrame) -> str:
    return "model_key" if "model_key" in scores.columns else "model"


def word_ranks(scores: pd.DataFrame, words: pd.DataFrame) -> pd.DataFrame:
    """Rank each (model, prompt)'s corpus words by score, 1 = highest, ties averaged
    (R `rank(-score)`). Only corpus words are ranked: a score file may hold extra words;
    a word a model was not scored on is simply absent from its ranking."""
    key = _model_col(scores)
    codes = _codes(scores, words)
    cols = [c for c in dict.fromkeys(["model", key, "family", "prompt_id", "prompt", "response", "value"])
            if c in scores.columns]
    out = scores.iloc[codes["rows"]][cols].copy()
    out["rank"] = codes["rank"]
    return out.reset_index(drop=True)


def _codes(scores: pd.DataFrame, words: pd.DataFrame) -> dict:
    """Integer codes for model, prompt and response, and each kept row's rank.
    Why integers: grouping 10^6 string keys dominates the run time; int keys are ~10x faster."""
    kc, kuniq = pd.factorize(scores[_model_col(scores)])
    pc, puniq = pd.factorize(scores["prompt_id"])
    rc, runiq = pd.factorize(scores["response"])
    value = scores["value"].to_numpy(float)
    in_vocab = pd.Index(runiq).isin(pd.Index(words["word"].astype(str).unique()))
    keep = in_vocab[rc] & np.isfinite(value) & (kc >= 0) & (pc >= 0)
    rows = np.flatnonzero(keep)
    gid = kc[rows].astype(np.int64) * len(puniq) + pc[rows]
    dup = pd.Series(gid * len(runiq) + rc[rows]).duplicated().to_numpy()  # first row wins
    rows, gid = rows[~dup], gid[~dup]
    rank = pd.Series(value[rows]).groupby(gid, sort=False).rank(method="average", ascending=False)
    return {"rows": rows, "gid": gid, "resp": rc[rows], "rank": rank.to_numpy(),
            "kc": kc, "kuniq": kuniq, "puniq": puniq, "runiq": runiq,
            "pfirst": np.unique(pc[pc >= 0], return_index=True)[1]}


def median_ranks(scores: pd.DataFrame, words: pd.DataFrame) -> pd.DataFrame:
    """Median rank per (model, prompt, category); a word in several categories counts in each."""
    c = _codes(scores, words)
    cats = words[["word", "category"]].astype(str).drop_duplicates()
    cc, cuniq = pd.factorize(cats["category"])
    pairs = pd.DataFrame({"r": pd.Index(c["runiq"]).get_indexer(cats["word"]), "cat": cc})
    pairs = pairs[pairs["r"] >= 0]
    long = pd.DataFrame({"r": c["resp"], "g": c["gid"], "rank": c["rank"]}).merge(pairs, on="r")
    med = long.groupby(long["g"] * len(cuniq) + long["cat"], sort=True)["rank"].median()
    g, cat = np.divmod(med.index.to_numpy(), len(cuniq))
    k, pr = np.divmod(g, len(c["puniq"]))
    out = pd.DataFrame({"_kc": k, "prompt_id": np.asarray(c["puniq"], dtype=object)[pr],
                        "category": np.asarray(cuniq, dtype=object)[cat], "median_rank": med.to_numpy(float)})
    return _attach_labels(out, scores, c)


def _attach_labels(med: pd.DataFrame, scores: pd.DataFrame, c: dict) -> pd.DataFrame:
    """Model label, capitalised family and framing for each median-rank row."""
    first = np.unique(c["kc"][c["kc"] >= 0], return_index=True)[1]  # first row of each model
    models = scores.iloc[first]
    keys = np.asarray(c["kuniq"], dtype=object)
    name = (models["model"] if "model" in models.columns else models[_model_col(scores)]).astype(str).to_numpy()
    label = pd.Series(name, dtype=object)
    dupe = label.duplicated(keep=False).to_numpy()  # one name, several keys (e.g. published and re-scored)
    label[dupe] = keys[dupe]
    fam = models["family"].tolist() if "family" in models.columns else [None] * len(models)
    fam = np.array([_family.display(f) for f in fam], dtype=object)
    pid_first = scores.iloc[c["pfirst"]]
    ptext = dict(zip(pid_first["prompt_id"], pid_first["prompt"])) if "prompt" in scores.columns else {}
    framing = {pid: prompts.framing_of(str(pid), str(ptext.get(pid, ""))) for pid in med["prompt_id"].unique()}
    out = pd.DataFrame({
        "model": label.to_numpy()[med["_kc"]], "family": fam[med["_kc"]],
        "prompt_id": med["prompt_id"].astype(str), "framing": med["prompt_id"].map(framing),
        "category": med["category"].astype(str), "median_rank": med["median_rank"],
        "_key": keys[med["_kc"]]})
    return out.sort_values(["model", "category", "prompt_id"], kind="stable").reset_index(drop=True)


def family_means(med: pd.DataFrame) -> pd.DataFrame:
    """Mean over models of each model's mean median rank, per (framing, category, family):
    every model weighs the same however many prompts it was scored on."""
    m = med.dropna(subset=["family"])
    per_model = m.groupby(["framing", "category", "family", "_key"], observed=True)["median_rank"].mean()
    out = per_model.groupby(["framing", "category", "family"], observed=True).mean()
    return out.rename("mean_rank").reset_index().sort_values(["framing", "category", "family"]).reset_index(drop=True)


# ----------------------------------------------------------------------------------
# Mixed model: lme(median_rank ~ family*category*framing, random = ~1|model), REML
# ----------------------------------------------------------------------------------
def design_matrix(df: pd.DataFrame, factors: list[str], levels: dict | None = None) -> tuple[np.ndarray, list[str]]:
    """R-style `a*b*c` model matrix with treatment contrasts: reference = first level
    (alphabetical unless `levels` gives a factor's order); columns and names in R's order
    (first factor varies fastest)."""
    n = len(df)
    dummies = {}
    for f in factors:
        given = (levels or {}).get(f)
        order = list(given) if given is not None else _sorted_levels(df[f])
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


def _drop_aliased(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
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


def mixed_model(med: pd.DataFrame) -> dict:
    """Fixed effects of median_rank ~ family*category*framing with a random intercept per
    model (REML), with nlme-style t-test p-values; factors with one level are left out."""
    d = med.dropna(subset=["family"]).reset_index(drop=True)
    factors = [f for f in ("family", "category", "framing") if d[f].nunique() > 1]
    X, names = design_matrix(d, factors, levels={"framing": framing_levels(d["framing"])})
    X, names, dropped = _drop_aliased(X, names)
    y = d["median_rank"].to_numpy(float)
    groups = d["_key"].astype(str).to_numpy()
    fit = reml_random_intercept(y, X, groups)
    est, se = fit["beta"], fit["se"]
    df = nlme_df(X, names, groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / se
        p = np.where(df > 0, 2 * stats.t.sf(np.abs(t), np.maximum(df, 1)), np.nan)
    terms = [{"term": nm, "estimate": float(e), "p": _num(pv)} for nm, e, pv in zip(names, est, p)]
    levels = {"family": _sorted_levels(d["family"]), "category": _sorted_levels(d["category"]),
              "framing": framing_levels(d["framing"])}
    out = {"terms": terms, "reference": {f: levels[f][0] for f in factors}}
    if dropped:
        out["dropped_terms"] = dropped
    if len(factors) < 3:
        out["note"] = "left out (one level only): " + ", ".join(
            f for f in ("family", "category", "framing") if f not in factors)
    return out


# ----------------------------------------------------------------------------------
# Family tests: Welch t-test, permutation t-test, Hedges' g with a bootstrap CI
# ----------------------------------------------------------------------------------
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


def family_tests(med: pd.DataFrame, permutations=10000, seed=0, bootstrap=2000) -> list[dict]:
    """Per (category, framing) panel: each non-reference family vs the reference family over
    the (model, prompt) median ranks (the rows R's Welch test used). effect_size = Hedges' g
    of (family − reference): negative means the family ranks the category's words higher
    (nearer rank 1) than the reference family does."""
    d = med.dropna(subset=["family"])
    fams = _sorted_levels(d["family"])
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
    keys = ["category", "framing"] + (["comparison"] if len(others) > 1 else []) + [
        "welch_p", "welch_p_bonferroni", "permutation_p", "permutation_p_bonferroni",
        "effect_size", "effect_ci_low", "effect_ci_high"]
    return [{k: r[k] if k in ("category", "framing", "comparison") else _num(r[k]) for k in keys} for r in rows]


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


def _num(x):
    """JSON-safe float: NaN/inf become None (the CLI dumps with allow_nan=False)."""
    x = float(x)
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------------
# Figure 1 entry point and its plain-language summary
# ----------------------------------------------------------------------------------
def figure1(scores: pd.DataFrame, words: pd.DataFrame, corpus: str = "corpus",
            permutations: int = 10000, seed: int = 0, bootstrap: int = 2000, ranking: str = "word") -> dict:
    """Everything Figure 1 shows, as JSON-ready data (see METHOD.md section 3).
    `ranking` "row" ranks each corpus row as the paper's script does for MFD 2.0."""
    if ranking == "row":
        long = _row_ranks(scores, words)
        med = _label_medians(long.groupby(["model", "model_key", "family", "prompt_id", "prompt", "category"],
                                          dropna=False)["rank"].median().rename("median_rank").reset_index())
        n_words = int(long["response"].nunique())
    else:
        med = median_ranks(scores, words)
        long = word_ranks(scores, words).merge(words[["word", "category"]].astype(str).drop_duplicates(),
                                               left_on="response", right_on="word")
        n_words = _n_ranked(scores, words)
    return _figure1(med, corpus, n_words, permutations, seed, bootstrap, _average_from_long(long))


def _row_ranks(scores: pd.DataFrame, words: pd.DataFrame) -> pd.DataFrame:
    """Each corpus row's rank within its (model, prompt) (pandas twin of ranks.rank_summaries)."""
    key = _model_col(scores)
    cols = ["word", "category"] + (["subcategory"] if "subcategory" in words.columns else [])
    rows = words[cols].astype(str).drop_duplicates()
    sc = scores[np.isfinite(scores["value"].astype(float))]
    sc = sc.drop_duplicates([key, "prompt_id", "response"])
    long = sc.merge(rows, left_on="response", right_on="word")
    if "model_key" not in long.columns:
        long["model_key"] = long[key]
    for c in ("family", "prompt"):
        if c not in long.columns:
            long[c] = None if c == "family" else long["prompt_id"]
    long["rank"] = long.groupby([key, "prompt_id"])["value"].rank(method="average", ascending=False)
    return long


def _average_from_long(long: pd.DataFrame) -> pd.DataFrame:
    """Per (model, framing, category): the median of the model's ranks over all words and prompts."""
    if long.empty:
        return pd.DataFrame(columns=["model", "model_key", "family", "framing", "category", "median_rank"])
    key = "model_key" if "model_key" in long.columns else "model"
    ptext = long["prompt"] if "prompt" in long.columns else long["prompt_id"]
    fr = {(i, t): prompts.framing_of(str(i), str(t)) for i, t in set(zip(long["prompt_id"], ptext))}
    long = long.assign(framing=[fr[(i, t)] for i, t in zip(long["prompt_id"], ptext)],
                       model_key=long[key], family=long["family"] if "family" in long.columns else None)
    out = long.groupby(["model", "model_key", "family", "framing", "category"], dropna=False)["rank"].median()
    return out.rename("median_rank").reset_index()


def figure1_from_store(store, words: pd.DataFrame, corpus: str = "corpus", models=None, prompt_texts=None,
                       permutations: int = 10000, seed: int = 0, bootstrap: int = 2000,
                       ranking: str | None = None) -> dict:
    """figure1 with ranks and medians computed inside DuckDB: the fast path for the CLI and
    the app (a million stored scores never travel to pandas). Published scores are read
    from the corpus's own run (published.keys_for_corpus); `ranking` defaults to the
    built-in corpus's own ("row" for mfd2-paper)."""
    from . import corpora, published, ranks
    if ranking is None:
        ranking = "row" if corpus in corpora.BUILTINS and corpora.load(corpus).ranking == "row" else "word"
    keys = published.keys_for_corpus(store, corpus, words["word"].astype(str).unique(), "rm", models)
    got = ranks.rank_summaries(store, words, ranking, "rm", keys, prompt_texts)
    raw = got["medians"]
    return _figure1(_label_medians(raw), corpus, got["n_words"], permutations, seed, bootstrap, got["average"])


def _label_medians(raw: pd.DataFrame) -> pd.DataFrame:
    """Store medians in median_ranks()'s shape: capitalised family, framing, unique labels."""
    label = raw["model"].astype(str).copy()
    names = raw.drop_duplicates("model_key")
    dupes = set(names.loc[names["model"].duplicated(keep=False), "model"])
    label[raw["model"].isin(dupes)] = raw["model_key"]
    out = pd.DataFrame({
        "model": label, "family": [_family.display(f) for f in raw["family"]],
        "prompt_id": raw["prompt_id"].astype(str),
        "framing": [prompts.framing_of(str(i), str(t)) for i, t in zip(raw["prompt_id"], raw["prompt"])],
        "category": raw["category"].astype(str), "median_rank": raw["median_rank"].astype(float),
        "_key": raw["model_key"]})
    return out.sort_values(["model", "category", "prompt_id"], kind="stable").reset_index(drop=True)


def _n_ranked(scores: pd.DataFrame, words: pd.DataFrame) -> int:
    """Distinct corpus words that at least one model was scored on (what the ranks range over)."""
    vocab = pd.Index(words["word"].astype(str).unique())
    return int(vocab.isin(scores["response"].astype(str).unique()).sum())


def _figure1(med: pd.DataFrame, corpus: str, n_words: int, permutations: int, seed: int,
             bootstrap: int, per_model_average: pd.DataFrame | None = None) -> dict:
    fm = family_means(med)
    result = {
        "corpus": corpus,
        "n_words": n_words,
        "median_ranks": [{k: (_num(v) if k == "median_rank" else v) for k, v in r.items()}
                         for r in med.drop(columns="_key").to_dict("records")],
        "family_means": [{**r, "mean_rank": _num(r["mean_rank"])} for r in fm.to_dict("records")],
    }
    if per_model_average is not None:
        result["average_ranks"] = average_ranks(per_model_average, med)
    fams = _sorted_levels(med["family"].dropna())
    unknown = sorted(med.loc[med["family"].isna(), "model"].unique())
    if len(fams) < 2:
        found = f"found only {fams[0]}" if fams else "found none"
        msg = f"needs RMs from at least two families; {found}"
        result["mixed_model"] = {"message": msg}
        result["family_tests"] = {"message": msg}
    else:
        result["mixed_model"] = mixed_model(med)
        result["family_tests"] = family_tests(med, permutations, seed, bootstrap)
    if unknown:
        result["notes"] = [f"left out of the tests (family unknown): {', '.join(unknown)}"]
    return result


def average_ranks(per_model: pd.DataFrame, med: pd.DataFrame | None = None) -> list[dict]:
    """The paper's "avg ranks" table: per (framing, category, family), the mean over models of
    each model's median rank over all words and prompts (R: median(rank) by model, then mean
    by family). Only the models and framings present in `med` (the analysed selection) count."""
    d = per_model.copy()
    d["family"] = [_family.display(f) for f in d["family"]]
    d = d.dropna(subset=["family"])
    if med is not None and not med.empty:
        d = d[d["model_key"].isin(set(med["_key"])) & d["framing"].isin(set(med["framing"]))]
    out = d.groupby(["framing", "category", "family"])["median_rank"].mean().rename("mean_rank").reset_index()
    order = {f: i for i, f in enumerate(framing_levels(out["framing"]))}
    out = out.sort_values(["framing", "category", "family"], key=lambda c: c.map(order) if c.name == "framing" else c)
    return [{**r, "mean_rank": _num(r["mean_rank"])} for r in out.to_dict("records")]


def average_ranks_table(result: dict) -> pd.DataFrame:
    """The "average ranks" table as the paper prints it: one column per family and, with two
    families, their difference (second minus first, e.g. Llama − Gemma)."""
    d = pd.DataFrame(result.get("average_ranks") or [])
    if d.empty:
        return d
    wide = d.pivot_table(index=["framing", "category"], columns="family", values="mean_rank").reset_index()
    wide.columns.name = None
    fams = _sorted_levels(d["family"])
    if len(fams) == 2:
        wide[f"{fams[1]} − {fams[0]}"] = wide[fams[1]] - wide[fams[0]]
    order = {f: i for i, f in enumerate(framing_levels(wide["framing"]))}
    return wide.sort_values(["framing", "category"], key=lambda c: c.map(order) if c.name == "framing" else c
                            ).reset_index(drop=True)


def summary_text(result: dict) -> str:
    """A few sentences a policy reader can follow: who prefers what, how strongly, how sure."""
    fm = pd.DataFrame(result.get("family_means") or [])
    lines = [f"Corpus {result.get('corpus')} ({result.get('n_words')} words). "
             "Each reward model ranks the words from 1 (highest reward) downwards; "
             "we compare the median rank of each category's words."]
    if fm.empty:
        return lines[0] + " No scores to summarise."
    tests = result.get("family_tests")
    if isinstance(tests, dict):
        lines.append(f"No family comparison: {tests.get('message')}.")
        for r in fm.to_dict("records"):
            lines.append(f"On {r['framing']} prompts, {r['family']}-based reward models give "
                         f"{r['category']} words a mean rank of {r['mean_rank']:.1f}.")
        return "\n".join(lines)
    for t in tests:
        lines.append(_test_sentence(t, fm))
    return "\n".join(lines)


def _test_sentence(t: dict, fm: pd.DataFrame) -> str:
    fam, ref = (t.get("comparison") or _default_comparison(fm)).split(" vs ")
    sel = fm[(fm["framing"] == t["framing"]) & (fm["category"] == t["category"])].set_index("family")["mean_rank"]
    if fam not in sel or ref not in sel:
        return f"On {t['framing']} prompts, {t['category']}: not enough data to compare {fam} and {ref}."
    diff = sel[fam] - sel[ref]
    higher, lower = (fam, ref) if diff < 0 else (ref, fam)
    p = t.get("welch_p_bonferroni")
    sig = "" if p is None else (f"{_fmt_p(p)}, Welch, Bonferroni-corrected"
                                + ("" if p < 0.05 else "; not significant"))
    if abs(diff) < 0.05:
        return (f"On {t['framing']} prompts, {fam}- and {ref}-based reward models rank {t['category']} words "
                f"about the same (mean rank {sel[fam]:.1f} vs {sel[ref]:.1f}; {sig}).")
    if t["framing"] == "negative":
        meaning = (f"i.e. {higher}-based models more readily give {t['category']} words as the answer to a "
                   f"'worst thing' question, so {lower}-based models view them more favourably")
    elif t["framing"] == "positive":
        meaning = f"i.e. {higher}-based models prefer {t['category']} words more"
    else:
        meaning = f"i.e. {higher}-based models give {t['category']} words higher rewards"
    if p is not None and p >= 0.05:
        meaning = "a gap this small could be chance"
    return (f"On {t['framing']} prompts, {higher}-based reward models rank {t['category']} words "
            f"{abs(diff):.1f} places higher than {lower}-based ones (mean rank {min(sel[fam], sel[ref]):.1f} vs "
            f"{max(sel[fam], sel[ref]):.1f}; {sig}) — {meaning}.")


def _default_comparison(fm: pd.DataFrame) -> str:
    fams = _sorted_levels(fm["family"])
    return f"{fams[1]} vs {fams[0]}"


def _fmt_p(p: float) -> str:
    """'p = 0.012' / 'p < 1e-15', paper style (core.wording)."""
    from .wording import p_text
    return p_text(p)
