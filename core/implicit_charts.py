"""Plotly charts of the implicit reward over whole vocabularies: Figure 2 (split violins of
median ranks, as Compare's), Figure 3 (MWLR of chosen words, one row per Llama x Gemma
pair) and Table 1 (a lollipop of the top and bottom tokens)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import family as _family
from .charts import _style, empty_figure, mwlr_lollipop
from .escape import plotly as _esc

VALENCE_TITLE = {"good": "Positive prompts", "bad": "Negative prompts"}


def show_token(text: str) -> str:
    """A token as a quoted string, so a leading space, \\r or \\n is visible."""
    return json.dumps(text, ensure_ascii=False)


def table1_lollipop(table: pd.DataFrame, name_a: str, name_b: str, n: int, colors=None, title=None) -> go.Figure:
    d = table.rename(columns={"logprob_a": "logp1", "logprob_b": "logp2"})
    d = d.assign(word=d["token_decoded"].map(show_token))  # escaped for plotly by mwlr_lollipop
    return mwlr_lollipop(d, name_a, name_b, n, colors, title)


def figure2_violins(med: pd.DataFrame, names: dict[str, str], families: dict[str, str],
                    tests: list[dict] | None = None, title: str | None = None) -> go.Figure:
    """Median rank per (prompt, category) of each model: a violin per model and category,
    positive prompts on top, negative below; lower = more likely. Stars: FDR-corrected Welch p."""
    if med is None or med.empty:
        return empty_figure("No corpus word is a token of both models")
    rows = [v for v in ("good", "bad") if (med["valence"] == v).any()]
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[VALENCE_TITLE[v] for v in rows])
    stars = {(t["category"], t["valence"]): t.get("stars", "") for t in (tests or [])}
    palette = ["#0064E0", "#DB4437"]
    for r, v in enumerate(rows, 1):
        part = med[med["valence"] == v]
        for i, (key, label) in enumerate(names.items()):
            d = part[part["model"] == key]
            col = _family.color(families.get(key)) if len({families.get(k) for k in names}) > 1 else palette[i]
            fig.add_trace(go.Violin(x=_esc(d["category"]), y=d["rank"], name=_esc(label), legendgroup=_esc(label),
                                    showlegend=r == 1,
                                    side="negative" if i == 0 else "positive", line_color=col, points="all",
                                    pointpos=-0.5 if i == 0 else 0.5, jitter=0.3, meanline_visible=True,
                                    customdata=_esc(d["prompt_id"]),
                                    hovertemplate="%{customdata}<br>median rank %{y:.1f}<extra>" + _esc(label)
                                                  + "</extra>"),
                          row=r, col=1)
        for cat in sorted(part["category"].unique()):
            s = stars.get((cat, v))
            if s:
                fig.add_annotation(x=_esc(cat), y=part["rank"].min(), text=s, showarrow=False, yshift=18, row=r, col=1)
        fig.update_yaxes(autorange="reversed", title_text="median rank", row=r, col=1)
    fig.update_layout(violinmode="overlay", violingap=0.2)
    return _style(fig, title, height=320 * len(rows) + 80)


def figure3_dots(df: pd.DataFrame, names: dict[str, str], title: str | None = None) -> go.Figure:
    """One row per (Gemma -> Llama) pair, one dot per word at its MWLR (> 0: Llama prefers)."""
    if df is None or df.empty:
        return empty_figure("No Llama x Gemma pair with stored log-probabilities")
    d = df.assign(pair=[_esc(f"{names.get(g, g)} → {names.get(l_, l_)}")
                        for g, l_ in zip(df["gemma_model"], df["llama_model"])])
    pairs = list(dict.fromkeys(d["pair"]))
    fig = go.Figure()
    for _, g in d.groupby("pair", sort=False):
        ok = g.dropna(subset=["mwlr"])
        if len(ok) > 1:
            fig.add_trace(go.Scatter(x=[ok["mwlr"].min(), ok["mwlr"].max()], y=[g["pair"].iloc[0]] * 2, mode="lines",
                                     line=dict(color="#BDBDBD", width=1.5), hoverinfo="skip", showlegend=False))
    colors = ["#1F77B4", "#D62728", "#2CA02C", "#9467BD", "#FF7F0E", "#8C564B"]
    for i, (w, g) in enumerate(d.groupby("word", sort=False)):
        w = _esc(str(w))
        fig.add_trace(go.Scatter(x=g["mwlr"], y=g["pair"], mode="markers", name=w,
                                 marker=dict(size=11, symbol="circle-open", line=dict(width=2.5),
                                             color=colors[i % len(colors)]),
                                 customdata=np.column_stack([g["n_variants"]]),
                                 hovertemplate=f"<b>{w}</b> " + "MWLR %{x:.3g}<br>%{y}<br>%{customdata[0]} token "
                                               "variants<extra></extra>"))
    fig.add_vline(x=0, line_color="#616161", line_width=1)
    fig.update_layout(xaxis=dict(title="← Gemma prefers   ·   MWLR   ·   Llama prefers →"),
                      yaxis=dict(categoryorder="array", categoryarray=pairs[::-1]))
    return _style(fig, title, height=max(320, 34 * len(pairs) + 140))
