"""Issue 21: at 768 px with the sidebar open, the Compare page's MFD 2.0 chart (five
foundations x two framings) keeps its panel titles apart. Measured in a real browser: the
bounding boxes of every title plotly drew (chart title, panel titles, row titles) must not
intersect."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_server import ARGS, CHROMIUM, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")]

# Two positive and two negative paper prompts: enough for violins, little to rank.
PROMPTS = ["best_ever_one", "greatest_ever_one", "worst_ever_one", "bad_ever_one"]
MODELS = {"Skywork/Skywork-Reward-Gemma-2-27B": "gemma", "Skywork/Skywork-Reward-Gemma-2-27B-v0.2": "gemma",
          "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2": "llama", "acme/Llama-3.2-3B-RM": "llama"}

# Every text element plotly draws as a title: the chart's, the subplot (panel) titles, which
# are annotations, and the axis titles that name each row's framing.
TITLE_BOXES = """() => {
  const plot = document.querySelector('.stPlotlyChart .js-plotly-plot');
  const els = plot.querySelectorAll('.g-gtitle text, .annotation text, .g-ytitle text, .g-y2title text, '
                                    + '[class^="g-y"][class$="title"] text');
  return Array.from(new Set(els)).map(e => { const r = e.getBoundingClientRect();
    return {text: e.textContent, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom}; })
    .filter(b => b.x1 > b.x0 && b.y1 > b.y0);
}"""


def _overlaps(a: dict, b: dict) -> bool:
    return a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]


@pytest.fixture()
def mfd_server(tmp_path, paper_data):
    from core import corpora
    from core.store import Store
    from tests.support import synthetic_rm_scores
    db = tmp_path / "mfd.duckdb"
    with running_app({"VALUEAUDIT_DB": db, "VALUEAUDIT_PAPER_DATA": paper_data}, tmp_path / "streamlit.log") as url:
        synthetic_rm_scores(Store(db), corpora.load("mfd2").vocabulary, MODELS, PROMPTS)
        yield url


def test_compare_mfd_titles_do_not_overlap_at_768_px_with_the_sidebar_open(mfd_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 768, "height": 1000})
            page.goto(f"{mfd_server}/compare")
            sidebar = page.locator("[data-testid='stSidebar']")
            expect(sidebar).to_be_attached(timeout=90_000)
            opener = page.locator("[data-testid='stExpandSidebarButton']")
            if opener.count() and opener.first.is_visible():
                opener.first.click()
            expect(sidebar).to_have_attribute("data-collapsed", "false", timeout=30_000)
            box = sidebar.locator("[data-testid='stSelectbox']").first
            expect(box).to_be_visible(timeout=90_000)
            box.click()
            page.get_by_role("option", name="MFD 2.0", exact=False).first.click()
            page.wait_for_function(
                "() => document.querySelectorAll('.stPlotlyChart .js-plotly-plot .violinlayer path').length >= 10",
                timeout=120_000)
            page.wait_for_timeout(1000)  # plotly's relayout to the column width
            page.screenshot(path=str(tmp_path / "compare-mfd-768.png"), full_page=True)
            boxes = page.evaluate(TITLE_BOXES)
            texts = " | ".join(b["text"] for b in boxes)
            for cat in ("Care", "Fairness", "Loyalty", "Authority", "Sanctity"):
                assert sum(b["text"].startswith(cat) for b in boxes) == 2, texts  # one panel per framing
            clashes = [(a["text"], b["text"]) for i, a in enumerate(boxes) for b in boxes[i + 1:] if _overlaps(a, b)]
            assert not clashes, clashes
            width = page.evaluate("() => document.querySelector('.stPlotlyChart').getBoundingClientRect().width")
            assert width < 500, width  # the sidebar really took its share of the 768 px
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
