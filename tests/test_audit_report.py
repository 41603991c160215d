"""The audit report: findings with intervals, charts, checks and every provenance field, and it
opens offline in Chromium (no request leaves file://)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from core import analysis, audit, checks, models, prompts, provenance, scoring
from core import words as _words
from core.store import Store

CHROMIUM = "/usr/bin/chromium"
WORDS = pd.DataFrame({"word": ["love", "family", "kindness", "truth", "honesty", "warmth",
                               "freedom", "power", "success", "wisdom", "ambition", "courage"],
                      "category": ["Communion"] * 6 + ["Agency"] * 6})


@pytest.fixture(scope="module")
def scored(tiny_llama_rm, tiny_gemma_rm, tmp_path_factory):
    db = tmp_path_factory.mktemp("audit") / "a.duckdb"
    store = Store(db)
    ps = [p for p in prompts.paper_prompts() if p.prompt_id.endswith("_ever_one")]
    for path in (tiny_llama_rm, tiny_gemma_rm):
        loaded = models.load(str(path), "rm", device="cpu")
        scoring.run(store, loaded, ps, list(WORDS["word"]), batch_size=8)
        checks.run_checks(store, loaded, ps, list(WORDS["word"]), "mini", "cached", 8)
    return store, ps


def test_report_carries_every_provenance_field_and_opens_offline(scored, tmp_path):
    store, ps = scored
    sc = store.scores(kind="rm")
    ranks = _words.ranked_words(sc, WORDS)
    result = analysis.figure1(sc, WORDS, "mini", permutations=200, bootstrap=100)
    doc = audit.build(store, "mini", WORDS, ranks, result, ps, method="holm", reps=200, seed=1)
    text = doc.decode()
    assert "<script src" not in text and "<link rel" not in text  # nothing fetched from elsewhere
    m = store.models()
    runs = checks.latest(store)
    corpus_sha = hashlib.sha256("\n".join(sorted(f"{w}\t{c}" for w, c in zip(WORDS.word, WORDS.category)))
                                .encode()).hexdigest()
    prompts_sha = hashlib.sha256("\n".join(sorted(f"{p.prompt_id}\t{p.text}" for p in ps)).encode()).hexdigest()
    out = tmp_path / "audit.html"
    out.write_bytes(doc)
    if not Path(CHROMIUM).exists():
        pytest.skip("needs /usr/bin/chromium")
    from playwright.sync_api import sync_playwright
    seen = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        ctx = browser.new_context(offline=True, viewport={"width": 1440, "height": 900})
        page = ctx.new_page()
        page.on("request", lambda r: seen.append(r.url))
        page.goto(out.as_uri())
        page.wait_for_function("window.Plotly !== undefined && document.querySelectorAll('.main-svg').length > 0",
                               timeout=30000)
        body = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "audit.png"), full_page=False)
        n_plots = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        browser.close()
    assert all(u.startswith(("file://", "data:", "blob:")) for u in seen), seen
    assert n_plots >= 2
    # Findings in plain sentences with intervals, the correction named.
    assert "places higher" in body and "95% interval" in body and "Holm-adjusted" in body
    assert "Which models prefer Agency words most, on positive prompts" in body  # as Figure 1 words it
    # Every provenance field.
    for key in m["model_key"]:
        assert key in body  # model id with resolved identity
        assert provenance.weights_hash_of(key) in body  # local folders: the weight hash
    assert corpus_sha in body and prompts_sha in body
    for field in ("cached", "float32", "cpu"):  # engine, dtype, device of the recorded run
        assert field in body
    import torch
    import transformers
    assert f"torch {torch.__version__}" in body and f"transformers {transformers.__version__}" in body
    assert provenance.app_commit() in body and len(provenance.app_commit()) >= 40
    assert set(runs["status"]) == {"passed"} and "chat-template text" in body


def test_a_shared_servers_report_names_no_server_path(scored, tiny_llama_rm, tiny_gemma_rm):
    """The Report page builds a visitor's audit report with name=appkit.public_name: on a shared
    server every model (context, charts, checks, provenance) by its folder's last part, the
    weight hash kept; the store is still read with the real keys."""
    from core import report
    from tests.support import unescape_slashes
    store, ps = scored
    sc = store.scores(kind="rm")
    result = analysis.figure1(sc, WORDS, "mini", permutations=0, bootstrap=0)
    doc = audit.build(store, "mini", WORDS, _words.ranked_words(sc, WORDS), result, ps, reps=50, seed=1,
                      name=report.public_model_name)
    text = unescape_slashes(doc.decode())
    assert str(tiny_llama_rm.parent) not in text and str(tiny_gemma_rm.parent) not in text
    for key in store.models()["model_key"]:  # each model still carries its identity: folder name and weight hash
        assert report.public_model_name(key) in text and provenance.weights_hash_of(key) in text
    assert text.count("passed") >= 2 and "chat-template text" in text  # the checks were found under the real keys
