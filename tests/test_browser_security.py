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

from tests.browser_server import ARGS, CHROMIUM, choose_option, running_app

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
            box = page.get_by_text("Run the Python code")  # "… in the folder …" for a local folder
            expect(box).to_be_visible(timeout=30_000)
            box.click()
            page.get_by_role("button", name="Start scoring").click()
            deadline = time.time() + 120
            while not setup["marker"].exists() and time.time() < deadline:
                time.sleep(0.5)
            page.screenshot(path=str(setup["tmp"] / "local-score.png"), full_page=True)
            browser.close()
    assert setup["marker"].read_text() == "remote code ran"


def test_shared_implicit_reward_import_reads_no_server_folder(tmp_path):
    """Issue 25 (high): on a shared server, a server folder holding a CSV in the paper's
    log-prob format cannot be imported from the Implicit reward page: no folder box, no
    import button; typed into the page's one text box it stores nothing and names no file.
    A screenshot at 768 px."""
    import numpy as np
    from playwright.sync_api import expect, sync_playwright

    from core import logprobs, prompts
    from core.store import Store
    folder = tmp_path / "server-folder"
    folder.mkdir()
    (folder / "secretorg--secret-model.csv").write_text(
        "token_id,token_name,token_decoded,greatest_ever_one\n0,SECRETAPIKEY,SECRETAPIKEY,-1.5\n")
    db = tmp_path / "ir.duckdb"
    store = Store(db)
    for name, fam in (("meta-llama/Llama-3.2-3B-Instruct", "llama"), ("google/gemma-2-2b-it", "gemma")):
        key = f"hub:{name}@x~float32"
        store.upsert_model(key, name, "lm", fam)
        logprobs.put_vocab(store, key, pd.DataFrame({"token_id": [0, 1], "token_name": ["love", "power"],
                                                     "token_decoded": ["love", "power"]}))
        logprobs.put_prompt(store, key, prompts.paper_prompts()[0], np.arange(2), np.array([-1.0, -2.0]))
    n_models = len(store.models())
    with running_app({"VALUEAUDIT_DB": db, "VALUEAUDIT_MODE": None}, tmp_path / "streamlit-ir.log") as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for width in (768,):  # the narrow layout, where the folded expander and tabs must still hold
                page = browser.new_page(viewport={"width": width, "height": 1000})
                page.goto(f"{url}/implicit_reward")
                summary = page.locator("summary").filter(has_text="Import log-probabilities")
                expect(summary).to_be_visible(timeout=60_000)
                summary.click()
                expect(page.get_by_text("importing a folder on the server is for the operator")).to_be_visible(
                    timeout=30_000)
                assert page.get_by_label("…or a local folder of <org>--<name>.csv files").count() == 0
                assert page.get_by_role("button", name="Import folder").count() == 0
                assert page.get_by_role("button", name="Download and import").count() == 0
                page.get_by_role("tab", name="Figure 3 · chosen words").click()
                boxes = page.locator('[data-testid="stTextInput"] input')
                expect(boxes.first).to_be_visible(timeout=30_000)  # Figure 3's words: the page's one text box
                for i in range(boxes.count()):
                    boxes.nth(i).fill(str(folder))
                    boxes.nth(i).press("Enter")
                page.wait_for_timeout(3000)
                page.screenshot(path=str(tmp_path / f"shared-implicit-{width}.png"), full_page=True)
                html = page.content()
                assert "secretorg" not in html and "SECRETAPIKEY" not in html
                assert page.locator('[data-testid="stException"]').count() == 0
                page.close()
            browser.close()
    after = Store(db)
    assert len(after.models()) == n_models
    assert "SECRETAPIKEY" not in after.query("SELECT * FROM vocab").to_csv()


def test_hostile_data_is_plain_text_in_a_real_browser(tmp_path):
    """Issue 25 (medium): a corpus whose words, categories and description hold links, images
    and emphasis, and models named likewise: on Corpora, Compare and Words (shared mode; Compare
    also at 768 px, its sidebar folded) the browser shows the characters, builds no link or image
    from them, and never requests anything from the planted host."""
    from playwright.sync_api import expect, sync_playwright

    from tests import hostile
    db = hostile.build(tmp_path / "hostile.duckdb")
    requests = []
    with running_app({"VALUEAUDIT_DB": db, "VALUEAUDIT_MODE": None}, tmp_path / "streamlit-hostile.log") as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for width, visits in ((1440, ("corpora", "compare", "words")), (768, ("compare",))):
                page = browser.new_page(viewport={"width": width, "height": 1100})
                page.on("request", lambda r: requests.append(r.url))
                for path, picker, ready in (("corpora", "Corpus", "Log in again"),
                                            ("compare", "Corpus", "Median rank of each category"),
                                            ("words", "Corpus", "Optimal and pessimal words")):
                    if path not in visits:
                        continue
                    page.goto(f"{url}/{path}")
                    sel = page.locator('[data-testid="stSelectbox"]').filter(has_text=picker).first
                    expect(sel).to_be_attached(timeout=60_000)
                    if width < 1000 and path == "compare":  # its picker is in the sidebar, folded when narrow
                        page.locator('[data-testid="stExpandSidebarButton"]').click()
                    choose_option(page, sel, "hostile")
                    if width < 1000 and path == "compare":
                        page.keyboard.press("Escape")
                    expect(page.get_by_text(ready).first).to_be_attached(timeout=120_000)
                    page.wait_for_timeout(2500)  # plotly draws after the page
                    page.screenshot(path=str(tmp_path / f"hostile-{path}-{width}.png"), full_page=True)
                    assert page.locator('[data-testid="stException"]').count() == 0
                    assert page.locator(f'a[href*="{hostile.EVIL}"]').count() == 0, path
                    assert page.locator(f'img[src*="{hostile.EVIL}"]').count() == 0, path
                    assert page.locator("svg a, svg image").count() == 0, path  # plotly builds links in svg
                    assert page.locator("strong", has_text="boldx").count() == 0, path
                    if path == "corpora":  # the description reads as typed (invisible word joiners aside)
                        # markdown or plain text (st.text), whichever the page uses: the characters must read as typed
                        shown = page.locator('[data-testid="stMarkdownContainer"], [data-testid="stText"]').filter(
                            has_text="Log in again")
                        assert hostile.DESCRIPTION in shown.first.inner_text().replace("\u2060", "")
                page.close()
            browser.close()
    assert not [u for u in requests if hostile.EVIL in u]
