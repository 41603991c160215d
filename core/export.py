"""Exports of stored scores: CSV safe to open in a spreadsheet, or Parquet."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

EXPORT_COLUMNS = ["model", "kind", "prompt_id", "prompt", "response", "value"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula with a quote (CSV
    injection); numeric columns stay numbers."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_string_dtype(out[col]) or out[col].dtype == object:
            s = out[col].astype(str)
            risky = s.str.startswith(_FORMULA_START)
            out[col] = s.where(~risky, "'" + s)
    return out


def write_table(df: pd.DataFrame, out: str | Path) -> Path:
    """Write a table as .csv (formula-safe) or .parquet, chosen by the file's suffix."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"the output file must end in .csv or .parquet, not '{out.name}'")
    if out.parent and not out.parent.exists():
        raise ValueError(f"folder {out.parent} does not exist; create it or choose another output file")
    if suffix == ".csv":
        neutralise_formulas(df).to_csv(out, index=False)
    else:
        df.to_parquet(out, index=False)
    return out


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    return neutralise_formulas(df).to_csv(index=False).encode("utf-8")


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    import io
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()
