"""Issue 25 (medium): stored link and image injection. Anything a visitor typed or uploaded
(words, categories, corpus description, model names, prompt texts) is shown as plain text:
`core.escape` for markdown and plotly, checked by a real CommonMark renderer and on every
page of the dashboard with a hostile corpus (AppTest), and in the downloaded reports."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from core import escape
from core.store import Store
from tests import hostile
from tests.hostile import CATEGORIES, DESCRIPTION, EVIL, HOSTILE

ROOT = Path(__file__).resolve().parents[1]
COMMONMARK = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def rendered_text(markdown: str) -> str:
    """What a reader sees of a markdown paragraph: the rendered HTML's text."""
    out = COMMONMARK.render(markdown).strip()
    assert out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1, out
    assert "<" not in out[3:-4], f"markup from data: {out}"
    return html.unescape(out[3:-4])


# The two patterns Streamlit's markdown (remark-gfm, mdast-util-gfm-autolink-literal, as in
# Streamlit 1.67's StreamlitMarkdown bundle) turns into links in the text after parsing.
GFM_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.I | re.A)
GFM_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)", re.A)
TEXTS = HOSTILE + CATEGORIES + [DESCRIPTION, "\\*", "&amp;", "plain words", "mail me: x.y+z@evil.example",
                                "WWW.EVIL.EXAMPLE and HTTPS://EVIL.EXAMPLE"]


@pytest.mark.parametrize("text", TEXTS)
def test_markdown_escape_shows_exactly_the_characters(text):
    seen = rendered_text(escape.markdown(text))
    assert seen.replace(escape.WORD_JOINER, "") == " ".join(text.split("\n"))
    assert not GFM_URL.search(seen) and not GFM_EMAIL.search(seen), seen  # no bare URL or address left to link


def test_plotly_escape_leaves_no_tag_and_reads_back():
    for text in HOSTILE:
        got = escape.plotly(text)
        assert "<" not in got and ">" not in got
        assert html.unescape(got) == text  # plotly.js turns the entities back into the characters
    s = pd.Series(["<a>", 1, None])
    assert escape.plotly(s).tolist() == ["&lt;a&gt;", 1, None]
    assert escape.plotly(["&", "x"]) == ["&amp;", "x"] and escape.plotly(3) == 3


# -- every page with a hostile store ------------------------------------------------------
@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> Path:
    return hostile.build(tmp_path_factory.mktemp("hostile") / "hostile.duckdb")


PLAIN_TYPES = {"text", "code", "dataframe", "arrow_data_frame", "json", "table", "plotly_chart", "text_input",
               "text_area", "selectbox", "multiselect", "number_input", "download_button"}


def markdown_sources(at) -> list[tuple[str, str]]:
    """(element type, markdown source) of everything Streamlit renders as markdown: texts,
    captions, alerts, headings, widget labels and help, radio options."""
    out = []
    for node in at._tree:
        proto, kind = getattr(node, "proto", None), getattr(node, "type", "")
        if proto is None or not hasattr(proto, "ListFields"):
            continue
        for field, value in proto.ListFields():
            if field.name in ("label", "help") and isinstance(value, str):
                out.append((f"{kind}.{field.name}", value))
            elif field.name in ("body", "text") and isinstance(value, str) and kind not in PLAIN_TYPES:
                out.append((kind, value))
            elif field.name == "options" and kind == "radio":
                out += [(f"{kind}.option", str(v)) for v in value]
    return out


def plotly_strings(at) -> list[str]:
    strings = []

    def walk(x):
        if isinstance(x, str):
            strings.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    for chart in at.get("plotly_chart"):
        walk(json.loads(chart.proto.spec))
    return strings


def assert_plain(at, where: str) -> int:
    """No markdown element renders a link, image or emphasis from data, no figure holds a tag
    from data; returns how many hostile texts were seen (escaped), so a page that shows no
    data cannot pass for a safe one."""
    seen = 0
    for kind, src in markdown_sources(at):
        assert EVIL not in src, f"{where}: {kind} holds raw data markdown: {src[:200]!r}"
        out = COMMONMARK.render(src)
        assert not re.search(r"<(a|img)\b[^>]*" + re.escape(EVIL), out), f"{where}: {kind} renders {out[:200]}"
        assert not re.search(r"<(strong|em)>[^<]*boldx", out), f"{where}: {kind} renders emphasis from data"
        seen += src.count(EVIL.replace(".", "\\."))
    for s in plotly_strings(at):
        assert not re.search(r"<\s*(a|img)\b", s, re.I), f"{where}: a figure holds a tag: {s[:200]!r}"
        seen += s.count(EVIL)
    return seen


def _pick(at, key: str, value) -> None:
    widgets = [w for w in [*at.selectbox, *at.radio] if w.key == key]
    if widgets and value in widgets[0].options + [value]:
        try:
            widgets[0].set_value(value)
        except Exception:  # noqa: BLE001 - an option shown under another label
            widgets[0].select(value)
        at.run()


# Per page: (widget key, value) to choose so that the hostile data is on screen.
CHOICES = {
    "compare.py": [("cmp-corpus", "hostile"), ("cmp-unc", True)],
    "corpora.py": [("corpus-browse", "hostile")],
    "words.py": [("w-corpus", "hostile")],
    "paired.py": [("pair-corpus", "hostile")],
    "report.py": [("rep-corpus", "hostile")],
    "implicit_reward.py": [("ir-corpus", "hostile"), ("ir-f2-corpus", "hostile")],
}
PAGES = sorted(p.name for p in (ROOT / "pages").glob("*.py"))
# Pages that show the hostile data as text or in figures once chosen (Home reads Big Two; Models
# lists names in a table only).
SHOWS_DATA = {"compare.py", "corpora.py", "words.py", "paired.py", "report.py", "implicit_reward.py",
              "score.py"}


@pytest.mark.parametrize("page", PAGES)
def test_no_page_renders_markup_from_data(page, hostile_db, monkeypatch, paper_data):
    pytest.importorskip("streamlit")
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("VALUEAUDIT_DB", str(hostile_db))
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=180)
    at.run()
    seen = assert_plain(at, page)
    for key, value in CHOICES.get(page, []):
        if isinstance(value, bool):
            toggles = [t for t in [*at.toggle, *at.checkbox] if t.key == key]
            if toggles:
                toggles[0].set_value(value)
                at.run()
        else:
            _pick(at, key, value)
        assert not at.exception, (page, key, at.exception)
        seen += assert_plain(at, f"{page} after {key}")
    if page == "score.py":  # a visitor's prompt file with hostile ids and texts
        at.radio(key="score-prompts").set_value("Upload a prompt file").run()
        at.file_uploader(key="score-prompt-file").set_value(
            ("p.csv", f"prompt_id,prompt\nx,\"What is <a href=https://{EVIL}/q>best</a>?\"\n".encode(), "text/csv"))
        at.run()
        at.text_input(key="score-extra").set_value(f"[x](https://{EVIL}/typed)").run()
        seen += assert_plain(at, "score.py with a prompt file and a typed id")
    assert not at.exception, at.exception
    if page in SHOWS_DATA:
        assert seen > 0, f"{page} showed none of the hostile data: the check above proved nothing"


def test_report_and_audit_html_have_no_live_link_or_image_from_data(hostile_db, monkeypatch):
    """The downloaded reports: data escaped in text, tables and the embedded figures."""
    from core import analysis, audit, charts, corpora, headline, report, wording
    store = Store(hostile_db)
    corpus = corpora.resolve("hostile", store, files=False)
    result = analysis.figure1_from_store(store, corpus.words, "hostile", None, None, permutations=100, seed=0)
    med = pd.DataFrame(result.median_ranks)
    tests = wording.tests_table(result)
    figures = [("Mean rank by family", charts.family_dots_figure(med), "caption"),
               ("Median ranks", charts.compare_figure(med, tests, title=f"Median rank — {DESCRIPTION}"), "")]
    summary = headline.headline(result, None).text + "\n" + analysis.summary_text(result)
    doc = report.report_html(f"Value audit: {DESCRIPTION}", summary, figures, [("Median ranks", med)],
                             {"Corpus": DESCRIPTION}).decode()
    assert EVIL in doc  # the data is there ...
    assert not re.search(r"<(a|img)\b[^>]*" + re.escape(EVIL), doc, re.I)  # ... never as a live tag
    assert not re.search(r"\\u003c(a|img)\b", doc, re.I)  # nor as one inside the figures' JSON
    from core import ranks as _ranks  # noqa: F401 - the audit builds its own ranks
    from core import words as _words
    ranked = _words.ranked_words(store.scores(kind="rm"), corpus.words)
    ps = sorted(set(zip(ranked["prompt_id"], ranked["prompt"])))
    audit_doc = audit.build(store, "hostile", corpus.words, ranked, result, ps, method="bonferroni", reps=20,
                            seed=0, extra_figures=figures)
    audit_doc = audit_doc.decode() if isinstance(audit_doc, bytes) else audit_doc
    assert EVIL in audit_doc
    assert not re.search(r"<(a|img)\b[^>]*" + re.escape(EVIL), audit_doc, re.I)
    assert not re.search(r"\\u003c(a|img)\b", audit_doc, re.I)
