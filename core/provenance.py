"""Provenance: what a reader needs to reproduce a number — model revisions and weight
hashes, corpus and prompt-set hashes, engine, dtype, device, library versions, the app's
git commit. Hashes are sha256 over a canonical text form, so the same corpus gives the
same hash on any machine whatever the row order."""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("torch", "transformers", "tokenizers", "numpy", "pandas", "scipy", "statsmodels", "duckdb",
             "plotly", "streamlit")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def corpus_hash(words) -> str:
    """sha256 of the sorted (word, category) pairs (a list of words: the sorted words)."""
    if isinstance(words, pd.DataFrame):
        rows = sorted({(str(w), str(c)) for w, c in zip(words["word"], words["category"])})
        return _sha("\n".join(f"{w}\t{c}" for w, c in rows))
    return _sha("\n".join(sorted({str(w) for w in words})))


def prompts_hash(prompts) -> str:
    """sha256 of the sorted (prompt id, text) pairs; accepts Prompt objects or (id, text) tuples."""
    rows = sorted({(str(getattr(p, "prompt_id", p[0] if isinstance(p, tuple) else p)),
                    str(getattr(p, "text", p[1] if isinstance(p, tuple) else p))) for p in prompts})
    return _sha("\n".join(f"{i}\t{t}" for i, t in rows))


def library_versions() -> dict:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


def app_commit() -> str:
    """The app's git commit ('+dirty' when the work tree has changes), or 'unknown'."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def weights_hash_of(model_key: str) -> str:
    """The weight hash a model key carries: local folders hold it after '#'; hub models
    are pinned by their commit (the revision); published scores by the paper's commit."""
    if model_key.startswith("local:") and "#" in model_key:
        return model_key.rsplit("#", 1)[1]
    if model_key.startswith("published:"):
        return "published scores (paper repository commit " + model_key.rsplit("@", 1)[-1] + ")"
    if "@" in model_key:
        return "pinned by revision " + model_key.rsplit("@", 1)[1]
    return "unknown"


def run_record(loaded, corpus: str, words, prompts, engine: str, batch_size: int) -> dict:
    """Everything about one scoring run that a reader needs to reproduce it."""
    return {"model": loaded.name, "model_key": loaded.key, "revision": loaded.revision,
            "weights": weights_hash_of(loaded.key), "kind": loaded.kind, "family": loaded.family,
            "corpus": corpus, "corpus_sha256": corpus_hash(words), "prompts_sha256": prompts_hash(prompts),
            "n_prompts": len(prompts), "engine": engine, "batch_size": batch_size,
            "dtype": str(loaded.dtype).replace("torch.", ""), "device": str(loaded.device),
            "attention": _attention(loaded), "cpu_threads": _cpu_threads(loaded.device),
            "libraries": library_versions(), "app_commit": app_commit()}


def _attention(loaded) -> str | None:
    """The model's attention implementation (eager, sdpa, ...): Gemma 2's soft-capping is
    computed by eager only (models.attention_for), so a reader can see which one ran."""
    from .models import attention_of
    return attention_of(getattr(loaded, "model", None))


def _cpu_threads(device) -> int | None:
    """torch's intra-op threads of a CPU run (core/engines/threads.py chose them)."""
    if str(device) != "cpu":
        return None
    import torch
    return torch.get_num_threads()


def card(models: pd.DataFrame, runs: pd.DataFrame, corpus: str, words: pd.DataFrame, prompts) -> dict:
    """The provenance card of a report: one entry per model (revision, weight hash, and the
    engine, dtype, device and libraries of its latest recorded run), plus the data hashes,
    this app's libraries and commit."""
    entries = []
    runs = runs if runs is not None else pd.DataFrame()
    for m in models.to_dict("records"):
        key = m["model_key"]
        last = runs[runs["model_key"] == key].sort_values("created_at").tail(1) if not runs.empty else runs
        prov = json.loads(last["provenance"].iloc[0]) if len(last) and last["provenance"].iloc[0] else {}
        entries.append({"model": m.get("name"), "model_key": key, "family": m.get("family"),
                        "revision": m.get("revision") or prov.get("revision") or "unknown",
                        "weights": weights_hash_of(key), "source": m.get("source"),
                        "engine": prov.get("engine", "not recorded" if m.get("source") != "published"
                                           else "published scores"),
                        "dtype": prov.get("dtype", "not recorded"), "device": prov.get("device", "not recorded"),
                        "scored_with": json.dumps(prov.get("libraries", {})) if prov else "not recorded",
                        "check_status": last["status"].iloc[0] if len(last) else "no check recorded"})
    return {"models": entries, "corpus": corpus, "corpus_sha256": corpus_hash(words),
            "prompts_sha256": prompts_hash(prompts), "n_prompts": len(prompts),
            "libraries": library_versions(), "app_commit": app_commit()}
