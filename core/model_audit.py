"""One reward model audited against the paper's: where does it sit among the families?

A researcher's first question about their own RM: which base family's values does it
resemble, and how clearly? Per panel (framing x category) the model's Figure-1 value
(`analysis.model_mean_ranks`: mean over the framing's prompts of the median rank, among
the corpus words, of the category's words; 1 = highest reward) with a two-way bootstrap
interval over prompts and words (core/uncertainty.py's machinery), beside each family's
mean and model-to-model spread and the reference models' range. The closest family is the
one whose mean the model's values are nearest to, in units of that family's spread
(root-mean-square over the panels), and "how clearly" compares the nearest with the next.

What cannot be read from the scores is said, not hidden: a model scored on few prompts
has wide intervals; a model that ranks words the same whether asked for the best or the
worst thing ignores the question (as untrained or random weights do), and one whose word
rankings do not agree from prompt to prompt spreads like noise. A random-weight model is not
detectable in general; these two signs are what the scores can show."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import analysis, coverage, ranks, uncertainty
from . import family as _family
from . import prompts as _prompts
from .analysis.levels import framing_levels, json_float
from .analysis.medians import label_medians, row_ranks
from .errors import ValueAuditError

FEW_PROMPTS = 10        # fewer prompts per framing than this: say the intervals are wide
IGNORES_QUESTION = 0.8  # best-vs-worst rank correlation at or above this: the model ignores the question
NOISE = 0.2             # mean prompt-to-prompt rank correlation below this: scores spread like noise
CLEAR_GAP, SOME_GAP, UNLIKE = 1.0, 0.5, 3.0  # in family spreads (see closest_family())


class ModelAuditError(ValueAuditError, ValueError):
    """The model cannot be audited as asked; the message says what to do."""


@dataclass(frozen=True)
class ModelAudit:
    """Where one model sits among the reference models' families on one corpus."""
    model: str
    model_key: str
    family: str | None                 # the model's own base family, when known
    corpus: str
    n_words: int
    n_prompts: int
    panels: list[dict]                 # framing, category, value, ci_low, ci_high, n_prompts, family_means, ...
    reference: list[str]               # the models the family means and range come from
    reference_kind: str                # "the paper's published models" | "the other models scored here"
    distances: dict[str, float]        # family -> RMS over panels of (value - family mean) / family spread
    closest_family: str | None
    clarity: str                       # clearly | somewhat | not clearly | unlike any | not meaningful | cannot tell
    sentence: str
    caveats: list[str] = field(default_factory=list)
    consistency: dict = field(default_factory=dict)
    reps: int = 2000
    seed: int = 0
    level: float = 0.95

    def renamed(self, name) -> "ModelAudit":
        """A copy with every model name and key passed through `name` (a report and a shared
        server pass one that hides server paths: core.report.public_model_name), the sentence
        written again."""
        from dataclasses import replace
        panels = [{**p, "reference_values": [{**v, "model": name(v["model"])} for v in p["reference_values"]]}
                  for p in self.panels]
        out = replace(self, model=name(self.model), model_key=name(self.model_key),
                      reference=[name(m) for m in self.reference], panels=panels)
        return replace(out, sentence=sentence(out))

    def to_json(self) -> dict:
        return {"model": self.model, "model_key": self.model_key, "family": self.family, "corpus": self.corpus,
                "n_words": self.n_words, "n_prompts": self.n_prompts, "panels": self.panels,
                "reference": {"kind": self.reference_kind, "models": list(self.reference)},
                "distances": {f: json_float(d) for f, d in self.distances.items()},
                "closest_family": self.closest_family, "clarity": self.clarity, "sentence": self.sentence,
                "caveats": list(self.caveats), "consistency": self.consistency,
                "bootstrap": {"reps": self.reps, "seed": self.seed, "level": self.level}}


# ----------------------------------------------------------------------------------
# The audit
# ----------------------------------------------------------------------------------
def audit_model(store, model: str, corpus: str, words: pd.DataFrame, ranking: str = "word",
                reps: int = 2000, seed: int = 0, level: float = 0.95) -> ModelAudit:
    """Audit `model` (a name or key, as given to `score`) on `corpus` (its words table; the
    ranking as the analysis ranks that corpus) against the models the corpus's family
    statistics use (core/coverage.py), the paper's published ones when they are there."""
    sel = coverage.select(store, corpus, words)
    row = _the_model(sel, model, corpus)
    key, name = row["model_key"], row["name"]
    mine = _own_prompts(store, key, words, sel)
    caveats = _coverage_caveats(row, sel, mine)
    med = _medians(store, words, ranking, [key], mine["prompt"].tolist())
    if med.empty:
        raise ModelAuditError(f"{name} has no scores on the words of {corpus} for the prompts compared; score it "
                              "on this corpus first")
    values = analysis.model_mean_ranks(med)
    ci = _intervals(store, key, words, ranking, mine, reps, seed, level)
    ref_keys, ref_kind = _reference(sel, key)
    ref = analysis.model_mean_ranks(_medians(store, words, ranking, ref_keys, sel.prompt_texts)) if ref_keys else \
        pd.DataFrame(columns=["framing", "category", "family", "model", "mean_rank", "n_prompts"])
    panels = _panels(values, ci, ref)
    distances = family_distances(panels)
    nearest, clarity = closest_family(distances, panels)
    consistency = _consistency(store, key, ref_keys, words, mine["prompt"].tolist(), sel.prompt_texts)
    doubts = _consistency_caveats(consistency)
    if doubts and nearest is not None:  # the scores do not read the question: no placement to claim
        clarity = "not meaningful"
    caveats = doubts + caveats
    fam = _family.display(row["family"])
    audit = ModelAudit(model=str(row["model"]), model_key=key, family=fam, corpus=corpus,
                       n_words=int(words["word"].nunique()), n_prompts=len(mine), panels=panels,
                       reference=sorted(ref["model"].unique().tolist()), reference_kind=ref_kind,
                       distances=distances, closest_family=nearest, clarity=clarity, sentence="",
                       caveats=caveats, consistency=consistency, reps=reps, seed=seed, level=level)
    return _with_sentence(audit)


def _the_model(sel: coverage.Selection, model: str, corpus: str) -> dict:
    t = sel.table[sel.table["readable"]]
    hit = t[(t["name"] == model) | (t["model_key"] == model) | (t["model"] == model)]
    if hit.empty:
        raise ModelAuditError(f"no scores of {model} on {corpus}: score it on this corpus first",
                              cli_hint=f"python -m core score --model {model} --kind rm --corpus {corpus}")
    return hit.sort_values(["used", "complete"], ascending=False).iloc[0].to_dict()


def _own_prompts(store, key: str, words: pd.DataFrame, sel: coverage.Selection) -> pd.DataFrame:
    """The compared prompts the model is scored on; all its own when it has none of them."""
    counts = coverage.word_counts(store, words["word"].astype(str).unique())
    own = counts[counts["model_key"] == key][["prompt_id", "prompt"]]
    on = own[own["prompt"].isin(set(sel.prompt_texts))]
    return (on if not on.empty else own).reset_index(drop=True)


def _coverage_caveats(row: dict, sel: coverage.Selection, mine: pd.DataFrame) -> list[str]:
    out = []
    per_framing = mine.assign(f=[_prompts.framing_of(i, t) for i, t in zip(mine["prompt_id"], mine["prompt"])])
    counts = per_framing.groupby("f").size()
    if not row["complete"]:
        out.append(f"It is not completely scored ({coverage.describe(row)}), so it is not in the family "
                   "statistics and its values are not fully comparable with the others'.")
    if len(counts) and counts.min() < FEW_PROMPTS:
        few = ", ".join(f"{n} {f}" for f, n in counts.items())
        out.append(f"Its values rest on few prompts ({few}; the paper used 27 per framing): the intervals are "
                   "wide and the placement may change with more prompts.")
    return out


def _medians(store, words: pd.DataFrame, ranking: str, keys, prompt_texts) -> pd.DataFrame:
    """Median rank per (model, prompt, category), labelled as the analysis labels them."""
    got = ranks.rank_summaries(store, words, ranking, "rm", list(keys), list(prompt_texts))["medians"]
    return label_medians(got) if not got.empty else pd.DataFrame(
        columns=["model", "family", "prompt_id", "framing", "category", "median_rank", "_key"])


def _intervals(store, key: str, words: pd.DataFrame, ranking: str, mine: pd.DataFrame, reps: int, seed: int,
               level: float) -> dict:
    """(framing, category) -> (low, high): prompts and words resampled independently with
    replacement (uncertainty.bootstrap_model_means, the two-way cluster bootstrap)."""
    scores = store.scores(kind="rm", models=[key], words=words["word"].astype(str).unique(),
                          prompts=mine["prompt"].tolist())
    d = _word_level(scores, words, ranking)
    out = {}
    for i, (fr, cat, panel) in enumerate(uncertainty.panels(d)):
        _, boot = uncertainty.bootstrap_model_means(panel, reps, np.random.default_rng([seed, i]))
        out[(fr, cat)] = uncertainty.percentile_ci(boot[:, 0], level)
    return out


def _word_level(scores: pd.DataFrame, words: pd.DataFrame, ranking: str) -> pd.DataFrame:
    """One row per (prompt, ranked item, category) with its rank, in uncertainty.prepare's
    shape. "row" ranking (the paper's MFD script) ranks corpus rows: a row is the unit."""
    scores = scores.assign(family="audited")  # one model; its family plays no part here
    if ranking == "row":
        long = row_ranks(scores, words)
        sub = long["subcategory"] if "subcategory" in long.columns else ""
        fr = {(i, t): _prompts.framing_of(str(i), str(t)) for i, t in set(zip(long["prompt_id"], long["prompt"]))}
        return pd.DataFrame({"model": long["model"], "family": "audited", "prompt_id": long["prompt_id"],
                             "response": long["word"].astype(str) + "\x1f" + pd.Series(sub, index=long.index).astype(str)
                             + "\x1f" + long["category"].astype(str),
                             "rank": long["rank"], "category": long["category"],
                             "framing": [fr[(i, t)] for i, t in zip(long["prompt_id"], long["prompt"])]})
    r = analysis.word_ranks(scores, words)
    fr = {(i, t): _prompts.framing_of(str(i), str(t)) for i, t in set(zip(r["prompt_id"], r["prompt"]))}
    r["framing"] = [fr[(i, t)] for i, t in zip(r["prompt_id"], r["prompt"])]
    return uncertainty.prepare(r, words)


def _reference(sel: coverage.Selection, key: str) -> tuple[list[str], str]:
    """The models to place the audited one among: the paper's published models the family
    statistics use, else every other model they use."""
    t = sel.table[sel.table["used"] & (sel.table["model_key"] != key)]
    pub = t[t["source"] == "published"]
    if not pub.empty:
        return pub["model_key"].tolist(), "the paper's published models"
    return t["model_key"].tolist(), "the other models scored here"


def _panels(values: pd.DataFrame, ci: dict, ref: pd.DataFrame) -> list[dict]:
    out = []
    order = {f: i for i, f in enumerate(framing_levels(values["framing"]))}
    for r in sorted(values.to_dict("records"), key=lambda r: (order[r["framing"]], r["category"].casefold())):
        fr, cat = r["framing"], r["category"]
        rp = ref[(ref["framing"] == fr) & (ref["category"] == cat)].dropna(subset=["family"])
        fams = {}
        for f in _family.order(rp["family"]):
            v = rp.loc[rp["family"] == f, "mean_rank"].to_numpy(float)
            fams[f] = {"mean": json_float(v.mean()), "sd": json_float(v.std(ddof=1)) if len(v) > 1 else None,
                       "n_models": int(len(v))}
        lo, hi = ci.get((fr, cat), (float("nan"), float("nan")))
        out.append({"framing": fr, "category": cat, "value": json_float(r["mean_rank"]),
                    "ci_low": json_float(lo), "ci_high": json_float(hi), "n_prompts": int(r["n_prompts"]),
                    "family_means": {f: d["mean"] for f, d in fams.items()},
                    "family_sd": {f: d["sd"] for f, d in fams.items()},
                    "family_n_models": {f: d["n_models"] for f, d in fams.items()},
                    "reference_min": json_float(rp["mean_rank"].min()) if len(rp) else None,
                    "reference_max": json_float(rp["mean_rank"].max()) if len(rp) else None,
                    "reference_values": [{"model": m, "family": f, "value": json_float(v)}
                                         for m, f, v in zip(rp["model"], rp["family"], rp["mean_rank"])]})
    return out


# ----------------------------------------------------------------------------------
# Closest family and how clearly
# ----------------------------------------------------------------------------------
def family_distances(panels: list[dict]) -> dict[str, float]:
    """Per family with a spread (two models or more): the root mean square over the panels of
    (model's value − family mean) / family model-to-model SD. 1 = as far from the family's
    mean as its own models typically are."""
    z: dict[str, list[float]] = {}
    for p in panels:
        for f, mean in p["family_means"].items():
            sd = p["family_sd"].get(f)
            if mean is None or not sd or p["value"] is None:
                continue
            z.setdefault(f, []).append((p["value"] - mean) / sd)
    return {f: float(np.sqrt(np.mean(np.square(v)))) for f, v in z.items() if v}


def closest_family(distances: dict[str, float], panels: list[dict]) -> tuple[str | None, str]:
    """(closest family, how clearly): 'clearly' when the next family is at least CLEAR_GAP
    spreads further, 'somewhat' at SOME_GAP, else 'not clearly'; 'unlike any' when even the
    closest is further than UNLIKE spreads; never 'clearly' when every panel's interval holds
    both families' means (the scores cannot tell them apart)."""
    if not distances:
        return None, "cannot tell"
    order = sorted(distances, key=distances.get)
    best = order[0]
    if distances[best] > UNLIKE:
        return best, "unlike any"
    if len(order) == 1:
        return best, "only one family to compare"
    gap = distances[order[1]] - distances[best]
    clarity = "clearly" if gap >= CLEAR_GAP else "somewhat" if gap >= SOME_GAP else "not clearly"
    undecided = all(p["ci_low"] is not None and all(p["ci_low"] <= m <= p["ci_high"]
                                                    for m in p["family_means"].values() if m is not None)
                    for p in panels)
    if undecided and clarity != "not clearly":
        clarity = "not clearly"
    return best, clarity


# ----------------------------------------------------------------------------------
# What the scores can say about the model itself
# ----------------------------------------------------------------------------------
def _consistency(store, key: str, ref_keys: list[str], words: pd.DataFrame, own_texts, ref_texts) -> dict:
    """Two signs a model reads the question: its word rankings agree from prompt to prompt
    of one framing (`within`: mean Spearman correlation over prompt pairs), and differ
    between 'best' and 'worst' prompts (`best_vs_worst`: Spearman correlation of its mean
    word scores on positive and on negative prompts)."""
    vocab = words["word"].astype(str).unique()
    mine = agreement(store, [key], vocab, own_texts)
    out = {"model": mine.get(key, {"within": None, "best_vs_worst": None})}
    if ref_keys:
        ref = agreement(store, ref_keys, vocab, ref_texts)
        for stat in ("within", "best_vs_worst"):
            vals = [v[stat] for v in ref.values() if v.get(stat) is not None]
            if vals:
                out[f"reference_{stat}"] = {"min": json_float(min(vals)), "median": json_float(np.median(vals)),
                                            "max": json_float(max(vals))}
    return out


def agreement(store, keys, vocabulary, prompt_texts) -> dict[str, dict]:
    """Per model key: {'within', 'best_vs_worst'} (see _consistency), computed in DuckDB
    (Spearman = Pearson of average ranks), so a 2,040-word corpus never travels to pandas."""
    texts = list(dict.fromkeys(map(str, prompt_texts)))
    ids = store.query("SELECT DISTINCT prompt, prompt_id FROM scores WHERE prompt IN (SELECT p FROM t)",
                      t=pd.DataFrame({"p": texts}, dtype=str))
    fr = pd.DataFrame({"prompt": ids["prompt"].astype(str),
                       "framing": [_prompts.framing_of(str(i), str(t)) for i, t in zip(ids["prompt_id"], ids["prompt"])]}
                      ).drop_duplicates("prompt")
    avg_rank = "(rank() OVER {w} + count(*) OVER ({w} RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) / 2.0"
    sql = f"""
        WITH s AS (SELECT s.model_key, s.prompt, s.response, s.value, f.framing
                   FROM scores s JOIN fr f USING (prompt)
                   WHERE s.kind = 'rm' AND isfinite(s.value) AND f.framing IN ('positive', 'negative')
                     AND s.model_key IN (SELECT k FROM ks) AND s.response IN (SELECT w FROM vocab)),
        r AS (SELECT model_key, prompt, framing, response,
                     {avg_rank.format(w="w")} AS rk
              FROM s WINDOW w AS (PARTITION BY model_key, prompt ORDER BY value)),
        pairs AS (SELECT a.model_key, corr(a.rk, b.rk) AS c
                  FROM r a JOIN r b ON a.model_key = b.model_key AND a.framing = b.framing
                                   AND a.response = b.response AND a.prompt < b.prompt
                  GROUP BY a.model_key, a.framing, a.prompt, b.prompt),
        means AS (SELECT model_key, response, avg(value) FILTER (WHERE framing = 'positive') AS pos,
                         avg(value) FILTER (WHERE framing = 'negative') AS neg
                  FROM s GROUP BY ALL HAVING pos IS NOT NULL AND neg IS NOT NULL),
        mr AS (SELECT model_key, {avg_rank.format(w="wp")} AS rp, {avg_rank.format(w="wn")} AS rn
               FROM means WINDOW wp AS (PARTITION BY model_key ORDER BY pos), wn AS (PARTITION BY model_key ORDER BY neg))
        SELECT k.k AS model_key, (SELECT avg(c) FROM pairs WHERE pairs.model_key = k.k) AS within,
               (SELECT corr(rp, rn) FROM mr WHERE mr.model_key = k.k) AS best_vs_worst
        FROM ks k"""
    got = store.query(sql, fr=fr, ks=pd.DataFrame({"k": list(keys)}, dtype=str),
                      vocab=pd.DataFrame({"w": list(map(str, vocabulary))}, dtype=str))
    return {r["model_key"]: {"within": _num(r["within"]), "best_vs_worst": _num(r["best_vs_worst"])}
            for r in got.to_dict("records")}


def _num(x):
    return None if x is None or pd.isna(x) else json_float(x)


def _consistency_caveats(c: dict) -> list[str]:
    out, me = [], c.get("model", {})
    bvw, within = me.get("best_vs_worst"), me.get("within")
    ref_b, ref_w = c.get("reference_best_vs_worst"), c.get("reference_within")
    if bvw is not None and bvw >= IGNORES_QUESTION:
        ref = f"; the reference models: {ref_b['min']:.2f} to {ref_b['max']:.2f}" if ref_b else ""
        out.append(f"It ranks the words almost the same whether asked for the best or the worst thing (rank "
                   f"correlation {bvw:.2f}{ref}), as a model that ignores the question does (untrained or random "
                   "weights, a broken score head). Where it sits then says little about its values.")
    if within is not None and within < NOISE:
        ref = f"; the reference models: {ref_w['median']:.2f}" if ref_w else ""
        out.append(f"Its word rankings barely agree from one prompt to the next (mean rank correlation "
                   f"{within:.2f}{ref}): its scores spread like noise, so where it sits says little.")
    return out


def _with_sentence(a: ModelAudit) -> ModelAudit:
    from dataclasses import replace
    return replace(a, sentence=sentence(a))


def sentence(a: ModelAudit) -> str:
    """The placement in words a policy reader can repeat, then its main caveat."""
    caveat = f" Caveat: {a.caveats[0]}" if a.caveats else ""
    return placement_text(a) + caveat


def placement_text(a: ModelAudit) -> str:
    """The placement in words, without the caveats (a page lists those beside it)."""
    pos = [p for p in a.panels if p["framing"] == "positive"] or a.panels
    vals = ", ".join(f"{p['category']} words at {p['value']:.0f}" for p in pos if p["value"] is not None)
    head = (f"On {a.corpus} ({a.n_words} words), {a.model} ranks {vals} on {pos[0]['framing']} prompts "
            f"(mean rank; 1 = most rewarded).") if vals else f"On {a.corpus}, {a.model} has no values to place."
    if a.closest_family is None:
        place = (" There are no families with two or more reference models to compare it with, so where it sits "
                 "cannot be told.")
    else:
        from .headline import counts_text
        far = ", ".join(f"{d:.1f} from the {f} family's mean" for f, d in sorted(a.distances.items(), key=lambda x: x[1]))
        n = reference_counts(a)
        spread = (f"Across the {len(a.panels)} panels its values lie {far} (in units of each family's model-to-model "
                  f"spread; the placement rests on {counts_text({f: n[f] for f in a.distances if f in n})} "
                  "for reference)")
        verdict = {
            "clearly": f"it clearly resembles {a.closest_family}-based reward models",
            "somewhat": f"it resembles {a.closest_family}-based reward models somewhat more than the others",
            "not clearly": "it does not clearly resemble one family more than the other",
            "unlike any": "it is unlike the reference models of every family",
            "only one family to compare": f"only the {a.closest_family} family can be compared",
            "not meaningful": f"the nearest is the {a.closest_family} family, but that placement is not meaningful "
                              "(see the caveat)",
        }.get(a.clarity, "where it sits cannot be told")
        own = ""
        if a.family and a.clarity in ("clearly", "somewhat"):
            own = (f" It is built on {a.family}, its own family." if a.family == a.closest_family
                   else f" It is built on {a.family}, not {a.closest_family}.")
        place = f" {spread}: {verdict}.{own}"
    return head + place


def reference_counts(a: ModelAudit) -> dict[str, int]:
    """Reference models per family the placement rests on (a family's spread, and so the
    distance to it, comes from this few: a policy reader must know how few)."""
    seen: dict[str, set] = {}
    for p in a.panels:
        for v in p["reference_values"]:
            if v.get("family") is not None:
                seen.setdefault(v["family"], set()).add(v["model"])
    return {f: len(m) for f, m in seen.items()}


def panels_table(a: ModelAudit) -> pd.DataFrame:
    """The panels as one table (what the CLI prints and the page and report show): the model's
    value and interval, each family's mean, the reference models' range."""
    fams = _family.order({f for p in a.panels for f in p["family_means"]})
    rows = []
    for p in a.panels:
        row = {"framing": p["framing"], "category": p["category"], "value": p["value"],
               f"{a.level:.0%} interval": _interval_text(p)}
        for f in fams:
            row[f"{f} mean"] = p["family_means"].get(f)
        row["reference range"] = (f"{p['reference_min']:.1f} to {p['reference_max']:.1f}"
                                  if p["reference_min"] is not None else "")
        rows.append(row)
    out = pd.DataFrame(rows)
    num = [c for c in out.columns if c == "value" or c.endswith(" mean")]
    out[num] = out[num].astype(float).round(1)
    return out


def _interval_text(p: dict) -> str:
    return f"{p['ci_low']:.1f} to {p['ci_high']:.1f}" if p["ci_low"] is not None else "n/a"
