"""One story for readers: what the paper's analysis finds, what a stricter analysis that treats
the models and the words as samples finds, and what that means — the same sentences in Home,
Compare, the Report, the audit report and the CLI (this module makes them; nothing else does).

Why: the paper's tests count every (model, prompt) median as independent and say every family
gap is significant; the stricter analysis (core/uncertainty.py: each gap's t test adds the
models' spread within each family to a bootstrap of prompts and words; core/crossed.py: every
word's rank with the family × word term) says
chance could explain them. A reader must get both, side by side, in plain words, and the
same words wherever they look.

`stricter(ranks, words)` runs the stricter analysis once (draws, family gaps, rank intervals
for every panel, the crossed mixed model); `headline(result, stricter)` writes the three
sentences from the paper's `analysis.Figure1` (or its JSON) and that (or its JSON), so a
result saved by `analyze --uncertainty --json` renders the same text."""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import crossed as _crossed
from . import uncertainty
from .wording import p_text

REPS, SEED = uncertainty.REPS, 0


# ----------------------------------------------------------------------------------
# The stricter analysis, run once
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stricter:
    """The stricter analysis of one selection: family gaps (DataFrame, uncertainty.GAP_COLUMNS),
    rank intervals per (framing, category) panel, and the crossed mixed model (dict)."""
    gaps: pd.DataFrame
    rank_intervals: dict = field(default_factory=dict)
    crossed: dict = field(default_factory=dict)
    reps: int = REPS
    seed: int = SEED

    def to_json(self) -> dict:
        """What `analyze --uncertainty --json` adds: `family_gaps`, `rank_intervals`, `crossed`."""
        gaps = [{k: _plain(v) for k, v in r.items()} for r in self.gaps.to_dict("records")]
        ri = [{"framing": fr, "category": cat, "models": [{k: _plain(v) for k, v in r.items()}
                                                          for r in t.to_dict("records")],
               **{k: _plain(v) for k, v in t.attrs.items()}}
              for (fr, cat), t in self.rank_intervals.items()]
        return {"family_gaps": gaps, "rank_intervals": ri, "crossed": self.crossed,
                "stricter": {"reps": self.reps, "seed": self.seed}}


def _plain(v):
    """JSON-safe scalars (numpy numbers as Python numbers, NaN as None)."""
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return v


_MEMO: OrderedDict = OrderedDict()  # content hash -> Stricter: a few seconds of work, asked for by several pages
_MEMO_SIZE = 8


def _content_key(ranks: pd.DataFrame, words: pd.DataFrame, *args) -> tuple:
    """A key from the data itself (not from where it came from), so the same ranks give the
    same cached analysis whichever page, cache or database copy asks."""
    cols = [c for c in ("model", "family", "prompt_id", "response", "rank", "framing") if c in ranks.columns]
    r = pd.util.hash_pandas_object(ranks[cols], index=False).to_numpy()
    w = pd.util.hash_pandas_object(words[["word", "category"]].astype(str), index=False).to_numpy()
    return (hashlib.sha256(r.tobytes()).hexdigest(), hashlib.sha256(w.tobytes()).hexdigest(), len(ranks)) + args


def stricter(ranks: pd.DataFrame, words: pd.DataFrame, reps: int = REPS, seed: int = SEED,
             correction: str = "holm") -> Stricter:
    """Draws (prompts, words), family gaps with their t test's p and Holm-adjusted p,
    rank intervals with groups for every panel, and the crossed mixed model with Satterthwaite df.
    Remembered by content (the last few): the result is shared, do not modify it."""
    key = _content_key(ranks, words, reps, seed, correction)
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    out = _stricter(ranks, words, reps, seed, correction)
    _MEMO[key] = out
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return out


def _stricter(ranks: pd.DataFrame, words: pd.DataFrame, reps: int, seed: int, correction: str) -> Stricter:
    draws = uncertainty.resample(ranks, words, reps=reps, seed=seed)
    gaps = uncertainty.family_gaps(resamples=draws, correction=correction)
    ri = {panel: uncertainty.rank_intervals(None, None, *panel, resamples=draws, correction=correction)
          for panel in _paper_order(draws.panels)}
    return Stricter(gaps, ri, _crossed.crossed_model(ranks, words), reps, seed)


def _paper_order(panels) -> list:
    order = {"positive": 0, "negative": 1}
    return sorted(panels, key=lambda p: (order.get(p[0], 2), p[0], p[1]))


def restrict(ranks: pd.DataFrame, result) -> pd.DataFrame:
    """The word ranks of exactly the (model, prompt) pairs the paper's analysis used (its
    median ranks), so both analyses read the same models and prompts."""
    med = pd.DataFrame(_as_json(result).get("median_ranks") or [])
    if med.empty or ranks.empty:
        return ranks.iloc[0:0]
    pairs = pd.MultiIndex.from_frame(med[["model", "prompt_id"]].drop_duplicates().astype(str))
    keep = pd.MultiIndex.from_arrays([ranks["model"].astype(str), ranks["prompt_id"].astype(str)]).isin(pairs)
    return ranks[keep]


def stricter_from_store(store, result, words: pd.DataFrame, corpus: str, reps: int = REPS,
                        seed: int = SEED) -> Stricter:
    """The stricter analysis of the models and prompts a Figure 1 result from this store used."""
    from . import words as _words
    models = sorted({r["model"] for r in _as_json(result).get("median_ranks") or []})
    ranks = _words.ranked_from_store(store, words, corpus, models=models)
    return stricter(restrict(ranks, result), words, reps, seed)


def from_json(data: dict) -> Stricter:
    """A Stricter read back from `analyze --uncertainty --json`."""
    ri = {}
    for r in data.get("rank_intervals") or []:
        t = pd.DataFrame(r["models"])
        t.attrs.update({k: v for k, v in r.items() if k not in ("framing", "category", "models")})
        ri[(r["framing"], r["category"])] = t
    st = data.get("stricter") or {}
    return Stricter(pd.DataFrame(data.get("family_gaps") or [], columns=uncertainty.GAP_COLUMNS), ri,
                    data.get("crossed") or {}, st.get("reps", REPS), st.get("seed", SEED))


# ----------------------------------------------------------------------------------
# The headline
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Headline:
    """Three sentences: the paper's finding, the stricter analysis's, and what it means."""
    paper: str
    stricter: str
    meaning: str

    @property
    def sentences(self) -> list[str]:
        return [s for s in (self.paper, self.stricter, self.meaning) if s]

    @property
    def text(self) -> str:
        return "\n".join(self.sentences)

    @property
    def labelled(self) -> list[str]:
        """'What the paper's analysis finds: …' lines, as the CLI and the report print them."""
        return [f"{LABELS[k]}: {v}" for k, v in (("paper", self.paper), ("stricter", self.stricter),
                                                   ("meaning", self.meaning)) if v]

    def to_json(self) -> dict:
        return {"paper": self.paper, "stricter": self.stricter, "meaning": self.meaning,
                "sentences": self.sentences}


LABELS = {"paper": "What the paper's analysis finds", "stricter": "What a stricter analysis finds",
          "meaning": "What it means"}


def model_counts(result) -> dict[str, int]:
    """Reward models per family in the paper's analysis of this selection."""
    med = pd.DataFrame(_as_json(result).get("median_ranks") or [])
    if med.empty:
        return {}
    med = med.dropna(subset=["family"])
    return {str(f): int(g["model"].nunique()) for f, g in med.groupby("family", sort=True)}


def counts_text(counts: dict[str, int], noun: str = "models") -> str:
    """'4 Gemma and 6 Llama models'; with noun='based reward models': 'the 4 Gemma-based and 6
    Llama-based reward models'."""
    items = sorted(counts.items(), key=lambda x: (x[0].casefold(), x[0]))
    if not items:
        return "no models"
    if noun == "based reward models":
        parts = [f"{n} {fam}-based" for fam, n in items]
        return "the " + _join(parts) + " reward model" + ("" if sum(counts.values()) == 1 else "s")
    return _join([f"{n} {fam}" for fam, n in items]) + (" model" if sum(counts.values()) == 1 else " models")


def headline(result, strict: Stricter | dict | None) -> Headline:
    """The three sentences for a Figure 1 result (or its JSON) and its stricter analysis (or
    that part of `analyze --uncertainty --json`)."""
    res = _as_json(result)
    if isinstance(strict, dict):
        strict = from_json(strict)
    counts = model_counts(res)
    tests = res.get("family_tests")
    if not isinstance(tests, list) or not tests:
        reason = (tests or {}).get("message") if isinstance(tests, dict) else res.get("reason")
        return Headline(f"No family comparison ({counts_text(counts)}): {reason or 'not enough data'}.", "", "")
    paper, _, n_sig = _paper_sentence(res, tests, counts)
    if strict is None or strict.gaps.empty:
        return Headline(paper, "", "")
    stricter_s, n_clear, clear_panels = _stricter_sentence(strict, res)
    return Headline(paper, stricter_s, _meaning(n_sig, n_clear, clear_panels, counts, len(strict.gaps)))


PANEL_BY_PANEL = "The paper's analysis, panel by panel"


def story(result, strict: Stricter | dict | None, without_stricter: str = "") -> list[str]:
    """What a reader is told, in this order (the CLI's `analyze` and the Report print it): the
    headline first (the one story, the model counts in it), then the paper's sentence for
    each panel under a line naming the models they rest on. Without the stricter analysis
    the headline is the paper's sentence only; `without_stricter` then says where the rest is."""
    from .analysis import summary_text
    lines = headline(result, strict).labelled
    if strict is None and without_stricter:
        lines.append(without_stricter)
    return lines + [f"{PANEL_BY_PANEL} ({counts_text(model_counts(result))}):", summary_text(result)]


def _as_json(result) -> dict:
    return result.to_json() if hasattr(result, "to_json") else (result or {})


def _paper_sentence(res: dict, tests: list[dict], counts: dict) -> tuple[str, dict, int]:
    """The paper's Figure 1 result, as the paper's script computes it, in plain words (no
    'significant': the paper's p-values are printed, what they mean is the third sentence).
    With more than two families each test compares one family with the reference family
    (its `comparison`, 'Llama vs Gemma'), as the paper's tests do."""
    means = {(r["framing"], r["category"], r["family"]): r["mean_rank"] for r in res.get("family_means") or []}
    favours: dict[str, list[str]] = {}
    phrases = []
    for t in tests:
        p = t.get("welch_p_bonferroni")
        if t.get("framing") != "positive" or p is None or p >= 0.05:
            continue
        pair = _pair(t, means)
        if pair is None:
            continue
        a, b = (means[("positive", t["category"], f)] for f in pair)
        win, lose = (pair[0], pair[1]) if a < b else (pair[1], pair[0])  # lower mean rank = preferred
        favours.setdefault(win, []).append(t["category"])
        phrases.append((win, f"{win}-based models rank {t['category']} words {abs(a - b):.1f} places higher than "
                             f"{lose}-based ones"))
    n_sig = sum(1 for t in tests if t.get("welch_p_bonferroni") is not None and t["welch_p_bonferroni"] < 0.05)
    n = len(tests)
    n_panels = len({(t.get("framing"), t.get("category")) for t in tests})
    unit = "panels" if n == n_panels else "tests"
    over = (f"the {n} panels" if n == n_panels
            else f"the {n} tests ({n_panels} panels, each family against {_reference(tests)})")
    method = f"one median rank per model and prompt; Welch tests, Bonferroni-corrected over {over}"
    how = f"The paper's analysis {_applied_to(res, counts, method)}, finds that"
    tail = f"its tests give p < 0.05 on {n_sig} of {n} {unit}."
    if not favours:
        return f"{how} on positive prompts no family favours a category's words at p < 0.05; {tail}", favours, n_sig
    body = ", and ".join(ph for _, ph in sorted(phrases, key=lambda x: x[0].casefold()))
    return f"{how} on positive prompts {body}; {tail}", favours, n_sig


def _applied_to(res: dict, counts: dict, method: str) -> str:
    """'of the 4 Gemma-based and 6 Llama-based reward models, reproduced exactly (method)' only
    when the models are exactly the paper's published ones (all of them, its scores) on its 54
    prompts; else 'applied to these 12 reward models, 2 of them yours (the 5 Gemma-based and 7
    Llama-based ones; method)'. A result that does not say which models are published (one not
    read from a store) claims neither."""
    from . import prompts as _prompts
    from .models import REGISTRY
    fams = counts_text(counts, "based reward models")
    used, published = res.get("models_used"), res.get("models_published")
    if used is None or published is None:
        return f"applied to {fams} ({method})"
    n, own = len(used), len(set(used) - set(published))
    paper_rms = {e.name for e in REGISTRY if e.kind == "rm"}
    paper_prompts = {p.prompt_id for p in _prompts.paper_prompts()}
    prompt_ids = {str(r.get("prompt_id")) for r in res.get("median_ranks") or []}
    if own == 0 and set(used) == paper_rms and prompt_ids == paper_prompts:
        return f"of {fams}, reproduced exactly ({method})"
    on = "" if prompt_ids == paper_prompts else (
        f" on {len(prompt_ids)} of its {len(paper_prompts)} prompts" if prompt_ids < paper_prompts
        else f" on {len(prompt_ids)} prompts")
    whose = f"{own} of them yours" if own else "all from the paper's published scores"
    each = _join([f"{k} {f}-based" for f, k in sorted(counts.items(), key=lambda x: (x[0].casefold(), x[0]))])
    return f"applied to these {n} reward model{'s' if n != 1 else ''}{on}, {whose} ({each} ones; {method})"


def _pair(test: dict, means: dict) -> tuple[str, str] | None:
    """The two families a test compares (reference first), with their positive-prompt means."""
    comparison = str(test.get("comparison") or "")
    if " vs " in comparison:
        fam, ref = comparison.split(" vs ", 1)
        pair = (ref, fam)
    else:  # a result saved before tests named their comparison: two families only
        fams = sorted({f for (fr, c, f) in means if fr == "positive" and c == test["category"]}, key=str.casefold)
        if len(fams) != 2:
            return None
        pair = (fams[0], fams[1])
    return pair if all(("positive", test["category"], f) in means for f in pair) else None


def _reference(tests: list[dict]) -> str:
    refs = {str(t.get("comparison") or "").partition(" vs ")[2] for t in tests} - {""}
    return refs.pop() if len(refs) == 1 else "the reference family"


def _stricter_sentence(strict: Stricter, res: dict) -> tuple[str, int, list[str]]:
    """What the stricter analysis finds, naming its rule: a gap is clearly different from zero
    when its `uncertainty.gap_t_test` p, corrected over the gaps shown, is below 0.05."""
    g = strict.gaps
    n = len(g)
    p = pd.to_numeric(g["p"], errors="coerce")
    clear = g[pd.to_numeric(g["p_adjusted"], errors="coerce") < 0.05]
    tested = g[p.notna()]
    correction = str(g["correction"].iloc[0]) if "correction" in g and len(g) else "Holm"
    several = g[["family_a", "family_b"]].drop_duplicates().shape[0] > 1
    what = f"the {n} family gaps" + (f" (each family against {g['family_a'].iloc[0]})" if several else "")
    how = (f"A stricter analysis that treats the models, prompts and words as samples (each family gap tested with "
           f"{uncertainty.GAP_RULE} of {strict.reps:,} draws; and a mixed model of every word's rank that lets the "
           "families rank the same words differently)")
    rule = f"clearly different from zero (that is, with a {correction}-adjusted p below 0.05)"
    level = float(g["level"].iloc[0]) if "level" in g and len(g) and pd.notna(g["level"].iloc[0]) else 0.95
    untested = n - len(tested)
    if tested.empty:
        verdict = (f"cannot test {what}: a family has a single model here, and how much one family's models differ "
                   "among themselves cannot be seen from one")
    elif clear.empty:
        holds = bool(((tested["ci_low"] <= 0) & (tested["ci_high"] >= 0)).all())
        unit = "gaps" if several else "panels"
        detail = (f"every {level * 100:.0f}% interval includes zero" if holds
                  else f"not once the {unit} are tested together") + \
            f" ({_p_range(p.dropna())}; {correction}-adjusted over the {len(tested)} {unit}, none below 0.05)"
        verdict = f"finds none of {what} {rule}: {detail}"
    else:
        names = [_gap_name(r, several) for r in clear.itertuples()]
        verdict = f"finds {len(clear)} of {what} {rule}: {_join(names)}"
    if untested and not tested.empty:
        verdict += f"; {untested} cannot be tested (a family with a single model)"
    mixed = _mixed_clause(strict.crossed, res)
    return f"{how} {verdict}{mixed}.", len(clear), [_gap_name(r, several, short=True) for r in clear.itertuples()]


def _gap_name(r, several: bool, short: bool = False) -> str:
    """'Agency words on positive prompts' ('Agency on positive prompts' short), with the
    families compared where there are several pairs."""
    name = f"{r.category} on {r.framing} prompts" if short else f"{r.category} words on {r.framing} prompts"
    return f"{name} ({r.family_b} vs {r.family_a})" if several else name


def _p_range(ps: pd.Series) -> str:
    lo, hi = float(ps.min()), float(ps.max())
    a, b = p_text(lo), p_text(hi)
    return a if a == b else f"{a} to {b.removeprefix('p = ')}"


def _mixed_clause(cr: dict, res: dict) -> str:
    """The crossed model's family × category × framing term beside the paper's mixed model's."""
    t = _crossed.three_way_term(cr or {})
    if t is None:
        return ""
    if j := _crossed.joint_family_term(cr):  # several coefficients: one joint test, no single one of them
        return (f", and its mixed model's {_crossed.term_label(j['term'])} term ({j['num_df']} coefficients, tested "
                f"together) has {p_text(j['p'])}")
    paper = next((x for x in ((res.get("mixed_model") or {}).get("terms") or []) if x.get("term") == t["term"]), None)
    beside = f" (the paper's mixed model: {p_text(paper['p'])})" if paper and paper.get("p") is not None else ""
    return f", and its mixed model's family × category × framing term has {p_text(t['p'])}{beside}"


def _meaning(n_sig: int, n_clear: int, clear: list[str], counts: dict, n_panels: int) -> str:
    who = counts_text(counts)
    gaps = "this gap" if n_panels == 1 else "these gaps"
    if n_sig == 0 and n_clear == 0:
        return f"Neither analysis finds a clear difference between the families ({who})."
    if n_clear == 0:
        return f"The direction matches the paper; with {who} {gaps} could still be chance."
    if n_sig == 0:
        return (f"The paper's tests find no gap at p < 0.05, but the stricter analysis finds the gap for "
                f"{_join(clear)} larger than chance would plausibly give, with {who}.")
    if n_clear == n_panels:
        return (f"Both analyses agree: even treating the {who} and the words as samples, {gaps} are larger "
                "than chance would plausibly give.")
    return (f"The direction matches the paper; with {who} only the gap for {_join(clear)} is larger than "
            "chance would plausibly give.")


def _join(items: list[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
