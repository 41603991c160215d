"""Which models an analysis of a corpus uses, which it leaves out, and why: the one rule
behind `analyze`, every page (Home, Compare, Words, Paired, Report) and the reports.

Why a rule at all: a family test compares per-model means over prompts; a model scored on 2
of 54 prompts gives a mean that is not comparable to the others' (one such model changed
the headline family gap from 4.2 to 1.4 places). So a model joins the statistics only
when it is complete: scored on every compared prompt with every corpus word.

Counted against what is compared, never against everything stored:
- words against the corpus (its distinct words), from the run the analysis reads (a
  published model's Big Two and MFD files are separate runs; only the corpus's own counts);
- prompts against the prompt set being compared: the prompts asked for, else the prompts
  at least half of the candidate models are scored on (the paper's 54 when its models are
  there; a model scored on extra prompts of its own is still complete, and the analysis
  reads only the compared prompts for every model).
Every word, not nearly every: a model's ranks are among the words it was scored on, so a
model lacking 5% of the corpus ranks among fewer words, which moves its ranks by about as
much as the family gaps being measured (Big Two: up to ~6 places). A model lacking a word
(one with no tokens in its tokenizer, say) is left out with the count in its reason;
`include_incomplete` lets it in, and the result says so."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import prompts as _prompts
from . import published, trajectory

COLUMNS = ["model", "name", "model_key", "family", "source", "n_prompts", "ref_prompts", "n_words", "ref_words",
           "readable", "earlier_checkpoint", "complete", "used", "reason"]
EARLIER_CHECKPOINT = ("an earlier checkpoint of a swept training run: the run's last checkpoint stands for it "
                      "(Training dynamics follows every checkpoint)")


@dataclass(frozen=True)
class Selection:
    """The models an analysis of `corpus` reads, those it leaves out with the reason, and the
    prompts it compares. `table` has one row per candidate model (COLUMNS); `model` is the
    label the analysis shows (the name, or the key where one name has several keys);
    `readable` is False where no run of the model is read for this corpus (a published model
    whose files for it are not imported, or a model asked for with no scores on it);
    `earlier_checkpoint` marks a swept training run's checkpoints before its last."""
    corpus: str
    n_words: int                       # distinct corpus words
    prompts: pd.DataFrame              # the compared prompts: prompt_id, prompt (text)
    table: pd.DataFrame
    include_incomplete: bool = False
    available: pd.DataFrame | None = None  # every prompt a candidate holds: prompt_id, prompt, n_models

    @property
    def used(self) -> list[str]:
        return self.table.loc[self.table["used"], "model"].tolist()

    @property
    def used_keys(self) -> list[str]:
        return self.table.loc[self.table["used"], "model_key"].tolist()

    @property
    def left_out(self) -> list[dict]:
        out = self.table[~self.table["used"]]
        return [{"model": m, "reason": r} for m, r in zip(out["model"], out["reason"])]

    @property
    def prompt_texts(self) -> list[str]:
        return self.prompts["prompt"].tolist()

    @property
    def prompt_ids(self) -> list[str]:
        return self.prompts["prompt_id"].tolist()

    @property
    def incomplete(self) -> list[str]:
        """Candidates scored less than completely (used or not)."""
        return self.table.loc[~self.table["complete"], "model"].tolist()

    def included_incomplete(self) -> list[str]:
        t = self.table
        return t.loc[t["used"] & ~t["complete"], "model"].tolist()

    def to_json(self) -> dict:
        return {"models_used": self.used, "models_left_out": self.left_out}

    def note(self, name=str) -> str:
        """One sentence for every place family numbers appear: who is left out and why, and who
        is in although incompletely scored; '' when every candidate is used and complete.
        `name` shows a model (a report passes one that hides server paths)."""
        parts = []
        out = [r for r in self.left_out if r["reason"] != EARLIER_CHECKPOINT]
        n_earlier = len(self.left_out) - len(out)
        if out or n_earlier:
            who = [f"{name(r['model'])} ({r['reason']})" for r in out]
            if n_earlier:
                who.append(f"{n_earlier} earlier checkpoint{'s' if n_earlier > 1 else ''} of swept training runs "
                           "(each run's last checkpoint stands for it)")
            parts.append(f"Left out of the family statistics: {'; '.join(who)}.")
        if inc := self.included_incomplete():
            t = self.table.set_index("model")
            who = "; ".join(f"{name(m)} ({describe(t.loc[m])})" for m in inc)
            parts.append(f"Included although incompletely scored, so the family numbers may mislead: {who}.")
        return " ".join(parts)


def describe(row) -> str:
    """'2 of 54 prompts, 263 of 263 words' (words: the fewest on any compared prompt)."""
    return (f"{int(row['n_prompts'])} of {int(row['ref_prompts'])} prompts, "
            f"{int(row['n_words'])} of {int(row['ref_words'])} words")


def word_counts(store, vocabulary, kind: str = "rm") -> pd.DataFrame:
    """Per (model key, prompt): how many of these words are scored — an aggregate inside
    DuckDB, so a large corpus (MFD 2.0) never travels to pandas to learn who is complete."""
    vocab = pd.DataFrame({"w": list(dict.fromkeys(map(str, vocabulary)))}, dtype=str)
    # count(*) = distinct words: (model, kind, prompt, response) is the primary key.
    return store.query("""SELECT s.model_key, m.name, m.family, m.source, s.prompt, any_value(s.prompt_id) AS prompt_id,
                                 count(*) AS n_words
                          FROM scores s JOIN models m USING (model_key)
                          WHERE s.kind = ? AND isfinite(s.value) AND s.response IN (SELECT w FROM vocab)
                          GROUP BY ALL ORDER BY m.family, m.name, s.model_key, s.prompt""", [kind], vocab=vocab)


def select(store, corpus: str, words: pd.DataFrame, prompt_texts=None, models=None,
           include_incomplete: bool = False, kind: str = "rm") -> Selection:
    """The rule (module docstring). `models`: names or keys to consider (None = every model
    scored on any corpus word, except the earlier checkpoints of a swept training run: twenty
    checkpoints of one run are not twenty reward models, its last one stands for it);
    `prompt_texts`: the prompts to compare (None = the prompts at least half of the candidates
    are scored on); `include_incomplete`: use incomplete models too (on the compared prompts
    they have)."""
    vocab = list(dict.fromkeys(words["word"].astype(str)))
    n_words = len(vocab)
    counts = word_counts(store, vocab, kind)
    wanted = None if models is None else {str(m) for m in models}
    if wanted is not None:
        counts = counts[counts["name"].isin(wanted) | counts["model_key"].isin(wanted)]
    read = set(published.keys_for_corpus(store, corpus, vocab, kind, wanted)) if not counts.empty else set()
    not_read = counts[~counts["model_key"].isin(read)]
    counts = counts[counts["model_key"].isin(read)]
    compared = _compared_prompts(counts, prompt_texts, n_words)
    rows = [_row(key, g, compared, n_words, include_incomplete) for key, g in counts.groupby("model_key", sort=False)]
    rows += _not_read_rows(not_read, set(counts["name"]), corpus, n_words, len(compared))
    if wanted is not None:  # asked for but scored on no word of the corpus
        seen = set(counts["name"]) | set(counts["model_key"]) | set(not_read["name"]) | set(not_read["model_key"])
        rows += [_missing_row(m, len(compared), n_words, f"no scores on {corpus}") for m in models if str(m) not in seen]
    table = pd.DataFrame(rows, columns=COLUMNS)
    earlier = trajectory.earlier_checkpoints(store) if not table.empty else set()
    table["earlier_checkpoint"] = table["name"].isin(earlier)
    if models is None:  # named explicitly, an earlier checkpoint is used like any model
        out = table["earlier_checkpoint"] & table["used"]
        table.loc[out, "used"] = False
        table.loc[out, "reason"] = EARLIER_CHECKPOINT
    table = table.astype({"readable": bool, "earlier_checkpoint": bool, "complete": bool, "used": bool})
    table["model"] = _labels(table)
    table = table.sort_values(["used", "family", "model"], ascending=[False, True, True], na_position="last",
                              key=lambda c: c.fillna("~") if c.name == "family" else c).reset_index(drop=True)
    return Selection(corpus, n_words, compared, table, include_incomplete, _available(counts))


def _compared_prompts(counts: pd.DataFrame, prompt_texts, n_words: int) -> pd.DataFrame:
    """The prompt set being compared (prompt_id, prompt), in the paper's order, others after."""
    ids = counts.groupby("prompt")["prompt_id"].agg(lambda s: s.mode().iloc[0]).to_dict() if not counts.empty else {}
    paper = {p.text: p.prompt_id for p in _prompts.paper_prompts()}
    if prompt_texts is not None:
        texts = list(dict.fromkeys(map(str, prompt_texts)))
    else:
        full = counts[counts["n_words"] >= n_words]
        base = full if not full.empty else counts  # prompts scored with every word count
        held = base.groupby("prompt")["model_key"].nunique()
        texts = held[held * 2 >= base["model_key"].nunique()].index.tolist()
    order = list(paper)
    texts = sorted(texts, key=lambda t: (order.index(t) if t in order else len(order), ids.get(t, t)))
    return pd.DataFrame({"prompt_id": [ids.get(t) or paper.get(t) or t for t in texts], "prompt": texts},
                        dtype=object)


def _available(counts: pd.DataFrame) -> pd.DataFrame:
    """Every prompt a candidate is scored on, in the paper's order, with how many models hold it."""
    if counts.empty:
        return pd.DataFrame(columns=["prompt_id", "prompt", "n_models"])
    g = counts.groupby("prompt").agg(prompt_id=("prompt_id", lambda s: s.mode().iloc[0]),
                                     n_models=("model_key", "nunique")).reset_index()
    order = [p.text for p in _prompts.paper_prompts()]
    g["_o"] = [order.index(t) if t in order else len(order) for t in g["prompt"]]
    return g.sort_values(["_o", "prompt_id"])[["prompt_id", "prompt", "n_models"]].reset_index(drop=True)


def _row(key: str, g: pd.DataFrame, compared: pd.DataFrame, n_words: int, include_incomplete: bool) -> dict:
    on = g[g["prompt"].isin(set(compared["prompt"]))]
    n_prompts = len(on)
    words = int(on["n_words"].min()) if n_prompts else int(g["n_words"].max())
    full = int((on["n_words"] >= n_words).sum())
    complete = n_prompts > 0 and full == len(compared)
    row = {"name": str(g["name"].iloc[0]), "model_key": key, "family": g["family"].iloc[0],
           "source": g["source"].iloc[0], "n_prompts": n_prompts, "ref_prompts": len(compared),
           "n_words": words, "ref_words": n_words, "readable": True, "complete": bool(complete)}
    if complete:
        return {**row, "used": True, "reason": None}
    if n_prompts == 0:
        return {**row, "used": False, "reason": f"scored on none of the {len(compared)} compared prompts"}
    return {**row, "used": bool(include_incomplete), "reason": f"incomplete coverage: {describe(row)}"}


def _not_read_rows(not_read: pd.DataFrame, read_names: set, corpus: str, n_words: int, n_prompts: int) -> list[dict]:
    """Published models whose runs this corpus does not read (the paper scored the corpus in
    its own files and those are not imported): named, with why."""
    out = []
    own = published.RUN_LABELS.get(published.CORPUS_RUN.get(corpus, ""), "")
    for name, g in not_read.groupby("name", sort=True):
        if name in read_names:
            continue
        runs = " and ".join(sorted({published.RUN_LABELS.get(published.run_of(k), "older import") for k in g["model_key"]}))
        why = (f"no published {own} imported (only its {runs}, which {corpus} does not read)" if own
               else f"its {runs} is not read for {corpus}")
        out.append({**_missing_row(name, n_prompts, n_words, why), "model_key": g["model_key"].iloc[0],
                    "family": g["family"].iloc[0], "source": g["source"].iloc[0],
                    "n_words": int(g["n_words"].max())})
    return out


def _missing_row(name: str, n_prompts: int, n_words: int, reason: str) -> dict:
    return {"name": str(name), "model_key": None, "family": None, "source": None, "n_prompts": 0,
            "ref_prompts": n_prompts, "n_words": 0, "ref_words": n_words, "readable": False, "complete": False,
            "used": False,
            "reason": reason}


def _labels(table: pd.DataFrame) -> list[str]:
    """What the analysis calls each model: its name, or its key where one name has several
    keys among the models used (as analysis.medians labels them); a left-out model by its key
    when its name is also another candidate's."""
    if table.empty:
        return []
    used = table[table["used"]]
    dup_used = set(used.loc[used["name"].duplicated(keep=False), "name"])
    dup_all = set(table.loc[table["model_key"].notna() & table["name"].duplicated(keep=False), "name"])
    out = []
    for name, key, is_used in zip(table["name"], table["model_key"], table["used"]):
        dup = name in dup_used if is_used else name in dup_all
        out.append(str(key) if dup and key is not None else str(name))
    return out
