"""Figure 1's data: each (model, prompt)'s word ranks, median ranks per category, family
means and the paper's average-ranks table (METHOD.md section 3). The same ranks computed
inside DuckDB live in core/ranks.py (the fast path); this is the pandas path and the labels."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import family as _family
from .. import prompts
from .levels import framing_levels, json_float


def model_col(scores: pd.DataFrame) -> str:
    return "model_key" if "model_key" in scores.columns else "model"


def word_ranks(scores: pd.DataFrame, words: pd.DataFrame) -> pd.DataFrame:
    """Rank each (model, prompt)'s corpus words by score, 1 = highest, ties averaged
    (R `rank(-score)`). Only corpus words are ranked: a score file may hold extra words;
    a word a model was not scored on is simply absent from its ranking."""
    key = model_col(scores)
    codes = _codes(scores, words)
    cols = [c for c in dict.fromkeys(["model", key, "family", "prompt_id", "prompt", "response", "value"])
            if c in scores.columns]
    out = scores.iloc[codes["rows"]][cols].copy()
    out["rank"] = codes["rank"]
    return out.reset_index(drop=True)


def _codes(scores: pd.DataFrame, words: pd.DataFrame) -> dict:
    """Integer codes for model, prompt and response, and each kept row's rank.
    Why integers: grouping 10^6 string keys dominates the run time; int keys are ~10x faster."""
    kc, kuniq = pd.factorize(scores[model_col(scores)])
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
    name = (models["model"] if "model" in models.columns else models[model_col(scores)]).astype(str).to_numpy()
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


def model_mean_ranks(med: pd.DataFrame) -> pd.DataFrame:
    """Each model's Figure-1 value per (framing, category): the mean over the framing's
    prompts of its median rank of the category's words (1 = highest reward), with the number
    of prompts it rests on. The one per-model number that family means average, that an audit
    of a single model reports and that a training trajectory follows per checkpoint.
    `med` is median_ranks()'s shape (with `_key` when it comes from the analysis, else `model`
    is the model's unique label)."""
    key = "_key" if "_key" in med.columns else "model"
    cols = ["framing", "category", "family", "model", "mean_rank", "n_prompts"]
    if med.empty:
        return pd.DataFrame(columns=cols)
    d = med.assign(family=med["family"].astype(object), _unit=med[key])
    g = d.groupby(["framing", "category", "_unit"], observed=True, dropna=False, sort=True)
    out = g.agg(model=("model", "first"), family=("family", "first"), mean_rank=("median_rank", "mean"),
                n_prompts=("prompt_id", "nunique")).reset_index()
    return out[cols].reset_index(drop=True)


def family_means(med: pd.DataFrame) -> pd.DataFrame:
    """Mean over models of each model's mean median rank, per (framing, category, family):
    every model weighs the same however many prompts it was scored on."""
    per_model = model_mean_ranks(med.dropna(subset=["family"]))
    out = per_model.groupby(["framing", "category", "family"], observed=True)["mean_rank"].mean()
    return out.rename("mean_rank").reset_index().sort_values(["framing", "category", "family"]).reset_index(drop=True)



def row_ranks(scores: pd.DataFrame, words: pd.DataFrame) -> pd.DataFrame:
    """Each corpus row's rank within its (model, prompt) (pandas twin of ranks.rank_summaries)."""
    key = model_col(scores)
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


def average_from_long(long: pd.DataFrame) -> pd.DataFrame:
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



def label_medians(raw: pd.DataFrame) -> pd.DataFrame:
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


def n_ranked(scores: pd.DataFrame, words: pd.DataFrame) -> int:
    """Distinct corpus words that at least one model was scored on (what the ranks range over)."""
    vocab = pd.Index(words["word"].astype(str).unique())
    return int(vocab.isin(scores["response"].astype(str).unique()).sum())



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
    return [{**r, "mean_rank": json_float(r["mean_rank"])} for r in out.to_dict("records")]

