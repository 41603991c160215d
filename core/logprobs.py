"""Whole-vocabulary next-token log-probabilities of a language model (METHOD.md §4).

Why: the paper's second claim is that the value bias is already in the base LMs. For each
prompt it takes one forward pass and keeps log_softmax of the last position's logits over
the whole vocabulary. This module computes those values, stores them, and reads and writes
the paper's file format: `token_id, token_name, token_decoded, <prompt id>...`, one row per
vocabulary entry in id order, one file `<org>--<name>.csv` per model.

Storage: the values live in their own tables (`vocab`, `logprobs`, created with the rest of
the schema), keyed like every other score by model identity, prompt text and the answer —
here the token *id*, never its decoded text, because decoded texts collide (" Love" can be
two ids) and ids cannot. The kind is implied by the table (next-token log-probability of an
LM). A prompt's whole vocabulary lands in one transaction, so a killed run keeps every
finished prompt and its rerun computes only the missing ones."""
from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .prompts import Prompt
from .errors import ModelError, ValueAuditError, one_line
from .models import check_revision

META_COLUMNS = ["token_id", "token_name", "token_decoded"]
HF_DATASET = "Oxford-HIPlab/iclr2026-lm-logprobs"
# The dataset's commit was not known offline, so it is pinned on first use: the first download
# resolves the newest commit and writes it to <folder>/.revision; later downloads take that
# commit (VALUEAUDIT_LOGPROBS_REVISION overrides). It is also in each imported model's key.
REVISION_FILE = ".revision"
MAX_FILE_BYTES = 2 * 1024**3  # the paper's largest file is ~0.3 GB


class LogprobError(ValueAuditError, ValueError):
    """Log-probabilities cannot be computed or read as asked; the message says what to do."""


# -- names -------------------------------------------------------------------------------
def file_stem(name: str) -> str:
    """`meta-llama/Llama-3.2-3B` -> `meta-llama--Llama-3.2-3B`; a local folder -> its own name."""
    p = Path(name).expanduser()
    if p.is_dir():
        return p.resolve().name
    return name.replace("/", "--")


def model_id_from_file(path: str | Path) -> str:
    """The inverse of `file_stem`: `google--gemma-2-2b-it.csv` -> `google/gemma-2-2b-it`."""
    return Path(path).name[: -len(".csv")].replace("--", "/")


# -- computing ---------------------------------------------------------------------------
def lm_type(loaded, override: str = "auto") -> str:
    """'instruction-tuned' (chat template with the generation prompt) or 'pretrained' (raw
    prompt). The paper's registry decides for its models — the pretrained Gemma 2 and Llama
    3.2 tokenizers ship a chat template too, so a template alone would be wrong for them."""
    if override != "auto":
        return override
    from .models import registry_entry
    entry = registry_entry(loaded.name)
    if entry is not None and entry.lm_type:
        return entry.lm_type
    return "instruction-tuned" if getattr(loaded.tokenizer, "chat_template", None) else "pretrained"


def prompt_ids(tokenizer, text: str, kind: str) -> list[int]:
    """The context, as the paper's generate_logprobs.py tokenizes it (template with the
    generation prompt, no second BOS; or the raw prompt with the tokenizer's own BOS)."""
    if kind == "instruction-tuned":
        if not getattr(tokenizer, "chat_template", None):
            raise LogprobError("the tokenizer has no chat template; choose the pretrained (base model) LM type for it")
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                 add_generation_prompt=True)
        return tokenizer(rendered, add_special_tokens=False)["input_ids"]
    return tokenizer(text)["input_ids"]


def vocabulary(tokenizer, n_logits: int) -> pd.DataFrame:
    """Every vocabulary entry (get_vocab, added tokens included) with an output logit, in id
    order, decoded one id at a time without skipping special tokens, as the paper did."""
    items = sorted(((i, n) for n, i in tokenizer.get_vocab().items() if i < n_logits))
    ids = [i for i, _ in items]
    decoded = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False)
    return pd.DataFrame({"token_id": np.asarray(ids, dtype=np.int64),
                         "token_name": [n for _, n in items], "token_decoded": decoded})


def next_token_logprobs(loaded, ids: Sequence[int]) -> np.ndarray:
    """log_softmax of the last position's logits (float32), one forward pass."""
    import torch
    x = torch.tensor([list(ids)], dtype=torch.long, device=loaded.device)
    with torch.inference_mode():
        logits = loaded.model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False).logits
        return torch.log_softmax(logits[0, -1, :].float(), dim=-1).cpu().numpy().astype(np.float64)


def _n_logits(model) -> int:
    """Rows of the output layer (may exceed the tokenizer's vocabulary: padding rows)."""
    out = model.get_output_embeddings()
    if out is not None and getattr(out, "weight", None) is not None:
        return int(out.weight.shape[0])
    from .scoring import text_config
    return int(text_config(model).vocab_size)


@dataclass
class LogprobResult:
    new: int
    cached: int
    n_tokens: int
    lm_type: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def compute(store, loaded, prompt_set: Sequence[Prompt], kind: str = "auto",
            on_progress: Callable[[int, int, str], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> LogprobResult:
    """Store every prompt's whole-vocabulary log-probabilities; prompts already stored for
    this model are skipped. `on_progress(done, total, prompt_id)` after each prompt."""
    t0 = time.monotonic()
    which = lm_type(loaded, kind)
    n_logits = _n_logits(loaded.model)
    vocab = vocabulary(loaded.tokenizer, n_logits)
    store.upsert_model(loaded.key, loaded.name, "lm", loaded.family, display_name=loaded.display_name,
                       revision=loaded.revision, source="scored", n_params=loaded.n_params or None)
    put_vocab(store, loaded.key, vocab, lm_type=which)
    done = stored_prompts(store, loaded.key)
    todo = [p for p in prompt_set if p.text not in done]
    new = 0
    for p in todo:
        if should_stop and should_stop():
            break
        values = next_token_logprobs(loaded, prompt_ids(loaded.tokenizer, p.text, which))
        put_prompt(store, loaded.key, p, vocab["token_id"].to_numpy(), values[vocab["token_id"].to_numpy()])
        new += 1
        if on_progress:
            on_progress(new, len(todo), p.prompt_id)
    return LogprobResult(new=new, cached=len(prompt_set) - len(todo), n_tokens=len(vocab), lm_type=which,
                         seconds=time.monotonic() - t0)


# -- the store ---------------------------------------------------------------------------
def put_vocab(store, model_key: str, vocab: pd.DataFrame, lm_type: str | None = None) -> None:
    """The model's vocabulary (replaced whole, so it always matches the stored values)."""
    frame = pd.DataFrame({"model_key": model_key, "token_id": vocab["token_id"].astype("int64"),
                          "token_name": vocab["token_name"].astype(str),
                          "token_decoded": vocab["token_decoded"].astype(str)})
    with store.transaction() as con:
        con.execute("DELETE FROM vocab WHERE model_key = ?", [model_key]).fetchall()
        con.register("frame", frame)
        con.execute("INSERT INTO vocab SELECT model_key, token_id, token_name, token_decoded FROM frame").fetchall()
        con.unregister("frame")
        if lm_type:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [f"lm_type:{model_key}", lm_type]).fetchall()


def put_prompt(store, model_key: str, prompt: Prompt, token_ids: np.ndarray, values: np.ndarray) -> int:
    """One prompt's whole vocabulary in one transaction; a prompt already stored is left as it was."""
    frame = pd.DataFrame({"model_key": model_key, "prompt": prompt.text, "prompt_id": prompt.prompt_id,
                          "token_id": np.asarray(token_ids, dtype=np.int64),
                          "value": np.asarray(values, dtype=np.float64)})
    with store.transaction() as con:
        n = con.execute("SELECT count(*) FROM logprobs WHERE model_key = ? AND prompt = ?",
                        [model_key, prompt.text]).fetchall()[0][0]
        if n:
            return 0
        con.register("frame", frame)
        con.execute("INSERT INTO logprobs SELECT model_key, prompt, prompt_id, token_id, value FROM frame").fetchall()
        con.unregister("frame")
    return len(frame)


def stored_prompts(store, model_key: str) -> set[str]:
    df = store.query("SELECT DISTINCT prompt FROM logprobs WHERE model_key = ?", [model_key])
    return set(df["prompt"])


def has_tables(store) -> bool:
    """False for a database written before log-probabilities were stored (read-only open)."""
    df = store.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_name IN ('vocab', 'logprobs')")
    return int(df["n"].iloc[0]) == 2


def stored_models(store) -> pd.DataFrame:
    """LMs with stored whole-vocabulary log-probabilities: name, key, family, prompts, tokens."""
    if not has_tables(store):
        return pd.DataFrame(columns=["model", "model_key", "family", "display_name", "source", "n_prompts", "n_tokens"])
    return store.query(
        """SELECT m.name AS model, m.model_key, m.family, m.display_name, m.source,
                  p.n_prompts, (SELECT count(*) FROM vocab v WHERE v.model_key = m.model_key) AS n_tokens
           FROM models m JOIN (SELECT model_key, count(DISTINCT prompt) AS n_prompts
                               FROM logprobs GROUP BY model_key) p USING (model_key)
           ORDER BY m.family, m.name""")


def stored_prompt_list(store, model_key: str) -> pd.DataFrame:
    return store.query("""SELECT prompt_id, prompt FROM logprobs WHERE model_key = ?
                          GROUP BY prompt_id, prompt ORDER BY min(rowid)""", [model_key])


def wide(store, model_key: str, prompt_order: Iterable[str] | None = None) -> pd.DataFrame:
    """The stored values in the paper's layout: meta columns, then one column per prompt id."""
    vocab = store.query("SELECT token_id, token_name, token_decoded FROM vocab WHERE model_key = ? ORDER BY token_id",
                        [model_key])
    long = store.query("SELECT prompt_id, token_id, value FROM logprobs WHERE model_key = ?", [model_key])
    if long.empty:
        return vocab
    table = long.pivot(index="token_id", columns="prompt_id", values="value")
    order = [p for p in (prompt_order or []) if p in table.columns]
    order += [p for p in stored_prompt_list(store, model_key)["prompt_id"] if p not in order]
    out = vocab.set_index("token_id").join(table[order], how="left").reset_index()
    return out[META_COLUMNS + order]


# -- the file format ---------------------------------------------------------------------
def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the paper's layout so that it reads back exactly: every text field is quoted
    (a lone carriage return inside a token no longer splits the row), floats keep full
    precision. Written to a temporary file, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    df.to_csv(tmp, index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n", float_format=None)
    tmp.replace(path)
    return path


# -- the identity of a written file ---------------------------------------------------------
SIDECAR_FORMAT = "valueaudit-logprobs/1"


def sidecar_path(csv_path: str | Path) -> Path:
    """`DIR/<org>--<name>.csv` -> `DIR/<org>--<name>.json`: the model identity of a file
    `logprobs` wrote. Beside the CSV, so the CSV stays exactly the paper's format (the
    paper's reader and the paper's own files know nothing of it)."""
    return Path(csv_path).with_suffix(".json")


def write_sidecar(csv_path: str | Path, loaded, lm_type: str, prompt_set: Sequence[Prompt]) -> Path:
    """Record who wrote the CSV (model key, name, family, revision, LM type, prompt texts and
    the CSV's digest), so `import-logprobs` of the file stores it under the same model."""
    import json
    csv_path = Path(csv_path)
    doc = {"format": SIDECAR_FORMAT, "model": loaded.name, "model_key": loaded.key, "family": loaded.family,
           "display_name": loaded.display_name, "revision": loaded.revision, "lm_type": lm_type,
           "prompts": {p.prompt_id: p.text for p in prompt_set}, "csv_sha256": file_digest(csv_path)}
    out = sidecar_path(csv_path)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out)
    return out


def read_sidecar(csv_path: str | Path, digest: str) -> dict | None:
    """The identity recorded beside a CSV, or None when there is none. A sidecar that does not
    match the CSV (edited since, or not ours) is refused in one line rather than guessed at."""
    import json
    path = sidecar_path(csv_path)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LogprobError(f"{path.name} is not readable JSON ({one_line(e)}); delete it to import "
                           f"{Path(csv_path).name} by its file name") from None
    fields = ("model", "model_key", "csv_sha256")
    if not isinstance(doc, dict) or doc.get("format") != SIDECAR_FORMAT or not all(
            isinstance(doc.get(f), str) and doc.get(f) for f in fields):
        raise LogprobError(f"{path.name} is not a log-prob sidecar written by `logprobs`; move it aside to import "
                           f"{Path(csv_path).name} by its file name")
    if doc["csv_sha256"] != digest:
        raise LogprobError(f"{Path(csv_path).name} changed since `logprobs` wrote it ({path.name} records another "
                           "digest); write it again or move the sidecar aside")
    prompts = doc.get("prompts")
    doc["prompts"] = {str(k): str(v) for k, v in prompts.items()} if isinstance(prompts, dict) else {}
    return doc


def _lone_cr_outside_quotes(raw: bytes) -> int:
    """Rows that a plain CSV reader splits: carriage returns outside a quoted field."""
    rows, pos, quotes, row, last_row = 0, 0, 0, 0, -1
    for m in re.finditer(rb"\r(?!\n)", raw):
        quotes += raw.count(b'"', pos, m.start())
        row += raw.count(b"\n", pos, m.start())
        pos = m.start()
        if quotes % 2 == 0 and row != last_row:
            rows, last_row = rows + 1, row
    return rows


def read_csv(path: str | Path) -> tuple[pd.DataFrame, int]:
    """A log-prob file in the paper's layout -> (frame, rows repaired).

    The paper's files were written by pandas `to_csv`, which leaves a lone "\\r" unquoted,
    so a default reader splits that row in two: only "\\n" ends a row here, which rejoins
    them. 'NA', 'null', 'nan', 'None' are tokens, not missing values."""
    path = Path(path)
    if not path.is_file():
        raise LogprobError(f"no file {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise LogprobError(f"{path.name} is larger than {MAX_FILE_BYTES // 1024**3} GB; not a log-prob file")
    raw = path.read_bytes()
    crlf = raw[: raw.find(b"\n") + 1].endswith(b"\r\n")
    repaired = 0 if crlf else _lone_cr_outside_quotes(raw)
    try:
        df = pd.read_csv(io.BytesIO(raw), encoding="utf-8", keep_default_na=False, na_values=[],
                         lineterminator="\n", dtype={"token_name": str, "token_decoded": str})
    except UnicodeDecodeError:
        raise LogprobError(f"{path.name} is not UTF-8 text; give a CSV written by `logprobs` or the paper") from None
    except (pd.errors.ParserError, ValueError) as e:
        raise LogprobError(f"{path.name} is not a readable CSV: {one_line(e)}") from None
    del raw
    if crlf:
        df.columns = [c.rstrip("\r") for c in df.columns]
        last = df.columns[-1]
        if df[last].dtype == object:
            df[last] = df[last].str.rstrip("\r")
    missing = [c for c in META_COLUMNS if c not in df.columns]
    if missing:
        raise LogprobError(f"{path.name} lacks the column(s) {', '.join(missing)}; a log-prob file starts with "
                           "token_id,token_name,token_decoded, then one column per prompt id")
    prompt_cols = [c for c in df.columns if c not in META_COLUMNS]
    if not prompt_cols:
        raise LogprobError(f"{path.name} has no prompt columns")
    ids = pd.to_numeric(df["token_id"], errors="coerce")
    if ids.isna().any():
        bad = int(ids.isna().to_numpy().argmax()) + 2
        raise LogprobError(f"{path.name}: line {bad} has no integer token_id; the file is damaged")
    df["token_id"] = ids.astype("int64")
    for c in ("token_name", "token_decoded"):
        df[c] = df[c].astype(str)
    for c in prompt_cols:
        if df[c].dtype.kind != "f":
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df, repaired


def prompt_texts(extra: Sequence[Prompt] = ()) -> dict[str, str]:
    from .prompts import paper_prompts
    texts = {p.prompt_id: p.text for p in paper_prompts()}
    texts.update({p.prompt_id: p.text for p in extra})
    return texts


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:16]


@dataclass
class ImportResult:
    files: int = 0
    models: list[str] = field(default_factory=list)
    prompts_added: int = 0
    rows_repaired: int = 0
    unknown_prompt_ids: list[str] = field(default_factory=list)


def csv_files(paths: Iterable[str | Path]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix == ".csv" and q.is_file())
        elif p.is_file():
            if p.suffix != ".csv":
                raise LogprobError(f"{p.name} is not a .csv file; log-prob files are named <org>--<name>.csv")
            out.append(p)
        else:
            raise LogprobError(f"no file or folder {p}")
    if not out:
        raise LogprobError("no .csv files found; give log-prob files (<org>--<name>.csv) or their folder")
    return out


def import_file(store, path: Path, extra_prompts: Sequence[Prompt] = (), key: str | None = None,
                source: str = "imported") -> tuple[str, int, int, list[str]]:
    """One file into the store -> (model id, prompts added, rows repaired, unknown prompt ids).
    A file `logprobs` wrote carries its model's identity in a sidecar (`sidecar_path`): it is
    stored under that model's key, so writing then importing stores one model, and importing
    again adds nothing. Other files (the paper's own) are named by their file name. Prompt ids
    the paper does not use (and neither the sidecar nor `extra_prompts` names) are stored with
    the id as their text."""
    from .published import _registry_info
    df, repaired = read_csv(path)
    digest = file_digest(path)
    side = read_sidecar(path, digest) if key is None else None
    texts = prompt_texts(extra_prompts)
    if side is not None:
        model, key = side["model"], side["model_key"]
        kinds = store.query("SELECT kind FROM models WHERE model_key = ?", [key])["kind"].tolist()
        if kinds and kinds[0] != "lm":
            raise LogprobError(f"{sidecar_path(path).name} names {key}, which this database holds as a reward model; "
                               "move the sidecar aside to import the file by its name")
        if not kinds:
            store.upsert_model(key, model, "lm", side.get("family"), display_name=side.get("display_name"),
                               revision=side.get("revision"), source="scored")
        texts = {**side["prompts"], **texts}
    else:
        model = model_id_from_file(path)
        key = key or f"file:{model}#{digest}"
        family, display = _registry_info(model)
        store.upsert_model(key, model, "lm", family, display_name=display, source=source)
    if side is None or not stored_prompts(store, key):
        put_vocab(store, key, df[META_COLUMNS], lm_type=side.get("lm_type") if side else None)
    done = stored_prompts(store, key)
    added, unknown = 0, []
    ids = df["token_id"].to_numpy()
    for col in [c for c in df.columns if c not in META_COLUMNS]:
        if col not in texts:
            unknown.append(col)
        p = Prompt(col, texts.get(col, col), "unknown")
        if p.text in done:
            continue
        vals = df[col].to_numpy(dtype=np.float64)
        ok = ~np.isnan(vals)
        if put_prompt(store, key, p, ids[ok], vals[ok]):
            added += 1
    return model, added, repaired, unknown


def import_paths(store, paths: Iterable[str | Path], extra_prompts: Sequence[Prompt] = (),
                 progress: Callable[[int, int, str], None] | None = None) -> ImportResult:
    files = csv_files(paths)
    res = ImportResult()
    for i, f in enumerate(files, 1):
        model, added, repaired, unknown = import_file(store, f, extra_prompts)
        res.files += 1
        res.models.append(model)
        res.prompts_added += added
        res.rows_repaired += repaired
        res.unknown_prompt_ids += [u for u in unknown if u not in res.unknown_prompt_ids]
        if progress:
            progress(i, len(files), model)
    return res


# -- the paper's Hugging Face dataset ----------------------------------------------------
def pinned_revision(folder: str | Path) -> str | None:
    """The dataset commit downloads into `folder` use: the operator's setting, else the one
    the first download there resolved; None before any download."""
    from . import settings
    if rev := settings.get("VALUEAUDIT_LOGPROBS_REVISION").strip():
        try:
            return check_revision(rev)
        except ModelError as e:
            raise settings.SettingsError(f"VALUEAUDIT_LOGPROBS_REVISION: {one_line(e)}") from None
    pin = Path(folder) / REVISION_FILE
    try:
        return check_revision(pin.read_text()) if pin.is_file() else None
    except ModelError as e:
        raise LogprobError(f"{REVISION_FILE} in the download folder: {one_line(e)}; delete it to pin again") from None


def download(model_ids: Sequence[str], folder: str | Path, revision: str | None = None,
             progress: Callable[[int, int, str], None] | None = None) -> tuple[str, list[Path]]:
    """Fetch the paper's files for these models (0.1–0.3 GB each) into `folder`, all from one
    commit of the dataset (pinned on first use; see pinned_revision)."""
    try:
        from huggingface_hub import HfApi, hf_hub_download
    except ImportError:
        raise LogprobError("huggingface_hub is not installed; pip install -r requirements.txt") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    try:
        rev = check_revision(revision) or pinned_revision(folder)
    except ModelError as e:
        raise LogprobError(f"dataset {one_line(e)}") from None
    try:
        rev = rev or check_revision(HfApi().dataset_info(HF_DATASET).sha)
        (folder / REVISION_FILE).write_text(rev + "\n")
        for i, mid in enumerate(model_ids, 1):
            out.append(Path(hf_hub_download(HF_DATASET, f"{file_stem(mid)}.csv", repo_type="dataset",
                                            revision=rev, local_dir=str(folder))))
            if progress:
                progress(i, len(model_ids), mid)
    except Exception as e:  # noqa: BLE001 - hub errors come in many types
        raise LogprobError(f"could not download from the Hugging Face dataset {HF_DATASET} ({type(e).__name__}); "
                           "check the network, or download the files yourself and import their folder") from None
    return rev, out


def import_published(store, model_ids: Sequence[str], folder: str | Path,
                     progress: Callable[[int, int, str], None] | None = None) -> ImportResult:
    """Download the paper's files for these LMs and import them, keyed by the dataset's commit."""
    rev, files = download(model_ids, folder, progress=progress)
    res = ImportResult()
    for mid, f in zip(model_ids, files):
        _, added, repaired, _ = import_file(store, f, key=f"published:{mid}@{rev[:12]}", source="published")
        res.files += 1
        res.models.append(mid)
        res.prompts_added += added
        res.rows_repaired += repaired
    return res
