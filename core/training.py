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


def default_run(td: pd.DataFrame) -> str | None:
    """The run a page opens on: the largest Bradley-Terry run on UltraFeedback (the paper's
    main ablation, the longest curve), never a run whose file duplicates another's (the
    paper's 13K and 27K files are byte-identical); None when there is no run."""
    if td is None or td.empty:
        return None
    runs = td.drop_duplicates("run")
    own = runs[runs["identical_to"].isna()] if "identical_to" in runs else runs
    pool = own if not own.empty else runs
    main = pool[(pool["method"] == "BT") & (pool["data_source"] == "UltraFeedback")]
    return str((main if not main.empty else pool).sort_values("data_size_k").iloc[-1]["run"])


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


# -- the paper's checkpoint scores: Figure 4a and Figure 5 / A6 ------------------------------
# One parquet file per base family (generate_figure_4_and_A5.R, generate_figure_5_and_A6.py):
# one row per vocabulary token (`token_decoded`) and one `step-N` score column per checkpoint
# of the in-house RM trained on that base, all on the prompt greatest_ever_one. Their sha256
# is not known here (paperdata.UNPINNED): a file is accepted by its format.
CHECKPOINT_FILES = {fam: f"reward_model_training/greatest_ever_one_across_checkpoints_{fam.lower()}.parquet"
                    for fam in ("Llama", "Gemma", "Qwen")}
SCRIPT_MODEL_IDS = {"Llama": "meta-llama--Llama-3.2-3B", "Gemma": "google--gemma-2b-it", "Qwen": "qwen"}
BIG2_COLORS = {"Agency": "#3CB371", "Communion": "#FFCE1B"}  # generate_figure_5_and_A6.py's COLORS_BIG2
STEP_COLUMN = re.compile(r"step-(\d+)")


def check_checkpoint_file(path) -> None:
    """Refuse a file that is not in the paper's checkpoint-score format: a parquet table with a
    text column `token_decoded` and at least one numeric `step-N` column (PaperDataError)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        schema = pq.read_schema(str(path))
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise paperdata.PaperDataError(f"{getattr(path, 'name', path)} is not a parquet file ({type(e).__name__}); "
                                       "give the paper's greatest_ever_one_across_checkpoints_<family>.parquet") from None
    names = schema.names
    if "token_decoded" not in names or not (pa.types.is_string(schema.field("token_decoded").type)
                                             or pa.types.is_large_string(schema.field("token_decoded").type)):
        raise paperdata.PaperDataError("the file has no text column token_decoded: it is not the paper's "
                                       "checkpoint-score file")
    steps = [n for n in names if STEP_COLUMN.fullmatch(n)]
    if not steps:
        raise paperdata.PaperDataError("the file has no step-N score columns: it is not the paper's "
                                       "checkpoint-score file")
    bad = [n for n in steps if not (pa.types.is_floating(schema.field(n).type) or pa.types.is_integer(schema.field(n).type))]
    if bad:
        raise paperdata.PaperDataError(f"column {bad[0]} is not numeric: it is not the paper's checkpoint-score file")


def checkpoint_scores(family: str, download: bool = True) -> pd.DataFrame:
    """The paper's checkpoint scores of one base family (Llama, Gemma, Qwen): token_decoded and
    the step-N columns (PaperDataError when the file is not here and cannot be fetched)."""
    import pyarrow.parquet as pq
    path = paperdata.unpinned_path(CHECKPOINT_FILES[family], check_checkpoint_file, download=download)
    cols = ["token_decoded"] + [c for c in pq.read_schema(str(path)).names if STEP_COLUMN.fullmatch(c)]
    return pd.read_parquet(path, columns=cols)


def checkpoint_files(download: bool = True) -> dict[str, dict]:
    """Per family: {"frame": the scores or None, "path", "sha256", "message"} — which of the
    three files are here (Figure 4a needs Llama and Gemma, Figure A5a and A6 Qwen)."""
    out = {}
    for fam, rel in CHECKPOINT_FILES.items():
        try:
            path = paperdata.unpinned_path(rel, check_checkpoint_file, download=download)
            out[fam] = {"frame": checkpoint_scores(fam, download=False), "path": path,
                        "sha256": paperdata.sha256_of(path), "message": ""}
        except paperdata.PaperDataError as e:
            out[fam] = {"frame": None, "path": None, "sha256": None, "message": str(e)}
    return out


def import_checkpoint_file(family: str, data: bytes) -> str:
    """Keep a user's copy of a family's checkpoint-score file once its format checks out;
    returns its sha256 (to compare with the paper's repository)."""
    if family not in CHECKPOINT_FILES:
        raise paperdata.PaperDataError(f"family must be one of {', '.join(CHECKPOINT_FILES)}")
    return paperdata.sha256_of(paperdata.import_unpinned(CHECKPOINT_FILES[family], data, check_checkpoint_file))


def _r_csv(rel: str) -> pd.DataFrame:
    """A paper CSV read as R's read.csv reads it: only the text NA is missing."""
    return pd.read_csv(paperdata.path(rel), keep_default_na=False, na_values=["NA"])


def _r_rank_desc(score: pd.Series) -> pd.Series:
    """R's rank(-score): ties averaged; missing scores ranked last, in order of appearance."""
    ok = score.notna()
    rank = (-score[ok]).rank(method="average")
    n = int(ok.sum())
    rest = pd.Series(range(n + 1, len(score) + 1), index=score.index[~ok], dtype=float)
    return pd.concat([rank, rest]).reindex(score.index)


def figure_4a(frames: dict[str, pd.DataFrame], token_intersection: pd.DataFrame | None = None,
              dictionary: pd.DataFrame | None = None) -> tuple[pd.DataFrame, int]:
    """Figure 4a (and A5a with Qwen) as generate_figure_4_and_A5.R computes it: every file's
    step-N columns to long rows; tokens kept when their raw text is in
    corpora/token_intersection.csv; text cleaned to printable ASCII, trimmed and lower-cased;
    joined to the expanded Big Two dictionary (one row per dictionary row and category
    marked X, so duplicate entries count twice and token variants stay separate rows);
    ranked by score within (model, checkpoint), 1 = highest, ties averaged; median rank per
    (model, category, checkpoint). Returns (model_id, base_model, category, checkpoint,
    median_rank) and the number of distinct cleaned tokens ranked (the script's y-axis label)."""
    ti = token_intersection if token_intersection is not None else _r_csv("corpora/token_intersection.csv")
    dic = dictionary if dictionary is not None else _r_csv("corpora/dict_big2_expanded.csv")
    longs = []
    for fam, df in frames.items():
        if df is None:
            continue
        steps = [c for c in df.columns if c.startswith("step-")]
        long = df[["token_decoded"] + steps].melt(id_vars="token_decoded", var_name="checkpoint", value_name="score")
        longs.append(long.assign(model_id=SCRIPT_MODEL_IDS[fam], base_model=fam))
    cols = ["model_id", "base_model", "category", "checkpoint", "median_rank"]
    if not longs:
        return pd.DataFrame(columns=cols), 0
    d = pd.concat(longs, ignore_index=True)
    allowed = ti["token_decoded"]
    d = d[d["token_decoded"].isin(set(allowed.dropna())) | (d["token_decoded"].isna() & allowed.isna().any())]
    d = d.assign(checkpoint=pd.to_numeric(d["checkpoint"].str.replace("step-", "", regex=False), errors="coerce"))
    d = d[d["checkpoint"].notna() & d["token_decoded"].notna()]
    d = d[d["token_decoded"].str.len() > 0]
    clean = d["token_decoded"].str.replace(r"[^\x20-\x7E\t\n\r]", "", regex=True)
    d = d.assign(token_decoded=clean, token_norm=clean.str.strip(" \t\r\n").str.lower())
    d = d.merge(dic, left_on="token_norm", right_on="DicTerm", how="inner")
    d = d.melt(id_vars=["model_id", "base_model", "checkpoint", "token_decoded", "score"],
               value_vars=["Agency", "Communion"], var_name="category", value_name="value")
    d = d[d["value"] == "X"].copy()
    d["rank"] = d.groupby(["model_id", "checkpoint"], sort=False)["score"].transform(_r_rank_desc)
    out = (d.groupby(["model_id", "category", "checkpoint", "base_model"])["rank"].median()
           .rename("median_rank").reset_index())
    return out[cols].sort_values(["base_model", "category", "checkpoint"]).reset_index(drop=True), \
        int(d["token_decoded"].nunique())


def figure_5(df: pd.DataFrame, nouns: pd.DataFrame | None = None, n: int = 10) -> pd.DataFrame:
    """Figure 5 (Llama, Gemma) and A6 (Qwen) as generate_figure_5_and_A6.py computes them:
    token text to ASCII, stripped and lower-cased; joined to the Big Two nouns; a normalised
    form's variants averaged per checkpoint; ranked per checkpoint (1 = highest);
    rank_change = rank at the first checkpoint - rank at the last, sorted descending; the
    first `n` rows are "up" (preferred late in training), the last `n` "down".
    Returns word, category, rank_first, rank_last, rank_change, direction."""
    big2 = nouns if nouns is not None else pd.read_csv(paperdata.path("corpora/dict_big2_nouns.csv"))
    df = df.copy()
    df["token_norm"] = (df["token_decoded"].str.encode("ascii", errors="ignore").str.decode("ascii")
                        .str.strip().str.lower())
    df = df[df["token_norm"].str.len() > 0]
    df = df.merge(big2, left_on="token_norm", right_on="token_decoded", suffixes=("", "_dict"), how="inner")
    df = df.rename(columns={"Category": "big2"})
    step_cols = sorted([c for c in df.columns if c.startswith("step-")], key=lambda x: int(x.split("-")[1]))
    agg = {col: "mean" for col in step_cols}
    agg["big2"] = "first"
    grouped = df.groupby("token_norm").agg(agg).reset_index()
    for col in step_cols:
        grouped[f"rank_{col}"] = grouped[col].rank(ascending=False)
    first, final = f"rank_{step_cols[0]}", f"rank_{step_cols[-1]}"
    changes = grouped[["token_norm", "big2"]].copy()
    changes["rank_change"] = grouped[first] - grouped[final]
    changes["rank_first"], changes["rank_last"] = grouped[first], grouped[final]
    changes = changes.sort_values("rank_change", ascending=False)
    up, down = changes.head(n).assign(direction="up"), changes.tail(n).assign(direction="down")
    out = pd.concat([up, down]).rename(columns={"token_norm": "word", "big2": "category"})
    out.attrs.update(first=step_cols[0], last=step_cols[-1], n_words=len(grouped))
    return out[["word", "category", "rank_first", "rank_last", "rank_change", "direction"]].reset_index(drop=True)
