"""Figure 1 in a few sentences a policy reader can follow."""
from __future__ import annotations

import pandas as pd

from ..coverage import EARLIER_CHECKPOINT
from ..wording import p_text
from .levels import sorted_levels
from .result import as_json


def summary_text(result) -> str:
    """A few sentences a policy reader can follow: who prefers what, how strongly, how sure.
    `result`: a `Figure1` or its JSON form."""
    result = as_json(result)
    fm = pd.DataFrame(result.get("family_means") or [])
    lines = [f"Corpus {result.get('corpus')} ({result.get('n_words')} words). "
             "Each reward model ranks the words from 1 (highest reward) downwards; "
             "we compare the median rank of each category's words."]
    if fm.empty:
        return lines[0] + " No scores to summarise."
    tests = result.get("family_tests")
    if isinstance(tests, dict):
        lines.append(f"No family comparison: {tests.get('message')}.")
        for r in fm.to_dict("records"):
            lines.append(f"On {r['framing']} prompts, {r['family']}-based reward models give "
                         f"{r['category']} words a mean rank of {r['mean_rank']:.1f}.")
        return "\n".join(lines)
    for t in tests:
        lines.append(_test_sentence(t, fm))
    return "\n".join(lines)


def models_text(result) -> str:
    """Which models the numbers rest on, and which were left out and why (core/coverage.py's
    rule): 'Models used (12): a, b, ... Left out (1): c (incomplete coverage: 6 of 54 prompts,
    263 of 263 words).' '' for a result not read from a store."""
    result = as_json(result)
    used, out = result.get("models_used"), result.get("models_left_out") or []
    if used is None:
        return ""
    text = f"Models used ({len(used)}): {', '.join(used) if used else 'none'}."
    if out:
        named = [f"{r['model']} ({r['reason']})" for r in out if r["reason"] != EARLIER_CHECKPOINT]
        if n := len(out) - len(named):
            named.append(f"{n} earlier checkpoint(s) of swept training runs (each run's last checkpoint stands for it)")
        text += f" Left out ({len(out)}): " + "; ".join(named) + "."
    return text


def _test_sentence(t: dict, fm: pd.DataFrame) -> str:
    fam, ref = (t.get("comparison") or _default_comparison(fm)).split(" vs ")
    sel = fm[(fm["framing"] == t["framing"]) & (fm["category"] == t["category"])].set_index("family")["mean_rank"]
    if fam not in sel or ref not in sel:
        return f"On {t['framing']} prompts, {t['category']}: not enough data to compare {fam} and {ref}."
    diff = sel[fam] - sel[ref]
    higher, lower = (fam, ref) if diff < 0 else (ref, fam)
    p = t.get("welch_p_bonferroni")
    capped = p is not None and p >= 0.9995  # p x panels above 1: the correction caps it
    sig = "" if p is None else (f"{p_text(p)}, Welch, Bonferroni-corrected" + (" and capped at 1" if capped else "")
                                + ("" if p < 0.05 else "; not significant"))
    if abs(diff) < 0.05:
        return (f"On {t['framing']} prompts, {fam}- and {ref}-based reward models rank {t['category']} words "
                f"about the same (mean rank {sel[fam]:.1f} vs {sel[ref]:.1f}; {sig}).")
    if t["framing"] == "negative":
        meaning = (f"i.e. {higher}-based models more readily give {t['category']} words as the answer to a "
                   f"'worst thing' question, so {lower}-based models view them more favourably")
    elif t["framing"] == "positive":
        meaning = f"i.e. {higher}-based models prefer {t['category']} words more"
    else:
        meaning = f"i.e. {higher}-based models give {t['category']} words higher rewards"
    if p is not None and p >= 0.05:
        meaning = "a gap this small could be chance"
    return (f"On {t['framing']} prompts, {higher}-based reward models rank {t['category']} words "
            f"{abs(diff):.1f} places higher than {lower}-based ones (mean rank {min(sel[fam], sel[ref]):.1f} vs "
            f"{max(sel[fam], sel[ref]):.1f}; {sig}) — {meaning}.")


def _default_comparison(fm: pd.DataFrame) -> str:
    fams = sorted_levels(fm["family"])
    return f"{fams[1]} vs {fams[0]}"
