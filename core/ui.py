"""Data helpers behind the dashboard's pages that need no Streamlit.

Why here and not in the pages: pages stay thin (widgets and layout), and these tables are
testable without a browser or a Streamlit runtime. Nothing here imports streamlit."""
from __future__ import annotations

import datetime as _dt
import html
import importlib.util
from pathlib import PurePath

import numpy as np
import pandas as pd

from . import analysis, models


# ---------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------
def model_catalog(stored: pd.DataFrame) -> pd.DataFrame:
    """The paper's registry plus every model in the store, one row per (name, kind, source):
    what a user can score and what is already there."""
    reg = pd.DataFrame([{"name": e.name, "kind": e.kind, "family": e.family, "display_name": e.display_name,
                         "size": e.size, "needs_remote_code": e.trust_remote_code, "in_registry": True}
                        for e in models.REGISTRY])
    if stored is None or stored.empty:
        out = reg.assign(model_key=None, source="registry", n_scores=0)
    else:
        st = stored.rename(columns={})[["model_key", "name", "kind", "family", "display_name", "source",
                                        "n_params", "n_scores"]].copy()
        st["size"] = st["n_params"].map(_size_label)
        sizes = reg.set_index(["name", "kind"])["size"]
        st["size"] = [sizes.get((n, k), s) for n, k, s in zip(st["name"], st["kind"], st["size"])]
        st["needs_remote_code"] = st["name"].map(
            lambda n: bool(getattr(models.registry_entry(n), "trust_remote_code", False)))
        st["in_registry"] = st["name"].map(lambda n: models.registry_entry(n) is not None)
        missing = reg[~reg.set_index(["name", "kind"]).index.isin(st.set_index(["name", "kind"]).index)]
        out = pd.concat([st.drop(columns="n_params"), missing.assign(model_key=None, source="registry",
                                                                     n_scores=0)], ignore_index=True)
    out["family"] = out["family"].fillna("unknown")
    out["n_scores"] = out["n_scores"].fillna(0).astype(int)
    cols = ["name", "kind", "family", "size", "source", "n_scores", "needs_remote_code", "in_registry",
            "display_name", "model_key"]
    return out[cols].sort_values(["kind", "family", "name"]).reset_index(drop=True)


def _size_label(n) -> str:
    if n is None or pd.isna(n) or not n:
        return ""
    n = float(n)
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


def coverage_by_corpus(store, vocabularies: dict[str, list[str]], n_prompts: int = 54) -> pd.DataFrame:
    """Per model and corpus: distinct corpus words and prompts scored, and the share of the
    corpus scored on every prompt (what 'done' means on the Score page)."""
    rows = []
    for corpus, vocab in vocabularies.items():
        df = store.query(
            """SELECT m.name AS model, s.model_key, m.kind, m.family, m.source,
                      count(DISTINCT s.response) AS n_words, count(DISTINCT s.prompt) AS n_prompts,
                      count(*) AS n_scores
               FROM scores s JOIN models m USING (model_key)
               WHERE s.response IN (SELECT w FROM vocab) GROUP BY ALL""",
            vocab=pd.DataFrame({"w": list(dict.fromkeys(vocab))}, dtype=str))
        if df.empty:
            continue
        df["corpus"] = corpus
        df["corpus_words"] = len(set(vocab))
        df["share"] = (df["n_scores"] / (len(set(vocab)) * max(df["n_prompts"].max(), 1))).clip(upper=1.0)
        rows.append(df)
    if not rows:
        return pd.DataFrame(columns=["model", "model_key", "kind", "family", "source", "n_words", "n_prompts",
                                     "n_scores", "corpus", "corpus_words", "share"])
    return pd.concat(rows, ignore_index=True)


# ---------------------------------------------------------------------------------
# Words
# ---------------------------------------------------------------------------------
def ranked_words(scores: pd.DataFrame, words: pd.DataFrame) -> pd.DataFrame:
    """Every (model, prompt, word) with its rank (1 = highest score), plus the prompt's framing."""
    if scores is None or scores.empty:
        return pd.DataFrame(columns=["model", "model_key", "family", "prompt_id", "response", "value", "rank",
                                     "framing"])
    r = analysis.word_ranks(scores, words)
    from .prompts import framing_of
    fr = {pid: framing_of(pid) for pid in r["prompt_id"].unique()}
    r["framing"] = r["prompt_id"].map(fr)
    return r


def top_bottom_words(ranked: pd.DataFrame, model: str, prompt_ids=None, n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A model's most and least preferred words: mean rank over the chosen prompts."""
    d = ranked[ranked["model"] == model]
    if prompt_ids is not None:
        d = d[d["prompt_id"].isin(list(prompt_ids))]
    if d.empty:
        empty = pd.DataFrame(columns=["word", "rank", "score", "n_prompts"])
        return empty, empty
    g = d.groupby("response").agg(rank=("rank", "mean"), score=("value", "mean"), n_prompts=("rank", "size"))
    g = g.reset_index().rename(columns={"response": "word"}).sort_values(["rank", "word"])
    return g.head(n).reset_index(drop=True), g.tail(n).iloc[::-1].reset_index(drop=True)


def word_across_models(ranked: pd.DataFrame, word: str, prompt_ids=None) -> pd.DataFrame:
    """One word's mean rank (and spread over prompts) in each model."""
    d = ranked[ranked["response"] == word]
    if prompt_ids is not None:
        d = d[d["prompt_id"].isin(list(prompt_ids))]
    if d.empty:
        return pd.DataFrame(columns=["model", "family", "mean_rank", "sd", "best", "worst", "n_prompts"])
    g = d.groupby(["model", "family"], dropna=False)["rank"].agg(
        mean_rank="mean", sd="std", best="min", worst="max", n_prompts="size")
    return g.reset_index().sort_values("mean_rank").reset_index(drop=True)


def family_gaps(ranked: pd.DataFrame, fam_a: str, fam_b: str, prompt_ids=None, n: int = 15) -> pd.DataFrame:
    """Words whose rank differs most between two families. Per family: the mean over models of
    each model's mean rank (every model weighs the same). gap = rank in A - rank in B, so a
    negative gap means family A prefers the word; the n most extreme each way are kept."""
    d = ranked if prompt_ids is None else ranked[ranked["prompt_id"].isin(list(prompt_ids))]
    fam = d["family"].astype(str).str.lower()
    d = d[fam.isin([fam_a.lower(), fam_b.lower()])].assign(fam=fam)
    if d.empty:
        return pd.DataFrame(columns=["word", f"rank_{fam_a}", f"rank_{fam_b}", "gap"])
    per_model = d.groupby(["fam", "model", "response"])["rank"].mean()
    per_fam = per_model.groupby(["fam", "response"]).mean().unstack("fam")
    if fam_a.lower() not in per_fam or fam_b.lower() not in per_fam:
        return pd.DataFrame(columns=["word", f"rank_{fam_a}", f"rank_{fam_b}", "gap"])
    out = pd.DataFrame({"word": per_fam.index, f"rank_{fam_a}": per_fam[fam_a.lower()].values,
                        f"rank_{fam_b}": per_fam[fam_b.lower()].values})
    # gap > 0: family A gives a larger (worse) rank, i.e. family B prefers the word.
    out["gap"] = out[f"rank_{fam_a}"] - out[f"rank_{fam_b}"]
    out = out.dropna().sort_values("gap")
    return pd.concat([out.head(n), out.tail(n)]).drop_duplicates("word").reset_index(drop=True)


# ---------------------------------------------------------------------------------
# Figure 1 text
# ---------------------------------------------------------------------------------
def mixed_model_sentence(result: dict) -> str:
    """The mixed model in one plain sentence: does the family gap depend on category and framing?"""
    mm = (result or {}).get("mixed_model") or {}
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
    from .wording import p_text, term_in_words
    fams = sorted({str(r.get("family")) for r in result.get("family_means") or [] if r.get("family")}, key=str.casefold)
    ref = fams[0] if fams else "reference-family"
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


def tests_table(result: dict) -> pd.DataFrame:
    """Family tests as a table with stars (empty when the analysis could not run them)."""
    from .charts import stars
    tests = (result or {}).get("family_tests")
    if not isinstance(tests, list) or not tests:
        return pd.DataFrame()
    df = pd.DataFrame(tests)
    df["stars"] = df["welch_p_bonferroni"].map(stars)
    return df


# ---------------------------------------------------------------------------------
# Implicit reward
# ---------------------------------------------------------------------------------
def agreement_pairs(rm_scores: pd.DataFrame, lm_scores: pd.DataFrame) -> pd.DataFrame:
    """(prompt, word) pairs scored by both an RM and an LM, for the scatter plot."""
    if rm_scores.empty or lm_scores.empty:
        return pd.DataFrame(columns=["prompt_id", "response", "value", "logp"])
    lm = lm_scores.groupby(["prompt", "response"])["value"].max().rename("logp").reset_index()
    rm = rm_scores.drop_duplicates(["prompt", "response"])[["prompt", "prompt_id", "response", "value"]]
    return rm.merge(lm, on=["prompt", "response"])


# ---------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------
def kaleido_available() -> bool:
    """Static images need the optional kaleido package (and a Chrome it drives)."""
    return importlib.util.find_spec("kaleido") is not None


def figure_image(fig, fmt: str) -> bytes | None:
    """PNG/SVG bytes of a figure, or None when kaleido cannot produce it here."""
    if not kaleido_available():
        return None
    try:
        return fig.to_image(format=fmt, scale=2 if fmt == "png" else 1)
    except Exception:  # noqa: BLE001 - kaleido failures (no Chrome) come in many types
        return None


def file_stem(title: str) -> str:
    """'Mean rank by family — Big Two' -> 'mean_rank_by_family_big_two' (a safe file name)."""
    import re
    stem = re.sub(r"[^a-z0-9]+", "_", str(title).lower()).strip("_")
    return stem[:80] or "chart"


def plot_config(title: str | None = None) -> dict:
    """Plotly config: no logo, and the camera button saves '<chart title>.png', not 'newplot.png'."""
    cfg = {"displaylogo": False}
    if title:
        cfg["toImageButtonOptions"] = {"filename": file_stem(title), "format": "png", "scale": 2}
    return cfg


def figure_html(fig, title: str = "chart") -> bytes:
    """One chart as a standalone, offline HTML file (plotly.js inlined)."""
    return fig.to_html(full_html=True, include_plotlyjs="inline", config=plot_config(title),
                       default_width="100%").replace("<head>", f"<head><title>{html.escape(title)}</title>", 1).encode()


def public_model_name(name) -> str:
    """A model name or key as a report shows it: a local folder by its last part, never the
    server path ('/srv/m/rm' -> 'rm'; 'local:/srv/m/rm#ab12~float32' -> 'local:rm#ab12~float32')."""
    text = str(name)
    if text.startswith("local:"):
        path, sep, rest = text[len("local:"):].partition("#")
        return f"local:{PurePath(path).name}{sep}{rest}"
    if text.startswith(("/", "~", ".")) or "\\" in text:
        return PurePath(text.replace("\\", "/")).name
    return text


def public_models(df: pd.DataFrame) -> pd.DataFrame:
    """The table with its model, name and model_key columns passed through public_model_name."""
    cols = [c for c in ("model", "name", "model_key") if c in df.columns]
    return df.assign(**{c: df[c].map(public_model_name) for c in cols}) if cols else df


def report_html(title: str, summary: str, figures: list[tuple[str, object]],
                tables: list[tuple[str, pd.DataFrame]], context: dict | None = None) -> bytes:
    """The current comparison as one self-contained HTML file: summary, charts (plotly.js
    inlined once, so it opens offline) and the numbers behind them."""
    parts = []
    for i, (name, fig, *caption) in enumerate(figures):
        body = fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False,
                           config=plot_config(name), default_width="100%")
        cap = f"<p class='caption'>{html.escape(caption[0])}</p>" if caption and caption[0] else ""
        parts.append(f"<section><h2>{html.escape(name)}</h2>{body}{cap}</section>")
    for name, df in tables:
        parts.append(f"<section><h2>{html.escape(name)}</h2>{table_html(df)}</section>")
    ctx = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in (context or {}).items())
    summ = "".join(f"<p>{html.escape(line)}</p>" for line in summary.splitlines() if line.strip())
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:Inter,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2rem auto;
padding:0 1rem;color:#1f2933;line-height:1.5}}h1{{font-size:1.8rem}}h2{{font-size:1.25rem;margin-top:2.2rem;
border-bottom:1px solid #e4e7eb;padding-bottom:.3rem}}table{{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}}
td,th{{border:1px solid #e4e7eb;padding:.25rem .5rem;text-align:right}}th{{background:#f5f7fa}}
td:first-child,th:first-child{{text-align:left}}.summary{{background:#f5f7fa;border-left:4px solid #0064E0;
padding:.6rem 1rem}}.caption{{color:#52606d;font-size:.9rem}}footer{{color:#7b8794;font-size:.8rem;margin-top:3rem}}</style></head><body>
<h1>{html.escape(title)}</h1><ul>{ctx}</ul><div class="summary"><h2 style="border:0;margin-top:.4rem">Summary</h2>{summ}</div>
{''.join(parts)}<footer>Generated {stamp} by the value-audit dashboard. Method: Christian et al.,
"Reward Models Inherit Value Biases from Pretraining" (ICLR 2026).</footer></body></html>"""
    return doc.encode("utf-8")


def table_html(df: pd.DataFrame, max_rows: int = 500) -> str:
    """A table for the HTML reports: every cell escaped, floats shortened, long tables cut
    (the full table is in the CSV/Parquet downloads)."""
    if df is None or df.empty:
        return "<p>(empty)</p>"
    d = df.head(max_rows).copy()
    for c in d.columns:
        if pd.api.types.is_float_dtype(d[c]):
            d[c] = d[c].map(lambda v: "" if pd.isna(v) else (f"{v:.3g}" if abs(v) < 0.01 and v != 0 else f"{v:.2f}"))
    more = f"<p>… {len(df) - max_rows} more rows in the CSV download.</p>" if len(df) > max_rows else ""
    return d.to_html(index=False, escape=True, border=0) + more


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 category', '2 categories', '1,650 words'."""
    n = int(n)
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def ensure_list(x) -> list:
    """Streamlit widgets return lists or tuples; None means nothing chosen."""
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple, set, np.ndarray, pd.Series)) else [x]
