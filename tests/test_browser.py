"""End to end in a real browser: `streamlit run app.py` on a free port against a fresh
database, click the import of the published results on Home, open Compare, check that
plotly drew the chart, and keep a screenshot under the test's temp folder."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("streamlit did not answer its health check")


@pytest.fixture()
def server(tmp_path, paper_data):
    port = _free_port()
    env = {**os.environ, "VALUEAUDIT_DB": str(tmp_path / "browser.duckdb"),
           "VALUEAUDIT_PAPER_DATA": str(paper_data), "HF_HUB_OFFLINE": "1"}
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


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
