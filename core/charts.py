"""Plotly figures for the dashboard and the HTML report.

Every builder takes DataFrames and returns a plotly Figure, so the app, the report and
the tests draw exactly the same chart. Family colours are fixed (the paper's brand
colours) so a reader can follow Gemma/Llama/Qwen from one chart to the next.

Data (words, categories, model names, prompt ids, titles naming them) is text, never
markup: it enters a figure through `escape.plotly` (plotly.js renders `<a href>`, `<img>`
and other tags in any text); titles and messages are plain text, escaped here."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import family as _family
from .escape import plotly as _esc

FONT = "Inter, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"


# The narrowest plot a page gives a chart: a 768 px window with the sidebar open leaves about
# 430 px for the chart. Titles and panel grids are sized so nothing overlaps down to that width.
NARROW_PX = 430
TITLE_CHARS = 46  # a 16 px title line that fits NARROW_PX (in the reports' wider fallback font too)
MAX_PANEL_COLS = 3  # panels per row: three ~110 px panels still fit NARROW_PX with their titles


def wrap_title(text: str, width: int = TITLE_CHARS) -> str:
    """A long chart title broken into lines of at most `width` characters at spaces (plotly
    never wraps a title; a one-line title wider than a narrow window runs off the chart)."""
    out = []
    for line in str(text).split("<br>"):
        words, cur = line.split(" "), ""
        for w in words:
            if cur and len(cur) + 1 + len(w) > width:
                out.append(cur)
                cur = w
            else:
                cur = f"{cur} {w}" if cur else w
        out.append(cur)
    return "<br>".join(out)


def two_way_title(left: str, middle: str, right: str, width: int = 48) -> str:
    """An axis read both ways: '← left · middle · right →' on one line where it fits a narrow
    chart, else the middle over one line per side (never a side cut in two)."""
    one = " · ".join(x for x in (f"← {left}", middle, f"{right} →") if x)
    if len(one) <= width:
        return one
    return "<br>".join(x for x in (middle, wrap_title(f"← {left}", width), wrap_title(f"{right} →", width)) if x)


def _title_lines(title: str | None) -> int:
    return title.count("<br>") + 1 if title else 0


def _style(fig: go.Figure, title: str | None = None, height: int | None = None,
           legend_bottom: bool = False) -> go.Figure:
    """One look for every chart: white background, readable font, legend above the plot
    (or below it where subplot titles sit on top); a long title wrapped to fit a narrow window."""
    title = wrap_title(_esc(title)) if title else title  # data in a title is text; the wrap's <br> is markup
    legend = (dict(orientation="h", yanchor="top", y=-0.08, x=0.5, xanchor="center") if legend_bottom
              else dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    n_legend = sum(1 for t in fig.data if t.showlegend is not False and t.name)
    top = (30 + 22 * _title_lines(title) if title else 20) + (0 if legend_bottom else 30 * (1 + n_legend // 6))
    fig.update_layout(template="plotly_white", font=dict(family=FONT, size=13),
                      margin=dict(l=60, r=20, t=max(top, 40), b=60),
                      legend=legend, hoverlabel=dict(font_size=12))
    fig.update_xaxes(automargin=True)  # a two- or three-line axis title gets its room
    if title:  # the title sits at the very top, the legend between it and the plot; plotly anchors a
        # multi-line title by its first line, so the pad moves the block down by the extra lines
        fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=1, yanchor="top", yref="container",
                                     pad=dict(t=6 + 20 * (_title_lines(title) - 1)), font=dict(size=16)))
    if height:
        fig.update_layout(height=height)
    return fig


def panel_grid(n: int, max_cols: int = MAX_PANEL_COLS) -> tuple[int, int]:
    """(rows, columns) for n panels of one framing: at most `max_cols` side by side, rows
    balanced (5 -> 3 + 2, 4 -> 2 + 2), so every panel keeps a readable width on a narrow window."""
    rows = -(-n // max_cols)
    return rows, -(-n // rows)


def stars(p) -> str:
    """Significance stars for a (Bonferroni-corrected) p-value; 'n.s.' when not significant."""
    if p is None or (isinstance(p, float) and not np.isfinite(p)):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."


def empty_figure(message: str) -> go.Figure:
    """A blank chart carrying a message, for panels with nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=_esc(message), showarrow=False, font=dict(size=14, color="#666"),
                       xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _style(fig, height=260)


# ---------------------------------------------------------------------------------
# Figure 1: median ranks per panel, by family
# ---------------------------------------------------------------------------------
# Error bars on each model's mean: the paper draws one standard error (R: sd / sqrt(n));
# a 95% t interval over the model's prompts (t quantile with n - 1 df: 27 prompts give ± 2.06 SE,
# where ± 1.96 SE would cover 93.9%) is offered as an option.
INTERVALS = {"se": "± 1 standard error (as the paper)", "ci95": "95% interval (t over the prompts)"}


def model_summary(median_ranks: pd.DataFrame, interval: str = "se") -> pd.DataFrame:
    """Per model and panel: mean of the per-prompt median ranks and its error bar half-width
    in `ci` (one SE as the paper's Figure 1, or the 95% t quantile with n - 1 df times the SE
    for interval='ci95'); `se` too."""
    g = median_ranks.groupby(["framing", "category", "family", "model"], dropna=False)["median_rank"]
    out = g.agg(mean="mean", sd="std", n="size").reset_index()
    out["se"] = (out["sd"] / np.sqrt(out["n"])).fillna(0.0)
    if interval == "ci95":
        from scipy import stats
        out["ci"] = out["se"] * np.where(out["n"] > 1, stats.t.ppf(0.975, np.maximum(out["n"] - 1, 1)), 0.0)
    else:
        out["ci"] = out["se"]
    return out


def _jitter(n: int, seed: int = 0, width: float = 0.12) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-width, width, n)


def compare_figure(median_ranks: pd.DataFrame, family_tests: pd.DataFrame | None = None,
                   title: str | None = None, p_column: str = "welch_p_bonferroni",
                   interval: str = "se") -> go.Figure:
    """Figure 1: one panel per framing x category; per family a violin of the (model, prompt)
    median ranks, each model's mean with an error bar (one SE as the paper, or a 95%
    interval), and significance stars.

    Each framing takes one row of panels (wrapped into rows of at most three: MFD's five
    foundations would be 70 px wide each on a narrow window); the framing is named on each
    row's axis. The y axis is reversed so the preferred words (rank 1) sit at the top."""
    if median_ranks is None or median_ranks.empty:
        return empty_figure("No median ranks to show")
    mr = median_ranks.copy()
    mr["family"] = mr["family"].fillna("Unknown")
    framings = [f for f in ("positive", "negative") if f in set(mr["framing"])] + \
        sorted(set(mr["framing"]) - {"positive", "negative"})
    cats = sorted(mr["category"].unique(), key=str.casefold)
    fams = _family.order(mr["family"])
    xpos = {f: i for i, f in enumerate(fams)}
    tests = _test_lookup(family_tests, p_column)
    sub_rows, n_cols = panel_grid(len(cats))
    n_rows = sub_rows * len(framings)
    cell = {(fr, cat): (i * sub_rows + k // n_cols + 1, k % n_cols + 1)
            for i, fr in enumerate(framings) for k, cat in enumerate(cats)}
    filled = set(cell.values())
    specs = [[{} if (r, c) in filled else None for c in range(1, n_cols + 1)] for r in range(1, n_rows + 1)]
    titles = [_panel_title(cat, tests.get((cat, fr))) for fr in framings for cat in cats]
    row_px = 400 if sub_rows == 1 else 330
    plot_px = row_px * n_rows
    fig = make_subplots(rows=n_rows, cols=n_cols, specs=specs, subplot_titles=titles, shared_yaxes=False,
                        vertical_spacing=min(0.3, 110 / plot_px) if n_rows > 1 else 0.1,
                        horizontal_spacing=0.09 if n_cols > 2 else 0.07)
    summ = model_summary(mr, interval)
    bar_label = "± 1 SE" if interval != "ci95" else "95% CI"
    shown: set[str] = set()
    batch = _TraceBatch()
    for fr in framings:
        for cat in cats:
            r, c = cell[(fr, cat)]
            panel = mr[(mr["framing"] == fr) & (mr["category"] == cat)]
            for fam in fams:
                _add_family(batch, panel[panel["family"] == fam], summ, fr, cat, fam, xpos[fam], r, c,
                            show_legend=fam not in shown, bar_label=bar_label)
                if not panel[panel["family"] == fam].empty:
                    shown.add(fam)
            fig.update_xaxes(tickvals=list(xpos.values()), ticktext=_esc(list(fams)), range=[-0.6, len(fams) - 0.4],
                             tickfont_size=11, row=r, col=c)
            fig.update_yaxes(autorange="reversed", tickfont_size=11, nticks=6, row=r, col=c,
                             title_text=_row_title(fr) if c == 1 else None)
    batch.flush(fig)
    fig.update_annotations(font_size=12)  # two-line panel titles (category; stars and p) fit a narrow panel
    title_px = 22 * _title_lines(wrap_title(title)) if title else 0
    _style(fig, title, height=plot_px + 90 + title_px, legend_bottom=True)
    fig.update_layout(margin=dict(l=80, t=60 + title_px),  # room for the two-line panel and row titles
                      legend=dict(y=-60 / plot_px))
    return fig


ROW_TITLES = {"positive": ("Positive prompts", "up = preferred"),
              "negative": ("Negative prompts", "up = named as worst")}


def _row_title(framing: str) -> str:
    """The framing of a row of panels, on its first panel's y axis: 'Positive prompts' over
    what up means there (rank 1 = the top answer, preferred or named as the worst)."""
    head, up = ROW_TITLES.get(framing, (f"{str(framing).capitalize()} prompts", "up = ranked nearer 1"))
    return f"<b>{head}</b><br>median rank ({up})"


class _TraceBatch:
    """Collects traces for a subplot figure and adds them in one call: plotly validates the
    whole figure on every add_trace, so 60 single adds on ten panels took ~2 s (issue 12)."""

    def __init__(self):
        self.traces, self.rows, self.cols = [], [], []

    def add_trace(self, trace, row: int, col: int) -> None:
        self.traces.append(trace)
        self.rows.append(row)
        self.cols.append(col)

    def flush(self, fig: go.Figure) -> None:
        if self.traces:
            fig.add_traces(self.traces, rows=self.rows, cols=self.cols)


def _test_lookup(family_tests, p_column: str) -> dict:
    """(category, framing) -> corrected p-value, from the analysis's family tests."""
    if family_tests is None or not isinstance(family_tests, pd.DataFrame) or family_tests.empty:
        return {}
    col = p_column if p_column in family_tests.columns else "welch_p_bonferroni"
    if col not in family_tests.columns:
        return {}
    return {(t["category"], t["framing"]): t[col] for t in family_tests.to_dict("records")}


def _add_family(fig, rows, summ, fr, cat, fam, x, r, c, show_legend: bool, bar_label: str = "± 1 SE") -> None:
    """One family in one panel: violin, (model, prompt) dots, per-model mean with its error bar."""
    if rows.empty:
        return
    color = _family.color(fam)
    fig.add_trace(go.Violin(x=[x] * len(rows), y=rows["median_rank"], name=_esc(fam), legendgroup=_esc(fam),
                            showlegend=show_legend, line_color=color, fillcolor=color, opacity=0.25,
                            points=False, hoverinfo="skip", width=0.8, spanmode="hard",
                            meanline_visible=False), row=r, col=c)
    jitter = _jitter(len(rows), seed=hash((fr, cat, fam)) % 2**32)
    fig.add_trace(go.Scatter(
        x=x - 0.22 + jitter * 0.6, y=rows["median_rank"], mode="markers", legendgroup=_esc(fam), showlegend=False,
        marker=dict(size=4, color=color, opacity=0.35), name=_esc(fam),
        customdata=np.column_stack([_esc(rows["model"]), _esc(rows["prompt_id"])]),
        hovertemplate="<b>%{customdata[0]}</b><br>prompt %{customdata[1]}<br>median rank %{y:.1f}<extra></extra>"),
        row=r, col=c)
    ms = summ[(summ["framing"] == fr) & (summ["category"] == cat) & (summ["family"] == fam)]
    offs = np.linspace(-0.12, 0.12, len(ms)) if len(ms) > 1 else np.zeros(len(ms))
    fig.add_trace(go.Scatter(
        x=x + 0.2 + offs, y=ms["mean"], mode="markers", legendgroup=_esc(fam), showlegend=False, name=_esc(fam),
        marker=dict(size=8, color=color, line=dict(color="white", width=1)),
        error_y=dict(type="data", array=ms["ci"], color=color, thickness=1.2, width=3),
        customdata=np.column_stack([_esc(ms["model"]), ms["n"]]),
        hovertemplate="<b>%{customdata[0]}</b><br>mean over %{customdata[1]} prompts: %{y:.1f}"
                      "<br>± %{error_y.array:.1f} (" + bar_label.lstrip("± ") + ")<extra></extra>"), row=r, col=c)


def _panel_title(category: str, p) -> str:
    """'<b>Agency</b><br>** (p = 0.002)': the category over the family test's stars and p-value
    (the framing is on the row's axis), short enough for a narrow panel."""
    s = stars(p)
    from .wording import p_text
    cat = _esc(str(category))
    return f"<b>{cat}</b><br>{s} ({p_text(p)})" if s else f"<b>{cat}</b>"


# ---------------------------------------------------------------------------------
# Words
# ---------------------------------------------------------------------------------
def top_bottom_figure(top: pd.DataFrame, bottom: pd.DataFrame, value: str = "rank",
                      title: str | None = None, color: str | None = None,
                      titles: tuple[str, str] = ("Most preferred", "Least preferred")) -> go.Figure:
    """Two horizontal bar charts side by side: the most and the least preferred words
    (`titles` for negative prompts, where rank 1 is the favourite answer to 'the worst thing')."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[wrap_title(t, 24) for t in titles], horizontal_spacing=0.06)
    col = color or "#0064E0"
    for i, (df, shade) in enumerate(((top, col), (bottom, "#9E9E9E")), 1):
        if df is None or df.empty:
            continue
        d = df.iloc[::-1]
        fig.add_trace(go.Bar(y=_esc(d["word"]), x=d[value], orientation="h", marker_color=shade, showlegend=False,
                             hovertemplate="<b>%{y}</b><br>" + value.replace("_", " ") + " %{x:.3g}<extra></extra>"),
                      row=1, col=i)
    n = max(len(top) if top is not None else 0, len(bottom) if bottom is not None else 0)
    fig.update_xaxes(title_text=value.replace("_", " "))
    # The second panel's words on its right: between the panels they ran into the first's bars
    # on a narrow window. Each side's margin grows to its longest word.
    fig.update_yaxes(automargin=True)
    fig.update_yaxes(side="right", row=1, col=2)
    fig.update_annotations(font_size=14)
    _style(fig, title, height=max(320, 26 * n + 120))
    return fig.update_layout(margin=dict(t=fig.layout.margin.t + 20))  # room for a two-line panel title


def category_counts_figure(words: pd.DataFrame) -> go.Figure:
    """Distinct words per category of a corpus, as horizontal bars (the Corpora page)."""
    counts = words.groupby("category")["word"].nunique().sort_values()
    fig = go.Figure(go.Bar(x=counts.values, y=_esc(list(counts.index)), orientation="h", marker_color="#0064E0",
                           text=counts.values, textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x} words<extra></extra>"))
    fig.update_layout(xaxis=dict(title="words", nticks=4), yaxis=dict(automargin=True))  # names never cut off
    _style(fig, height=max(200, 36 * len(counts) + 80))
    return fig.update_layout(margin=dict(l=10, r=40, t=20, b=50))


LOWER_RANK_MEANS = {"positive": "preferred", "negative": "named the worst more readily"}


def word_rank_figure(ranks: pd.DataFrame, word: str, n_words: int | None = None,
                     framing: str | None = None) -> go.Figure:
    """One word's mean rank per model (with the spread over prompts), coloured by family; on
    negative prompts a lower rank means the model names the word the worst more readily."""
    if ranks is None or ranks.empty:
        return empty_figure(f"'{word}' has no scores")
    d = ranks.sort_values(["family", "mean_rank"])
    fig = go.Figure()
    for fam in _family.order(d["family"].fillna("Unknown")):
        x = d[d["family"].fillna("Unknown") == fam]
        fig.add_trace(go.Bar(x=_esc(x["model"]), y=x["mean_rank"], name=_esc(fam), marker_color=_family.color(fam),
                             error_y=dict(type="data", array=x["sd"].fillna(0), thickness=1),
                             hovertemplate="<b>%{x}</b><br>mean rank %{y:.1f}<extra></extra>"))
    title = f"Rank of '{word}' by model" + (f" (out of {n_words} words)" if n_words else "")
    lower = LOWER_RANK_MEANS.get(framing or "", "ranked nearer the top")
    fig.update_layout(yaxis=dict(title=f"Mean rank over prompts<br>(lower = {lower})", autorange="reversed",
                                 automargin=True),
                      xaxis=dict(tickangle=-30))
    return _style(fig, title, height=430)


RANKED_HIGHER = {f: f"{v} by" for f, v in LOWER_RANK_MEANS.items()}


def family_gap_figure(gaps: pd.DataFrame, fam_a: str, fam_b: str, title: str | None = None,
                      framing: str | None = None) -> go.Figure:
    """Diverging bars: words ranked better (nearer 1) by family A (left) or by family B
    (right). On negative prompts rank 1 is the favourite answer to 'the worst thing', so a
    word ranked better there is one the family names the worst more readily, not prefers."""
    if gaps is None or gaps.empty:
        return empty_figure("No words to compare")
    d = gaps.sort_values("gap")
    colors = [_family.color(fam_a) if g < 0 else _family.color(fam_b) for g in d["gap"]]
    a, b = _esc(str(fam_a)), _esc(str(fam_b))
    fig = go.Figure(go.Bar(y=_esc(d["word"]), x=d["gap"], orientation="h", marker_color=colors,
                           customdata=np.column_stack([d[f"rank_{fam_a}"], d[f"rank_{fam_b}"]]),
                           hovertemplate=f"<b>%{{y}}</b><br>{a} mean rank %{{customdata[0]:.1f}}"
                                         f"<br>{b} mean rank %{{customdata[1]:.1f}}<extra></extra>"))
    side = RANKED_HIGHER.get(framing or "", "ranked higher by")
    fig.update_layout(xaxis=dict(title=two_way_title(f"{side} {a}", "rank difference", f"{side} {b}")),
                      yaxis=dict(tickfont=dict(size=11)))
    return _style(fig, title, height=max(360, 20 * len(d) + 120))


# ---------------------------------------------------------------------------------
# Paired: two models on the same cells
# ---------------------------------------------------------------------------------
def paired_difference_figure(summary: pd.DataFrame, a: str, b: str) -> go.Figure:
    """Per (framing, category): the mean rank difference A − B with its 95% interval; left of
    the dotted zero line A ranks the category's words higher."""
    if summary is None or summary.empty:
        return empty_figure("No shared cells to compare")
    labels = [_esc(f"{r.framing} · {r.category}") for r in summary.itertuples()]
    fig = go.Figure(go.Scatter(
        x=summary["mean_difference"], y=labels, mode="markers", marker=dict(size=10, color="#0064E0"),
        error_x=dict(type="data", symmetric=False, array=summary["ci_high"] - summary["mean_difference"],
                     arrayminus=summary["mean_difference"] - summary["ci_low"]),
        hovertemplate="%{y}<br>mean difference %{x:.1f}<extra></extra>"))
    fig.add_vline(x=0, line_dash="dot", line_color="#7b8794")
    fig.update_layout(xaxis_title=two_way_title(f"{_esc(a)} ranks the category higher", "", f"{_esc(b)} ranks it higher"))
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _style(fig, f"Mean rank difference ({a} − {b}) with 95% intervals", height=170 + 60 * len(summary))


def paired_words_figure(differences: pd.DataFrame, a: str, b: str) -> go.Figure:
    """The words whose rank differs most between A and B, as horizontal bars (A − B)."""
    if differences is None or differences.empty:
        return empty_figure("No words to compare")
    fig = go.Figure(go.Bar(x=differences["difference"], y=_esc(differences["word"]), orientation="h",
                           marker_color="#0064E0", hovertemplate="%{y}: %{x:.1f}<extra></extra>"))
    fig.update_layout(yaxis=dict(autorange="reversed", automargin=True),
                      xaxis_title=two_way_title(f"better rank in {_esc(a)}", "rank difference", f"better rank in {_esc(b)}"))
    return _style(fig, f"Rank in {a} − rank in {b}", height=170 + 22 * len(differences))


# ---------------------------------------------------------------------------------
# Implicit reward
# ---------------------------------------------------------------------------------
def mwlr_lollipop(table: pd.DataFrame, model1: str, model2: str, n: int = 15,
                  colors: tuple[str, str] | None = None, title: str | None = None) -> go.Figure:
    """The n words each LM prefers most by MWLR, as a lollipop chart (stems from zero)."""
    if table is None or table.empty:
        return empty_figure("No words shared by both models")
    d = pd.concat([table.head(n), table.tail(n)]).drop_duplicates("word").sort_values("mwlr")
    d = d.assign(word=_esc(d["word"].astype(str)))
    c1, c2 = colors or ("#0064E0", "#DB4437")
    col = [c1 if v > 0 else c2 for v in d["mwlr"]]
    fig = go.Figure()
    xs, ys = [], []
    for w, v in zip(d["word"], d["mwlr"]):
        xs += [0, v, None]
        ys += [w, w, None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#BDBDBD", width=1.5),
                             hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(x=d["mwlr"], y=d["word"], mode="markers", marker=dict(size=10, color=col),
                             showlegend=False, customdata=np.column_stack([d["logp1"], d["logp2"]]),
                             hovertemplate="<b>%{y}</b><br>MWLR %{x:.3g}<br>log p " + _short(model1)
                                           + " %{customdata[0]:.2f}<br>log p " + _short(model2)
                                           + " %{customdata[1]:.2f}<extra></extra>"))
    fig.add_vline(x=0, line_color="#616161", line_width=1)
    fig.update_layout(xaxis=dict(title=two_way_title(f"prefers {_short(model2)}", "MWLR", f"prefers {_short(model1)}")),
                      yaxis=dict(categoryorder="array", categoryarray=list(d["word"])))
    return _style(fig, title, height=max(420, 22 * len(d) + 120))


def _esc_str(value) -> str:
    """Any value as escaped figure text (escape.plotly of its str)."""
    return _esc(str(value))


def _short(name: str) -> str:
    """A model's name without its org, escaped for a figure."""
    return _esc(str(name).rsplit("/", 1)[-1])


# ---------------------------------------------------------------------------------
# Training dynamics (Figure 4)
# ---------------------------------------------------------------------------------
def training_figure(td: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Median rank over training checkpoints: one line per model and category; colour =
    base family, dash = category (Agency solid, Communion dotted)."""
    if td is None or td.empty:
        return empty_figure("No training-dynamics data")
    cats = sorted(td["category"].unique())
    dashes = {c: d for c, d in zip(cats, ["solid", "dot", "dash", "dashdot", "longdash"] * 3)}
    fig = go.Figure()
    for (model, cat), g in td.sort_values("checkpoint").groupby(["model_id", "category"], sort=True):
        fam = g["base_model"].iloc[0]
        fig.add_trace(go.Scatter(
            x=g["checkpoint"].astype(float), y=g["sum_value"], mode="lines+markers",
            name=_esc(f"{fam} · {cat}"), legendgroup=_esc(f"{fam}·{cat}"),
            line=dict(color=_family.color(fam), dash=dashes[cat], width=2), marker=dict(size=5),
            hovertemplate=f"<b>{_esc(str(model))}</b><br>{_esc(str(cat))}"
                          "<br>step %{x}<br>median rank %{y:.1f}<extra></extra>"))
    seen = set()
    for tr in fig.data:  # one legend entry per family x category
        tr.showlegend = tr.name not in seen
        seen.add(tr.name)
    fig.update_layout(xaxis=dict(title="Training step (checkpoint)"),
                      yaxis=dict(title="Median rank (1 = preferred)", autorange="reversed"))
    _style(fig, title, height=500, legend_bottom=True)
    # Up to 6 family x category entries below the axis title: they wrap on a narrow window,
    # where a legend on the right took half the chart.
    fig.update_layout(legend=dict(y=-0.2), margin=dict(b=120, r=10))
    return fig


SOURCE_SYMBOLS = {"UltraFeedback": "circle", "Skywork": "triangle-up", "UltraFeedback + Skywork": "diamond"}


def figure_4b(d4b: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Figure 4b: each run's final-checkpoint median rank against data size, one panel per
    category; colour = base family, marker = data source, a dotted line joins the families
    of one run. Sizes sit on an ordered axis (the paper breaks its axis before GRM 550K)."""
    if d4b is None or d4b.empty:
        return empty_figure("No final checkpoints to show")
    cats = sorted(d4b["category"].unique())
    order = (d4b.drop_duplicates("run").assign(grm=lambda x: x["method"] == "GRM")
             .sort_values(["grm", "data_size_k", "data_source"]))
    xlab = {r: (f"{int(k)}K" + (" GRM" if m == "GRM" else "") + (" (Skywork)" if s == "Skywork" else ""))
            for r, k, m, s in zip(order["run"], order["data_size_k"], order["method"], order["data_source"])}
    fig = make_subplots(rows=1, cols=len(cats), subplot_titles=[f"<b>{_esc(str(c))}</b>" for c in cats],
                        horizontal_spacing=0.08)
    shown = set()
    for c, cat in enumerate(cats, 1):
        panel = d4b[d4b["category"] == cat]
        for run, g in panel.groupby("run", sort=False):
            fig.add_trace(go.Scatter(x=[xlab[run]] * len(g), y=g["median_rank"], mode="lines", showlegend=False,
                                     line=dict(color="#616161", width=1, dash="dot"), hoverinfo="skip"),
                          row=1, col=c)
        for (fam, src), g in panel.groupby(["base_model", "data_source"], sort=True):
            name = _esc(f"{fam} · {src}")
            fig.add_trace(go.Scatter(
                x=[xlab[r] for r in g["run"]], y=g["median_rank"], mode="markers", name=name,
                legendgroup=name, showlegend=name not in shown,
                marker=dict(size=11, color=_family.color(fam), symbol=SOURCE_SYMBOLS.get(src, "square")),
                customdata=np.column_stack([_esc(g["run"]), _esc(g["model_id"]), g["checkpoint"].astype(str)]),
                hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]} (step %{customdata[2]})"
                              "<br>median rank %{y:.1f}<extra></extra>"), row=1, col=c)
            shown.add(name)
        fig.update_xaxes(categoryorder="array", categoryarray=[xlab[r] for r in order["run"]],
                         title_text="Preference pairs (thousands)", row=1, col=c)
        fig.update_yaxes(autorange="reversed", row=1, col=c,
                         title_text="Median rank at the final checkpoint (1 = preferred)" if c == 1 else None)
    _style(fig, title, height=520, legend_bottom=True)
    fig.update_layout(legend=dict(y=-0.28), margin=dict(b=140, r=10))  # below the axis titles; wraps when narrow
    return fig


# ---------------------------------------------------------------------------------
# Headline: family means as dots with intervals (issue 12)
# ---------------------------------------------------------------------------------
FRAMING_TITLES = {  # three short lines: two panels side by side stay apart on a narrow window
    "positive": "<b>Positive prompts</b><br><sup>best / greatest / good</sup><br><sup>up = preferred</sup>",
    "negative": "<b>Negative prompts</b><br><sup>worst / bad / terrible</sup><br><sup>up = named as worst</sup>",
}


def family_summary(median_ranks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (framing, category, family): the mean over models of each model's mean median
    rank (the paper's family mean), and a 95% t interval over the models."""
    from scipy import stats as _stats
    from .analysis import model_mean_ranks
    per_model = model_mean_ranks(median_ranks.dropna(subset=["family"])).rename(columns={"mean_rank": "m"})
    per_model = per_model[["framing", "category", "family", "model", "m"]]
    g = per_model.groupby(["framing", "category", "family"])["m"]
    out = g.agg(mean_rank="mean", sd="std", n_models="size").reset_index()
    tq = np.array([_stats.t.ppf(0.975, n - 1) if n > 1 else np.nan for n in out["n_models"]])
    out["ci"] = (tq * out["sd"] / np.sqrt(out["n_models"])).fillna(0.0)
    return out, per_model


def _finish_rank_panels(fig: go.Figure, title: str | None) -> go.Figure:
    """One row of framing panels on a mean-rank axis (1 = top, drawn at the top), with room
    above for a wrapped title and the three-line panel titles."""
    fig.update_yaxes(autorange="reversed", row=1, col=1, title_text="Mean rank of the category's words (1 = top)")
    fig.update_annotations(font_size=14)
    title_px = 22 * _title_lines(wrap_title(title)) if title else 0
    _style(fig, title, height=480 + title_px, legend_bottom=True)
    fig.update_layout(margin=dict(t=80 + title_px))  # room for the three-line panel titles
    return fig


def family_dots_figure(median_ranks: pd.DataFrame, title: str | None = None) -> go.Figure:
    """The headline without a misleading encoding: one panel per framing, each family's mean
    rank per category as a dot with its 95% interval, each model as a small dot (named on hover),
    on one shared axis where up means ranked nearer 1 (as on Compare)."""
    if median_ranks is None or median_ranks.empty:
        return empty_figure("No family means to show")
    summ, per_model = family_summary(median_ranks)
    if summ.empty:
        return empty_figure("No family means to show")
    framings = [f for f in ("positive", "negative") if f in set(summ["framing"])]
    cats = sorted(summ["category"].unique(), key=str.casefold)
    fams = _family.order(summ["family"])
    fig = make_subplots(rows=1, cols=len(framings), shared_yaxes=True, horizontal_spacing=0.08,
                        subplot_titles=[FRAMING_TITLES.get(f, f) for f in framings])
    step = 0.5 / max(len(fams), 1)
    for c, fr in enumerate(framings, 1):
        for i, fam in enumerate(fams):
            off = (i - (len(fams) - 1) / 2) * step
            s = summ[(summ["framing"] == fr) & (summ["family"] == fam)].set_index("category").reindex(cats)
            pm = per_model[(per_model["framing"] == fr) & (per_model["family"] == fam)]
            x_models = [cats.index(cat) + off - 0.06 for cat in pm["category"]]
            fig.add_trace(go.Scatter(
                x=x_models, y=pm["m"], mode="markers", name=_esc(fam), legendgroup=_esc(fam), showlegend=False,
                marker=dict(size=6, color=_family.color(fam), opacity=0.35),
                customdata=np.column_stack([_esc(pm["model"]), _esc(pm["category"])]),
                hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}: mean rank %{y:.1f}<extra></extra>"),
                row=1, col=c)
            fig.add_trace(go.Scatter(
                x=[k + off + 0.04 for k in range(len(cats))], y=s["mean_rank"], mode="markers", name=_esc(fam),
                legendgroup=_esc(fam), showlegend=c == 1,
                marker=dict(size=12, color=_family.color(fam), line=dict(color="white", width=1)),
                error_y=dict(type="data", array=s["ci"], color=_family.color(fam), thickness=1.5, width=4),
                customdata=np.column_stack([_esc(cats), s["n_models"].fillna(0), s["ci"].fillna(0)]),
                hovertemplate=f"<b>{_esc(fam)}</b> family"
                              "<br>%{customdata[0]}: mean rank %{y:.1f} ± %{customdata[2]:.1f}"
                              "<br>(95% interval over %{customdata[1]} models)<extra></extra>"),
                row=1, col=c)
        fig.update_xaxes(tickvals=list(range(len(cats))), ticktext=_esc(cats), range=[-0.6, len(cats) - 0.4],
                         row=1, col=c)
    return _finish_rank_panels(fig, title)


# ---------------------------------------------------------------------------------
# One model among the families (audit-model)
# ---------------------------------------------------------------------------------
AUDITED_COLOR = "#111111"


def model_placement_figure(audit: dict, title: str | None = None) -> go.Figure:
    """Where one model sits (core.model_audit, JSON form): per framing a panel, per category
    the reference models as small dots in their family's colour, each family's mean as a
    large dot, and the audited model as one black diamond with its bootstrap interval. Up =
    ranked nearer 1, as on Compare."""
    panels = audit.get("panels") or []
    if not panels:
        return empty_figure("Nothing to place")
    framings = [f for f in ("positive", "negative") if any(p["framing"] == f for p in panels)]
    framings += sorted({p["framing"] for p in panels} - set(framings))
    cats = sorted({p["category"] for p in panels}, key=str.casefold)
    fams = _family.order({f for p in panels for f in p["family_means"]})
    fig = make_subplots(rows=1, cols=len(framings), shared_yaxes=True, horizontal_spacing=0.08,
                        subplot_titles=[FRAMING_TITLES.get(f, _esc(f)) for f in framings])
    step = 0.5 / max(len(fams) + 1, 1)
    name = _esc(audit.get("model", "this model"))
    for c, fr in enumerate(framings, 1):
        mine = {p["category"]: p for p in panels if p["framing"] == fr}
        for i, fam in enumerate(fams):
            off = (i - len(fams) / 2) * step
            refs = [(cats.index(cat), v) for cat, p in mine.items() for v in p["reference_values"]
                    if v["family"] == fam and v["value"] is not None]
            fig.add_trace(go.Scatter(
                x=[k + off - 0.05 for k, _ in refs], y=[v["value"] for _, v in refs], mode="markers",
                name=f"{_esc(fam)} models", legendgroup=fam, showlegend=False,
                marker=dict(size=6, color=_family.color(fam), opacity=0.35),
                customdata=[[_esc(v["model"])] for _, v in refs],
                hovertemplate="%{customdata[0]}: mean rank %{y:.1f}<extra></extra>"), row=1, col=c)
            means = [(cats.index(cat), p["family_means"].get(fam)) for cat, p in mine.items()]
            means = [(k, m) for k, m in means if m is not None]
            fig.add_trace(go.Scatter(
                x=[k + off + 0.05 for k, _ in means], y=[m for _, m in means], mode="markers",
                name=f"{_esc(fam)} family mean", legendgroup=fam, showlegend=c == 1,
                marker=dict(size=12, color=_family.color(fam), line=dict(color="white", width=1)),
                hovertemplate=f"{_esc(fam)} family mean: %{{y:.1f}}<extra></extra>"), row=1, col=c)
        off = (len(fams) / 2) * step
        pts = [(cats.index(cat), p) for cat, p in mine.items() if p["value"] is not None]
        fig.add_trace(go.Scatter(
            x=[k + off for k, _ in pts], y=[p["value"] for _, p in pts], mode="markers", name=name,
            legendgroup="audited", showlegend=c == 1,
            marker=dict(size=15, symbol="diamond", color=AUDITED_COLOR, line=dict(color="white", width=1)),
            error_y=dict(type="data", symmetric=False, color=AUDITED_COLOR, thickness=2, width=6,
                         array=[(p["ci_high"] or p["value"]) - p["value"] for _, p in pts],
                         arrayminus=[p["value"] - (p["ci_low"] or p["value"]) for _, p in pts]),
            customdata=[[p["ci_low"] or 0, p["ci_high"] or 0] for _, p in pts],
            hovertemplate=f"{name}: mean rank %{{y:.1f}}<br>95% interval %{{customdata[0]:.1f}} to "
                          "%{customdata[1]:.1f}<extra></extra>"), row=1, col=c)
        fig.update_xaxes(tickvals=list(range(len(cats))), ticktext=[_esc(c_) for c_ in cats],
                         range=[-0.6, len(cats) - 0.4], row=1, col=c)
    return _finish_rank_panels(fig, title)


# ---------------------------------------------------------------------------------
# A training run's trajectory (Figure 4a) and the words that moved (Figure 5 / A6)
# ---------------------------------------------------------------------------------
_RUN_DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
CATEGORY_COLORS = ["#3CB371", "#FFCE1B", "#4C78A8", "#E45756", "#B279A2", "#72B7B2", "#9D755D", "#FF9DA6"]


def trajectory_figure(points: pd.DataFrame, title: str | None = None, y_title: str | None = None,
                      x_title: str = "Training step (checkpoint)") -> go.Figure:
    """Figure 4a for any runs: the value (a median rank; 1 = most preferred, so the axis is
    reversed) per training step, one panel per framing (rows) and category (columns), one
    line per run in its base family's colour (runs of one family differ by dash).
    `points`: run, family, step, framing, category, value."""
    if points is None or points.empty:
        return empty_figure("No checkpoints to show")
    cats = sorted(points["category"].astype(str).unique())
    order = {"positive": 0, "negative": 1}
    frs = sorted(points["framing"].astype(str).unique(), key=lambda f: (order.get(f, 2), f))
    fig = make_subplots(rows=len(frs), cols=len(cats), shared_xaxes=True, shared_yaxes=True,
                        horizontal_spacing=0.04, vertical_spacing=0.12 if len(frs) > 1 else 0.05,
                        subplot_titles=[f"{_esc_str(c)} · {_esc_str(f)} prompts" for f in frs for c in cats])
    runs = list(dict.fromkeys(points.sort_values(["family", "run"], na_position="last")["run"].astype(str)))
    fam_of = points.drop_duplicates("run").set_index("run")["family"].to_dict()
    for k, run in enumerate(runs):
        fam = fam_of.get(run)
        n_same = sum(1 for r in runs[:k] if fam_of.get(r) == fam)  # runs of one family: one colour, dashes differ
        dash = _RUN_DASHES[n_same % len(_RUN_DASHES)]
        fam_label = _family.label(fam)
        label = _esc_str(run) if run == fam_label else f"{_esc_str(fam_label)} · {_esc_str(run)}"
        for i, fr in enumerate(frs):
            for j, cat in enumerate(cats):
                g = points[(points["run"].astype(str) == run) & (points["framing"] == fr)
                           & (points["category"] == cat)].sort_values("step")
                if g.empty:
                    continue
                fig.add_trace(go.Scatter(
                    x=g["step"].astype(float), y=g["value"].astype(float), mode="lines+markers", name=label,
                    legendgroup=run, showlegend=(i == 0 and j == 0),
                    line=dict(color=_family.color(fam), dash=dash, width=2), marker=dict(size=6),
                    hovertemplate=f"<b>{label}</b><br>{_esc_str(cat)}, {_esc_str(fr)} prompts<br>step %{{x}}"
                                  "<br>median rank %{y:.1f}<extra></extra>"), row=i + 1, col=j + 1)
    fig.update_yaxes(autorange="reversed")
    for i, fr in enumerate(frs):  # rank 1 on a negative prompt: the favourite answer to 'the worst thing'
        fig.update_yaxes(title_text=y_title or f"Median rank (1 = {LOWER_RANK_MEANS.get(fr, 'ranked top')})",
                         row=i + 1, col=1)
    fig.update_xaxes(title_text=x_title, row=len(frs))
    _style(fig, title, height=300 + 230 * len(frs))
    # The legend at the very bottom of the figure, under the x-axis title (container units)
    fig.update_layout(legend=dict(orientation="h", yref="container", yanchor="bottom", y=0.01, x=0, xanchor="left"),
                      margin=dict(t=80 if title else 50, b=110))
    return fig


def movers_figure(movers: pd.DataFrame, title: str | None = None, colors: dict | None = None) -> go.Figure:
    """Figure 5 / A6: the words whose rank changed most between the first and the last
    checkpoint, as horizontal bars (right: preferred later in training; left: earlier),
    coloured by category. `movers`: word, category, rank_change, direction ('up'/'down')."""
    if movers is None or movers.empty:
        return empty_figure("No words to show")
    cats = sorted(movers["category"].astype(str).unique())
    colors = dict(colors or {})
    palette = iter(c for c in CATEGORY_COLORS if c not in colors.values())
    for c in cats:
        colors.setdefault(c, next(palette, "#888888"))
    d = pd.concat([movers[movers["direction"] == "up"], movers[movers["direction"] == "down"]])
    d = d.drop_duplicates("word")
    order = [_esc_str(w) for w in d["word"]]
    fig = go.Figure()
    for c in cats:
        g = d[d["category"].astype(str) == c]
        fig.add_trace(go.Bar(
            x=g["rank_change"].astype(float), y=[_esc_str(w) for w in g["word"]], orientation="h", name=_esc_str(c),
            marker_color=colors[c],
            customdata=np.stack([g["rank_first"].astype(float), g["rank_last"].astype(float)], axis=-1),
            hovertemplate="<b>%{y}</b><br>" + _esc_str(c) + "<br>rank %{customdata[0]:.1f} → %{customdata[1]:.1f}"
                          "<br>change %{x:+.1f}<extra></extra>"))
    fig.add_vline(x=0, line_width=1, line_color="#444")
    for text, side in (("preferred late in training →", "left"), ("← preferred early in training ", "right")):
        fig.add_annotation(text=text, xref="x", x=0, yref="paper", y=1.0, yanchor="bottom", showarrow=False,
                           xanchor=side, font=dict(size=11, color="#555"))
    fig.update_yaxes(categoryorder="array", categoryarray=order, autorange="reversed", title=None)
    fig.update_xaxes(title="Rank change (first − last checkpoint; > 0 = preferred later in training)")
    _style(fig, title, height=max(320, 40 + 24 * len(d)))
    fig.update_layout(barmode="overlay", bargap=0.25)
    return fig
