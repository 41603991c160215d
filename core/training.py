"""Training dynamics (the paper's Figure 4 and A5): reward models trained from the same
base on growing preference data, read from the paper's `reward_model_training/` files and
labelled by its own manifest (`generate_figure_4_and_A5.R`) — the file names are not the
data sizes."""
from __future__ import annotations

import re

import pandas as pd

from . import paperdata

SOURCES = {"uf": "UltraFeedback", "sky": "Skywork", "grm": "GRM", "skywork": "Skywork",
           "uf+skywork": "UltraFeedback + Skywork"}

# The paper's ablation manifest (paper-code/figures/generate_figure_4_and_A5.R): the file
# names are not the data sizes. file -> (data size in thousands of pairs, source, method).
MANIFEST = {
    "rank_results_uf_13.csv": (13, "uf", "BT"),
    "rank_results_uf_27.csv": (27, "uf", "BT"),
    "rank_results_uf_54.csv": (53, "uf", "BT"),
    "rank_results_uf_100.csv": (106, "uf", "BT"),
    "rank_results_sky_80k.csv": (77, "skywork", "BT"),
    "rank_results_grm_80k.csv": (550, "uf+skywork", "GRM"),
}
METHODS = {"BT": "Bradley-Terry", "GRM": "GRM"}
TD_COLUMNS = ["model_id", "base_model", "category", "checkpoint", "sum_value", "median_rank", "data_source",
              "data_size", "data_size_k", "method", "run", "prompt", "file", "identical_to"]


def _source_from_filename(name: str) -> tuple[str, str, int | None]:
    """`rank_results_uf_13.csv` -> ('UltraFeedback', '13K', 13): for files the manifest does not list."""
    m = re.match(r"rank_results_([a-z]+)_(\d+)k?\.csv$", name, flags=re.I)
    if not m:
        return name, "", None
    src = SOURCES.get(m.group(1).lower(), m.group(1))
    return src, f"{int(m.group(2))}K", int(m.group(2))


def _base_from_model_id(model_id: str):
    """The script's case_when on model_id (gem/Gem -> Gemma, lam/Lla -> Llama, qwe/Qwe -> Qwen)."""
    for needle, fam in (("gem", "Gemma"), ("Gem", "Gemma"), ("lam", "Llama"), ("Lla", "Llama"),
                        ("Qwe", "Qwen"), ("qwe", "Qwen")):
        if needle in str(model_id):
            return fam
    return None


def run_label(source: str, size_k, method: str | None) -> str:
    """'UltraFeedback 13K · Bradley-Terry' — the run as the paper's manifest names it."""
    size = f" {int(size_k)}K" if size_k is not None and not pd.isna(size_k) else ""
    return f"{source}{size}" + (f" · {METHODS.get(method, method)}" if method else "")


def _identical_files(folder: str, names: list[str]) -> dict[str, str]:
    """name -> the first other file with byte-identical content (the paper's 13K and 27K files are)."""
    import hashlib
    digests: dict[str, str] = {}
    out = {}
    for name in names:
        d = hashlib.sha256(paperdata.path(f"{folder}/{name}").read_bytes()).hexdigest()
        if d in digests:
            out[name] = digests[d]
            out.setdefault(digests[d], name)
        else:
            digests[d] = name
    return out


def training_dynamics() -> pd.DataFrame:
    """All rank_results_*.csv as one table, labelled by the paper's manifest: model_id,
    base_model, category, checkpoint, median_rank (the files call it sum_value; it is the
    median rank of the category's words), data_source, data_size ('13K'), data_size_k,
    method, run (label), prompt, file, identical_to (another file with the same bytes)."""
    folder = "reward_model_training"
    names = [n for n in paperdata.listdir(folder) if n.startswith("rank_results_") and n.endswith(".csv")]
    same = _identical_files(folder, names)
    frames = []
    for name in names:
        df = pd.read_csv(paperdata.path(f"{folder}/{name}"))
        df = df.drop(columns=[c for c in df.columns if c in ("", "X") or c.startswith("Unnamed")])
        df = df.rename(columns={"Category": "category"})
        if name in MANIFEST:
            size_k, src_code, method = MANIFEST[name]
            src, size = SOURCES.get(src_code, src_code), f"{size_k}K"
        else:
            src, size, size_k = _source_from_filename(name)
            method = df["method"].iloc[0] if "method" in df.columns and len(df) else None
        checkpoint = pd.to_numeric(df["checkpoint"], errors="coerce")
        if method == "GRM":  # the script sets checkpoint 1 for the GRM run
            checkpoint = pd.Series(1, index=df.index)
        value = pd.to_numeric(df["sum_value"], errors="coerce")
        frames.append(pd.DataFrame({
            "model_id": df["model_id"].astype(str),
            "base_model": df["model_id"].map(_base_from_model_id),
            "category": df["category"].astype(str),
            "checkpoint": checkpoint.astype("Int64"),
            "sum_value": value, "median_rank": value,
            "data_source": src, "data_size": size, "data_size_k": size_k, "method": method,
            "run": run_label(src, size_k, method),
            "prompt": df["prompt"] if "prompt" in df.columns else None,
            "file": name, "identical_to": same.get(name)}))
    if not frames:
        return pd.DataFrame(columns=TD_COLUMNS)
    out = pd.concat(frames, ignore_index=True).drop_duplicates().reset_index(drop=True)
    return out.sort_values(["data_size_k", "data_source", "model_id", "category", "checkpoint"],
                           kind="stable").reset_index(drop=True)[TD_COLUMNS]


def figure_4b(td: pd.DataFrame, families=("Gemma", "Llama")) -> pd.DataFrame:
    """Figure 4b: each run's final-checkpoint median rank per category and family against
    data size. As the script: the last checkpoint of the run (max over its models), Qwen
    left out unless asked for (Figure A5b adds it)."""
    if td is None or td.empty:
        return pd.DataFrame(columns=TD_COLUMNS)
    d = td[td["base_model"].isin(list(families))]
    last = d.groupby(["data_size_k", "method", "data_source"], dropna=False)["checkpoint"].transform("max")
    d = d[d["checkpoint"] == last]
    return d.sort_values(["method", "data_size_k", "category", "base_model"], kind="stable").reset_index(drop=True)
