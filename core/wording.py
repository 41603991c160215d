"""Numbers and model terms in words a reader can repeat (issue 12).

Why a module: the summary, the mixed-model sentence, panel titles and tables all print
p-values and model terms; one formatter keeps them alike and paper-style."""
from __future__ import annotations

import math
import re

import pandas as pd

P_FLOOR = 1e-15  # below this a double-precision p-value is not meaningful


def p_text(p) -> str:
    """'p = 0.012', 'p = 3.4e-06', 'p < 1e-15' — never 'p = 0.00' or 'None'."""
    if p is None:
        return "p not available"
    try:
        p = float(p)
    except (TypeError, ValueError):
        return "p not available"
    if math.isnan(p):
        return "p not available"
    if p < P_FLOOR:
        return "p < 1e-15"
    if p < 0.001:
        return f"p = {p:.1e}".replace("e-0", "e-")
    if p >= 0.995:
        return "p = 1.00" if p >= 0.9995 else f"p = {p:.3f}"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def p_cell(p) -> str:
    """A p-value in a table cell: '< 0.001', '0.012', '0.16', '1.00'; '' when there is none
    (a cell reading 0.00000000000009 says nothing a reader can use)."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        return ""
    if math.isnan(p):
        return ""
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


_TERM = re.compile(r"^(family|category|framing)(.+)$")


def term_in_words(term: str, ref_family: str = "Gemma") -> str:
    """R's 'familyLlama:categoryCommunion:framingnegative' as 'how much more the Llama–Gemma
    gap is on Communion words with negative prompts' — the pieces named in words."""
    parts = {}
    for piece in str(term).split(":"):
        m = _TERM.match(piece)
        if not m:
            return str(term)
        parts[m.group(1)] = m.group(2)
    fam = parts.get("family")
    bits = []
    if fam:
        bits.append(f"{fam} vs {ref_family} models")
    if "category" in parts:
        bits.append(f"{parts['category']} words")
    if "framing" in parts:
        bits.append(f"{parts['framing']} prompts")
    return ", ".join(bits) if bits else str(term)


def _json(result) -> dict:
    """A Figure 1 result (`core.analysis.Figure1`) or its JSON form, as the JSON form: the
    sentences below read either (e.g. a result read back from `analyze --json`). Not
    `analysis.as_json`: core.analysis imports this module for its sentences."""
    return result.to_json() if hasattr(result, "to_json") else (result or {})


def mixed_model_sentence(result) -> str:
    """The mixed model in one plain sentence: does the family gap depend on category and framing?"""
    result = _json(result)
    mm = result.get("mixed_model") or {}
    if "message" in mm:
        return f"Mixed model not fitted: {mm['message']}."
    terms = {t["term"]: t for t in mm.get("terms", [])}
    three = next((t for name, t in terms.items() if name.count(":") == 2 and name.startswith("family")), None)
    if three is None:
        two = [t for name, t in terms.items() if name.startswith("family") and ":" in name]
        three = min(two, key=lambda t: t["p"] if t.get("p") is not None else 1) if two else None
    if three is None or three.get("p") is None:
        return "Mixed model: no family interaction term could be estimated."
    p = three["p"]
    verdict = "depends clearly" if p < 0.05 else "does not clearly depend"
    ref = (mm.get("reference") or {}).get("family", "reference-family")
    return (f"A mixed model (median rank ~ family × category × framing, a random intercept per model) finds that "
            f"the gap between families {verdict} on which category and framing is asked about "
            f"(three-way interaction for {term_in_words(three['term'], ref)}: {three['estimate']:+.1f} ranks, "
            f"{p_text(p)}{_reference_levels(mm)}).")


def _reference_levels(mm: dict) -> str:
    """'; reference levels as the paper: Gemma, Agency, positive prompts' (what each term is read against)."""
    ref = mm.get("reference") or {}
    if not ref:
        return ""
    parts = [ref.get("family"), ref.get("category"),
             f"{ref['framing']} prompts" if ref.get("framing") else None]
    return "; reference levels as the paper codes them: " + ", ".join(p for p in parts if p)


def tests_table(result) -> pd.DataFrame:
    """Family tests as a table with stars (empty when the analysis could not run them)."""
    from .charts import stars
    tests = _json(result).get("family_tests")
    if not isinstance(tests, list) or not tests:
        return pd.DataFrame()
    df = pd.DataFrame(tests)
    df["stars"] = df["welch_p_bonferroni"].map(stars)
    return df


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 category', '2 categories', '1,650 words'."""
    n = int(n)
    return f"{n:,} {word if n == 1 else (words or word + 's')}"
