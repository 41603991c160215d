"""Offensive words (issue 12): the MFD vice lists hold profanity and sexual insults that
top the 'least preferred' lists in a demo. A short list kept as data lets the app hide
them from word lists and single-word charts, with a content note; statistics never change."""
from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

LIST = Path(__file__).resolve().parent / "data" / "offensive_words.txt"


@functools.lru_cache(maxsize=1)
def words() -> frozenset[str]:
    lines = LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(ln.strip().lower() for ln in lines if ln.strip() and not ln.lstrip().startswith("#"))


def is_offensive(word) -> bool:
    return str(word).strip().lower() in words()


def mask(values) -> pd.Series:
    """True for each offensive entry of a column of words."""
    s = pd.Series(list(values), dtype=object)
    return s.map(is_offensive).astype(bool)


def count_in(values) -> int:
    return int(mask(values).sum())
