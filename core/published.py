"""Import the paper's published reward-model scores into the store.

Why: the published scores let anyone reproduce Figure 1 without a GPU, and give a
baseline that freshly computed scores can be checked against. Each file is one RM:
a `response` column, then one column per paper prompt id.

Each corpus's folder is its own run: a model's Big Two file and its MFD file were scored
separately and disagree on the words both corpora hold, so each is stored under its own
model identity, `published:<hub id>@<commit>#<run>` (run = the corpus it was scored on),
and an analysis of a corpus reads that corpus's run (`keys_for_corpus`). Databases from
before this split hold one merged key per model, `published:<hub id>@<commit>`; the next
import moves them over (`migrate_merged`)."""
from __future__ import annotations

import re
from typing import Callable

import pandas as pd

from . import family as _family
from . import paperdata, prompts

# Folder of the paper's data/ -> the run (the corpus its files were scored on).
RUNS = {"reward_model_scores/dict_big2_nouns": "big2-nouns", "reward_model_scores/dict_MFD_20": "mfd2"}
FOLDERS = tuple(RUNS)
PREFIXES = ("big2_rewards_", "MFD20_rewards_")  # the MFD folder holds files with either prefix
# Which published run an analysis of a built-in corpus reads.
CORPUS_RUN = {"big2-nouns": "big2-nouns", "mfd2": "mfd2", "mfd2-paper": "mfd2"}
RUN_LABELS = {"big2-nouns": "Big Two run", "mfd2": "MFD 2.0 run"}
_KEY = re.compile(r"^published:(?P<hub>.+)@(?P<commit>[0-9a-f]{12})(?:#(?P<run>.+))?$")


def hub_id_from_filename(filename: str) -> str | None:
    """`big2_rewards_Ray2333_GRM-gemma2-2B-rewardmodel-ft.csv` -> `Ray2333/GRM-gemma2-2B-rewardmodel-ft`.
    The owner is everything before the first `_` (hub repo names may hold `_`, owners
    in the paper's files do not); None for files that are not score files."""
    if not filename.endswith(".csv"):
        return None
    for prefix in PREFIXES:
        if filename.startswith(prefix):
            stem = filename[len(prefix):-len(".csv")]
            owner, sep, repo = stem.partition("_")
            return f"{owner}/{repo}" if sep and owner and repo else None
    return None


def _registry_info(hub_id: str) -> tuple[str | None, str]:
    """(family, display name) from core.models.REGISTRY when available, else a guess."""
    try:
        from . import models as _models
    except ImportError:
        _models = None
    for entry in getattr(_models, "REGISTRY", None) or []:
        if str(getattr(entry, "name", "")).lower() == hub_id.lower():
            return getattr(entry, "family", None) or _family.from_hub_id(hub_id), getattr(entry, "display_name", hub_id)
    return _family.from_hub_id(hub_id), hub_id


def model_key(hub_id: str, run: str | None = None) -> str:
    """The identity of one published run of a model; run None = the old merged key."""
    base = f"published:{hub_id}@{paperdata.COMMIT[:12]}"
    return f"{base}#{run}" if run else base


def run_of(key: str) -> str | None:
    """The run of a published key ('big2-nouns', 'mfd2'), None for a merged (old) key or any other key."""
    m = _KEY.match(str(key))
    return m.group("run") if m else None


def model_id(key: str) -> str:
    """The model a key belongs to: a published run's key without its '#<run>' (the paper's ten
    models are ten models, each holding a Big Two run and an MFD run); any other key as is."""
    m = _KEY.match(str(key))
    return str(key).rsplit("#", 1)[0] if m and m.group("run") else str(key)


def run_label(key: str) -> str | None:
    """'Big Two run' / 'MFD 2.0 run' for a published run's key, None for any other key."""
    run = run_of(key)
    return RUN_LABELS.get(run, f"{run} run") if run else None


def display_name(hub_id: str) -> str:
    """The paper's short name of a published model (its registry entry), else the hub id."""
    return _registry_info(hub_id)[1]


def is_merged_key(key: str) -> bool:
    """A key from before the per-corpus split: one model's Big Two and MFD files under one key."""
    m = _KEY.match(str(key))
    return bool(m) and m.group("run") is None


def read_scores(path) -> pd.DataFrame:
    """One published CSV as long rows (prompt_id, prompt, response, value).
    keep_default_na=False keeps words such as 'null' or 'NA' as text; the first row of a
    duplicated response wins; columns that are not paper prompt ids are ignored."""
    texts = {p.prompt_id: p.text for p in prompts.paper_prompts()}
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = df.drop_duplicates("response", keep="first")
    cols = [c for c in df.columns if c in texts]
    long = df.melt(id_vars="response", value_vars=cols, var_name="prompt_id", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    long = long.dropna(subset=["value"])
    long["prompt"] = long["prompt_id"].map(texts)
    return long[["prompt_id", "prompt", "response", "value"]].reset_index(drop=True)


def score_files() -> list[tuple[str, str, str]]:
    """(relative path, hub id, run) of every published score file; absent folders are skipped."""
    out = []
    for folder, run in RUNS.items():
        for name in paperdata.listdir(folder):
            hub = hub_id_from_filename(name)
            if hub:
                out.append((f"{folder}/{name}", hub, run))
    return out


def import_published(store, progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Load all published scores into `store` as kind 'rm', each folder as its own run;
    idempotent (existing rows are kept). Then migrate any old merged keys.
    `progress(done, total, hub_id)` is called after each file."""
    files = score_files()
    seen_models: set[str] = set()
    added = 0
    for i, (rel, hub, run) in enumerate(files, 1):
        key = model_key(hub, run)
        if key not in seen_models:
            family, display = _registry_info(hub)
            store.upsert_model(key, hub, "rm", family, display_name=f"{display} ({RUN_LABELS.get(run, run)})",
                               revision=paperdata.COMMIT, source="published")
            seen_models.add(key)
        added += store.add_scores(key, "rm", read_scores(paperdata.path(rel)))
        if progress:
            progress(i, len(files), hub)
    moved = migrate_merged(store)
    return {"models": len(seen_models), "rows_added": added, "files": len(files), **moved}


def migrate_merged(store) -> dict:
    """Move an old database's merged published keys onto the per-corpus runs, losing no row.

    A merged row that a run of the same model holds with the same value is a copy and is
    deleted; a row no run holds (e.g. its file is no longer there) stays under the merged
    key, and the merged model is removed only once it has no rows left. One transaction."""
    models = store.query("SELECT model_key, name FROM models WHERE source = 'published'")
    merged = [k for k in models["model_key"] if is_merged_key(k)]
    removed = kept = 0
    for key in merged:
        name = models.loc[models["model_key"] == key, "name"].iloc[0]
        runs = [k for k in models.loc[models["name"] == name, "model_key"] if run_of(k)]
        with store.transaction() as con:
            before = con.execute("SELECT count(*) FROM scores WHERE model_key = ?", [key]).fetchone()[0]
            if runs:
                marks = ",".join("?" * len(runs))
                con.execute(f"""DELETE FROM scores WHERE model_key = ? AND EXISTS (
                                  SELECT 1 FROM scores n WHERE n.model_key IN ({marks}) AND n.kind = scores.kind
                                    AND n.prompt = scores.prompt AND n.response = scores.response
                                    AND n.value = scores.value)""", [key, *runs])
            left = con.execute("SELECT count(*) FROM scores WHERE model_key = ?", [key]).fetchone()[0]
            if left == 0:
                con.execute("DELETE FROM models WHERE model_key = ?", [key])
            else:
                con.execute("UPDATE models SET display_name = ? WHERE model_key = ?",
                            [f"{name} (merged import from an older version)", key])
        removed += before - left
        kept += left
    return {"merged_rows_removed": int(removed), "merged_rows_kept": int(kept)}


def keys_for_corpus(store, corpus_name: str | None, vocabulary=None, kind: str = "rm",
                    wanted=None) -> list[str]:
    """The model keys an analysis of this corpus reads: every scored model as before, and
    of each published model one run only — the corpus's own run (big2-nouns -> the Big Two
    files, mfd2 and mfd2-paper -> the MFD files; a model without one is left out, as the
    paper's script reads only that folder), else the run holding the most corpus words.
    `wanted` (names or keys) narrows the models (by name or key)."""
    m = store.query("SELECT model_key, name, source FROM models WHERE kind = ?", [kind])
    if wanted is not None:
        want = {str(w) for w in wanted}
        m = m[m["name"].isin(want) | m["model_key"].isin(want)]
    pub = m[m["source"] == "published"]
    drop: set[str] = set()
    own = CORPUS_RUN.get(str(corpus_name))
    counts = _words_held(store, pub["model_key"].tolist(), vocabulary) if vocabulary is not None else {}
    order = list(RUNS.values())
    for _, g in pub.groupby("name"):
        keys = g["model_key"].tolist()
        if own and any(run_of(k) == own for k in keys):
            best = next(k for k in keys if run_of(k) == own)
        elif own:  # the paper scored this corpus in its own files: another corpus's run is not read
            merged = [k for k in keys if is_merged_key(k)]  # an older database, not yet migrated
            best = merged[0] if merged else None
        elif len(keys) < 2:
            continue
        else:
            best = max(keys, key=lambda k: (counts.get(k, 0), -(order.index(run_of(k)) if run_of(k) in order
                                                               else len(order))))
        drop |= set(keys) - {best}
    return [k for k in m["model_key"] if k not in drop]


def _words_held(store, keys: list[str], vocabulary) -> dict[str, int]:
    """Distinct corpus words stored per model key."""
    if not keys:
        return {}
    df = store.query("""SELECT model_key, count(DISTINCT response) AS n FROM scores
                        WHERE model_key IN (SELECT k FROM want_keys) AND response IN (SELECT w FROM vocab)
                        GROUP BY model_key""",
                     want_keys=pd.DataFrame({"k": keys}, dtype=str),
                     vocab=pd.DataFrame({"w": list(dict.fromkeys(map(str, vocabulary)))}, dtype=str))
    return dict(zip(df["model_key"], df["n"].astype(int)))
