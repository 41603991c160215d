"""Issue 25 (high): no text a visitor types on a shared server reaches the server's file
system. Every text input of every page (found in the source, so a new one cannot be
forgotten) is filled with a server folder that holds a CSV in the paper's log-prob format,
then with a missing path, and every button of the page is pressed. Proved for each: no file
or folder under either path is opened, listed or even looked up (an audit hook and a stat
spy), nothing from the file is stored or shown, and the page reads the same for the
existing and the missing path (no existence oracle)."""
from __future__ import annotations

import ast
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import logprobs, prompts, settings  # noqa: E402
from core.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "app.py", ROOT / "appkit.py", ROOT / "audit_ui.py", *sorted((ROOT / "pages").glob("*.py"))]
TEXT_WIDGETS = ("text_input", "text_area", "chat_input")
# Inputs a shared server never draws, and why; the test checks they are absent there.
LOCAL_ONLY = {"ir-folder": "a log-prob folder on the server (settings.allow_paths)",
              "score-ray-address": "a Ray cluster address (no cluster choice for visitors)"}
SECRET = "SECRETAPIKEY7391"
CSV_NAME = "secretorg--secret-model.csv"

# -- watching the file system -------------------------------------------------------------
WATCHED: list[str] = []   # paths no access may touch (set while a test runs)
TOUCHED: list[str] = []   # what touched them


def _hit(args) -> str | None:
    for a in args:
        if isinstance(a, (str, bytes, os.PathLike)):
            s = os.fsdecode(a) if not isinstance(a, str) else a
            if any(w in s for w in WATCHED):
                return s
    return None


def _audit(event: str, args) -> None:
    if WATCHED and (event == "open" or event.startswith(("os.", "shutil.", "glob."))):
        if (s := _hit(args)) is not None:
            TOUCHED.append(f"{event}: {s}")


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one acts only while WATCHED is set


@pytest.fixture()
def watch(monkeypatch):
    """Record every open/listdir/scandir (audit events) and stat/lstat/access (no audit
    event: spied) of a watched path."""
    for name in ("stat", "lstat", "access"):
        real = getattr(os, name)

        def spy(path, *a, _real=real, _name=name, **k):
            if WATCHED and (s := _hit([path])) is not None:
                TOUCHED.append(f"os.{_name}: {s}")
            return _real(path, *a, **k)
        monkeypatch.setattr(os, name, spy)
    TOUCHED.clear()
    yield WATCHED
    WATCHED.clear()


# -- the pages' text inputs, from the source ----------------------------------------------
def text_inputs_in_source() -> dict[str, str]:
    """key -> file of every st.text_input / text_area / chat_input call in the app's code."""
    found, unkeyed = {}, []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in TEXT_WIDGETS:
                key = next((k.value for k in node.keywords if k.arg == "key"), None)
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    found[key.value] = path.name
                else:
                    unkeyed.append(f"{path.name}:{node.lineno}")
    assert not unkeyed, f"give these text inputs a literal key= so this test can find them: {unkeyed}"
    return found


# -- a shared server with something on every page -----------------------------------------
@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory) -> Path:
    """A Llama and a Gemma LM with whole-vocabulary log-probs (Implicit reward draws its
    inputs), an RM with scores and a saved corpus."""
    db = tmp_path_factory.mktemp("inputs") / "seed.duckdb"
    store = Store(db)
    words = ["love", "freedom", "power", "family"]
    rng = np.random.default_rng(0)
    plist = prompts.paper_prompts()[:2]
    for name, fam in (("meta-llama/Llama-3.2-3B-Instruct", "llama"), ("google/gemma-2-2b-it", "gemma")):
        key = f"hub:{name}@x~float32"
        store.upsert_model(key, name, "lm", fam)
        logprobs.put_vocab(store, key, pd.DataFrame({"token_id": range(4), "token_name": words,
                                                     "token_decoded": words}))
        for p in plist:
            logprobs.put_prompt(store, key, p, np.arange(4), -rng.uniform(1, 5, 4))
    store.upsert_model("hub:org/rm@x~float32", "org/rm", "rm", "llama")
    store.add_scores("hub:org/rm@x~float32", "rm", pd.DataFrame(
        [{"prompt_id": p.prompt_id, "prompt": p.text, "response": w, "value": float(i)}
         for p in plist for i, w in enumerate(words)]))
    store.save_corpus("mine", pd.DataFrame({"word": words, "category": ["C", "A", "A", "C"], "subcategory": ""}))
    return db


@pytest.fixture()
def server_paths(tmp_path) -> tuple[Path, Path]:
    """(a folder holding a CSV in the paper's log-prob format, a path that does not exist)."""
    folder = tmp_path / "server-folder"
    folder.mkdir()
    (folder / CSV_NAME).write_text(f"token_id,token_name,token_decoded,greatest_ever_one\n"
                                   f"0,{SECRET},{SECRET},-1.5\n1,love,love,-2.5\n")
    return folder, tmp_path / "no-such-folder"


def _reveal(at: AppTest, page: str) -> None:
    """What a visitor does first on this page to reach all its inputs."""
    if page == "corpora.py":  # the save form appears after an upload
        at.file_uploader(key="corpus-upload").set_value(("mine2.csv", b"word,category\nhope,A\ntrust,C\n",
                                                          "text/csv"))
        at.run()


def _page_text(at: AppTest) -> list[str]:
    """Everything the page sends to the browser, element by element."""
    return [str(node.proto) for node in at._tree if getattr(node, "proto", None) is not None]


def _store_dump(db: Path) -> str:
    s = Store(db)
    tables = s.query("SELECT table_name FROM information_schema.tables")["table_name"]
    return "\n".join(s.query(f'SELECT * FROM "{t}"').to_csv() for t in tables)


def _visit(page: str, db: Path, key: str | None = None, typed: str | None = None) -> tuple[AppTest, list[str]]:
    """Open the page, type into one input, press every button; the page's text after each step."""
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=120)
    at.run()
    _reveal(at, page)
    shown = _page_text(at)
    if key is None:
        return at, shown
    widget = next(w for w in [*at.text_input, *at.text_area] if w.key == key)
    widget.set_value(typed)
    at.run()
    shown += _page_text(at)
    labels = [b.label for b in at.button if not b.disabled]
    for label in labels:
        button = next((b for b in at.button if b.label == label and not b.disabled), None)
        if button is None:
            continue
        button.click()
        at.run()
        shown += _page_text(at)
        assert not at.exception, (page, key, label, at.exception)
    return at, shown


PAGES = sorted(p.name for p in (ROOT / "pages").glob("*.py"))


@pytest.fixture()
def shared(monkeypatch, paper_data):
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.delenv("VALUEAUDIT_MODELS_DIR", raising=False)
    import streamlit as st
    st.cache_data.clear()


@pytest.mark.parametrize("page", PAGES)
def test_no_text_a_visitor_types_reaches_the_file_system(page, shared, seeded_db, server_paths, tmp_path,
                                                         monkeypatch, watch):
    folder, missing = server_paths
    in_source = {k for k, f in text_inputs_in_source().items() if f == page}
    db0 = tmp_path / "page.duckdb"
    shutil.copy(seeded_db, db0)
    monkeypatch.setenv("VALUEAUDIT_DB", str(db0))
    at, _ = _visit(page, db0)
    drawn = {w.key for w in [*at.text_input, *at.text_area]}
    assert not drawn & set(LOCAL_ONLY), f"{page} draws a local-only input on a shared server"
    assert in_source - set(LOCAL_ONLY) <= drawn, f"{page}: inputs not reached by this test: {in_source - drawn}"
    for key in sorted(drawn):
        seen = {}
        for label, typed in (("folder", folder), ("file", folder / CSV_NAME), ("missing", missing)):
            db = tmp_path / f"{key}-{label}.duckdb"
            shutil.copy(seeded_db, db)
            monkeypatch.setenv("VALUEAUDIT_DB", str(db))
            WATCHED[:] = [str(folder), str(missing)]
            _, shown = _visit(page, db, key, str(typed))
            WATCHED.clear()
            assert TOUCHED == [], f"{page} / {key}: the typed path reached the file system: {TOUCHED[:3]}"
            text = "\n".join(shown)
            assert SECRET not in text and CSV_NAME not in text.replace(str(typed), ""), (page, key, label)
            after = _store_dump(db)
            assert SECRET not in after and CSV_NAME not in after.replace(str(typed), ""), (page, key, label)
            # A path the page echoes back (maybe cut short) is the visitor's own text: compare without it.
            plain = text.replace("\\", "")  # escapes that core.escape.markdown added to the echoed path
            seen[label] = re.sub(re.escape(str(tmp_path)) + r"[^\s'\"]*", "<TYPED>", plain).replace(db.name, "<DB>")
        assert seen["folder"] == seen["missing"] == seen["file"], \
            f"{page} / {key}: an existing and a missing path read differently"


def test_every_text_input_is_known(shared):
    """A text input added anywhere in the app is either reached above or listed as local-only."""
    keys = text_inputs_in_source()
    assert set(LOCAL_ONLY) <= set(keys), f"LOCAL_ONLY names inputs that no longer exist: {set(LOCAL_ONLY) - set(keys)}"
    assert {"ir-folder", "score-extra", "add-name", "add-revision", "ir-f3-words", "corpus-q", "corpus-name",
            "corpus-desc"} <= set(keys)


def test_the_one_visitor_rule_for_server_paths(monkeypatch, server_paths, watch):
    """settings.visitor_path: the same refusal for an existing and a missing path, before any look-up."""
    folder, missing = server_paths
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    WATCHED[:] = [str(folder), str(missing)]
    msgs = set()
    for p in (folder, folder / CSV_NAME, missing):
        with pytest.raises(settings.SettingsError) as e:
            settings.visitor_path(str(p))
        msgs.add(str(e.value))
    WATCHED.clear()
    assert TOUCHED == [] and len(msgs) == 1 and str(folder) not in msgs.pop()
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    assert settings.visitor_path(f" {folder} ") == folder
