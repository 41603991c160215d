"""Word corpora: the paper's Big Two and MFD 2.0 dictionaries, and users' own files.

A corpus is a table of (word, category, subcategory); a word may sit in several
categories (one row each). Words are stripped and de-duplicated per category."""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import paperdata
from .errors import ValueAuditError
from .vocabscan import corpus_name as _scan_name

MAX_BYTES = 5 * 1024 * 1024  # uploads larger than this are refused
UNCATEGORISED = "Uncategorized"


SAVED_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
SCAN_PREFIX = _scan_name("")  # 'vocabulary:': the saved corpus of a vocabulary scan of a model


class CorpusError(ValueAuditError, ValueError):
    """A corpus file that cannot be used; the message says how to fix it."""


@dataclass
class Corpus:
    name: str
    words: pd.DataFrame  # columns word, category, subcategory
    description: str = ""
    notes: list[str] = field(default_factory=list)
    # "word": each word ranked once per (model, prompt) and counted in every category it
    # belongs to; "row": each (word, category, subcategory) row ranked, as the paper's R
    # script does for MFD 2.0 (a word in two rows is ranked twice).
    ranking: str = "word"

    @property
    def vocabulary(self) -> list[str]:
        """Distinct words in first-seen order: what gets scored."""
        return list(dict.fromkeys(self.words["word"]))

    @property
    def categories(self) -> list[str]:
        return sorted(self.words["category"].unique())

    def counts(self) -> pd.DataFrame:
        return (self.words.groupby("category")["word"].nunique()
                .rename("n_words").reset_index())


BUILTINS = {
    "big2-nouns": ("corpora/dict_big2_nouns.csv",
                   "Big Two nouns: 263 agency and communion nouns (the paper's main corpus)"),
    "big2-expanded": ("corpora/dict_big2_expanded.csv",
                      "Big Two expanded dictionary: ~900 agency and communion terms"),
    "mfd2-paper": ("corpora/moral-foundations-dictionary-20.dicx",
                   "MFD 2.0 as the paper ran it (Figure A1): 1,652 words, Sanctity vice words left out"),
    "mfd2": ("corpora/moral-foundations-dictionary-20.dicx",
             "MFD 2.0, the whole dictionary: 2,040 words in Care, Fairness, Loyalty, Authority, Sanctity"),
}

# One line for every picker that offers the two MFD variants: how they differ.
NOTES = {
    "mfd2-paper": ("The paper's word set and ranking: its R script takes the columns Care_Virtue to "
                   "Sanctity_Virtue, which leaves out Sanctity_Vice (388 words), and ranks each (word, "
                   "foundation) row, so 1,652 of the 2,040 words are ranked. Choose mfd2 for the whole dictionary."),
    "mfd2": ("The whole dictionary: all 2,040 words, each ranked once per model and prompt and counted in "
             "every foundation it belongs to. The paper's Figure A1 ranks only 1,652 of them (mfd2-paper)."),
}
# The paper's script pivots this column range of the .dicx (R `Care_Virtue:Sanctity_Virtue`).
PAPER_MFD_COLUMNS = ("Care_Virtue", "Sanctity_Virtue")


def check_saved_name(name: str, existing=(), may_replace: bool = False) -> str:
    """A name to save a user corpus under: plain characters, not a built-in, and not an
    existing corpus unless the server lets visitors replace data."""
    name = str(name or "").strip()
    if name.lower() == "vocabulary" or name.lower().startswith("vocabulary:"):
        raise CorpusError(f"'{name[:40]}' names a scan of a model's own vocabulary (corpus 'vocabulary', saved as "
                          "'vocabulary:<model>'); choose another name")
    if not SAVED_NAME.fullmatch(name):
        raise CorpusError("use a name of letters, digits, '.', '_' or '-' (at most 64 characters)")
    if name in BUILTINS:
        raise CorpusError(f"'{name}' is a built-in corpus; choose another name")
    if name in set(existing) and not may_replace:
        raise CorpusError(f"a corpus named '{name}' is already saved; choose another name (this shared server "
                          "never replaces saved data)")
    return name


def load(name_or_path: str | Path) -> Corpus:
    """A built-in corpus by name, or a user corpus file (.csv, .dic, .dicx)."""
    key = str(name_or_path)
    if key in BUILTINS:
        return load_builtin(key)
    p = Path(key)
    if not p.exists():
        raise CorpusError(
            f"no corpus '{key}': use one of {', '.join(BUILTINS)} or a path to a .csv/.dic/.dicx file")
    if not p.is_file():
        raise CorpusError(f"{key} is a folder; give a .csv, .dic or .dicx file")
    if p.stat().st_size > MAX_BYTES:
        raise CorpusError(f"{p.name} is larger than {MAX_BYTES // 2**20} MB; split it into smaller files")
    return parse_upload(p.name, p.read_bytes())


def resolve(name: str, store=None, files: bool = True) -> Corpus:
    """A built-in corpus, a corpus saved in the store from the app, or (files=True: the
    command line) a corpus file. Saved names and file paths are separate namespaces: the
    app passes files=False, so a saved name never reads a server file and any saved name
    loads (a vocabulary scan's `vocabulary:<hub id or folder>` holds '/'); on the command
    line a name with a '/' is a file unless it is a scan's `vocabulary:...` name, and a
    bare name that is both is refused."""
    if name in BUILTINS:
        return load_builtin(name)
    is_path = files and ("/" in name or os.sep in name) and not name.startswith(SCAN_PREFIX)
    saved = store.corpus_words(name) if store is not None and not is_path else None
    if saved is not None and not saved.empty:
        if files and Path(name).exists():
            raise CorpusError(f"'{name}' is both a saved corpus and a file here; "
                              f"give ./{name} for the file or rename the saved corpus")
        return Corpus(name, saved[["word", "category", "subcategory"]], saved["description"].iloc[0] or "")
    if not files:
        raise CorpusError(f"no saved corpus '{name[:64]}': pick a built-in or saved corpus from the list")
    return load(name)


def load_builtin(name: str) -> Corpus:
    rel, desc = BUILTINS[name]
    text = _decode(paperdata.path(rel).read_bytes(), rel)
    if name == "big2-nouns":
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        words = pd.DataFrame({"word": df["token_decoded"], "category": df["Category"], "subcategory": ""})
    elif name == "big2-expanded":
        words = _marked_columns(pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False))
    else:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        if name == "mfd2-paper":
            df = _paper_mfd_columns(df)
        words = _marked_columns(df)
        # The paper merges virtue and vice into the five foundations.
        split = words["category"].str.rsplit("_", n=1, expand=True)
        words = words.assign(category=split[0], subcategory=split[1].str.lower())
    ranking = "row" if name == "mfd2-paper" else "word"
    return Corpus(name, _clean(words, name, keep_subcategory=ranking == "row"), desc, ranking=ranking)


def _paper_mfd_columns(df: pd.DataFrame) -> pd.DataFrame:
    """DicTerm plus the column range Care_Virtue..Sanctity_Virtue by position, as R's
    `pivot_longer(c(Care_Virtue:Sanctity_Virtue))` selects it."""
    cols = list(df.columns)
    first, last = (cols.index(c) for c in PAPER_MFD_COLUMNS)
    return df[["DicTerm"] + cols[first:last + 1]]


def parse_upload(filename: str, data: bytes) -> Corpus:
    """Parse a user's corpus from raw bytes; the file name only picks the format."""
    if len(data) > MAX_BYTES:
        raise CorpusError(f"{filename} is larger than {MAX_BYTES // 2**20} MB; split it into smaller files")
    suffix = Path(filename).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename).stem).strip("-") or "corpus"
    text = _decode(data, filename)
    notes: list[str] = []
    if suffix == ".csv":
        words = _parse_csv(text, filename)
    elif suffix == ".dicx":
        df = _table(text, filename, required="DicTerm", short_ok=False)
        if len(df.columns) < 2:
            raise CorpusError(f"{filename}: a .dicx needs a DicTerm column and at least one category column marked X")
        words = _marked_columns(df)
    elif suffix == ".dic":
        words = _parse_dic(text, filename)
    else:
        raise CorpusError(f"{filename}: unsupported file type; upload a .csv (word,category), .dic or .dicx")
    n_wild = int(words["word"].str.contains(r"\*", regex=True).sum())
    if n_wild:
        notes.append(f"{n_wild} wildcard entries (e.g. 'abus*') dropped: only whole words can be answers")
        words = words[~words["word"].str.contains(r"\*", regex=True)]
    corpus = Corpus(stem, _clean(words, filename), f"uploaded from {Path(filename).name}", notes)
    from .limits import LimitError, check_words
    try:
        check_words(corpus.vocabulary)
    except LimitError as e:
        raise CorpusError(f"{filename}: {e}") from None
    return corpus


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:4096]:
        raise CorpusError(f"{name} looks like a binary file; upload a UTF-8 text file (.csv, .dic or .dicx)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CorpusError(f"{name} is not UTF-8 text; re-save it as UTF-8 and upload again") from None


def _table(text: str, name: str, required: str, short_ok: bool) -> pd.DataFrame:
    """A CSV table read by its header's names, line by line, so that no row is misread:
    trailing empty fields (`love,Communion,` from spreadsheets) are dropped; a row with more
    non-empty fields than the header, or (short_ok=False) fewer, is refused with its line."""
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
    except csv.Error as e:
        raise CorpusError(f"{name} is not a readable CSV ({e})") from None
    if header is None:
        raise CorpusError(f"{name} is empty; it needs a header line and at least one word")
    while header and not header[-1].strip():  # a trailing comma on the header line
        header.pop()
    names = [h.strip() for h in header]
    match = {n.lower(): i for i, n in enumerate(names)}
    if required.lower() not in match:
        raise CorpusError(f"{name} has no '{required}' column in its header line ({', '.join(names)[:80]})")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CorpusError(f"{name}: column '{dupes[0]}' appears twice in the header line; name each column once")
    rows = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(f.strip() for f in row):
                continue
            extra = row[len(names):]
            if any(f.strip() for f in extra):
                raise CorpusError(f"{name} line {line}: {len(row)} fields but the header has {len(names)} "
                                  f"({', '.join(names)}); quote values that contain commas")
            row = row[:len(names)]
            if len(row) < len(names) and not short_ok:
                raise CorpusError(f"{name} line {line}: {len(row)} fields but the header has {len(names)}; "
                                  "every row needs one field per column")
            rows.append(row + [""] * (len(names) - len(row)))
    except csv.Error as e:
        raise CorpusError(f"{name} line {reader.line_num}: not readable CSV ({e})") from None
    df = pd.DataFrame(rows, columns=names, dtype=str)
    return df.rename(columns={names[match[required.lower()]]: required})


def _parse_csv(text: str, name: str) -> pd.DataFrame:
    df = _table(text, name, required="word", short_ok=True)
    cols = {c.strip().lower(): c for c in df.columns}
    if df.empty:
        raise CorpusError(f"{name} has no words; add at least one word (one per row)")
    cat = df[cols["category"]] if "category" in cols else ""
    return pd.DataFrame({"word": df["word"], "category": cat, "subcategory": ""})


def _parse_dic(text: str, name: str) -> pd.DataFrame:
    """LIWC .dic: a category block of 'id<TAB>name' lines between two '%' lines, then one
    'word<TAB>id id ...' line per entry. Every line is checked, and a malformed one is
    refused with its number (never half-read): no text outside the blocks, no third '%',
    every id known."""
    ids: dict[str, str] = {}
    rows = []
    section = 0  # 0 before the first %, 1 in the category block, 2 in the entries
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.strip() == "%":
            if section == 2:
                raise CorpusError(f"{name} line {n}: a third '%' line; a .dic has one category block "
                                  "between two '%' lines, then the words")
            section += 1
            continue
        if section == 0:
            raise CorpusError(f"{name} line {n}: text before the first '%' line; a LIWC .dic starts with a '%' line")
        if section == 1:
            bits = line.split(None, 1)
            if len(bits) != 2 or bits[0] in ids:
                why = "appears twice" if len(bits) == 2 else "needs an id and a name"
                raise CorpusError(f"{name} line {n}: category line {line.strip()[:40]!r} {why}; "
                                  "write 'id<TAB>name', one per category")
            ids[bits[0]] = bits[1].strip()
            continue
        word, _, rest = line.strip().partition("\t")
        if not rest:  # no tab: the word is the first space-separated field
            word, _, rest = line.strip().partition(" ")
        word, cats = word.strip(), rest.split()
        if not cats:  # LIWC lists each word's categories: none is a damaged line, not a category of its own
            raise CorpusError(f"{name} line {n}: word {word[:30]!r} has no category id; write 'word<TAB>id id ...' "
                              "with the ids of its categories")
        unknown = [c for c in cats if c not in ids]
        if unknown:
            raise CorpusError(f"{name} line {n}: category {unknown[0][:20]!r} of {word[:30]!r} is not an id from "
                              f"the category block ({', '.join(list(ids)[:8])}); write 'word<TAB>id id ...'")
        for c in cats:
            rows.append((word, ids[c], ""))
    if section < 2:
        raise CorpusError(f"{name} is not a LIWC .dic file: it needs a category block between two '%' lines")
    return pd.DataFrame(rows, columns=["word", "category", "subcategory"])


def _marked_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Dictionary tables with one column per category, marked 'X' (or any non-empty, non-NA value)."""
    term = "DicTerm" if "DicTerm" in df.columns else df.columns[0]
    rows = []
    cats = [c for c in df.columns if c != term]
    for cat in cats:
        mark = df[cat].astype(str).str.strip()
        hit = df.loc[~mark.isin(["", "NA", "nan", "0"]), term]
        rows.append(pd.DataFrame({"word": hit, "category": cat, "subcategory": ""}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["word", "category", "subcategory"])


def _clean(words: pd.DataFrame, name: str, keep_subcategory: bool = False) -> pd.DataFrame:
    words = words.astype(str)
    words["word"] = words["word"].str.strip()
    words["category"] = words["category"].str.strip().replace("", UNCATEGORISED)
    words["subcategory"] = words["subcategory"].str.strip()
    words = words[words["word"] != ""]
    key = ["word", "category", "subcategory"] if keep_subcategory else ["word", "category"]
    words = words.drop_duplicates(key).reset_index(drop=True)
    if words.empty:
        raise CorpusError(f"{name} has no words; add at least one word (one per row)")
    return words
