"""Import the paper's published reward-model scores into the store.

Why: the published scores let anyone reproduce Figure 1 without a GPU, and give a
baseline that freshly computed scores can be checked against. Each file is one RM:
a `response` column, then one column per paper prompt id."""
from __future__ import annotations

from typing import Callable

import pandas as pd

from . import paperdata, prompts

FOLDERS = ("reward_model_scores/dict_big2_nouns", "reward_model_scores/dict_MFD_20")
PREFIXES = ("big2_rewards_", "MFD20_rewards_")


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


def fallback_family(hub_id: str) -> str | None:
    """Family from the id when the registry does not know the model."""
    low = hub_id.lower()
    if "gemma" in low:
        return "gemma"
    if "llama" in low:
        return "llama"
    return None


def _registry_info(hub_id: str) -> tuple[str | None, str]:
    """(family, display name) from core.models.REGISTRY when available, else a guess."""
    try:
        from . import models as _models
    except ImportError:
        _models = None
    for entry in getattr(_models, "REGISTRY", None) or []:
        if str(getattr(entry, "name", "")).lower() == hub_id.lower():
            return getattr(entry, "family", None) or fallback_family(hub_id), getattr(entry, "display_name", hub_id)
    return fallback_family(hub_id), hub_id


def model_key(hub_id: str) -> str:
    return f"published:{hub_id}@{paperdata.COMMIT[:12]}"


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


def score_files() -> list[tuple[str, str]]:
    """(relative path, hub id) of every published score file; absent folders are skipped."""
    out = []
    for folder in FOLDERS:
        for name in paperdata.listdir(folder):
            hub = hub_id_from_filename(name)
            if hub:
                out.append((f"{folder}/{name}", hub))
    return out


def import_published(store, progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Load all published scores into `store` as kind 'rm'; idempotent (existing rows are kept).
    `progress(done, total, hub_id)` is called after each file."""
    files = score_files()
    seen_models: set[str] = set()
    added = 0
    for i, (rel, hub) in enumerate(files, 1):
        key = model_key(hub)
        if key not in seen_models:
            family, display = _registry_info(hub)
            store.upsert_model(key, hub, "rm", family, display_name=display,
                               revision=paperdata.COMMIT, source="published")
            seen_models.add(key)
        added += store.add_scores(key, "rm", read_scores(paperdata.path(rel)))
        if progress:
            progress(i, len(files), hub)
    return {"models": len(seen_models), "rows_added": added, "files": len(files)}
