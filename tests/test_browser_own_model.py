"""Issue 21, the own-model road in a real browser (local mode): add a local tiny reward model
on the Models page, score it on Big Two on the Score page, see it counted on Compare, and
download the report, the audit report and the headline chart (named after what it shows).

Beside it the store holds only a second tiny model (another family) scored on the same two
prompts, so the new model is as completely scored as the best-covered one and counted;
scoring the 54 prompts would take minutes and prove nothing more about the road."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_server import ARGS, CHROMIUM, running_app, settle

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")]

PROMPTS = ("greatest_ever_one", "worst_ever_one")  # the Score page's default for "Some of the paper's prompts"

# A table cell whose text is one word must lie on one line: the audit report once broke
# 'Corpus' into 'Corp us' and '0.95' into '0.9 5' on a narrow window.
BROKEN_WORDS = """() => Array.from(document.querySelectorAll('td, th')).filter(c => {
  const text = c.textContent.trim();
  if (!text || /\\s/.test(text)) return false;
  const range = document.createRange(); range.selectNodeContents(c);
  const lines = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
  return lines.size > 1;
}).map(c => c.textContent.trim())"""


@pytest.fixture()
def road(tmp_path, paper_data, tiny_gemma_rm):
    from core import corpora, prompts, runner
    from core.request import ScoreRequest
    from core.store import Store
    db = tmp_path / "road.duckdb"
    chosen = [p for p in prompts.paper_prompts() if p.prompt_id in PROMPTS]
    runner.score(ScoreRequest(str(tiny_gemma_rm), "rm", corpora.load("big2-nouns").vocabulary, chosen,
                              corpus="big2-nouns", device="cpu"), Store(db), checks=False)
    env = {"VALUEAUDIT_DB": db, "VALUEAUDIT_PAPER_DATA": paper_data, "VALUEAUDIT_MODE": "local"}
    with running_app(env, tmp_path / "streamlit.log") as url:
        yield url


def _no_error(page, where: str) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, where
    text = page.locator("[data-testid='stMain']").inner_text()
    assert "hit a problem" not in text, (where, text[:800])


def test_add_score_compare_and_report_an_own_model(road, tmp_path, tiny_llama_rm):
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
            # 1. Models: add the local folder; its family is read from config.json.
            page.goto(f"{road}/models")
            box = page.get_by_label("Hub id or local folder")
            expect(box).to_be_visible(timeout=90_000)
            box.fill(str(tiny_llama_rm))
            page.get_by_role("button", name="Add model").click()
            expect(page.get_by_text("Added", exact=False).first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("llama rm", exact=False).first).to_be_visible()
            _no_error(page, "models")

            # 2. Score: pick it by its short name, two of the paper's prompts, start, wait for done.
            page.goto(f"{road}/score")
            models = page.locator("[data-testid='stMultiSelect']").filter(has_text="Models").first
            expect(models).to_be_visible(timeout=90_000)
            models.locator("input").fill("llama-rm")  # the list is long and virtualised: filter it
            page.get_by_role("option", name="llama-rm", exact=True).click()
            page.keyboard.press("Escape")
            page.get_by_text("Some of the paper's prompts").click()
            settle(page)
            start = page.get_by_role("button", name="Start scoring")
            expect(start).to_be_enabled(timeout=60_000)
            start.click()
            expect(page.get_by_text("· done", exact=False).first).to_be_visible(timeout=300_000)
            settle(page)
            assert "failed" not in page.locator("[data-testid='stMain']").inner_text()
            page.screenshot(path=str(tmp_path / "score.png"), full_page=True)

            # 3. Compare: the new model is counted (a chip in the sidebar, nobody left out) and drawn.
            page.goto(f"{road}/compare")
            expect(page.locator(".stPlotlyChart .js-plotly-plot .violinlayer path").first).to_be_attached(
                timeout=120_000)
            settle(page)
            chips = page.locator("[data-testid='stSidebar'] [data-tag]").all_inner_texts()
            assert any(c.startswith("llama-rm") for c in chips) and any(c.startswith("gemma-rm") for c in chips), chips
            main = page.locator("[data-testid='stMain']").inner_text()
            assert "Left out" not in main and "incomplete" not in main, main[:1500]
            _no_error(page, "compare")
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

            # 3b. Your model: where the new model sits among the families (audit-model's view). The
            # reference is the other tiny model alone, so the page says a placement cannot be told.
            page.goto(f"{road}/your_model")
            expect(page.get_by_text("On big2-nouns (263 words),", exact=False).first).to_be_visible(timeout=180_000)
            settle(page)
            main = page.locator("[data-testid='stMain']").inner_text()
            assert "families with two or more reference models" in main, main[:1500]
            _no_error(page, "your_model")

            # 4. Report: the report, its headline chart as a PNG named after it, the audit report.
            page.goto(f"{road}/report")
            button = page.get_by_role("button", name="Download the report (HTML)")
            expect(button).to_be_visible(timeout=120_000)
            with page.expect_download() as got:
                button.click()
            report = got.value.path().read_text(encoding="utf-8")
            assert "llama-rm" in report and "gemma-rm" in report and str(tiny_llama_rm.parent) not in report

            chart = page.locator(".stPlotlyChart").first
            chart.hover()
            with page.expect_download() as got:
                chart.locator(".modebar-btn[data-title='Download plot as a PNG']").click()
            assert got.value.suggested_filename == "headline_big2-nouns.png"

            page.get_by_role("button", name="Build the audit report").click()
            audit = page.get_by_role("button", name="Download the audit report (HTML)")
            expect(audit).to_be_visible(timeout=180_000)
            with page.expect_download() as got:
                audit.click()
            doc = tmp_path / "audit.html"
            got.value.save_as(doc)
            _no_error(page, "report")

            narrow = browser.new_page(viewport={"width": 768, "height": 1000})
            narrow.goto(doc.as_uri())
            narrow.wait_for_timeout(500)
            assert narrow.evaluate(BROKEN_WORDS) == []
            assert narrow.locator("td").count() > 20  # the tables really are there
            narrow.screenshot(path=str(tmp_path / "audit-768.png"), full_page=True)
        finally:
            browser.close()
