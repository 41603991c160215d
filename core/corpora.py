"""Word corpora: the paper's Big Two and MFD 2.0 dictionaries, and users' own files.

A corpus is a table of (word, category, subcategory); a word may sit in several
categories (one row each). Words are stripped and de-duplicated per category."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import paperdata

MAX_BYTES = 5 * 1024 * 1024  # uploads larger than this are refused
UNCATEGORISED = "Uncategorized"


class CorpusError(ValueError):
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


def builtin_names() -> list[str]:
    return list(BUILTINS)


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
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise CorpusError(f"{filename} is not a readable .dicx table ({str(e).splitlines()[0]})") from None
        if "DicTerm" not in df.columns or len(df.columns) < 2:
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
    return corpus


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:4096]:
        raise CorpusError(f"{name} looks like a binary file; upload a UTF-8 text file (.csv, .dic or .dicx)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CorpusError(f"{name} is not UTF-8 text; re-save it as UTF-8 and upload again") from None


def _parse_csv(text: str, name: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise CorpusError(f"{name} is empty; it needs a header 'word,category' and at least one word") from None
    except (pd.errors.ParserError, csv.Error) as e:
        raise CorpusError(f"{name} is not a readable CSV ({str(e).splitlines()[0]})") from None
    cols = {c.strip().lower(): c for c in df.columns}
    if "word" not in cols:
        raise CorpusError(f"{name} has no 'word' column; the header must be 'word,category' (category may be empty)")
    cat = df[cols["category"]] if "category" in cols else ""
    return pd.DataFrame({"word": df[cols["word"]], "category": cat, "subcategory": ""})


def _parse_dic(text: str, name: str) -> pd.DataFrame:
    """LIWC .dic: a %-delimited header of 'id<TAB>name' lines, then 'word<TAB>id ...'."""
    parts = re.split(r"^\s*%\s*$", text, flags=re.M)
    if len(parts) < 3:
        raise CorpusError(f"{name} is not a LIWC .dic file: it needs a category block between two '%' lines")
    ids: dict[str, str] = {}
    for line in parts[1].splitlines():
        bits = line.split()
        if len(bits) >= 2:
            ids[bits[0]] = " ".join(bits[1:])
    rows = []
    for line in parts[2].splitlines():
        bits = [b for b in re.split(r"\t+", line.strip()) if b]
        if len(bits) == 1 and " " in bits[0]:
            bits = bits[0].split()
        if not bits:
            continue
        word, cats = bits[0], bits[1:]
        for c in cats or [""]:
            rows.append((word, ids.get(c, c), ""))
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
