"""Issue 13 in a real browser against `streamlit run app.py`: a shared server (the default
mode) offers no remote-code opt-in, refuses a typed server path, offers no removal, and
never runs a model's own code (its marker file is never written); a local server still lets
the person at the machine opt in (the marker is written)."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.browser_server import ARGS, CHROMIUM, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")]


def remote_code_model(folder: Path, base: Path, marker: Path) -> Path:
    """A tiny RM whose config.json maps its class to a .py that writes `marker` when imported."""
    shutil.copytree(base, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForSequenceClassification": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('remote code ran')\n"
        "from transformers import LlamaForSequenceClassification\n\n\n"
        "class EvilModel(LlamaForSequenceClassification):\n    pass\n")
    return folder


@pytest.fixture()
def setup(tmp_path, tiny_llama_rm):
    ops = tmp_path / "operator-models"
    ops.mkdir()
    marker = tmp_path / "MARKER"
    evil = remote_code_model(ops / "evil-rm", tiny_llama_rm, marker)
    db = tmp_path / "web.duckdb"
    from core.store import Store
    s = Store(db)
    s.upsert_model("hub:x/y@main~float32", "x/y", "rm", "llama")
    s.save_corpus("mine", pd.DataFrame({"word": ["love", "power"], "category": ["C", "A"], "subcategory": ""}))
    return {"ops": ops, "marker": marker, "evil": evil, "db": db, "tmp": tmp_path, "plain": tiny_llama_rm}


def serve(setup, mode: str | None):
    """The app as an operator starts it: mode None = no VALUEAUDIT_MODE at all."""
    return running_app({"VALUEAUDIT_DB": setup["db"], "VALUEAUDIT_MODELS_DIR": setup["ops"],
                        "HF_MODULES_CACHE": setup["tmp"] / "hf-modules", "VALUEAUDIT_MODE": mode},
                       setup["tmp"] / f"streamlit-{mode}.log")


def type_into(page, label: str, text: str) -> None:
    box = page.get_by_label(label)
    box.fill(text)
    box.press("Enter")


def choose_model(page, name: str) -> None:
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Models").locator("input")
    box.click()
    box.fill(name)
    box.press("Enter")
    page.keyboard.press("Escape")


def test_shared_server_offers_no_remote_code_no_paths_no_removal(setup):
    from playwright.sync_api import expect, sync_playwright
    with serve(setup, None) as url:  # no VALUEAUDIT_MODE: the default must be shared
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{url}/score")
            expect(page.get_by_text("Safe loading only on this shared server")).to_be_visible(timeout=60_000)
            assert page.get_by_text("Run the Python code").count() == 0
            assert page.get_by_text("Allow pickle").count() == 0
            # A typed server path is refused, with the same words for an existing and a missing folder.
            for typed in (str(setup["plain"]), str(setup["tmp"] / "no-such-folder")):
                type_into(page, "…or another Hugging Face id", typed)
                expect(page.get_by_text("is not available on this server").first).to_be_visible(timeout=30_000)
            type_into(page, "…or another Hugging Face id", "")
            # The operator's remote-code model is listed by name; scoring it is refused before its code runs.
            choose_model(page, "evil-rm")
            page.get_by_role("button", name="Start scoring").click()
            expect(page.get_by_text("ships its own Python code").first).to_be_visible(timeout=120_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(setup["tmp"] / "shared-score.png"), full_page=True)
            assert not setup["marker"].exists()
            assert str(setup["ops"]) not in page.content()  # the operator's folder is never shown

            page.goto(f"{url}/models")
            expect(page.get_by_text("cannot be removed here")).to_be_visible(timeout=60_000)
            assert page.get_by_role("button", name="Remove").count() == 0
            type_into(page, "Hub id", str(setup["plain"]))
            page.get_by_role("button", name="Add model").click()
            expect(page.get_by_text("is not available on this server").first).to_be_visible(timeout=30_000)

            page.goto(f"{url}/corpora")
            sel = page.locator('[data-testid="stSelectbox"]').filter(has_text="Corpus").first
            expect(sel).to_be_visible(timeout=60_000)
            sel.click()
            page.get_by_role("option", name="mine").click()
            expect(page.get_by_text("2 distinct words")).to_be_visible(timeout=30_000)
            assert page.get_by_text("Delete this saved corpus").count() == 0
            browser.close()
    assert not setup["marker"].exists()


def test_local_server_still_lets_the_person_at_the_machine_opt_in(setup):
    from playwright.sync_api import expect, sync_playwright
    with serve(setup, "local") as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{url}/score")
            type_into(page, "…or another hub id / local folder", str(setup["evil"]))
            expect(page.get_by_role("button", name="Start scoring")).to_be_enabled(timeout=60_000)
            page.locator("summary").filter(has_text="Safe loading").click()
            box = page.get_by_text("Run the Python code shipped in")
            expect(box).to_be_visible(timeout=30_000)
            box.click()
            page.get_by_role("button", name="Start scoring").click()
            deadline = time.time() + 120
            while not setup["marker"].exists() and time.time() < deadline:
                time.sleep(0.5)
            page.screenshot(path=str(setup["tmp"] / "local-score.png"), full_page=True)
            browser.close()
    assert setup["marker"].read_text() == "remote code ran"
