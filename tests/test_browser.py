"""End to end in a real browser: `streamlit run app.py` on a free port against a fresh
database, click the import of the published results on Home, open Compare, check that
plotly drew the chart, and keep a screenshot under the test's temp folder."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.browser_server import ARGS, CHROMIUM, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")]


@pytest.fixture()
def server(tmp_path, paper_data):
    with running_app({"VALUEAUDIT_DB": tmp_path / "browser.duckdb", "VALUEAUDIT_PAPER_DATA": paper_data},
                     tmp_path / "streamlit.log") as url:
        yield url


def test_import_then_compare_draws_the_chart(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.goto(server)
            button = page.get_by_role("button", name="Import the paper's published results")
            expect(button).to_be_visible(timeout=60_000)
            button.click()
            expect(page.get_by_text("new rows for", exact=False).first).to_be_visible(timeout=120_000)
            expect(page.locator(".stPlotlyChart").first).to_be_visible(timeout=120_000)  # the headline
            page.screenshot(path=str(tmp_path / "home.png"), full_page=True)

            page.goto(f"{server}/compare")
            plot = page.locator(".stPlotlyChart .js-plotly-plot").first
            expect(plot).to_be_visible(timeout=120_000)
            expect(plot.locator("svg.main-svg").first).to_be_attached(timeout=60_000)
            # Violins and points were drawn, not just an empty frame.
            page.wait_for_function(
                "() => document.querySelectorAll('.stPlotlyChart .js-plotly-plot .violinlayer path').length > 0",
                timeout=60_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            page.wait_for_timeout(1000)
            shot = tmp_path / "compare.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()


def test_browsing_while_a_job_runs_never_kills_it(server, tmp_path, paper_data, tiny_llama_rm):
    """Issue 12: start a scoring job on the Score page, open Compare, Home and Implicit
    reward in a second browser context while it runs; the job ends 'done' with every row
    stored, and no page shows an error. The job asks a third of the paper's prompts (an
    uploaded prompt file): long enough to browse three pages during it, a third of the CPU."""
    import duckdb
    import pandas as pd
    import yaml
    from playwright.sync_api import expect, sync_playwright
    words = pd.read_csv(paper_data / "corpora" / "dict_big2_nouns.csv", keep_default_na=False)["token_decoded"]
    paper = yaml.safe_load((paper_data / "config" / "prompts.yaml").read_text())  # id: text lines
    third = dict(list(paper.items())[::3])
    prompt_file = tmp_path / "third.yaml"
    prompt_file.write_text(yaml.safe_dump(third, allow_unicode=True), encoding="utf-8")
    expected = len(set(words)) * len(third)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            scorer = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            scorer.goto(server)
            scorer.get_by_role("button", name="Import the paper's published results").click()
            expect(scorer.get_by_text("new rows for", exact=False).first).to_be_visible(timeout=180_000)
            scorer.goto(f"{server}/score")
            box = scorer.get_by_label("…or another hub id / local folder")
            expect(box).to_be_visible(timeout=60_000)
            box.fill(str(tiny_llama_rm))
            box.press("Enter")
            scorer.get_by_text("Upload a prompt file", exact=True).first.click()
            upload = scorer.locator('[data-testid="stFileUploaderDropzoneInput"]').first
            expect(upload).to_be_attached(timeout=60_000)
            upload.set_input_files(str(prompt_file))
            expect(scorer.get_by_text(f"{len(third)} prompts", exact=False).first).to_be_visible(timeout=60_000)
            start = scorer.get_by_role("button", name="Start scoring")
            expect(start).to_be_enabled(timeout=60_000)
            start.click()
            expect(scorer.get_by_text("scoring", exact=False).first).to_be_visible(timeout=120_000)

            reader = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            for path in ("compare", "", "implicit_reward"):
                reader.goto(f"{server}/{path}")
                expect(reader.locator(".stPlotlyChart, [data-testid='stAlert']").first).to_be_visible(timeout=180_000)
                reader.wait_for_timeout(1500)
                text = reader.locator("[data-testid='stMain']").inner_text()
                assert reader.locator('[data-testid="stException"]').count() == 0, path
                assert "database error" not in text and "hit a problem" not in text, (path, text[:500])
            expect(scorer.get_by_text("· done", exact=False).first).to_be_visible(timeout=540_000)
            assert "failed" not in scorer.locator("[data-testid='stMain']").inner_text()
        finally:
            browser.close()
    # The server may still hold the file for a page run (a second or two, README: One database,
    # several processes): wait for it as any other process does, however busy the machine is.
    deadline = time.monotonic() + 120
    while True:
        try:
            with duckdb.connect(str(tmp_path / "browser.duckdb"), read_only=True) as con:
                n = con.execute("SELECT count(DISTINCT (prompt, response)) FROM scores s JOIN models m "
                                "USING (model_key) WHERE m.source <> 'published'").fetchall()[0][0]
            break
        except duckdb.IOException as e:
            if "lock" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert n == expected


def test_deep_link_first_keeps_sectioned_navigation(server):
    """A fresh server whose first visitor opens /compare must still run app.py's sectioned
    st.navigation (appkit._ensure_navigation), not Streamlit's flat legacy pages/ menu."""
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{server}/compare")
            nav = page.locator('[data-testid="stSidebarNav"]')
            expect(nav).to_be_visible(timeout=90_000)
            for section in ("Overview", "Data", "Analysis"):
                expect(nav.get_by_text(section, exact=True).first).to_be_visible(timeout=60_000)
            # The page titles come from app.py's st.Page titles, not from file names.
            expect(nav.get_by_text("Implicit reward", exact=True)).to_be_visible()
            assert "/compare" in page.url
            expect(page.get_by_role("heading", name="Compare", exact=False).first).to_be_visible(timeout=60_000)
        finally:
            browser.close()
