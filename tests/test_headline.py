"""The one story (core/headline.py): the paper's finding, the stricter analysis's and what it
means — the same sentences in the app (Home, Compare, Report), the reports and the CLI; and
`analyze --uncertainty --json` on the published Big Two scores against R (crossed model) and
the issue's checks (intervals resample models and agree with their p)."""
from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest

from core import headline, uncertainty
from tests.conftest import PAPER_DATA
from tests.support import assert_crossed_equals_r, cli, run_cli, shown

FM = [{"framing": "positive", "category": c, "family": f, "mean_rank": m}
      for c, f, m in (("Agency", "Gemma", 132.5), ("Agency", "Llama", 128.3),
                      ("Communion", "Gemma", 131.1), ("Communion", "Llama", 135.3),
                      ("Care", "Gemma", 20.0), ("Care", "Llama", 21.0))]
TESTS = [{"framing": "positive", "category": "Agency", "welch_p_bonferroni": 0.002},
         {"framing": "positive", "category": "Communion", "welch_p_bonferroni": 0.004},
         {"framing": "positive", "category": "Care", "welch_p_bonferroni": 0.4},
         {"framing": "negative", "category": "Agency", "welch_p_bonferroni": 0.01}]
MED = [{"model": m, "family": f, "prompt_id": "p1", "median_rank": 1.0}
       for m, f in (("g1", "Gemma"), ("g2", "Gemma"), ("l1", "Llama"), ("l2", "Llama"), ("l3", "Llama"))]
RESULT = {"family_means": FM, "family_tests": TESTS, "median_ranks": MED}


def _gaps(p_adjusted: list[float]) -> pd.DataFrame:
    rows = [{"framing": "positive", "category": c, "family_a": "Gemma", "family_b": "Llama", "gap": -4.0,
             "ci_low": -9.0 if pa >= 0.05 else -9.0, "ci_high": 2.0 if pa >= 0.05 else -1.0,
             "p": pa / 4, "p_adjusted": pa, "correction": "Holm", "n_models_a": 2, "n_models_b": 3}
            for c, pa in zip(("Agency", "Communion", "Care", "Loyalty"), p_adjusted)]
    return pd.DataFrame(rows)


def test_the_paper_sentence_names_each_family_s_categories_and_the_model_counts():
    h = headline.headline(RESULT, None)
    assert h.paper == ("The paper's analysis applied to the 2 Gemma-based and 3 Llama-based reward models "
                       "(one median rank per model and prompt; Welch tests, Bonferroni-corrected over the 4 panels), "
                       "finds that on positive prompts Gemma-based models rank Communion words 4.2 places higher "
                       "than Llama-based ones, and Llama-based models rank Agency words 4.2 places higher than "
                       "Gemma-based ones; its tests give p < 0.05 on 3 of 4 panels.")
    assert h.stricter == "" and h.meaning == ""


def _paper_result(models: list[str], published: list[str], prompt_ids: list[str]) -> dict:
    from core.models import REGISTRY
    fam = {e.name: e.family for e in REGISTRY}
    med = [{"model": m, "family": "Gemma" if "emma" in fam.get(m, m) else "Llama", "prompt_id": p, "median_rank": 1.0}
           for m in models for p in prompt_ids]
    return {**RESULT, "median_ranks": med, "models_used": models, "models_published": published}


def test_reproduced_exactly_only_for_exactly_the_paper_s_published_models_and_prompts():
    """'Reproduced exactly' is said only when the models used are the paper's ten published
    runs on its 54 prompts; with a user's own models in it is 'the paper's analysis applied to
    these N models (k of them yours)'; a subset of the paper's models or prompts is not called
    a reproduction either."""
    from core import prompts
    from core.models import REGISTRY
    paper = sorted(e.name for e in REGISTRY if e.kind == "rm")
    ids = [p.prompt_id for p in prompts.paper_prompts()]
    exact = headline.headline(_paper_result(paper, paper, ids), None).paper
    assert exact.startswith("The paper's analysis of the 4 Gemma-based and 6 Llama-based reward models, reproduced "
                            "exactly (one median rank per model and prompt;")
    mine = headline.headline(_paper_result(paper + ["my-llama-rm", "my-gemma-rm"], paper, ids), None).paper
    assert mine.startswith("The paper's analysis applied to these 12 reward models, 2 of them yours (5 Gemma-based "
                           "and 7 Llama-based ones; one median rank per model and prompt;")
    some = headline.headline(_paper_result(paper[:7], paper[:7], ids), None).paper
    assert some.startswith("The paper's analysis applied to these 7 reward models, all from the paper's published "
                           "scores (")
    fewer = headline.headline(_paper_result(paper, paper, ids[:20]), None).paper
    assert fewer.startswith("The paper's analysis applied to these 10 reward models on 20 of its 54 prompts, all "
                            "from the paper's published scores (4 Gemma-based and 6 Llama-based ones;")
    assert all("reproduced exactly" not in s for s in (mine, some, fewer))


@pytest.mark.parametrize("p_adjusted, meaning", [
    ([0.6, 0.9, 1.0, 1.0], "The direction matches the paper; with 2 Gemma and 3 Llama models these gaps could "
                           "still be chance."),
    ([0.01, 0.02, 0.03, 0.04], "Both analyses agree: even treating the 2 Gemma and 3 Llama models and the words "
                               "as samples, these gaps are larger than chance would plausibly give."),
    ([0.01, 0.5, 1.0, 1.0], "The direction matches the paper; with 2 Gemma and 3 Llama models only the gap for "
                            "Agency on positive prompts is larger than chance would plausibly give."),
])
def test_the_meaning_follows_the_stricter_analysis_and_never_says_significant(p_adjusted, meaning):
    strict = headline.Stricter(_gaps(p_adjusted), {}, {}, 10_000, 0)
    h = headline.headline(RESULT, strict)
    assert h.meaning == meaning
    assert all("significant" not in s.lower() for s in h.sentences)
    assert "2 Gemma and 3 Llama" in h.meaning  # the model counts wherever a family claim is made
    again = headline.headline(json.loads(json.dumps(RESULT)), json.loads(json.dumps(strict.to_json())))
    assert again == h  # a result saved as JSON renders the same text


def test_the_stricter_sentence_names_its_rule():
    """Issue 22's reviewer: the verdict must say what 'clearly different' means and how the
    models enter it (a t test with Welch–Satterthwaite df over 4 and 6 models, not a bootstrap
    that draws them, which is too narrow with so few)."""
    h = headline.headline(RESULT, headline.Stricter(_gaps([0.6, 0.9, 1.0, 1.0]), {}, {}, 10_000, 0))
    assert "each family gap tested with a t test that adds how much the models of each family differ among " \
           "themselves, read with Welch–Satterthwaite degrees of freedom" in h.stricter
    assert "clearly different from zero (that is, with a Holm-adjusted p below 0.05)" in h.stricter
    assert "bootstrap draws of models" not in h.stricter


def test_a_family_of_one_model_is_said_to_be_untestable():
    gaps = _gaps([0.6, 0.9, 1.0, 1.0]).assign(ci_low=np.nan, ci_high=np.nan, p=np.nan, p_adjusted=np.nan,
                                              n_models_b=1)
    h = headline.headline(RESULT, headline.Stricter(gaps, {}, {}, 10_000, 0))
    assert "cannot test the 4 family gaps: a family has a single model here" in h.stricter
    assert "nan" not in h.text.lower() and "could still be chance" in h.meaning
    again = headline.headline(json.loads(json.dumps(RESULT)),
                              json.loads(json.dumps(headline.Stricter(gaps, {}, {}, 10_000, 0).to_json())))
    assert again == h


def test_a_third_family_is_compared_with_the_reference_not_dropped():
    """A user's Qwen-based RM beside the paper's: the paper's tests compare each family with
    Gemma (8 tests over 4 panels); the sentences name every comparison and count tests as
    tests; each finding sits beside the paper's test of the same two families."""
    from core import audit
    means = (("Agency", "Gemma", 132.5), ("Agency", "Llama", 128.3), ("Agency", "Qwen", 140.0),
             ("Communion", "Gemma", 131.1), ("Communion", "Llama", 135.3), ("Communion", "Qwen", 125.0))
    fm = [{"framing": fr, "category": c, "family": f, "mean_rank": m}
          for fr in ("positive", "negative") for c, f, m in means]
    tests = [{"framing": fr, "category": c, "comparison": f"{f} vs Gemma", "welch_p": p / 8, "welch_p_bonferroni": p}
             for fr in ("positive", "negative") for c in ("Agency", "Communion")
             for f, p in (("Llama", 0.01 if fr == "positive" else 0.5), ("Qwen", 0.02 if c == "Agency" else 0.6))]
    med = MED + [{"model": m, "family": "Qwen", "prompt_id": "p1", "median_rank": 1.0} for m in ("q1", "q2")]
    res = {"family_means": fm, "family_tests": tests, "median_ranks": med}
    h = headline.headline(res, None)
    assert "Bonferroni-corrected over the 8 tests (4 panels, each family against Gemma)" in h.paper
    assert "Llama-based models rank Agency words 4.2 places higher than Gemma-based ones" in h.paper
    assert "Gemma-based models rank Agency words 7.5 places higher than Qwen-based ones" in h.paper
    assert "Qwen-based models rank Communion words" not in h.paper  # p = 0.6
    assert h.paper.endswith("its tests give p < 0.05 on 4 of 8 tests.")
    gaps = pd.DataFrame([{"framing": fr, "category": c, "family_a": "Gemma", "family_b": f, "gap": 1.0,
                          "ci_low": -2.0 if f == "Llama" else 0.5, "ci_high": 3.0, "p": 0.5 if f == "Llama" else 0.001,
                          "p_adjusted": 1.0 if f == "Llama" else 0.008, "correction": "Holm", "n_models_a": 2,
                          "n_models_b": {"Llama": 3, "Qwen": 2}[f], "digits": 1, "n_prompts_same_sign": 1,
                          "n_prompts": 1, "reps": 1000, "level": 0.95}
                         for fr in ("positive", "negative") for c in ("Agency", "Communion")
                         for f in ("Llama", "Qwen")])
    h = headline.headline(res, headline.Stricter(gaps, {}, {}, 1000, 0))
    assert "finds 4 of the 8 family gaps (each family against Gemma) clearly different from zero" in h.stricter
    assert "Agency words on positive prompts (Qwen vs Gemma)" in h.stricter
    assert "2 Gemma, 3 Llama and 2 Qwen models" in h.meaning
    t = pd.DataFrame(tests).assign(p_adjusted=[t["welch_p_bonferroni"] for t in tests], stars="")
    for g, s in zip(gaps.itertuples(), audit.findings(gaps, t, "bonferroni")):
        want = next(x["welch_p_bonferroni"] for x in tests if (x["framing"], x["category"], x["comparison"])
                    == (g.framing, g.category, f"{g.family_b} vs Gemma"))
        assert s.endswith(f"gives {uncertainty.adjusted_p_text(want, 'Bonferroni')} ().")


@pytest.fixture(scope="module")
def cli_json(big2_store):
    store, _ = big2_store
    proc = cli("analyze", "--corpus", "big2-nouns", "--db", store.path, "--uncertainty", "--json")
    return json.loads(proc.stdout)


@pytest.mark.r_reference("crossed_big2.json")  # skipped without it, except under CI (conftest)
def test_analyze_uncertainty_json_crossed_terms_equal_r(cli_json):
    ref = json.loads((PAPER_DATA / "reference" / "crossed_big2.json").read_text())
    assert_crossed_equals_r(cli_json["crossed"], ref)
    assert {"term", "estimate", "se", "df", "p"} <= set(cli_json["crossed"]["terms"][-1])


def test_analyze_uncertainty_json_family_gaps_resample_models_and_agree_with_their_p(cli_json):
    gaps = pd.DataFrame(cli_json["family_gaps"])
    assert len(gaps) == 4 and (gaps["n_models_a"] == 4).all() and (gaps["n_models_b"] == 6).all()
    assert (gaps["reps"] == 10_000).all() and {"gap", "ci_low", "ci_high", "p", "p_adjusted"} <= set(gaps.columns)
    neg_agency = gaps[(gaps["framing"] == "negative") & (gaps["category"] == "Agency")].iloc[0]
    assert neg_agency["ci_high"] - neg_agency["ci_low"] > 30  # models resampled (fixed models: 26 ranks wide)
    for r in gaps.itertuples():
        assert (r.ci_low <= 0 <= r.ci_high) == (r.p >= 0.05)
        assert r.ci_low <= r.gap <= r.ci_high
    from statsmodels.stats.multitest import multipletests
    assert list(gaps["p_adjusted"]) == pytest.approx(list(multipletests(gaps["p"], method="holm")[1]))
    assert (gaps["correction"] == "Holm").all()
    ri = cli_json["rank_intervals"]
    assert len(ri) == 4 and all(len(r["models"]) == 10 and r["n_pairs"] == 45 for r in ri)
    assert all(m["group"] and m["position_low"] <= m["position"] <= m["position_high"] for r in ri for m in r["models"])
    h = cli_json["headline"]
    assert h["sentences"] == [h["paper"], h["stricter"], h["meaning"]]
    assert "4 Gemma" in h["paper"] and "4 Gemma and 6 Llama models" in h["meaning"]
    assert "could still be chance" in h["meaning"] and "significant" not in " ".join(h["sentences"]).lower()


def test_the_headline_is_the_same_text_in_the_app_the_reports_and_the_cli(cli_json, big2_store, capsys, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.support import ROOT
    store, _ = big2_store
    want = cli_json["headline"]["sentences"]
    assert len(want) == 3
    rc, out, _ = run_cli(capsys, "analyze", "--corpus", "big2-nouns", "--db", store.path, "--uncertainty")
    assert rc == 0
    # the CLI's text: the headline first (one story), then the paper's panels
    assert out.splitlines()[:4] == [f"{label}: {s}" for s, label in zip(want, headline.LABELS.values())] + [
        "The paper's analysis, panel by panel (4 Gemma and 6 Llama models):"]
    monkeypatch.setenv("VALUEAUDIT_DB", str(store.path))
    st.cache_data.clear()
    for page in ("home.py", "compare.py", "report.py"):
        at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=300)
        at.run()
        assert not at.exception, (page, at.exception)
        seen = [shown(m.value) for m in at.markdown]
        for s, label in zip(want, headline.LABELS.values()):
            shown_as = f"{label}: {s}" if page == "report.py" else f"**{label}.** {s}"  # report: as the CLI
            assert shown_as in seen, (page, label, seen)
        if page == "report.py":
            at.button(key="rep-audit").click().run()
            doc = at.session_state["audit-doc"].decode()
            for s in want:  # the audit report
                assert html.escape(s) in doc


def test_analyze_prints_the_headline_first_then_the_panels_with_the_model_counts(big2_store, capsys):
    """As the Report: the one story before the paper's per-panel claims, and those under a line
    naming the models they rest on; without --uncertainty a line says the stricter analysis
    is not in the output (it printed the per-panel 'significant' claims first, no counts)."""
    store, _ = big2_store
    rc, out, _ = run_cli(capsys, "analyze", "--corpus", "big2-nouns", "--db", store.path, "--permutations", "50")
    lines = out.splitlines()
    assert rc == 0 and lines[0].startswith("What the paper's analysis finds: The paper's analysis of the 4 Gemma-based "
                                           "and 6 Llama-based reward models, reproduced exactly (")
    assert "add --uncertainty" in lines[1]
    assert lines[2] == "The paper's analysis, panel by panel (4 Gemma and 6 Llama models):"
    assert lines[3].startswith("Corpus big2-nouns (263 words).") and lines[-1].startswith("Models used (10):")
