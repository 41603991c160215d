"""Take the README's screenshots (1440 px wide, from a 900 px tall window grown to show
the page's top 2,400 px; Debian's Chromium) of a running dashboard.

Usage: streamlit run app.py --server.port 8599 (with the published results imported), then
    python docs/screenshots/take.py http://127.0.0.1:8599
PNGs are reduced to a 256-colour palette so they stay small."""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
MAX_H = 2400  # px: the top of a long page (the report is taller)
SHOTS = [("home", "", None), ("compare-big2", "compare", None), ("compare-mfd2", "compare", "MFD 2.0"),
         ("report", "report", None)]


def settle(page) -> None:
    """Wait until the script has finished and its charts (or its empty-state note) are drawn."""
    page.wait_for_timeout(1500)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=240_000)
    page.locator(".stPlotlyChart .main-svg, [data-testid='stAlert']").first.wait_for(timeout=240_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=240_000)
    page.wait_for_timeout(3000)


def pick_corpus(page, corpus: str) -> None:
    """Choose a corpus in the sidebar's Corpus select box."""
    box = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first
    box.click()
    page.get_by_role("option", name=corpus, exact=False).first.click()
    settle(page)


def main(url: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        for name, path, corpus in SHOTS:
            page.goto(f"{url}/{path}")
            settle(page)
            if corpus:
                pick_corpus(page, corpus)
            png = OUT / f"{name}.png"
            height = min(page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"), MAX_H)
            page.set_viewport_size({"width": 1440, "height": max(900, height)})
            page.wait_for_timeout(1500)
            page.screenshot(path=str(png))
            page.set_viewport_size({"width": 1440, "height": 900})
            Image.open(png).convert("RGB").quantize(256).save(png, optimize=True)
            print(png, png.stat().st_size)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8599")
