"""The model catalogue: the paper's registry beside every model in the store, and how
much of each corpus each model has scored — what the Models and Score pages list."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import family as _family
from . import models, published, report, settings

AUTO_FAMILY = "auto-detect"
KINDS = {"rm": "reward model", "lm": "language model"}


def model_catalog(stored: pd.DataFrame) -> pd.DataFrame:
    """The paper's registry plus every model in the store, one row per (name, kind, source):
    what a user can score and what is already there. A published model's runs (its Big Two
    and MFD files, stored apart: core/published.py) are one row: `model_key` is the model's
    id, `keys` its stored keys and `runs` names them."""
    stored = runs_as_models(stored)
    reg = pd.DataFrame([{"name": e.name, "kind": e.kind, "family": e.family, "display_name": e.display_name,
                         "size": e.size, "needs_remote_code": e.trust_remote_code, "in_registry": True}
                        for e in models.REGISTRY])
    if stored is None or stored.empty:
        out = reg.assign(model_key=None, source="registry", n_scores=0)
    else:
        st = stored[["model_key", "keys", "runs", "name", "kind", "family", "display_name", "source",
                     "n_params", "n_scores"]].copy()
        st["size"] = st["n_params"].map(_size_label)
        sizes = reg.set_index(["name", "kind"])["size"]
        st["size"] = [sizes.get((n, k), s) for n, k, s in zip(st["name"], st["kind"], st["size"])]
        st["needs_remote_code"] = st["name"].map(
            lambda n: bool(getattr(models.registry_entry(n), "trust_remote_code", False)))
        st["in_registry"] = st["name"].map(lambda n: models.registry_entry(n) is not None)
        missing = reg[~reg.set_index(["name", "kind"]).index.isin(st.set_index(["name", "kind"]).index)]
        out = pd.concat([st.drop(columns="n_params"), missing.assign(model_key=None, source="registry", n_scores=0)],
                        ignore_index=True)
    out["keys"] = [k if isinstance(k, list) else [] for k in out.get("keys", pd.Series([None] * len(out)))]
    out["runs"] = out.get("runs", pd.Series([""] * len(out))).fillna("")
    out["family"] = out["family"].fillna("unknown")
    out["n_scores"] = out["n_scores"].fillna(0).astype(int)
    cols = ["name", "kind", "family", "size", "source", "n_scores", "needs_remote_code", "in_registry",
            "display_name", "model_key", "runs", "keys"]
    return out[cols].sort_values(["kind", "family", "name"]).reset_index(drop=True)


def runs_as_models(stored: pd.DataFrame) -> pd.DataFrame:
    """The store's models table (store.models()) with each published model's runs folded into
    one row: model_key = the model's id (published.model_id), keys = its stored keys, runs =
    'Big Two run, MFD 2.0 run', scores summed. Other models: one row per key, as stored."""
    if stored is None or stored.empty:
        return pd.DataFrame(columns=["model_key", "keys", "runs", "name", "kind", "family", "display_name", "source",
                                     "n_params", "n_scores"])
    d = stored.copy()
    d["model_id"] = d["model_key"].map(published.model_id)
    rows = []
    for mid, g in d.groupby("model_id", sort=False):
        first = g.iloc[0].to_dict()
        runs = [published.run_label(k) for k in g["model_key"]]
        folded = len(g) > 1 or runs[0] is not None
        rows.append({**first, "model_key": mid, "keys": g["model_key"].tolist(),
                     "runs": ", ".join(sorted(r for r in runs if r)) if folded else "",
                     "display_name": published.display_name(first["name"]) if folded else first["display_name"],
                     "n_scores": int(g["n_scores"].sum())})
    return pd.DataFrame(rows).drop(columns="model_id")


def _size_label(n) -> str:
    if n is None or pd.isna(n) or not n:
        return ""
    n = float(n)
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


def coverage_by_corpus(store, vocabularies: dict[str, list[str]], n_prompts: int = 54) -> pd.DataFrame:
    """Per model and corpus: distinct corpus words and prompts scored, and the share of the
    corpus scored on every prompt (what 'done' means on the Score page)."""
    rows = []
    for corpus, vocab in vocabularies.items():
        df = store.coverage_of_words(vocab)
        if df.empty:
            continue
        df["model_id"] = df["model_key"].map(published.model_id)  # a published model's runs: one model
        df["corpus"] = corpus
        df["corpus_words"] = len(set(vocab))
        df["share"] = (df["n_scores"] / (len(set(vocab)) * max(df["n_prompts"].max(), 1))).clip(upper=1.0)
        rows.append(df)
    if not rows:
        return pd.DataFrame(columns=["model", "model_key", "kind", "family", "source", "n_words", "n_prompts",
                                     "n_scores", "model_id", "corpus", "corpus_words", "share"])
    return pd.concat(rows, ignore_index=True)


def add_model(store, name: str, kind: str, family: str = AUTO_FAMILY, revision: str | None = None) -> dict:
    """Add a model to the catalogue to score later (the Models page). The name is checked as
    a visitor may give it (shared servers: a hub id or an operator model, never a path);
    the family is read from config.json unless given. A model already stored (by this key or
    this name) is left exactly as it is: its kind and family say what its scores mean, and
    a visitor never changes them. Returns key, family, display name, kind and whether it
    was `added` (False: the stored row's values)."""
    name = str(name or "").strip()
    if kind not in KINDS:
        raise models.ModelError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not name:
        raise models.ModelError("type a hub id or a folder path first")
    path = settings.visitor_model(name)
    if revision and models.is_local(path):  # its files are what is scored; a revision would be stored, unused
        raise models.ModelError("a local folder has no revision: leave Revision empty")
    if not models.is_local(path) and "/" not in path:
        raise models.ModelError(f"'{name}' is neither an existing folder nor a hub id of the form org/name")
    with settings.named_as_visitor(name, path):  # a broken operator model is named, its folder is not
        fam = (_family.from_model_type(models.read_config(path, revision).get("model_type"))
               if family == AUTO_FAMILY else _family.check(family))
        key = models.model_key(path, revision)
    entry = models.registry_entry(name)
    display = entry.display_name if entry else Path(name).name
    if store.add_model(key, name, kind, fam, display, revision, source="added"):
        return {"model_key": key, "family": fam, "display_name": display, "kind": kind, "added": True}
    return stored_model(store, key, name)


def stored_model(store, key: str, name: str) -> dict:
    """The stored row of a model (by key, else by name): what `add_model` reports when it
    changes nothing."""
    m = store.models()
    row = m[m["model_key"] == key]
    row = row if not row.empty else m[m["name"] == name]
    r = row.iloc[0]
    return {"model_key": r["model_key"], "family": r["family"], "display_name": r["display_name"], "kind": r["kind"],
            "added": False, "n_scores": int(r["n_scores"])}


def display_names(names) -> dict[str, str]:
    """Short, unique names to show for models (chips, legends, tables): the paper's display
    name ('Skywork v0.2 Gemma 2 27B'), else a hub id without its org or a local folder's name
    (never a server path; no file is read). Where two short names would read the same, those
    models keep their full hub id, then a number: three 'Skywork/Skywork-…' chips cut to the
    same prefix told nobody which was which. Returns {name: short name}."""
    names = list(dict.fromkeys(str(n) for n in names))

    def short(n: str) -> str:
        entry = models.registry_entry(n)
        return entry.display_name if entry else report.public_model_name(n).rsplit("/", 1)[-1]

    out = {n: short(n) for n in names}
    for attempt in (report.public_model_name, None):
        seen: dict[str, list[str]] = {}
        for n, s in out.items():
            seen.setdefault(s.casefold(), []).append(n)
        clashes = [group for group in seen.values() if len(group) > 1]
        if not clashes:
            break
        for group in clashes:
            for i, n in enumerate(sorted(group), 1):
                out[n] = attempt(n) if attempt else f"{out[n]} ({i})"
    return out


def model_label(short: str, family) -> str:
    """A short name with its base family where the name does not already say it:
    'GRM Gemma 2 2B', 'my-rm (Llama)'."""
    fam = _family.label(family) if _family.display(family) else "Unknown"  # None is no family, not 'None'
    return short if fam == "Unknown" or fam.casefold() in short.casefold() else f"{short} ({fam})"
