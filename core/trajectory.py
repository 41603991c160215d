"""A training run's value trajectory from its swept checkpoints (core/sweep.py): the paper's
Figure 4a and Figure 5 for any reward model you train.

- points (Figure 4a): per checkpoint, framing and category, the checkpoint's Figure-1 value
  (`analysis.model_mean_ranks` of its median ranks from `ranks.rank_summaries`: mean over the
  framing's prompts of the median rank, among the corpus words, of the category's words;
  1 = highest reward, ties averaged);
- movers (Figure 5 / A6): the words whose mean rank over the positive prompts changed most
  between the first and the last checkpoint, `rank_change = rank_first - rank_last`
  (positive = preferred later in training), ranked among the corpus words within each
  prompt (`ranks.word_means`) over the positive prompts both checkpoints were scored on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from . import prompts as _prompts
from . import ranks
from .errors import ValueAuditError

N_MOVERS = 10


class TrajectoryError(ValueAuditError, ValueError):
    """No trajectory can be drawn as asked; the message says what to do."""


@dataclass(frozen=True)
class Trajectory:
    run: str
    run_key: str
    corpus: str
    checkpoints: list[dict]          # step, name, model_key, family
    points: list[dict]               # step, framing, category, value
    movers: dict                     # {"up": [...], "down": [...]}: word, category, rank_first, rank_last, rank_change
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """What `python -m core trajectory --json` prints."""
        return {"run": self.run, "run_key": self.run_key, "corpus": self.corpus, "checkpoints": self.checkpoints,
                "points": self.points, "movers": self.movers, "notes": self.notes}

    @property
    def family(self) -> str | None:
        fams = [c["family"] for c in self.checkpoints if c.get("family")]
        return fams[0] if fams else None

    def frame(self) -> pd.DataFrame:
        """The points as a table (step, framing, category, value) with the run's name and family."""
        df = pd.DataFrame(self.points, columns=["step", "framing", "category", "value"])
        return df.assign(run=self.run, family=self.family)


def runs(store) -> pd.DataFrame:
    """The swept runs: run_key, run, checkpoints, first and last step, family, kind."""
    ck = store.checkpoints()
    cols = ["run_key", "run", "checkpoints", "first_step", "last_step", "family", "kind"]
    if ck.empty:
        return pd.DataFrame(columns=cols)
    g = ck.groupby("run_key", sort=True)
    out = pd.DataFrame({"run": g["run"].last(), "checkpoints": g["step"].nunique(), "first_step": g["step"].min(),
                        "last_step": g["step"].max(), "family": g["family"].first(), "kind": g["kind"].first()})
    return out.reset_index()[cols]


def _no_checkpoints() -> pd.DataFrame:
    return pd.DataFrame(columns=["run_key", "run", "step", "model_key", "name", "revision", "family", "kind"])


def earlier_checkpoints(store) -> set[str]:
    """Names of swept checkpoints that are not their run's last: left out of the family
    statistics by default (twenty checkpoints of one run are not twenty reward models), while
    the run's final checkpoint stands for it. Training dynamics shows them all."""
    ck = store.checkpoints()
    if ck.empty:
        return set()
    last = ck.groupby("run_key")["step"].transform("max")
    final = set(ck.loc[ck["step"] == last, "name"])
    return set(ck.loc[ck["step"] < last, "name"]) - final


def find_run(store, run: str) -> pd.DataFrame:
    """The stored checkpoints of `run` (a folder as given to `sweep`, or a hub id), by step."""
    from .sweep import run_key
    run = str(run).strip()
    ck = store.checkpoints(run) if run.startswith(("local:", "hub:")) else _no_checkpoints()
    if ck.empty:
        ck = store.checkpoints(run_key(run))
    if ck.empty:
        ck = store.checkpoints()
        ck = ck[ck["run"] == str(run).strip()]
    if ck.empty:
        known = runs(store)["run"].tolist()
        hint = f"; swept runs: {', '.join(known[:5])}" if known else "; run `sweep` first"
        raise TrajectoryError(f"no swept checkpoints stored for run {str(run)[:120]!r}{hint}")
    return ck.sort_values("step").reset_index(drop=True)


def checkpoint_values(store, words: pd.DataFrame, model_keys, ranking: str = "word", kind: str = "rm") -> pd.DataFrame:
    """Each model's Figure-1 value per (framing, category): model_key, framing, category,
    value — the medians computed in DuckDB (ranks.rank_summaries), averaged over a framing's
    prompts by the one per-model function (analysis.model_mean_ranks)."""
    from .analysis import medians
    raw = ranks.rank_summaries(store, words, ranking, kind, list(model_keys))["medians"]
    if raw.empty:
        return pd.DataFrame(columns=["model_key", "framing", "category", "value"])
    med = medians.label_medians(raw)
    per = medians.model_mean_ranks(med.assign(model=med["_key"]))  # one row per key, labelled by it
    return per.rename(columns={"model": "model_key", "mean_rank": "value"})[["model_key", "framing", "category",
                                                                            "value"]]


def positive_prompt_ids(store, model_keys, kind: str = "rm") -> list[str]:
    """Ids of the positive-framing prompts that every one of these models was scored on."""
    keys = list(dict.fromkeys(model_keys))
    df = store.query("SELECT model_key, prompt_id, prompt FROM scores WHERE kind = ? AND model_key IN "
                     "(SELECT k FROM want_keys) GROUP BY ALL", [kind],
                     want_keys=pd.DataFrame({"k": keys}, dtype=str))
    df = df[[_prompts.framing_of(str(i), str(t)) == "positive" for i, t in zip(df["prompt_id"], df["prompt"])]]
    per = df.groupby("prompt_id")["model_key"].nunique()
    return sorted(per[per == len(keys)].index.astype(str))


def movers(store, words: pd.DataFrame, first_key: str, last_key: str, kind: str = "rm",
           n: int = N_MOVERS) -> tuple[dict, list[str]]:
    """Figure 5 for two checkpoints: ({"up": n largest rank_change, "down": n smallest}, notes)."""
    pids = positive_prompt_ids(store, [first_key, last_key], kind)
    if not pids:
        return {"up": [], "down": []}, ["no positive prompt was scored on both the first and the last checkpoint"]
    a = ranks.word_means(store, words, [first_key], pids, kind)[["word", "rank"]]
    b = ranks.word_means(store, words, [last_key], pids, kind)[["word", "rank"]]
    both = a.merge(b, on="word", suffixes=("_first", "_last"))
    cats = (words[["word", "category"]].astype(str).drop_duplicates()
            .groupby("word")["category"].agg(lambda c: "/".join(sorted(set(c)))))
    both = both.assign(category=both["word"].map(cats), rank_change=both["rank_first"] - both["rank_last"])
    cols = ["word", "category", "rank_first", "rank_last", "rank_change"]
    up = both.sort_values(["rank_change", "word"], ascending=[False, True], kind="stable").head(n)
    down = both.sort_values(["rank_change", "word"], ascending=[True, True], kind="stable").head(n)

    def rows(d):
        return [{c: (float(v) if c.startswith("rank") else str(v)) for c, v in zip(cols, r)}
                for r in d[cols].itertuples(index=False)]
    return {"up": rows(up), "down": rows(down)}, []


def trajectory(store, run: str, words: pd.DataFrame, corpus: str = "", *, ranking: str = "word",
               kind: str = "rm", n_movers: int = N_MOVERS) -> Trajectory:
    """Figure 4a's points and Figure 5's movers of a swept run on a corpus."""
    if n_movers < 0:
        raise TrajectoryError("the number of movers must be 0 or more")
    ck = find_run(store, run)
    ck = ck[ck["kind"].fillna(kind) == kind]
    if ck.empty:
        raise TrajectoryError(f"run {run!r} has no {kind} checkpoints stored")
    panels = checkpoint_values(store, words, ck["model_key"].unique(), ranking, kind)
    if panels.empty:
        raise TrajectoryError(f"the checkpoints of {run!r} have no scores on corpus {corpus or 'given'}; "
                              "sweep the run on this corpus first")
    by_key = {k: g for k, g in panels.groupby("model_key")}
    points, notes = [], []
    order = {f: i for i, f in enumerate(("positive", "negative"))}
    for step, key in zip(ck["step"], ck["model_key"]):
        g = by_key.get(key)
        if g is None:
            notes.append(f"step {int(step)} has no scores on this corpus")
            continue
        g = g.sort_values(["framing", "category"], key=lambda c: c.map(order).fillna(9) if c.name == "framing" else c)
        points += [{"step": int(step), "framing": str(f), "category": str(c), "value": float(v)}
                   for f, c, v in zip(g["framing"], g["category"], g["value"])]
    scored = ck[ck["model_key"].isin(by_key)]
    if len(scored) >= 2:
        mv, more = movers(store, words, scored["model_key"].iloc[0], scored["model_key"].iloc[-1], kind, n_movers)
        notes += more
    else:
        mv = {"up": [], "down": []}
        notes.append("one checkpoint only: no words moved between a first and a last checkpoint")
    checkpoints = [{"step": int(s), "name": str(nm), "model_key": str(k), "family": f if isinstance(f, str) else None}
                   for s, nm, k, f in zip(ck["step"], ck["name"], ck["model_key"], ck["family"])]
    return Trajectory(str(ck["run"].iloc[-1]), str(ck["run_key"].iloc[0]), corpus, checkpoints, points, mv, notes)


# -- in words -----------------------------------------------------------------------------------
def _places(x: float) -> str:
    x = abs(x)
    return f"{x:.0f} place" + ("" if round(x) == 1 else "s")


def sentence(traj: Trajectory | dict) -> str:
    """One plain sentence: how each category moved on positive prompts from the first to the
    last checkpoint, and what became of the gap between the first two categories."""
    d = traj.to_json() if isinstance(traj, Trajectory) else traj
    pts = pd.DataFrame(d["points"], columns=["step", "framing", "category", "value"])
    pos = pts[pts["framing"] == "positive"]
    if pos.empty or pos["step"].nunique() < 2:
        return "Sweep at least two checkpoints scored on positive prompts to see how the run moved."
    first, last = pos["step"].min(), pos["step"].max()
    a = pos[pos["step"] == first].set_index("category")["value"]
    b = pos[pos["step"] == last].set_index("category")["value"]
    cats = [c for c in a.index if c in b.index]
    moves = []
    for c in cats:
        delta = a[c] - b[c]  # > 0: the category's median rank got closer to 1 (preferred)
        moves.append(f"{c} words {'rose' if delta > 0 else 'fell'} {_places(delta)}" if round(abs(delta)) else
                     f"{c} words stayed where they were")
    text = f"Over training (steps {first:,} to {last:,}), " + _join(moves) + " on positive prompts"
    if len(cats) >= 2:
        c1, c2 = cats[0], cats[1]
        g0, g1 = a[c1] - a[c2], b[c1] - b[c2]   # > 0: c2 ranked better (a lower rank)
        lead0, lag0 = (c2, c1) if g0 > 0 else (c1, c2)
        lead1 = c2 if g1 > 0 else c1
        n0, n1 = round(abs(g0)), round(abs(g1))
        if n0 == 0:
            text += (f"; {c1} and {c2} started level and ended {_places(g1)} apart ({lead1} ahead)" if n1 else
                     f"; {c1} and {c2} started and ended level")
        elif n1 == 0:
            text += f"; {lead0}'s lead over {lag0} of {_places(g0)} at the first checkpoint was gone at the last"
        elif lead1 != lead0:
            text += (f"; {lead0}'s lead over {lag0} of {_places(g0)} at the first checkpoint turned into a lead of "
                     f"{_places(g1)} for {lead1} at the last")
        else:
            ratio = abs(g1) / abs(g0)
            how = ("shrank by half" if 0.4 <= ratio <= 0.6 else "doubled" if 1.8 <= ratio <= 2.2 else
                   "stayed about the same" if abs(ratio - 1) < 0.1 else "shrank" if ratio < 1 else "grew")
            text += f"; {lead0}'s lead over {lag0} {how}, from {_places(g0)} at the first checkpoint to {n1} at the last"
    return text + "."


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
