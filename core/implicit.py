"""The implicit reward between two language models over their whole shared vocabulary:
Table 1 (MWLR), Figure 3 (MWLR of chosen words, every Llama x Gemma pair) and Figure 2
(ranks of the Big Two nouns by log-probability), as the paper's scripts compute them
(METHOD.md §4; paper-code/tables/generate_table_1.py, figures/generate_figure_{2,3}.py).

Departures, all deliberate: tokens whose decoded text is 'NA', 'null', 'nan', 'None', ...
are tokens here (the paper's `read_csv` turned them into missing values and dropped them);
an empty decoded text is still dropped, as the paper's reading did. Ties in MWLR are
ordered by decoded text so the order is reproducible."""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from . import logprobs as lp
from .prompts import framing_of
from .errors import ValueAuditError


class ImplicitError(ValueAuditError, ValueError):
    """An implicit-reward comparison that cannot be made; the message says what to do."""


# -- what is stored ----------------------------------------------------------------------
def resolve_model(store, name: str) -> str:
    """A stored LM's key from its name (as given to `logprobs`/the file name) or its key.
    Several keys under one name (e.g. computed and imported): the latest added."""
    models = lp.stored_models(store)
    hit = models[(models["model"] == name) | (models["model_key"] == name)]
    if hit.empty:
        have = ", ".join(models["model"].drop_duplicates().head(8)) or "none"
        raise ImplicitError(f"no stored log-probabilities for '{name}' (stored: {have}); "
                            "run `logprobs` or `import-logprobs` first")
    if len(hit) > 1:
        added = store.query("SELECT model_key, added_at FROM models")
        hit = hit.merge(added, on="model_key").sort_values("added_at")
    return str(hit["model_key"].iloc[-1])


def resolve_prompt(store, keys: Sequence[str], prompt: str) -> str:
    """The prompt text stored for every model in `keys`, given its id or its text."""
    texts = None
    for k in keys:
        pl = lp.stored_prompt_list(store, k)
        mine = set(pl.loc[(pl["prompt_id"] == prompt) | (pl["prompt"] == prompt), "prompt"])
        texts = mine if texts is None else texts & mine
    if not texts:
        raise ImplicitError(f"prompt '{prompt}' is not stored for every model compared; give a prompt id "
                            "such as greatest_ever_one or its text")
    return sorted(texts)[0]


def token_logprobs(store, model_key: str, prompt_text: str, texts: Iterable[str] | None = None) -> pd.DataFrame:
    """(token_decoded, logprob) of every stored token for one prompt, duplicates kept;
    `texts` keeps only tokens whose decoded text is one of them."""
    frames, where, params = {}, ["l.model_key = ?", "l.prompt = ?"], [model_key, prompt_text]
    if texts is not None:
        frames["want"] = pd.DataFrame({"t": list(dict.fromkeys(texts))}, dtype=str)
        where.append("v.token_decoded IN (SELECT t FROM want)")
    return store.query(f"""SELECT v.token_id, v.token_decoded, l.value AS logprob
                           FROM logprobs l JOIN vocab v ON v.model_key = l.model_key AND v.token_id = l.token_id
                           WHERE {' AND '.join(where)} ORDER BY v.token_id""", params, **frames)


def best_per_text(df: pd.DataFrame) -> pd.Series:
    """One log-prob per decoded text: the highest of its duplicates (the paper's
    sort-descending + drop_duplicates(keep='first')); empty texts dropped."""
    df = df[df["token_decoded"] != ""]
    return df.groupby("token_decoded", sort=True)["logprob"].max()


def default_pair(families: Sequence, names: Sequence[str]) -> tuple[int, int]:
    """Indices of the two LMs a page compares by default: a Llama-family model first and a
    Gemma-family one second (instruction-tuned preferred, as the paper's Table 1) when both
    exist; otherwise the first model and the first of another family; one family only:
    the first two. The lists hold language models only (an RM is never compared here)."""
    fams = [str(f or "").lower() for f in families]
    low = [str(n).lower() for n in names]
    if len(fams) < 2:
        return 0, 0

    def pick(fam):
        idx = [i for i, f in enumerate(fams) if f == fam]
        tuned = [i for i in idx if any(s in low[i] for s in ("instruct", "-it", "chat"))]
        return (tuned or idx or [None])[0]
    a, b = pick("llama"), pick("gemma")
    if a is not None and b is not None:
        return a, b
    other = [i for i, f in enumerate(fams) if f != fams[0]]
    return 0, (other[0] if other else 1)


# -- MWLR (Table 1) ----------------------------------------------------------------------
def mwlr(logp1, logp2):
    """MWLR = ½(p₁+p₂)(log p₁ − log p₂): positive = model 1 prefers the token."""
    logp1, logp2 = np.asarray(logp1, dtype=np.float64), np.asarray(logp2, dtype=np.float64)
    return 0.5 * (np.exp(logp1) + np.exp(logp2)) * (logp1 - logp2)


def mwlr_vocab(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    """MWLR of every decoded text both models have, sorted descending."""
    common = a.index.intersection(b.index)
    out = pd.DataFrame({"token_decoded": common, "logprob_a": a.loc[common].to_numpy(),
                        "logprob_b": b.loc[common].to_numpy()})
    out["mwlr"] = mwlr(out["logprob_a"], out["logprob_b"])
    return out.sort_values(["mwlr", "token_decoded"], ascending=[False, True], kind="mergesort",
                           ignore_index=True)


def mwlr_from_store(store, a: str, b: str, prompt: str) -> pd.DataFrame:
    ka, kb = resolve_model(store, a), resolve_model(store, b)
    text = resolve_prompt(store, [ka, kb], prompt)
    return mwlr_vocab(best_per_text(token_logprobs(store, ka, text)),
                      best_per_text(token_logprobs(store, kb, text)))


def table1(table: pd.DataFrame, top: int = 15) -> dict:
    """Table 1: the `top` tokens model A prefers most and the `top` model B prefers most
    (the last rows, still in descending order)."""
    rows = lambda d: [{"token_decoded": t, "mwlr": float(v)} for t, v in zip(d["token_decoded"], d["mwlr"])]
    return {"n_common": int(len(table)), "top": rows(table.head(top)), "bottom": rows(table.tail(top))}


# -- Figure 3 ----------------------------------------------------------------------------
def figure3(store, model_keys: Sequence[str], words: Sequence[str], prompt: str = "greatest_ever_one",
            families: dict[str, str] | None = None) -> pd.DataFrame:
    """MWLR of each word, averaged over its token variants (decoded text stripped and
    lower-cased equals the word), for every (Llama, Gemma) pair among `model_keys`. As in the
    paper, tokens are those whose decoded text every listed model has."""
    if families is None:
        models = lp.stored_models(store)
        families = dict(zip(models["model_key"], models["family"].fillna("").str.lower()))
    llamas = [k for k in model_keys if families.get(k) == "llama"]
    gemmas = [k for k in model_keys if families.get(k) == "gemma"]
    if not llamas or not gemmas:
        raise ImplicitError("Figure 3 needs log-probabilities of at least one Llama and one Gemma model")
    keys = llamas + gemmas
    text = resolve_prompt(store, keys, prompt)
    series = {k: best_per_text(token_logprobs(store, k, text)) for k in keys}
    common = None
    for s in series.values():
        common = s.index if common is None else common.intersection(s.index)
    common = common.sort_values()
    norm = pd.Series(common, index=common).str.strip().str.lower()
    rows = []
    for la in llamas:
        for ge in gemmas:
            scores = mwlr(series[la].loc[common].to_numpy(), series[ge].loc[common].to_numpy())
            for w in words:
                mask = (norm == w.strip().lower()).to_numpy()
                rows.append({"llama_model": la, "gemma_model": ge, "word": w,
                             "mwlr": float(scores[mask].mean()) if mask.any() else float("nan"),
                             "n_variants": int(mask.sum())})
    return pd.DataFrame(rows)


# -- Figure 2 ----------------------------------------------------------------------------
def _stars(p: float) -> str:
    return "***" if p < .001 else "**" if p < .01 else "*" if p < .05 else "n.s."


def valence(prompt_id: str, text: str = "") -> str:
    """'good' or 'bad': the prompt's framing; where it is unknown, the paper's rule on the id
    ('greatest', 'best' or 'good' in it = good, anything else = bad)."""
    fr = framing_of(prompt_id, text)
    if fr != "unknown":
        return "good" if fr == "positive" else "bad"
    return "good" if any(w in prompt_id for w in ("greatest", "best", "good")) else "bad"


def figure2_ranks(store, key1: str, key2: str, words: pd.DataFrame,
                  prompts: Sequence[str] | None = None) -> pd.DataFrame:
    """Median rank per (prompt, category, model) of the corpus words in both vocabularies,
    ranked by log-prob within each (prompt, model), 1 = most likely, ties averaged. As the
    paper's script: a word matches every token whose decoded text equals it exactly, and
    duplicate tokens each count."""
    corpus = words[["word", "category"]].astype(str)
    texts = corpus["word"].unique().tolist()
    rows = {k: store.query("""SELECT l.prompt_id, l.prompt, v.token_decoded AS word, l.value AS logprob
                              FROM logprobs l JOIN vocab v ON v.model_key = l.model_key AND v.token_id = l.token_id
                              WHERE l.model_key = ? AND v.token_decoded IN (SELECT t FROM want)""",
                           [k], want=pd.DataFrame({"t": texts}, dtype=str)) for k in (key1, key2)}
    both = set(rows[key1]["word"]) & set(rows[key2]["word"])
    corpus = corpus[corpus["word"].isin(both)]
    shared = set(rows[key1]["prompt"]) & set(rows[key2]["prompt"])
    if prompts is not None:
        shared &= set(prompts)
    out = []
    for k in (key1, key2):
        d = rows[k][rows[k]["prompt"].isin(shared)].merge(corpus, on="word", how="inner")
        d["rank"] = d.groupby("prompt")["logprob"].rank(method="average", ascending=False)
        d["model"] = k
        out.append(d)
    d = pd.concat(out, ignore_index=True)
    if d.empty:
        raise ImplicitError("the two models share no corpus word as a token on a common prompt")
    d["valence"] = [valence(i, t) for i, t in zip(d["prompt_id"], d["prompt"])]
    med = d.groupby(["prompt", "prompt_id", "category", "model", "valence"], as_index=False).agg(
        rank=("rank", "median"), logprob=("logprob", "median"), n_words=("word", "size"))
    return med


def figure2_tests(med: pd.DataFrame, key1: str, key2: str) -> dict:
    """The paper's statistics on the medians: type-II 3-way ANOVA
    rank ~ C(category)*C(valence)*C(model), then Welch t-tests model 1 vs model 2 per
    (category, valence) panel with Benjamini–Hochberg FDR correction."""
    import statsmodels.api as sm
    from scipy.stats import ttest_ind
    from statsmodels.formula.api import ols
    from statsmodels.stats.multitest import fdrcorrection
    anova = None
    if med["valence"].nunique() > 1 and med["category"].nunique() > 1:
        fit = ols("rank ~ C(category) * C(valence) * C(model)", data=med).fit()
        tab = sm.stats.anova_lm(fit, typ=2)
        anova = [{"term": str(t).replace("C(", "").replace(")", ""), "sum_sq": float(r["sum_sq"]),
                  "df": float(r["df"]), "F": _num(r["F"]), "p": _num(r["PR(>F)"])} for t, r in tab.iterrows()]
    cells = [(c, v) for v in ("good", "bad") for c in sorted(med["category"].unique())
             if ((med["category"] == c) & (med["valence"] == v)).any()]
    tests, pvals = [], []
    for c, v in cells:
        cell = med[(med["category"] == c) & (med["valence"] == v)]
        a, b = cell.loc[cell["model"] == key1, "rank"], cell.loc[cell["model"] == key2, "rank"]
        t, p = ttest_ind(a, b, equal_var=False)
        tests.append({"category": c, "valence": v, "mean_rank_1": float(a.mean()), "mean_rank_2": float(b.mean()),
                      "t": _num(t), "p": _num(p), "n": int(len(a))})
        pvals.append(p)
    ok = [i for i, p in enumerate(pvals) if np.isfinite(p)]
    if ok:
        _, adj = fdrcorrection([pvals[i] for i in ok])
        for i, q in zip(ok, adj):
            tests[i]["p_fdr"] = float(q)
            tests[i]["stars"] = _stars(q)
    return {"anova": anova, "tests": tests}


def _num(x):
    x = float(x)
    return x if np.isfinite(x) else None


# -- MWLR of a corpus's words from stored scores (the page's "scored words" view) --------
def _best_logprobs(lm: pd.DataFrame, model: str) -> pd.DataFrame:
    """One model's log-probs per (prompt, decoded word); duplicate decodings keep the highest."""
    sel = lm[(lm["model"] == model) | (lm.get("model_key", lm["model"]) == model)]
    if sel.empty:
        raise ValueError(f"no log-probabilities for model '{model}'")
    pcol = "prompt" if "prompt" in sel.columns else "prompt_id"
    return sel.groupby([pcol, "response"], sort=False)["value"].max().rename(model).reset_index()


def mwlr_table(lm_scores: pd.DataFrame, model1: str, model2: str, prompt: str | None = None) -> pd.DataFrame:
    """Per-word MWLR of model1 vs model2, sorted (top = model1's favourites, bottom = model2's).
    With several prompts, MWLR is computed per prompt and averaged over the prompts where
    both models have the word (n_prompts says how many); logp1/logp2 are the mean log-probs."""
    lm = lm_scores
    if prompt is not None:
        lm = lm[(lm.get("prompt", lm["prompt_id"]) == prompt) | (lm.get("prompt_id", lm["prompt"]) == prompt)]
    a, b = _best_logprobs(lm, model1), _best_logprobs(lm, model2)
    pcol = a.columns[0]
    both = a.merge(b.rename(columns={model2: "_b"}), on=[pcol, "response"]).rename(columns={model1: "_a"})
    both["mwlr"] = mwlr(both["_a"], both["_b"])
    out = both.groupby("response").agg(logp1=("_a", "mean"), logp2=("_b", "mean"),
                                       mwlr=("mwlr", "mean"), n_prompts=("mwlr", "size"))
    out = out.reset_index().rename(columns={"response": "word"})
    out["prefers"] = np.where(out["mwlr"] > 0, model1, np.where(out["mwlr"] < 0, model2, "neither"))
    return out.sort_values(["mwlr", "word"], ascending=[False, True]).reset_index(drop=True)


def top_bottom(table: pd.DataFrame, n: int = 10) -> dict:
    """The n words each model prefers most (by MWLR)."""
    return {"top": table.head(n), "bottom": table.tail(n).iloc[::-1].reset_index(drop=True)}


def mwlr_by_category(table: pd.DataFrame, words: pd.DataFrame) -> pd.DataFrame:
    """MWLR summarised per corpus category (a word in several categories counts in each)."""
    m = table.merge(words[["word", "category"]].drop_duplicates(), on="word")
    return (m.groupby("category")["mwlr"]
            .agg(n_words="size", mean_mwlr="mean", median_mwlr="median", sum_mwlr="sum",
                 share_model1=lambda s: float((s > 0).mean()))
            .reset_index())


TYPED_WORD = re.compile(r"[^\W\d_][\w' -]{0,39}")  # a letter first, at most 40 characters


def typed_words(text: str) -> tuple[str, ...]:
    """The words a visitor typed, comma-separated (Figure 3's word box): each starts with a
    letter and has at most 40 characters; others are dropped, repeats kept once."""
    return tuple(dict.fromkeys(w.strip() for w in str(text).split(",") if TYPED_WORD.fullmatch(w.strip())))
