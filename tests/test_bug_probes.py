"""Tests that each kill one plausible bug of this field (issue 14's mutation probe), every one
against a computation written here, not the code under test."""
from __future__ import annotations

import csv
import io
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core import analysis, export, jobs, models, scoring
from core.prompts import Prompt
from core.store import Store
from tests.tiny_models import make_tiny

WORDS = ["love", "freedom", "affection", "power", "zestfulness"]


@pytest.fixture(scope="module")
def bos_llama_rm(tmp_path_factory):
    """A Llama RM whose tokenizer prepends BOS on add_special_tokens=True, like Llama 3's."""
    return make_tiny(tmp_path_factory.mktemp("probe") / "bos-llama-rm", "llama", "rm", seed=5, add_bos=True)


@pytest.fixture(scope="module")
def bos_gemma_rm(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("probe") / "bos-gemma-rm", "gemma2", "rm", seed=6, add_bos=True)


def _independent_rm(path, prompt, word):
    """Reward of one conversation: chat template text, tokenized without adding specials."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()
    text = tok.apply_chat_template([{"role": "user", "content": prompt}, {"role": "assistant", "content": word}],
                                   tokenize=False)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")
    assert int((ids["input_ids"][0] == tok.bos_token_id).sum()) == 1
    with torch.inference_mode():
        return float(model(**ids).logits[0, 0])


# ---------------------------------------------------------------- 1. doubled BOS
@pytest.mark.parametrize("fixture", ["bos_llama_rm", "bos_gemma_rm"])
def test_rm_scores_have_one_bos_with_a_bos_adding_tokenizer(fixture, request, tmp_path):
    path = request.getfixturevalue(fixture)
    loaded = models.load(str(path), "rm", device="cpu")
    tok = loaded.tokenizer
    assert tok("x")["input_ids"][0] == tok.bos_token_id  # the tokenizer really adds BOS
    for ids in [scoring.rm_ids(tok, "What is best?", "love"), *scoring.rm_ids_batch(tok, "What is best?", WORDS)]:
        assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    ps = [Prompt("p0", "What is the best thing?", "positive")]
    for engine in ("naive", "cached"):
        db = tmp_path / f"{engine}.duckdb"
        scoring.run(Store(db), loaded, ps, WORDS, engine=engine, batch_size=2)
        got = Store(db).scores()
        assert len(got) == len(WORDS)
        for r in got.itertuples():
            assert r.value == pytest.approx(_independent_rm(path, r.prompt, r.response), abs=1e-4), engine


# ---------------------------------------------------------------- 2. `.score` output
def test_reward_prefers_the_models_score_over_logits():
    import torch
    from core.engines.forward import reward_from_output

    class Out:  # ArmoRM / QRM style: logits hold many objectives, .score is the reward
        logits = torch.tensor([[9.0, 1.0], [8.0, 2.0]])
        score = torch.tensor([[0.25], [-0.5]])

    class Plain:
        logits = torch.tensor([[3.0, 7.0], [4.0, 6.0]])

    assert reward_from_output(Out()) == pytest.approx([0.25, -0.5])
    assert reward_from_output(Plain()) == pytest.approx([3.0, 4.0])


# ---------------------------------------------------------------- 3. pickle-only refusal
@pytest.fixture(scope="module")
def pickle_only(tmp_path_factory):
    path = make_tiny(tmp_path_factory.mktemp("probe") / "pickle-rm", "llama", "rm", safetensors=False)
    assert (path / "pytorch_model.bin").exists() and not list(path.glob("*.safetensors"))
    return path


def test_preflight_refuses_pickle_only_folder(pickle_only):
    with pytest.raises(models.ModelError, match="pickle|safetensors"):
        models.preflight(str(pickle_only), "rm")


def test_load_refuses_pickle_only_folder(pickle_only):
    with pytest.raises(models.ModelError, match="pickle|safetensors"):
        models.load(str(pickle_only), "rm", device="cpu")


def test_load_refuses_pickle_only_even_past_preflight(pickle_only, monkeypatch):
    """The second line of defence: weights loading itself asks for safetensors."""
    monkeypatch.setattr(models, "check_safetensors", lambda *a, **k: None)
    with pytest.raises(models.ModelError, match="pickle|safetensors"):
        models.load(str(pickle_only), "rm", device="cpu")


def test_ray_driver_refuses_pickle_only_before_starting_ray(pickle_only, monkeypatch, tmp_path):
    from core import distributed
    monkeypatch.setattr(distributed, "import_ray", lambda: object())
    monkeypatch.setattr(distributed, "_connect", lambda *a, **k: pytest.fail("Ray must not start"))
    from core.request import ScoreRequest
    req = ScoreRequest(str(pickle_only), "rm", WORDS, [Prompt("p0", "Best?", "positive")], batch_size=4,
                       device="cpu", engine="naive")
    with pytest.raises(models.ModelError, match="pickle|safetensors"):
        distributed.run(req, Store(tmp_path / "x.duckdb"), workers=1)


# ---------------------------------------------------------------- 4. permutation test
def _welch_t(a, b):
    return stats.ttest_ind(a, b, equal_var=False).statistic


def test_permutation_p_is_two_sided_against_explicit_loop():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.6, 1, 6), rng.normal(0, 1.5, 7)
    x = np.concatenate([a, b])
    # every one of the C(13, 6) = 1716 splits: the exact two-sided p
    splits = list(itertools.combinations(range(13), 6))
    labels = np.zeros((len(splits), 13))
    for i, s in enumerate(splits):
        labels[i, list(s)] = 1
    t0 = abs(_welch_t(a, b))
    hits = sum(abs(_welch_t(x[l == 1], x[l == 0])) >= t0 * (1 - 1e-12) for l in labels)
    assert analysis.permutation_p(a, b, labels) == pytest.approx((1 + hits) / (1 + len(labels)))
    # a negative effect gives the same p as the mirrored positive one (two-sided)
    assert analysis.permutation_p(-a, -b, labels) == pytest.approx((1 + hits) / (1 + len(labels)))


def _med(per_model_prompts, seed=0, shift=1.5):
    """Median-rank rows: family A models shifted by `shift`; per_model_prompts = {model: (family, n)}."""
    rng = np.random.default_rng(seed)
    rows = []
    for m, (fam, n) in per_model_prompts.items():
        for p in range(n):
            rows.append({"model": m, "_key": m, "family": fam, "framing": "positive", "category": "c1",
                         "prompt_id": f"p{p}", "median_rank": rng.normal(50 + (shift if fam == "A" else 0), 1)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("permutations", [250, 1500])
def test_family_tests_use_the_permutations_asked(permutations):
    med = _med({"a1": ("A", 3), "a2": ("A", 2), "b1": ("B", 4), "b2": ("B", 3)}, shift=0.3)
    row = analysis.family_tests(med, permutations=permutations, seed=7, bootstrap=0)[0].to_json()
    a = med.loc[med.family == "B", "median_rank"].to_numpy()  # family vs reference "A"
    b = med.loc[med.family == "A", "median_rank"].to_numpy()
    x = np.concatenate([a, b])
    labels = analysis.permutation_labels(len(x), len(a), permutations, 7)
    assert labels.shape == (permutations, len(x)) and (labels.sum(axis=1) == len(a)).all()
    t0 = abs(_welch_t(a, b))
    hits = sum(abs(_welch_t(x[l == 1], x[l == 0])) >= t0 * (1 - 1e-12) for l in labels)
    assert row["permutation_p"] == pytest.approx((1 + hits) / (1 + permutations))
    assert round(row["permutation_p"] * (1 + permutations), 6) % 1 == 0
    res = stats.permutation_test((a, b), _welch_t, n_resamples=permutations, alternative="two-sided",
                                 random_state=0)
    assert abs(row["permutation_p"] - res.pvalue) < 0.08  # scipy's own draws agree within noise


# ---------------------------------------------------------------- 5. Hedges' g and 95 % intervals
def test_hedges_g_matches_textbook_formula():
    a = np.array([3.0, 5.0, 4.0, 7.0, 6.0])
    b = np.array([1.0, 2.0, 4.0])
    n1, n2 = len(a), len(b)
    sp = np.sqrt(((n1 - 1) * np.var(a, ddof=1) + (n2 - 1) * np.var(b, ddof=1)) / (n1 + n2 - 2))
    d = (a.mean() - b.mean()) / sp
    j = 1 - 3 / (4 * (n1 + n2 - 2) - 1)
    assert float(analysis.hedges_g(a, b)[0]) == pytest.approx(j * d, rel=1e-12)
    assert abs(j * d) < abs(d)  # the correction is really applied


def test_bootstrap_ci_is_a_95_percent_interval():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1, 1, 8), rng.normal(0, 1, 9)
    reps = 4000
    lo, hi = analysis.bootstrap_ci(a, b, reps, np.random.default_rng(11))
    r = np.random.default_rng(11)  # the same resamples, Hedges' g written out here
    ia, ib = r.integers(0, len(a), (reps, len(a))), r.integers(0, len(b), (reps, len(b)))
    g = []
    for i in range(reps):
        x, y = a[ia[i]], b[ib[i]]
        sp = np.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
        g.append((1 - 3 / (4 * (len(x) + len(y)) - 9)) * (x.mean() - y.mean()) / sp)
    g = np.array(g)
    inside = np.mean((g >= lo) & (g <= hi))
    assert inside == pytest.approx(0.95, abs=0.003)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(g, [2.5, 97.5])), rel=1e-9)


def test_uncertainty_percentile_interval_has_the_level_asked():
    from core import uncertainty
    x = np.random.default_rng(2).normal(size=20001)
    for level in (0.95, 0.9):
        lo, hi = uncertainty.percentile_ci(x, level)
        assert np.mean((x >= lo) & (x <= hi)) == pytest.approx(level, abs=0.001)


# ---------------------------------------------------------------- 6. family means per model first
def test_family_means_weigh_models_equally_on_unbalanced_data():
    med = _med({"a1": ("A", 5), "a2": ("A", 1), "b1": ("B", 2), "b2": ("B", 4), "b3": ("B", 1)}, seed=4, shift=3)
    med.loc[med.model == "a2", "median_rank"] += 10  # the one-prompt model differs a lot
    got = analysis.family_means(med).set_index("family")["mean_rank"]
    want = med.groupby(["family", "_key"])["median_rank"].mean().groupby("family").mean()
    pooled = med.groupby("family")["median_rank"].mean()
    for fam in ("A", "B"):
        assert got[fam] == pytest.approx(want[fam], rel=1e-12)
    assert abs(want["A"] - pooled["A"]) > 1  # the data really tells the two apart


# ---------------------------------------------------------------- 7. Bonferroni
def test_bonferroni_multiplies_by_m_and_caps_at_one():
    from core import uncertainty
    p = np.array([0.001, 0.02, 0.3, 0.9])
    assert uncertainty.adjust_p(p, "bonferroni") == pytest.approx([0.004, 0.08, 1.0, 1.0])


def test_family_tests_bonferroni_over_all_panels():
    rows = []
    rng = np.random.default_rng(8)
    for cat, shift in (("c1", 4.0), ("c2", 0.0), ("c3", 0.2)):
        for fam, n in (("A", 6), ("B", 6)):
            for i in range(n):
                rows.append({"model": f"{fam}{i}", "_key": f"{fam}{i}", "family": fam, "framing": "positive",
                             "category": cat, "prompt_id": "p0",
                             "median_rank": rng.normal(50 + (shift if fam == "B" else 0), 1)})
    med = pd.DataFrame(rows)
    tests = [t.to_json() for t in analysis.family_tests(med, permutations=200, seed=0, bootstrap=0)]
    m = len(tests)
    assert m == 3
    small = 0
    for t in tests:
        panel = med[med.category == t["category"]]
        p = stats.ttest_ind(panel.loc[panel.family == "B", "median_rank"], panel.loc[panel.family == "A", "median_rank"],
                            equal_var=False).pvalue
        assert t["welch_p"] == pytest.approx(p, rel=1e-9)
        assert t["welch_p_bonferroni"] == pytest.approx(min(1.0, p * m), rel=1e-9)
        assert t["permutation_p_bonferroni"] == pytest.approx(min(1.0, t["permutation_p"] * m), rel=1e-9)
        small += p < 1 / m
    assert small >= 1 and small < m  # some p below 1/m (multiplied), some capped


# ---------------------------------------------------------------- 8. CSV formula neutralising
def test_csv_download_neutralises_formulas():
    df = pd.DataFrame({"response": ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "love"],
                       "value": [-1.5, 2.0, -3.0, 0.0, 1.0]})
    rows = list(csv.DictReader(io.StringIO(export.to_csv_bytes(df).decode("utf-8"))))
    for r, orig in zip(rows, df["response"]):
        assert r["response"][0] not in "=+-@"
        assert r["response"].lstrip("'") == orig
    assert [float(r["value"]) for r in rows] == df["value"].tolist()  # numbers stay numbers


# ---------------------------------------------------------------- 9. cancel, resume, store key
def _counting(loaded):
    """Count the model's forward calls."""
    calls = {"n": 0}
    inner = loaded.model.forward

    def forward(*a, **k):
        calls["n"] += 1
        return inner(*a, **k)
    loaded.model.forward = forward
    return calls


def test_cancel_stops_the_job_and_keeps_committed_rows(tiny_llama_rm, tmp_path):
    db = tmp_path / "c.duckdb"
    words = [f"word{i}" for i in range(60)]
    ps = [Prompt("p0", "What is best?", "positive"), Prompt("p1", "What is worst?", "negative")]
    reg = jobs.JobRegistry()

    def loader(*a, **k):
        loaded = models.load(*a, **k)
        calls = _counting(loaded)
        inner = loaded.model.forward

        def forward(*fa, **fk):
            out = inner(*fa, **fk)
            if calls["n"] == 3:
                reg.get(1).cancel()  # the first job of this registry, as the Score page's Cancel does
            return out
        loaded.model.forward = forward
        return loaded

    spec = jobs.JobSpec([jobs.ModelRequest(str(tiny_llama_rm), "rm")], ps, words, corpus="t", db_path=str(db),
                        engine="naive", batch_size=4, device="cpu")
    job = reg.submit(spec, loader=loader)
    assert job.id == 1 and job.wait(120)
    assert job.state == "cancelled" and job.statuses[0].state == "cancelled"
    n = len(Store(db).scores(kind="rm"))
    assert 0 < n < len(ps) * len(words)
    assert n <= 6 * 4  # stopped within a few batches of the cancel
    assert job.statuses[0].new == n


@pytest.mark.parametrize("second_engine", ["naive", "cached"])
def test_rerun_scores_nothing_and_runs_no_forward(tiny_llama_rm, tmp_path, second_engine):
    """A rerun scores nothing, with the same engine or another: scores are a property of
    (model, prompt, word), not of the engine that computed them."""
    db = tmp_path / "r.duckdb"
    loaded = models.load(str(tiny_llama_rm), "rm", device="cpu")
    ps = [Prompt("p0", "What is best?", "positive")]
    first = scoring.run(Store(db), loaded, ps, WORDS, engine="naive", batch_size=2)
    assert first.new == len(WORDS)
    calls = _counting(loaded)
    again = scoring.run(Store(db), loaded, ps, WORDS, engine=second_engine, batch_size=2)
    assert (again.new, again.cached, calls["n"]) == (0, len(WORDS), 0)
    assert len(Store(db).scores()) == len(WORDS)


def test_scores_are_keyed_by_prompt_text_not_id(tiny_llama_rm, tmp_path):
    db = tmp_path / "k.duckdb"
    loaded = models.load(str(tiny_llama_rm), "rm", device="cpu")
    scoring.run(Store(db), loaded, [Prompt("p0", "What is best?", "positive")], WORDS, engine="naive", batch_size=2)
    same_text = scoring.run(Store(db), loaded, [Prompt("other-id", "What is best?", "positive")], WORDS,
                            engine="naive", batch_size=2)
    assert (same_text.new, same_text.cached) == (0, len(WORDS))
    new_text = scoring.run(Store(db), loaded, [Prompt("p0", "What is worst?", "negative")], WORDS,
                           engine="naive", batch_size=2)
    assert (new_text.new, new_text.cached) == (len(WORDS), 0)
    got = Store(db).scores()
    assert sorted(got["prompt"].unique()) == ["What is best?", "What is worst?"]
