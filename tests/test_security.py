"""Issue 13: server-side settings, and odd or hostile input refused with one line (never a
silent wrong result, never a touched database). The CLI runs in-process (core.cli.main),
as `python -m core` does, to keep these fast; errors are read from stderr."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from core import corpora, family, models, prompts, scoring, settings
from core.store import Store
from tests.support import one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def seeded_db(tmp_path) -> Path:
    """A real database with one model and one score: refusals must leave it byte-identical."""
    db = tmp_path / "seeded.duckdb"
    s = Store(db)
    s.upsert_model("hub:x/y@main~float32", "x/y", "rm", "llama")
    s.add_scores("hub:x/y@main~float32", "rm", pd.DataFrame(
        {"prompt_id": ["p"], "prompt": ["What?"], "response": ["love"], "value": [1.5]}))
    return db


def words_csv(tmp_path, words=("love", "power", "family", "freedom", "truth")) -> Path:
    p = tmp_path / "five.csv"
    p.write_text("word,category\n" + "".join(f"{w},{'Communion' if i % 2 else 'Agency'}\n"
                                             for i, w in enumerate(words)))
    return p


def two_prompts(tmp_path) -> Path:
    p = tmp_path / "two.yaml"
    p.write_text('greatest_ever_one: "What, in one word, is the greatest thing ever?"\n'
                 'worst_ever_one: "What, in one word, is the worst thing ever?"\n')
    return p


# -- the settings table -------------------------------------------------------------------
def test_every_variable_in_code_is_in_the_table_and_the_readme():
    used = set()
    for p in [*ROOT.glob("core/*.py"), *ROOT.glob("pages/*.py"), ROOT / "appkit.py", ROOT / "app.py",
              *ROOT.glob("bench/*.py")]:
        used |= set(re.findall(r"VALUEAUDIT_[A-Z_]+[A-Z]", p.read_text()))
    table = {s.name for s in settings.SETTINGS}
    assert used - table == set(), f"add to core.settings.SETTINGS: {sorted(used - table)}"
    readme = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `(VALUEAUDIT_[A-Z_]+)` \|", readme, flags=re.M))
    assert rows == table, f"README settings table differs: {sorted(rows ^ table)}"


def test_only_the_settings_module_reads_valueaudit_variables():
    pattern = re.compile(r"(os\.environ(\.get)?|os\.getenv)\W*\(?\W*[\"']VALUEAUDIT_")
    readers = [str(p.relative_to(ROOT)) for p in [*ROOT.glob("core/**/*.py"), *ROOT.glob("pages/*.py"),
                                                   ROOT / "appkit.py", ROOT / "app.py"]
               if p.name != "settings.py" and pattern.search(p.read_text())]
    assert readers == [], f"read VALUEAUDIT_* through core.settings in {readers}"


def test_path_settings_default_under_the_project_and_take_the_variable_as_given(monkeypatch, tmp_path):
    monkeypatch.delenv("VALUEAUDIT_DB", raising=False)
    assert settings.path("VALUEAUDIT_DB") == ROOT / "cache" / "valueaudit.duckdb"
    monkeypatch.setenv("VALUEAUDIT_DB", str(tmp_path / "x.duckdb"))
    assert settings.path("VALUEAUDIT_DB") == tmp_path / "x.duckdb"
    monkeypatch.setenv("VALUEAUDIT_DEBUG", "1")
    assert settings.debug()
    monkeypatch.delenv("VALUEAUDIT_DEBUG")
    assert not settings.debug()


def test_settings_are_read_when_used_and_default_to_shared(monkeypatch):
    monkeypatch.delenv("VALUEAUDIT_MODE", raising=False)
    assert settings.shared() and not settings.allow_remote_code() and not settings.allow_delete()
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    assert not settings.shared() and settings.allow_remote_code() and settings.allow_paths()
    monkeypatch.setenv("VALUEAUDIT_MODE", "open")
    with pytest.raises(settings.SettingsError, match="not one of local, shared"):
        settings.mode()


def test_shared_mode_takes_models_only_from_the_operator_folder_or_the_hub(monkeypatch, tmp_path, tiny_llama_rm):
    ops = tmp_path / "operator"
    ops.mkdir()
    shutil.copytree(tiny_llama_rm, ops / "my-rm")
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.setenv("VALUEAUDIT_MODELS_DIR", str(ops))
    assert settings.visitor_model("my-rm") == str((ops / "my-rm").resolve())
    assert settings.visitor_model("Ray2333/GRM-gemma2-2B-rewardmodel-ft") == "Ray2333/GRM-gemma2-2B-rewardmodel-ft"
    answers = set()
    for probe in [str(tiny_llama_rm), str(tmp_path / "no-such-folder"), "/etc", "../operator/my-rm",
                  "~", "core", "x/../../etc"]:
        with pytest.raises(settings.SettingsError) as e:
            settings.visitor_model(probe)
        answers.add(str(e.value).replace(probe[:80], "<name>"))
    assert len(answers) == 1  # an existing folder and a missing one get the same words
    # a folder relative to the server's working directory, shaped like a hub id, is a
    # server path: refused with the same words, while the same shape with no folder is a hub id
    work = tmp_path / "cwd"
    shutil.copytree(tiny_llama_rm, work / "acme" / "rm-7b")
    monkeypatch.chdir(work)
    assert settings.visitor_model("acme/rm-8b") == "acme/rm-8b"
    with pytest.raises(settings.SettingsError) as e:
        settings.visitor_model("acme/rm-7b")
    assert str(e.value).replace("acme/rm-7b", "<name>") in answers
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    assert settings.visitor_model(str(tiny_llama_rm)) == str(tiny_llama_rm)


# -- family names are data, never HTML ----------------------------------------------------------
def test_family_names_are_validated(tmp_path, capsys, seeded_db, tiny_llama_rm):
    assert family.from_model_type("<img src=x onerror=alert(1)>") == "unknown"
    assert family.from_model_type("gemma2") == "gemma"
    assert family.from_model_type("mamba") == "mamba"
    before = seeded_db.read_bytes()
    rc, _, err = run_cli(capsys, "score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", words_csv(tmp_path),
                         "--family", "<b style=x>llama</b>", "--db", seeded_db, "--quiet")
    one_line_error(rc, err, "family", "plain name")
    assert seeded_db.read_bytes() == before


def test_no_page_renders_html():
    for p in [ROOT / "appkit.py", ROOT / "app.py", *ROOT.glob("pages/*.py")]:
        src = p.read_text()
        assert "unsafe_allow_html=True" not in src and "st.html(" not in src, p.name


# -- corpora -----------------------------------------------------------------------------------
def test_csv_with_trailing_commas_is_read_by_header_names():
    data = b"word,category,\nlove,Communion,\npower,Agency,\nfamily,,\n"
    got = corpora.parse_upload("export.csv", data).words
    want = pd.DataFrame({"word": ["love", "power", "family"], "category": ["Communion", "Agency", "Uncategorized"]})
    pd.testing.assert_frame_equal(got[["word", "category"]].reset_index(drop=True), want)
    swapped = corpora.parse_upload("s.csv", b"category,word\nAgency,power\n").words
    assert swapped[["word", "category"]].values.tolist() == [["power", "Agency"]]


@pytest.mark.parametrize("name,data,fragments", [
    ("extra.csv", b"word,category\nlove,Communion\npower,Agency,oops\n", ("line 3", "header has 2")),
    ("d.dic", b"%\n1\tCare\n%\nlove\t1\n%\nhate\t1\n", ("line 5", "third '%'")),
    ("d.dic", b"%\n1\tCare\n2\tPeace\n%\nkind\t1\nlove peace 1\n", ("line 6", "'peace'")),
    ("d.dic", b"%\n1\tCare\n1\tAgain\n%\nlove\t1\n", ("line 3", "twice")),
    ("d.dic", b"%\n1\tCare\n%\nlove\t3\n", ("line 4", "'3'")),
    ("r.dicx", b"DicTerm,Care,Fairness\nlove,X,\nfair,X\n", ("line 3", "2 fields", "header has 3")),
    ("r.dicx", b"DicTerm,Care\nlove,X,,X\n", ("line 2", "4 fields")),
])
def test_malformed_corpus_lines_are_refused_with_their_number(name, data, fragments):
    with pytest.raises(corpora.CorpusError) as e:
        corpora.parse_upload(name, data)
    msg = str(e.value)
    assert "\n" not in msg and all(f in msg for f in fragments), msg


def test_well_formed_dic_and_dicx_still_parse():
    dic = corpora.parse_upload("d.dic", b"%\n1\tCare\n2\tFairness\n%\nkind of\t1\nfair\t2 1\n").words
    assert sorted(map(tuple, dic[["word", "category"]].values.tolist())) == [
        ("fair", "Care"), ("fair", "Fairness"), ("kind of", "Care")]
    dicx = corpora.parse_upload("d.dicx", b"DicTerm,Care,Fairness,\nlove,X,,\nfair,,X,\n").words
    assert sorted(map(tuple, dicx[["word", "category"]].values.tolist())) == [("fair", "Fairness"), ("love", "Care")]


def test_a_saved_corpus_name_never_reads_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("secret.dicx").write_text("DicTerm,Secret\npassword123,X\n")
    db = tmp_path / "c.duckdb"
    store = Store(db)
    store.save_corpus("secret.dicx", pd.DataFrame({"word": ["love"], "category": ["Communion"], "subcategory": [""]}))
    c = corpora.resolve("secret.dicx", store, files=False)  # the app's way
    assert c.vocabulary == ["love"]
    with pytest.raises(corpora.CorpusError, match="no saved corpus"):
        corpora.resolve("other.dicx", store, files=False)
    Path("other.dicx").write_text("DicTerm,Secret\nhidden,X\n")
    with pytest.raises(corpora.CorpusError) as e:
        corpora.resolve("other.dicx", store, files=False)
    assert "hidden" not in str(e.value)
    rc, _, err = run_cli(capsys, "analyze", "--corpus", "secret.dicx", "--db", db)
    one_line_error(rc, err, "both a saved corpus and a file", "./secret.dicx")
    assert corpora.resolve("./secret.dicx", store).vocabulary == ["password123"]


# -- prompts -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,fragments", [
    ("1: What is best?\n01: What is worst?\n", ("line 2", "'01'", "'1'")),
    ("a: What is best?\nb: What is good?\ntrue: What is bad?\n1: What is worst?\n", ("line 4", "'1'", "'true'")),
    ("a: What is best?\nb: What is good?\na: What is bad?\n", ("line 3", "'a' appears twice", "line 1")),
])
def test_yaml_prompts_with_equal_keys_are_refused(tmp_path, capsys, seeded_db, tiny_llama_rm, text, fragments):
    yml = tmp_path / "p.yaml"
    yml.write_text(text)
    before = seeded_db.read_bytes()
    rc, _, err = run_cli(capsys, "score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", words_csv(tmp_path),
                         "--prompts", yml, "--db", seeded_db, "--quiet")
    one_line_error(rc, err, *fragments)
    assert seeded_db.read_bytes() == before


def test_yaml_prompt_ids_are_kept_as_written():
    got = prompts.parse("p.yaml", b'"01": What is best?\n"1": What is worst?\n')
    assert [p.prompt_id for p in got] == ["01", "1"]


# -- models: missing weights, wrong kind, broken files ----------------------------------------------
def _drop_weight(folder: Path, prefix: str) -> None:
    from safetensors.torch import load_file, save_file
    f = folder / "model.safetensors"
    state = load_file(f)
    save_file({k: v for k, v in state.items() if not k.startswith(prefix)}, f, metadata={"format": "pt"})


def test_rm_as_lm_and_any_missing_head_are_refused(tmp_path, capsys, seeded_db, tiny_llama_rm, tiny_gemma_rm,
                                                  tiny_llama_lm):
    corpus, before = words_csv(tmp_path), seeded_db.read_bytes()
    # Gemma ties its LM head to the embeddings, so nothing is "missing": refused by its architecture.
    for rm in (tiny_llama_rm, tiny_gemma_rm):
        rc, _, err = run_cli(capsys, "score", "--model", rm, "--kind", "lm", "--corpus", corpus, "--db", seeded_db)
        one_line_error(rc, err, "is a reward model", "kind rm")
    # Without architectures in config.json, the load itself reports the missing lm_head.
    noarch = tmp_path / "noarch"
    shutil.copytree(tiny_llama_rm, noarch)
    cfg = json.loads((noarch / "config.json").read_text())
    cfg.pop("architectures")
    (noarch / "config.json").write_text(json.dumps(cfg))
    rc, _, err = run_cli(capsys, "score", "--model", noarch, "--kind", "lm", "--corpus", corpus, "--db", seeded_db)
    one_line_error(rc, err, "lm_head.weight", "missing", "random")
    # An RM whose head is missing from its file, and an LM missing a layer weight.
    headless = tmp_path / "headless-rm"
    shutil.copytree(tiny_llama_rm, headless)
    _drop_weight(headless, "score.")
    rc, _, err = run_cli(capsys, "score", "--model", headless, "--kind", "rm", "--corpus", corpus, "--db", seeded_db)
    one_line_error(rc, err, "score.weight", "missing")
    holed = tmp_path / "holed-lm"
    shutil.copytree(tiny_llama_lm, holed)
    _drop_weight(holed, "model.layers.1.mlp.up_proj")
    rc, _, err = run_cli(capsys, "score", "--model", holed, "--kind", "lm", "--corpus", corpus, "--db", seeded_db)
    one_line_error(rc, err, "model.layers.1.mlp.up_proj.weight", "missing")
    assert seeded_db.read_bytes() == before


def test_load_errors_name_the_file(tmp_path, capsys, seeded_db, tiny_llama_rm):
    corpus = words_csv(tmp_path)
    broken_cfg = tmp_path / "broken-config"
    shutil.copytree(tiny_llama_rm, broken_cfg)
    (broken_cfg / "config.json").write_text("{not json")
    rc, _, err = run_cli(capsys, "score", "--model", broken_cfg, "--kind", "rm", "--corpus", corpus, "--db", seeded_db)
    one_line_error(rc, err, "config.json")
    broken_w = tmp_path / "broken-weights"
    shutil.copytree(tiny_llama_rm, broken_w)
    (broken_w / "model.safetensors").write_bytes(b"\xff" * 64)
    rc, _, err = run_cli(capsys, "score", "--model", broken_w, "--kind", "rm", "--corpus", corpus, "--db", seeded_db)
    one_line_error(rc, err, "model.safetensors")


# -- limits, checked before any heavy work --------------------------------------------------------
def test_limits_refuse_before_the_model_loads(tmp_path, capsys, seeded_db, monkeypatch):
    before = seeded_db.read_bytes()
    missing_model = tmp_path / "never-loaded"  # if a check ran after loading, the error would be 'not found'
    big = tmp_path / "big.csv"
    big.write_text("word,category\nlove,x\n" + "w" * 50_000 + ",x\n")
    rc, _, err = run_cli(capsys, "score", "--model", missing_model, "--kind", "rm", "--corpus", big, "--db", seeded_db)
    one_line_error(rc, err, "50,000 characters", "at most 100")
    long_prompt = tmp_path / "long.yaml"
    text = "why " * 400 + "?"
    long_prompt.write_text(f"p1: '{text}'\n")
    rc, _, err = run_cli(capsys, "score", "--model", missing_model, "--kind", "rm", "--corpus", words_csv(tmp_path),
                         "--prompts", long_prompt, "--db", seeded_db)
    one_line_error(rc, err, f"{len(text):,} characters", "at most 1000")
    for bad in ("0", "-3", "100000"):
        rc, _, err = run_cli(capsys, "score", "--model", missing_model, "--kind", "rm", "--corpus", "big2-nouns",
                             "--batch-size", bad, "--db", seeded_db)
        one_line_error(rc, err, "batch size", "from 1 to")
    assert seeded_db.read_bytes() == before


def test_a_word_past_the_models_context_is_refused(tmp_path, capsys, seeded_db, tiny_llama_rm, monkeypatch):
    monkeypatch.setenv("VALUEAUDIT_MAX_WORD_CHARS", "100000")
    cfg = json.loads((tiny_llama_rm / "config.json").read_text())
    words = tmp_path / "long.csv"
    words.write_text("word,category\nlove,x\n" + " ".join(["freedom"] * 600) + ",x\n")
    before = seeded_db.read_bytes()
    rc, _, err = run_cli(capsys, "score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", words,
                         "--prompts", two_prompts(tmp_path), "--db", seeded_db, "--quiet")
    one_line_error(rc, err, f"context of {cfg['max_position_embeddings']}")
    assert seeded_db.read_bytes() == before


def test_progress_shows_the_total_before_the_first_row(tiny_llama_rm, tmp_path):
    loaded = models.load(str(tiny_llama_rm), "rm", device="cpu")
    seen = []

    class Spy(scoring.NaiveEngine):
        def score(self, prompt, words, batch_size):
            seen.append(("engine", None))
            yield from super().score(prompt, words, batch_size)

    orig = scoring.make_engine
    scoring.make_engine = lambda name, lm: Spy(lm)
    try:
        ps = prompts.paper_prompts()[:2]
        scoring.run(Store(tmp_path / "p.duckdb"), loaded, ps, ["love", "power", "truth"], batch_size=2,
                    on_progress=lambda p: seen.append(("progress", (p.done, p.total))))
    finally:
        scoring.make_engine = orig
    assert seen[0] == ("progress", (0, 6))


# -- identity: replaced weights and precision -----------------------------------------------------
def test_weights_replaced_with_same_size_and_mtime_are_rescored(tmp_path, capsys, tiny_llama_rm):
    folder = tmp_path / "rm"
    shutil.copytree(tiny_llama_rm, folder)
    corpus, ps, db = words_csv(tmp_path), two_prompts(tmp_path), tmp_path / "w.duckdb"
    args = ["score", "--model", folder, "--kind", "rm", "--corpus", corpus, "--prompts", ps, "--db", db,
            "--quiet", "--device", "cpu"]
    assert run_cli(capsys, *args)[1].strip().splitlines()[-1] == "scored 10 new, 0 cached"
    assert run_cli(capsys, *args)[1].strip().splitlines()[-1] == "scored 0 new, 10 cached"
    weights = folder / "model.safetensors"
    st = weights.stat()
    old = hashlib.sha256(weights.read_bytes()).hexdigest()
    # Other weights of the same shapes (same size), then the old times restored, as `cp -p` does.
    from safetensors.torch import load_file, save_file
    state = {k: v * 1.5 for k, v in load_file(weights).items()}
    save_file(state, weights, metadata={"format": "pt"})
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert weights.stat().st_size == st.st_size and weights.stat().st_mtime_ns == st.st_mtime_ns
    assert hashlib.sha256(weights.read_bytes()).hexdigest() != old
    assert run_cli(capsys, *args)[1].strip().splitlines()[-1] == "scored 10 new, 0 cached"
    keys = Store(db).models()["model_key"].tolist()
    assert len(keys) == 2 and len({k.split("#")[1] for k in keys}) == 2


def test_precision_is_part_of_a_scores_identity(tmp_path, capsys, tiny_llama_rm):
    corpus, ps, db = words_csv(tmp_path), two_prompts(tmp_path), tmp_path / "d.duckdb"
    base = ["score", "--model", tiny_llama_rm, "--kind", "rm", "--corpus", corpus, "--prompts", ps, "--db", db,
            "--quiet", "--device", "cpu"]
    assert run_cli(capsys, *base, "--dtype", "float32")[1].strip().splitlines()[-1] == "scored 10 new, 0 cached"
    assert run_cli(capsys, *base, "--dtype", "bfloat16")[1].strip().splitlines()[-1] == "scored 10 new, 0 cached"
    keys = sorted(Store(db).models()["model_key"])
    assert [k.rsplit("~", 1)[1] for k in keys] == ["bfloat16", "float32"]
    assert keys[0].rsplit("~", 1)[0] == keys[1].rsplit("~", 1)[0]


def test_adding_a_broken_operator_model_never_shows_its_server_path(monkeypatch, tmp_path):
    ops = tmp_path / "operator-models"
    (ops / "broken-rm").mkdir(parents=True)
    (ops / "broken-rm" / "config.json").write_text("{not json")
    monkeypatch.setenv("VALUEAUDIT_MODE", "shared")
    monkeypatch.setenv("VALUEAUDIT_MODELS_DIR", str(ops))
    from core import catalog
    with pytest.raises(models.ModelError) as e:
        catalog.add_model(Store(tmp_path / "c.duckdb"), "broken-rm", "rm")
    assert "broken-rm" in str(e.value) and str(ops) not in str(e.value)


def test_a_bad_lock_wait_is_one_line_that_names_the_setting(monkeypatch, tmp_path):
    from core import store as _store
    monkeypatch.setenv("VALUEAUDIT_LOCK_WAIT", "soon")
    with pytest.raises(settings.SettingsError) as e:
        _store.lock_wait_s()
    assert "VALUEAUDIT_LOCK_WAIT" in str(e.value) and "\n" not in str(e.value)
    monkeypatch.setenv("VALUEAUDIT_LOCK_WAIT", "2.5")
    assert _store.lock_wait_s() == 2.5


def test_a_wrong_setting_is_one_error_and_an_unknown_variable_one_warning(monkeypatch, capsys):
    """Issue 25: settings.check reads every setting with a fixed form; a typo in the mode is
    one line on the command line too; an unknown VALUEAUDIT_* variable names the closest
    setting, once per process."""
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    settings.check()
    for name, value, fragment in (("VALUEAUDIT_MODE", "sahred", "VALUEAUDIT_MODE='sahred' is not one of"),
                                  ("VALUEAUDIT_VOCAB_SCANS", "alow", "VALUEAUDIT_VOCAB_SCANS='alow'"),
                                  ("VALUEAUDIT_MAX_JOB_ROWS", "2e6", "VALUEAUDIT_MAX_JOB_ROWS='2e6' is not a whole"),
                                  ("VALUEAUDIT_OPERATOR_KEY", "short", "shorter than 16")):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            with pytest.raises(settings.SettingsError, match=re.escape(fragment)):
                settings.check()
    from tests.support import one_line_error, run_cli
    monkeypatch.setenv("VALUEAUDIT_MODE", "sahred")
    rc, _, err = run_cli(capsys, "corpora")
    one_line_error(rc, err, "VALUEAUDIT_MODE='sahred' is not one of local, shared")
    monkeypatch.setenv("VALUEAUDIT_MODE", "local")
    typo, other = "VALUEAUDIT_" + "MODLES_DIR", "VALUEAUDIT_" + "ZZZ"  # built here: no setting by these names
    monkeypatch.setenv(typo, "/srv/models")
    monkeypatch.setenv(other, "1")
    assert settings.unknown() == [
        f"{typo} is not a valueaudit setting and is ignored; did you mean VALUEAUDIT_MODELS_DIR?",
        f"{other} is not a valueaudit setting and is ignored; see the settings table in README.md"]
    monkeypatch.setattr(settings, "_WARNED", set())
    first, again = run_cli(capsys, "corpora"), run_cli(capsys, "corpora")
    assert first[0] == again[0] == 0
    assert first[2].count(f"warning: {typo} is not a valueaudit setting") == 1
    assert typo not in again[2]  # once per process
