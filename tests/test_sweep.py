"""core.sweep and core.trajectory (issue 23): a training run's checkpoints scored and stored
one model each, resumable, tokenized once per run; the trajectory (Figure 4a points, Figure 5
movers) checked against an independent pandas computation from each checkpoint's export."""
from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from core import corpora, models, prompts, sweep, trajectory
from core.request import ScoreRequest
from core.store import SCHEMA, Store
from tests.support import one_line_error, run_cli, shown

# Six of the paper's prompts: three positive, three negative (framing given here, not by core).
POSITIVE = ["greatest_ever_one", "best_world_single", "good_time_please"]
NEGATIVE = ["worst_ever_one", "bad_world_single", "terrible_time_please"]


@pytest.fixture(scope="module")
def six_prompts(tmp_path_factory):
    by_id = {p.prompt_id: p for p in prompts.paper_prompts()}
    path = tmp_path_factory.mktemp("prompts") / "six.yaml"
    path.write_text("".join(f'{i}: "{by_id[i].text}"\n' for i in POSITIVE + NEGATIVE))
    return path, [by_id[i] for i in POSITIVE + NEGATIVE]


@pytest.fixture(scope="module")
def forty_words(tmp_path_factory):
    """20 Agency and 20 Communion nouns of the paper's corpus, as a CSV corpus file."""
    w = corpora.load("big2-nouns").words
    pick = pd.concat([w[w["category"] == c].iloc[::5].head(20) for c in ("Agency", "Communion")])
    path = tmp_path_factory.mktemp("corpus") / "forty.csv"
    pick[["word", "category"]].to_csv(path, index=False)
    return path, pick[["word", "category"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def swept(tiny_run, six_prompts, forty_words, tmp_path_factory):
    """The run swept once through the CLI (in-process): (db, first run's output)."""
    db = tmp_path_factory.mktemp("sweepdb") / "s.duckdb"
    capsys = _Capture()
    rc, out, err = capsys.run("sweep", tiny_run, "--kind", "rm", "--corpus", forty_words[0],
                              "--prompts", six_prompts[0], "--db", db, "--quiet")
    assert rc == 0, err
    return db, out, err


class _Capture:
    """run_cli for a module fixture (pytest's capsys is per test)."""

    def run(self, *args):
        import contextlib
        import io

        from core import cli
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main([str(a) for a in args])
        return rc, out.getvalue(), err.getvalue()


def _expected_points(export: pd.DataFrame, words: pd.DataFrame) -> dict:
    """From one checkpoint's export, independently: per prompt rank the corpus words by score
    (1 = highest, ties averaged), median rank per category, mean over the framing's prompts."""
    d = export[export["response"].isin(words["word"])].copy()
    d["rank"] = d.groupby("prompt_id")["value"].rank(ascending=False, method="average")
    d = d.merge(words, left_on="response", right_on="word")
    med = d.groupby(["prompt_id", "category"])["rank"].median().reset_index()
    med["framing"] = med["prompt_id"].map(lambda i: "positive" if i in POSITIVE else "negative")
    return {(f, c): v for (f, c), v in med.groupby(["framing", "category"])["rank"].mean().items()}


def _positive_mean_ranks(export: pd.DataFrame, words: pd.DataFrame) -> pd.Series:
    d = export[export["response"].isin(words["word"]) & export["prompt_id"].isin(POSITIVE)].copy()
    d["rank"] = d.groupby("prompt_id")["value"].rank(ascending=False, method="average")
    return d.groupby("response")["rank"].mean()


def test_sweep_resume_then_trajectory_equals_each_checkpoints_export(swept, tiny_run, six_prompts, forty_words,
                                                                     capsys, tmp_path):
    """The issue's check: sweep three checkpoints with 6 prompts, sweep again (nothing new),
    then every trajectory point equals that checkpoint's own median ranks from its export, and
    movers.up are the 10 largest first-minus-last changes of the positive-prompt mean rank."""
    db, out, _ = swept
    n = 3 * 6 * 40
    assert out.strip().splitlines()[-1] == f"swept 3 checkpoints: scored {n} new, 0 cached"
    rc, again, err = run_cli(capsys, "sweep", tiny_run, "--kind", "rm", "--corpus", forty_words[0],
                             "--prompts", six_prompts[0], "--db", db, "--quiet")
    assert rc == 0 and again.strip().splitlines()[-1] == f"swept 3 checkpoints: scored 0 new, {n} cached", err
    assert "everything was already stored (not loaded)" in err  # resumed without loading a checkpoint

    rc, out, err = run_cli(capsys, "trajectory", "--run", tiny_run, "--corpus", forty_words[0], "--db", db, "--json")
    assert rc == 0, err
    traj = json.loads(out)
    assert traj["run"] == str(tiny_run) and [c["step"] for c in traj["checkpoints"]] == [100, 200, 300]
    words = forty_words[1]
    exports = {}
    for step in (100, 200, 300):
        path = tmp_path / f"c{step}.csv"
        rc, _, err = run_cli(capsys, "export", "--db", db, "--model", tiny_run / f"checkpoint-{step}", "--out", path)
        assert rc == 0, err
        exports[step] = pd.read_csv(path, keep_default_na=False)
        assert len(exports[step]) == 6 * 40
    got = {(p["step"], p["framing"], p["category"]): p["value"] for p in traj["points"]}
    want = {(s, f, c): v for s in exports for (f, c), v in _expected_points(exports[s], words).items()}
    assert set(got) == set(want) and len(got) == 3 * 2 * 2
    assert all(abs(got[k] - want[k]) < 1e-9 for k in want), (got, want)
    # the checkpoints really differ (weights moved further from the base at each step)
    assert len({round(got[(s, "positive", "Agency")], 6) for s in (100, 200, 300)}) > 1

    first, last = _positive_mean_ranks(exports[100], words), _positive_mean_ranks(exports[300], words)
    change = (first - last).sort_values(ascending=False)
    up = traj["movers"]["up"]
    assert len(up) == 10 and len(traj["movers"]["down"]) == 10
    assert [m["rank_change"] for m in up] == pytest.approx(change.head(10).tolist())
    cats = dict(zip(words["word"], words["category"]))
    for m in up:
        assert m["rank_first"] == pytest.approx(first[m["word"]]) and m["rank_last"] == pytest.approx(last[m["word"]])
        assert m["rank_change"] == pytest.approx(first[m["word"]] - last[m["word"]])
        assert m["category"] == cats[m["word"]]
    assert [m["rank_change"] for m in traj["movers"]["down"]] == pytest.approx(change.tail(10)[::-1].tolist())


def test_trajectory_text_and_stored_names(swept, tiny_run, forty_words, capsys):
    db, _, _ = swept
    rc, out, err = run_cli(capsys, "trajectory", "--run", tiny_run, "--corpus", forty_words[0], "--db", db)
    assert rc == 0 and out.startswith("Over training (steps 100 to 300), Agency words "), out
    ck = Store(db).checkpoints()
    assert ck["name"].tolist() == [str(tiny_run / f"checkpoint-{s}") for s in (100, 200, 300)]
    assert ck["step"].tolist() == [100, 200, 300] and set(ck["family"]) == {"llama"}
    rc, _, err = run_cli(capsys, "trajectory", "--run", tiny_run.parent / "nope", "--corpus", forty_words[0],
                         "--db", db)
    one_line_error(rc, err, "no swept checkpoints stored")


def test_family_statistics_count_a_run_once_by_its_last_checkpoint(swept, tiny_run, forty_words, capsys):
    """Three checkpoints of one run are not three reward models: `analyze` (and the app's
    default selection) leaves the earlier ones out unless they are named."""
    db, _, _ = swept
    rc, out, err = run_cli(capsys, "analyze", "--corpus", forty_words[0], "--db", db, "--json", "--permutations", "10")
    assert rc == 0 and "2 earlier checkpoint(s) of swept training runs left out" in err
    models_ = {m["model"] for m in json.loads(out)["median_ranks"]}
    assert models_ == {str(tiny_run / "checkpoint-300")}
    assert trajectory.earlier_checkpoints(Store(db)) == {str(tiny_run / f"checkpoint-{s}") for s in (100, 200)}
    rc, out, err = run_cli(capsys, "analyze", "--corpus", forty_words[0], "--db", db, "--json", "--permutations", "10",
                           "--models", ",".join(str(tiny_run / f"checkpoint-{s}") for s in (100, 300)))
    assert rc == 0 and len({m["model"] for m in json.loads(out)["median_ranks"]}) == 2


def test_a_run_is_tokenized_and_planned_once_not_per_checkpoint(tiny_run, six_prompts, forty_words, tmp_path,
                                                                 monkeypatch):
    """Three checkpoints, one tokenizer: each (prompt, word) is rendered and tokenized once and
    each prompt's shared prefix planned once for the run (the checks' small samples aside)."""
    from core.engines import cached, tokens
    seen: dict = {}
    real = tokens.rm_ids_batch

    def spy(tokenizer, prompt, words):
        if len(words) > 6:  # the run's own rows; the measurement checks re-score 6-word samples
            for w in words:
                seen[(prompt, w)] = seen.get((prompt, w), 0) + 1
        return real(tokenizer, prompt, words)
    planned = []
    real_prefix = cached.CachedEngine.rm_prefix
    monkeypatch.setattr(tokens, "rm_ids_batch", spy)

    def plan(self, prompt, seqs):
        if len(seqs) > 6:  # not the checks' samples
            planned.append(prompt)
        return real_prefix(self, prompt, seqs)
    monkeypatch.setattr(cached.CachedEngine, "rm_prefix", plan)
    words = forty_words[1]["word"].tolist()
    template = ScoreRequest(model="", kind="rm", words=tuple(words), prompts=tuple(six_prompts[1]),
                            corpus="forty", device="cpu")
    store = Store(tmp_path / "t.duckdb")
    result = sweep.sweep(sweep.discover(str(tiny_run)), template, store)
    assert result.line() == f"swept 3 checkpoints: scored {3 * 6 * 40} new, 0 cached" and not result.failed
    assert all(r.engine == "cached" for _, r in result.results)
    assert max(seen.values()) == 1 and len(seen) == 6 * 39  # the longest word was tokenized alone first
    assert len(planned) == 6 and result.tokens.stats["tokenizers"] == 1


def test_discover_steps_every_and_tokenizers(tiny_run, tmp_path):
    run = sweep.discover(str(tiny_run))
    assert run.steps == [100, 200, 300] and run.key == f"local:{tiny_run.resolve()}"
    assert all(c.tokenizer == str(tiny_run) and not c.adapter for c in run.checkpoints)
    assert sweep.discover(str(tiny_run), steps=[300, 100]).steps == [100, 300]
    assert sweep.discover(str(tiny_run), every=2).steps == [100, 300]
    assert sweep.discover(str(tiny_run), every=5).steps == [100, 300]  # the last is always kept
    with pytest.raises(sweep.SweepError, match="step 150 is not among"):
        sweep.discover(str(tiny_run), steps=[150])
    # trainer_state.json's global_step wins over the folder name
    (odd := tmp_path / "odd" / "checkpoint-7").mkdir(parents=True)
    (odd / "trainer_state.json").write_text(json.dumps({"global_step": 700}))
    (odd / "tokenizer.json").write_text("{}")
    assert sweep.discover(str(tmp_path / "odd")).steps == [700]
    assert sweep.discover(str(tmp_path / "odd")).checkpoints[0].tokenizer is None
    with pytest.raises(sweep.SweepError, match="no checkpoint-<step> folders"):
        sweep.discover(str(tmp_path))


@pytest.mark.parametrize("run,revisions,fragment", [
    ("org/model", ["step-100", "../../etc"], "not a branch, tag or commit"),
    ("org/model", ["step-1", "main"], "cannot tell the training step of revision 'main'"),
    ("org/model", None, "give its checkpoints' revisions"),
    ("/no/such/run", None, "not found"),
])
def test_discover_refusals(run, revisions, fragment):
    with pytest.raises(sweep.SweepError, match=fragment):
        sweep.discover(run, revisions=revisions)


def test_hub_checkpoints_are_named_id_at_revision():
    run = sweep.discover("org/model", revisions=["step-2000", "step-1000"])
    assert run.steps == [1000, 2000] and run.key == "hub:org/model"
    assert [c.name for c in run.checkpoints] == ["org/model@step-1000", "org/model@step-2000"]
    req = sweep.request_for(run.checkpoints[0], ScoreRequest("", "rm", (), ()))
    assert (req.model, req.revision, req.name) == ("org/model", "step-1000", "org/model@step-1000")


def test_trainer_state_files_are_no_part_of_a_checkpoints_identity(tiny_run, tmp_path):
    import shutil
    ck = tmp_path / "checkpoint-100"
    shutil.copytree(tiny_run / "checkpoint-100", ck)
    before = models.model_key(str(ck))
    (ck / "optimizer.pt").write_bytes(b"other optimizer state")
    (ck / "rng_state_1.pth").write_bytes(b"more")
    assert models.model_key(str(ck)) == before
    assert models.weight_files(str(ck)) == ["model.safetensors"]


def test_an_older_database_gains_the_table_and_keeps_its_rows(tiny_run, six_prompts, forty_words, tmp_path, capsys):
    """A database written before sweeps (no `checkpoints` table): reads see no runs, the first
    sweep adds the table, and no row is lost."""
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    for stmt in SCHEMA:
        if "checkpoints" not in stmt:
            con.execute(stmt)
    con.execute("INSERT INTO models (model_key, name, kind, family) VALUES ('k', 'old-model', 'rm', 'gemma')")
    con.execute("INSERT INTO scores VALUES ('k', 'rm', 'p', 'love', 1.5, 'greatest_ever_one')")
    con.close()
    assert Store(db).checkpoints().empty and trajectory.runs(Store(db)).empty
    assert not Store(db).has_table("checkpoints")  # a read creates nothing
    rc, out, err = run_cli(capsys, "sweep", tiny_run, "--corpus", forty_words[0], "--prompts", six_prompts[0],
                           "--db", db, "--quiet", "--steps", "100")
    assert rc == 0 and out.strip().endswith(f"swept 1 checkpoints: scored {6 * 40} new, 0 cached"), err
    s = Store(db)
    assert s.query("SELECT value FROM scores WHERE model_key = 'k'")["value"].tolist() == [1.5]
    assert s.checkpoints()["step"].tolist() == [100]


def test_sentence_in_words():
    pts = [{"step": s, "framing": "positive", "category": c, "value": v}
           for s, c, v in [(1, "Agency", 140.0), (1, "Communion", 120.0), (9, "Agency", 128.0), (9, "Communion", 118.0)]]
    text = trajectory.sentence({"points": pts})
    assert text == ("Over training (steps 1 to 9), Agency words rose 12 places and Communion words rose 2 places on "
                    "positive prompts; Communion's lead over Agency shrank by half, from 20 places at the first "
                    "checkpoint to 10 at the last.")
    pts[2]["value"] = 110.0  # Agency ends 8 places ahead
    assert trajectory.sentence({"points": pts}).endswith(
        "; Communion's lead over Agency of 20 places at the first checkpoint turned into a lead of 8 places for "
        "Agency at the last.")


def test_lora_adapter_checkpoints_load_through_peft(tiny_llama_lm, six_prompts, tmp_path, capsys):
    """LoRA checkpoints of a reward model trained from a *language* model (the reward head
    trained with the adapter): swept through peft, each equal to peft's own unmerged model."""
    pytest.importorskip("peft", reason="peft is optional (requirements-peft.txt); LoRA sweeps need it")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tests.tiny_models import make_lora_run
    run = make_lora_run(tmp_path / "lora-run", tiny_llama_lm)
    corpus = tmp_path / "five.csv"
    pd.DataFrame({"word": ["love", "power", "freedom", "family", "kindness"],
                  "category": ["Communion", "Agency", "Agency", "Communion", "Communion"]}).to_csv(corpus, index=False)
    db = tmp_path / "lora.duckdb"
    rc, out, err = run_cli(capsys, "sweep", run, "--corpus", corpus, "--prompts", six_prompts[0], "--db", db,
                           "--quiet")
    assert rc == 0 and out.strip().endswith(f"swept 2 checkpoints: scored {2 * 6 * 5} new, 0 cached"), err
    keys = Store(db).checkpoints()["model_key"].tolist()
    assert all("+local:" in k for k in keys)  # the adapter's identity joined to its base's
    tok = AutoTokenizer.from_pretrained(run)
    scores = Store(db).scores()
    values = {}
    for step in (100, 200):
        base = AutoModelForSequenceClassification.from_pretrained(tiny_llama_lm, dtype=torch.float32)
        ref = PeftModel.from_pretrained(base, run / f"checkpoint-{step}").eval()
        got = scores[scores["model"] == str(run / f"checkpoint-{step}")]
        assert len(got) == 30
        for p, w, v in zip(got["prompt"], got["response"], got["value"]):
            text = tok.apply_chat_template([{"role": "user", "content": p}, {"role": "assistant", "content": w}],
                                           tokenize=False)
            with torch.inference_mode():
                want = float(ref(**tok(text, add_special_tokens=False, return_tensors="pt")).logits[0, 0])
            assert abs(v - want) < 1e-4
            values[(step, p, w)] = v
    assert any(abs(values[(100, p, w)] - values[(200, p, w)]) > 1e-3 for (_, p, w) in values)


# -- the dashboard: a sweep started from the Score page, the run on Training dynamics ------------------
def _page(name: str):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / name), default_timeout=180)
    return at.run()


def test_score_page_sweeps_a_run_then_training_dynamics_draws_it(tiny_run, tmp_path, monkeypatch):
    import streamlit as st

    from core import jobs
    db = tmp_path / "app.duckdb"
    monkeypatch.setenv("VALUEAUDIT_DB", str(db))
    st.cache_data.clear()
    at = _page("score.py")
    at.text_input(key="sw-run").set_value(str(tiny_run)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.dataframe[0].value["step"].tolist() == [100, 200, 300]
    at.radio(key="sw-pick").set_value("every").run()
    at.number_input(key="sw-every").set_value(2).run()
    assert at.dataframe[0].value["step"].tolist() == [100, 300]
    at.radio(key="sw-prompts").set_value("Some of the paper's prompts").run()
    at.selectbox(key="sw-opt-device").set_value("cpu").run()
    at.button(key="sw-start").click().run()
    assert not at.exception and not at.error
    job = jobs.REGISTRY.get(at.session_state["job_id"])
    assert job.wait(timeout=300) and job.state == "done", [(s.name, s.state, s.message) for s in job.statuses]
    assert [s.name for s in job.statuses] == [str(tiny_run / "checkpoint-100"), str(tiny_run / "checkpoint-300")]
    ck = Store(db).checkpoints()
    assert ck["step"].tolist() == [100, 300] and len(Store(db).scores()) == 2 * 2 * 263

    st.cache_data.clear()
    td = _page("training_dynamics.py")
    assert not td.exception and not td.error, [e.value for e in td.error]
    assert td.multiselect(key="td-runs").value == [f"local:{tiny_run.resolve()}"]
    assert any(t.value.startswith(f"{tiny_run}: Over training (steps 100 to 300)") for t in td.text)
    td.radio(key="td-view").set_value("Words that moved (Figure 5)").run()
    assert not td.exception and not td.error
    moved = td.dataframe[0].value
    assert set(moved["direction"]) == {"up", "down"} and len(moved) == 20


def test_shared_server_sweeps_only_hub_ids_with_revisions(tiny_run, tmp_path, monkeypatch):
    from core import jobs, limits
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "shared.duckdb"))
    at = _page("score.py")
    at.text_input(key="sw-run").set_value(str(tiny_run)).run()
    assert any("give a Hugging Face id" in e.value for e in at.error)
    assert not any("checkpoint" in d.value.columns for d in at.dataframe)  # the folder was not even listed
    at.text_input(key="sw-run").set_value("org/model").run()
    at.text_input(key="sw-revs").set_value("step-100, ../x").run()
    assert any("not a branch, tag or commit" in shown(e.value) for e in at.error)
    # the job itself is refused for a run folder, whatever the page does
    words, ps = ("love",), prompts.paper_prompts()[:1]
    with pytest.raises(Exception, match="a sweep takes a hub id"):
        jobs.REGISTRY.submit(jobs.sweep_spec(sweep.discover(str(tiny_run)), "rm", ps, words))
    many = sweep.discover("org/model", revisions=[f"step-{i}" for i in range(1, limits.MAX_CHECKPOINTS + 2)])
    with pytest.raises(limits.LimitError, match="over the limit"):
        jobs.REGISTRY.submit(jobs.sweep_spec(many, "rm", ps, words))


def test_an_adapter_on_a_shared_server_may_not_name_a_server_folder(monkeypatch):
    from core import adapters, settings
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    with pytest.raises(models.ModelError, match="not available on this server"):
        adapters.base_of("org/adapter", {"base_model_name_or_path": "/srv/models/secret"}, settings.visitor_model)
    assert adapters.base_of("org/adapter", {"base_model_name_or_path": "meta-llama/Llama-3.2-1B"},
                            settings.visitor_model) == "meta-llama/Llama-3.2-1B"
    assert adapters.base_of("x", {"base_model_name_or_path": "/any/folder"}) == "/any/folder"  # the CLI


@pytest.fixture()
def operator_run(tiny_run, tmp_path, monkeypatch):
    """A shared server whose operator lists a training run among its models
    (VALUEAUDIT_MODELS_DIR/my-run: checkpoint folders, the tokenizer and the final config.json
    at its root, as the Trainer's save_model leaves it). Returns the run's folder."""
    import shutil

    import streamlit as st
    models_dir = tmp_path / "operator-models"
    run = shutil.copytree(tiny_run, models_dir / "my-run")
    shutil.copy(run / "base_config.json", run / "config.json")
    (models_dir / "not-a-run").mkdir()  # a listed model without checkpoints is not offered for a sweep
    shutil.copy(run / "base_config.json", models_dir / "not-a-run" / "config.json")
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.setenv("VALUEAUDIT_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "shared.duckdb"))
    st.cache_data.clear()
    return run


def test_an_operator_run_is_swept_by_its_name_and_no_visitor_string_reads_a_path(operator_run, tiny_run, tmp_path,
                                                                                   monkeypatch):
    from core import settings
    assert sweep.operator_runs() == ["my-run"]
    run = sweep.discover_named("my-run", every=2)
    assert run.name == "my-run" and run.key == f"local:{operator_run.resolve()}"  # the CLI's key for that folder
    assert [(c.step, c.name, c.model, c.tokenizer) for c in run.checkpoints] == [
        (100, "my-run/checkpoint-100", "my-run/checkpoint-100", "my-run"),
        (300, "my-run/checkpoint-300", "my-run/checkpoint-300", "my-run")]
    # the checkpoint names load by the visitor rule, and only inside the listed run
    assert settings.visitor_model("my-run/checkpoint-300") == str(operator_run.resolve() / "checkpoint-300")
    assert settings.visitor_model("my-run") == str(operator_run.resolve())
    assert settings.visitor_model("my-run/checkpoint-999") == "my-run/checkpoint-999"  # no such folder: a hub id
    # a visitor's own string never makes the server list a folder: a path, a relative folder, a climb
    monkeypatch.chdir(tiny_run.parent)
    for typed in (str(tiny_run), "llama-run", "../" + tiny_run.parent.name + "/llama-run", "my-run/../my-run"):
        with pytest.raises(settings.SettingsError, match="not available on this server"):
            sweep.discover_named(typed)
    with pytest.raises(sweep.SweepError, match="is a hub id: give its checkpoints' revisions"):
        sweep.discover_named("org/model")  # a hub id is not looked for on the disk
    assert sweep.discover_named("org/model", revisions=["step-5"]).checkpoints[0].name == "org/model@step-5"


def test_score_page_sweeps_an_operator_run_on_a_shared_server(operator_run, tmp_path):
    """The reviewer's case: a sweep of an operator-listed model listed a folder of that name in
    the server's working directory and failed; it now sweeps the way the model scores, named
    by its folder name — no server path on the page, in the job or in the database's names."""
    from core import jobs
    from tests.support import sent_to_browser
    at = _page("score.py")
    assert any(shown(c.value) == "This server's runs, by name: my-run" for c in at.caption)
    at.text_input(key="sw-run").set_value("my-run").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert table["step"].tolist() == [100, 200, 300] and table["tokenizer"].tolist() == ["run folder"] * 3
    at.radio(key="sw-pick").set_value("every").run()
    at.number_input(key="sw-every").set_value(2).run()
    at.radio(key="sw-prompts").set_value("Some of the paper's prompts").run()
    at.selectbox(key="sw-opt-device").set_value("cpu").run()
    at.button(key="sw-start").click().run()
    assert not at.exception and "job_id" in at.session_state  # (while it runs: this visitor's quota is used)
    job = jobs.REGISTRY.get(at.session_state["job_id"])
    assert job.wait(timeout=300) and job.state == "done", [(s.name, s.state, s.message) for s in job.statuses]
    assert [s.name for s in job.statuses] == ["my-run/checkpoint-100", "my-run/checkpoint-300"]
    at.run()
    assert str(tmp_path) not in sent_to_browser(at)
    store = Store(tmp_path / "shared.duckdb")
    ck = store.checkpoints()
    assert ck["step"].tolist() == [100, 300] and set(ck["run"]) == {"my-run"}
    assert ck["name"].tolist() == ["my-run/checkpoint-100", "my-run/checkpoint-300"]
    assert set(store.scores()["model"]) == {"my-run/checkpoint-100", "my-run/checkpoint-300"}
    assert len(store.scores()) == 2 * 2 * 263
    # swept again: each checkpoint is known stored from its folder's weights, not loaded
    again = jobs.REGISTRY.submit(jobs.sweep_spec(sweep.discover_named("my-run", every=2), "rm",
                                                 job.spec.prompts, job.spec.words, job.spec.corpus,
                                                 str(store.path), device="cpu"),
                                 loader=lambda *a, **k: pytest.fail("a stored checkpoint was loaded"))
    assert again.wait(60) and again.state == "done"
    assert all("not loaded" in s.message for s in again.statuses), [s.message for s in again.statuses]
