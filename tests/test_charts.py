"""core.charts read back: the numbers a chart draws are the numbers the paper defines —
each model's mean of its per-prompt median ranks with one SE (or a 95% t interval) as Figure 1's
bars, stars from the panel's corrected p-value, family means as the mean over models,
and 'preferred' pointing up (reversed rank axes)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core import charts, family


def medians(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for fam, models in (("Gemma", ["g1", "g2"]), ("Llama", ["l1", "l2", "l3"])):
        for m in models:
            for fr in ("positive", "negative"):
                for cat in ("Agency", "Communion"):
                    for p in range(4 + len(m)):  # unequal prompt counts per model
                        rows.append({"model": m, "family": fam, "framing": fr, "category": cat,
                                     "prompt_id": f"p{p}", "median_rank": float(rng.integers(1, 200))})
    return pd.DataFrame(rows)


def _mean_points(fig, fam: str) -> list:
    """The per-model mean markers (the scatter traces with error bars) of one family."""
    return [t for t in fig.data if t.type == "scatter" and t.name == fam and t.error_y.array is not None]


@pytest.mark.parametrize("interval", ["se", "ci95"])
def test_figure1_bars_are_each_models_mean_and_standard_error(interval):
    med = medians()
    fig = charts.compare_figure(med, interval=interval)
    drawn = {}
    for fam in ("Gemma", "Llama"):
        for t in _mean_points(fig, fam):
            for (model, n), y, e in zip(t.customdata, t.y, t.error_y.array):
                drawn.setdefault(model, []).append((round(float(y), 9), round(float(e), 9)))
    from scipy import stats
    for model, g in med.groupby("model"):
        want = []
        for _, x in g.groupby(["framing", "category"]):
            # the paper's one SE, or the 95% t interval (n - 1 df), not +-1.96 SE
            factor = 1.0 if interval == "se" else stats.t.ppf(0.975, len(x) - 1)
            want.append((round(x["median_rank"].mean(), 9), round(factor * x["median_rank"].std(ddof=1)
                                                                  / np.sqrt(len(x)), 9)))
        want = sorted(want)
        assert sorted(drawn[model]) == want
    axes = [ax for k, ax in fig.layout.to_plotly_json().items() if k.startswith("yaxis")]
    assert len(axes) == 4 and all(ax["autorange"] == "reversed" for ax in axes)


def test_panel_titles_carry_the_panels_own_stars():
    med = medians()
    tests = pd.DataFrame([{"category": "Agency", "framing": "positive", "welch_p_bonferroni": 0.0004},
                          {"category": "Communion", "framing": "positive", "welch_p_bonferroni": 0.03},
                          {"category": "Agency", "framing": "negative", "welch_p_bonferroni": 0.2}])
    fig = charts.compare_figure(med, tests)
    # A panel's title names its category; its row (positive prompts above negative) names the framing.
    by_height = sorted(fig.layout.annotations, key=lambda a: -a.y)
    rows = {"positive": by_height[:2], "negative": by_height[2:]}
    panel = {(c, f): next(a.text for a in rows[f] if a.text.startswith(f"<b>{c}</b>"))
             for c in ("Agency", "Communion") for f in ("positive", "negative")}
    axis_titles = [ax["title"]["text"] for k, ax in fig.layout.to_plotly_json().items()
                   if k.startswith("yaxis") and "title" in ax]
    assert [t.split("<br>")[0] for t in axis_titles] == ["<b>Positive prompts</b>", "<b>Negative prompts</b>"]
    assert "***" in panel[("Agency", "positive")] and "*" in panel[("Communion", "positive")]
    assert "**" not in panel[("Communion", "positive")] and "n.s." in panel[("Agency", "negative")]
    assert [charts.stars(p) for p in (0.0009, 0.001, 0.009, 0.049, 0.05, None)] == ["***", "**", "**", "*", "n.s.", ""]


def test_headline_dots_are_family_means_over_models_with_t_intervals():
    med = medians(1)
    fig = charts.family_dots_figure(med)
    for fam in ("Gemma", "Llama"):
        big = [t for t in fig.data if t.name == fam and t.marker.size == 12]
        assert len(big) == 2  # one per framing panel
        for t, fr in zip(big, ("positive", "negative")):
            for cat, y, e in zip(t.customdata[:, 0], t.y, t.error_y.array):
                per_model = med[(med["family"] == fam) & (med["framing"] == fr) & (med["category"] == cat)] \
                    .groupby("model")["median_rank"].mean()
                n = len(per_model)
                assert y == pytest.approx(per_model.mean())
                assert e == pytest.approx(stats.t.ppf(0.975, n - 1) * per_model.std(ddof=1) / np.sqrt(n))
            assert t.marker.color == family.color(fam)
    assert fig.layout.yaxis.autorange == "reversed"


def test_no_data_gives_a_message_not_an_error():
    fig = charts.compare_figure(pd.DataFrame())
    assert fig.layout.annotations[0].text == "No median ranks to show"


def test_panels_wrap_to_at_most_three_per_row_and_titles_to_narrow_lines():
    """Issue 21: a 768 px window with the sidebar open leaves ~430 px; five MFD foundations side
    by side gave 70 px panels whose titles ran into one string."""
    assert [charts.panel_grid(n) for n in (1, 2, 3, 4, 5, 6, 7)] == \
        [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (2, 3), (3, 3)]
    cats = ["Care", "Fairness", "Loyalty", "Authority", "Sanctity"]
    med = pd.concat([medians().assign(category=c) for c in cats], ignore_index=True)
    fig = charts.compare_figure(med)
    starts = {}  # panels per row: x axes grouped by their y axis's domain
    layout = fig.layout.to_plotly_json()
    for k, ax in layout.items():
        if k.startswith("xaxis"):
            y = layout["yaxis" + k[len("xaxis"):]]["domain"]
            starts.setdefault(tuple(y), []).append(ax["domain"][0])
    assert sorted(len(v) for v in starts.values()) == [2, 2, 3, 3]
    assert len(fig.layout.annotations) == 10  # one title per (framing, foundation) panel, none for empty cells
    title = "Median rank of each category's words — mfd2-paper (1652 words) on 54 prompts"
    wrapped = charts.wrap_title(title)
    assert wrapped.replace("<br>", " ") == title
    assert all(len(line) <= charts.TITLE_CHARS for line in wrapped.split("<br>"))


def test_trajectory_and_movers_draw_the_values_as_text_in_family_and_category_colours():
    """Figure 4a for runs: one line per run and panel, the family's colour, preferred up; the
    run name and words are data, drawn as escaped text. Figure 5: bars coloured by category."""
    pts = pd.DataFrame([{"run": r, "family": f, "step": s, "framing": fr, "category": c, "value": float(s + len(c))}
                        for r, f in (("<b>mine</b>", "llama"), ("other", "llama"), ("g", "gemma"))
                        for s in (100, 200) for fr in ("positive", "negative") for c in ("Agency", "Communion")])
    fig = charts.trajectory_figure(pts)
    lines = [t for t in fig.data if t.type == "scatter"]
    assert len(lines) == 3 * 2 * 2
    mine = [t for t in lines if "mine" in t.name]
    assert all(t.name == "Llama · &lt;b&gt;mine&lt;/b&gt;" for t in mine) and len(mine) == 4
    assert {t.line.color for t in mine} == {family.color("llama")}
    assert {t.line.dash for t in lines if "other" in t.name} != {t.line.dash for t in mine}  # same family: dash differs
    assert all(getattr(fig.layout, k).autorange == "reversed" for k in fig.layout if k.startswith("yaxis"))
    assert [t.y.tolist() for t in mine][0] == [106.0, 206.0]
    assert [fig.layout[k].title.text for k in ("yaxis", "yaxis3")] == [  # the first panel of each framing row
        "Median rank (1 = preferred)", "Median rank (1 = named the worst more readily)"]
    mv = pd.DataFrame({"word": ["<i>x</i>", "b", "c"], "category": ["Agency", "Communion", "Agency"],
                       "rank_first": [9.0, 1.0, 5.0], "rank_last": [1.0, 9.0, 6.0], "rank_change": [8.0, -8.0, -1.0],
                       "direction": ["up", "down", "down"]})
    bars = charts.movers_figure(mv, colors={"Agency": "#3CB371", "Communion": "#FFCE1B"})
    by = {t.name: t for t in bars.data}
    assert by["Agency"].marker.color == "#3CB371" and list(by["Agency"].y) == ["&lt;i&gt;x&lt;/i&gt;", "c"]
    assert list(by["Communion"].x) == [-8.0]


def test_a_chart_download_is_named_after_what_it_shows():
    """Issue 21: the Report preview downloaded as 'rep_preview.png'; names now come from the
    page's file name or the chart's title (tags and line breaks dropped, hyphens kept)."""
    from core import report
    assert report.plot_config("ignored", "figure1_big2-nouns")["toImageButtonOptions"]["filename"] == "figure1_big2-nouns"
    title = charts.wrap_title("Mean rank of each category's words by base family — Big Two nouns")
    assert "<br>" in title
    assert report.plot_config(title)["toImageButtonOptions"]["filename"] == \
        "mean_rank_of_each_category_s_words_by_base_family_big_two_nouns"
    assert "toImageButtonOptions" not in report.plot_config(None)


def test_a_two_way_axis_title_keeps_each_side_whole():
    assert charts.two_way_title("A", "MWLR", "B") == "← A · MWLR · B →"
    long = charts.two_way_title("better rank in Skywork v0.2 Gemma 2 27B", "rank difference",
                                "better rank in GRM Llama 3.2 3B")
    assert long.split("<br>") == ["rank difference", "← better rank in Skywork v0.2 Gemma 2 27B",
                                  "better rank in GRM Llama 3.2 3B →"]


def test_the_word_gap_axis_says_what_a_better_rank_means_on_each_framing():
    """Rank 1 on a negative prompt is the favourite answer to 'the worst thing': a word Gemma
    ranks better there is one Gemma names the worst more readily, not one it prefers."""
    gaps = pd.DataFrame({"word": ["love", "power"], "rank_Gemma": [10.0, 50.0], "rank_Llama": [30.0, 20.0],
                         "gap": [-20.0, 30.0]})
    pos = charts.family_gap_figure(gaps, "Gemma", "Llama", framing="positive").layout.xaxis.title.text
    neg = charts.family_gap_figure(gaps, "Gemma", "Llama", framing="negative").layout.xaxis.title.text
    assert "← preferred by Gemma" in pos and "preferred by Llama →" in pos
    assert "preferred" not in neg
    assert "← named the worst more readily by Gemma" in neg and "named the worst more readily by Llama →" in neg

    one = pd.DataFrame({"model": ["g1", "l1"], "family": ["Gemma", "Llama"], "mean_rank": [10.0, 30.0],
                        "sd": [1.0, 2.0]})
    assert charts.word_rank_figure(one, "love", framing="positive").layout.yaxis.title.text.endswith(
        "(lower = preferred)")
    assert charts.word_rank_figure(one, "love", framing="negative").layout.yaxis.title.text.endswith(
        "(lower = named the worst more readily)")
