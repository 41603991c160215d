"""Shared fixtures: the paper's data, offline hub, tiny real models, the published scores in a store.

The paper's data: the folder VALUEAUDIT_PAPER_DATA names (CI points it at ../shared/paper-data),
else a copy downloaded as the app downloads (core/paperdata.py: the pinned commit, every file
checked by sha256) into cache/paper-data/, made by the first session and reused by the next.
The R re-runs in reference/ are not in the paper's repository: tests that need one carry
`@pytest.mark.r_reference("NAME")` and are skipped without it, except under CI."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# The files the tests read: all pinned files but the published MFD 2.0 scores (11 MB), which
# CI's offline copy lacks too; the tests that need MFD score files write their own (test_fidelity).
_NOT_USED = "reward_model_scores/dict_MFD_20/"


def _paper_data() -> Path:
    given = os.environ.get("VALUEAUDIT_PAPER_DATA", "").strip()
    if given:
        return Path(given).expanduser().resolve()
    from core import errors, paperdata
    files = [rel for rel in paperdata.SHA256 if not rel.startswith(_NOT_USED)]
    try:   # before VALUEAUDIT_CACHE is pointed at a temporary folder: this copy is kept
        return paperdata.fetch(paperdata.cache_dir() / "paper-data", files).resolve()
    except paperdata.PaperDataError as e:
        raise pytest.UsageError(f"no VALUEAUDIT_PAPER_DATA and no copy of the paper's data yet: {errors.one_line(e)}") from None


PAPER_DATA: Path = Path()   # set by pytest_configure, before any test module is imported
# One torch thread per process (before torch is imported; inherited by the CLI runs, dashboard
# servers and xdist workers the tests start): the tiny models gain nothing from more, and with
# parallel workers on every core a second thread only waits at torch's barriers, burning CPU
# (core/engines/threads.py says why). Tests of the thread choice set their counts themselves.
os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
if "torch" in sys.modules:   # imported before this file (by a plugin): the variables came too late for it
    sys.modules["torch"].set_num_threads(1)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.pop("VALUEAUDIT_DB", None)  # tests never touch the user's database
os.environ.setdefault("VALUEAUDIT_MODE", "local")  # the app's full features; shared-mode tests set it themselves
os.environ.pop("VALUEAUDIT_MODELS_DIR", None)

from tests.tiny_models import make_tiny  # noqa: E402  (tests/ is on the path: pyproject's pythonpath)


def pytest_configure(config):
    """The paper's data first (a download goes to cache/paper-data/), then a cache folder of the
    session's own. Here rather than at import, so that a usage error is one line; under xdist
    the controller runs this before it starts the workers, which inherit both variables."""
    global PAPER_DATA
    PAPER_DATA = _paper_data()
    os.environ["VALUEAUDIT_PAPER_DATA"] = str(PAPER_DATA)
    os.environ.setdefault("VALUEAUDIT_CACHE", tempfile.mkdtemp(prefix="valueaudit-cache-"))  # tests never touch cache/


def pytest_collection_modifyitems(config, items):
    """Files holding a `slow` test (servers, browsers, Ray, killed jobs) run first, so that under
    xdist (README's command: --dist loadfile --no-loadscope-reorder) the cheap files fill in at
    the end instead of one worker finishing a long file alone. A test whose R reference file is
    missing is skipped, saying which file and where it comes from."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)   # stable: collection order within each part
    for item in items:
        names = [n for mark in item.iter_markers("r_reference") for n in mark.args
                 if not (PAPER_DATA / "reference" / n).is_file()]
        if names:
            item.add_marker(pytest.mark.skip(reason=f"needs reference/{', reference/'.join(names)} (an R re-run, not in "
                                                    "the paper's repository): set VALUEAUDIT_PAPER_DATA to a folder "
                                                    "that holds it"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a browser or R reference test that would be skipped fails instead: a green run
    must have run them. A report, not a collection error, so that it holds under xdist too
    (the workers collect and report; the controller counts the failure)."""
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and os.environ.get("CI") == "true") or hasattr(report, "wasxfail"):
        return
    from tests import browser_server
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if item.get_closest_marker("browser"):
        why = (f"{browser_server.CHROMIUM} is missing: install Debian's chromium"
               if not Path(browser_server.CHROMIUM).exists() else f"a browser test was skipped ({reason})")
    elif item.get_closest_marker("r_reference"):
        why = f"VALUEAUDIT_PAPER_DATA={PAPER_DATA}: {reason.removeprefix('Skipped: ')}"
    else:
        return
    report.outcome = "failed"
    report.longrepr = f"CI=true but {why}"


@pytest.fixture(scope="session")
def paper_data() -> Path:
    assert PAPER_DATA.is_dir(), f"paper data not found at {PAPER_DATA}"
    return PAPER_DATA


@pytest.fixture(scope="session")
def tiny_llama_rm(tmp_path_factory) -> Path:
    return make_tiny(tmp_path_factory.mktemp("models") / "llama-rm", "llama", "rm")


@pytest.fixture(scope="session")
def tiny_gemma_rm(tmp_path_factory) -> Path:
    return make_tiny(tmp_path_factory.mktemp("models") / "gemma-rm", "gemma2", "rm", seed=1)


@pytest.fixture(scope="session")
def tiny_llama_lm(tmp_path_factory) -> Path:
    return make_tiny(tmp_path_factory.mktemp("models") / "llama-lm", "llama", "lm", seed=2)


@pytest.fixture(scope="session")
def tiny_gemma_lm(tmp_path_factory) -> Path:
    return make_tiny(tmp_path_factory.mktemp("models") / "gemma-lm", "gemma2", "lm", seed=3)


@pytest.fixture(scope="session")
def bf16_gemma_rm(tmp_path_factory) -> Path:
    """A Gemma 2 RM at the scale of bench/gpu.py's models (fan-in weights, 8 layers): loaded in
    bfloat16, rounding alone moves its rewards by several per cent between correct engines."""
    return make_tiny(tmp_path_factory.mktemp("models") / "gemma-rm-fan-in", "gemma2", "rm", seed=6, layers=8,
                     init="fan_in")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_llama_rm) -> Path:
    """A training run of three checkpoints (checkpoint-100/200/300, trainer_state.json, the
    tokenizer at the run's root only) moving away from the tiny Llama RM (tests/tiny_models.py)."""
    from tests.tiny_models import make_run
    return make_run(tmp_path_factory.mktemp("runs") / "llama-run", tiny_llama_rm)


@pytest.fixture()
def db(tmp_path) -> Path:
    return tmp_path / "test.duckdb"


@pytest.fixture(scope="session")
def big2_store(tmp_path_factory):
    """The paper's published scores imported into a fresh store: (store, import counts)."""
    from core.published import import_published
    from core.store import Store
    store = Store(tmp_path_factory.mktemp("db") / "scores.duckdb")
    counts = import_published(store)
    return store, counts


@pytest.fixture(scope="session")
def own_models_db(big2_store, tiny_llama_rm, tiny_gemma_rm, tmp_path_factory):
    """Issue 21's road: the published results plus two tiny local RMs scored on Big Two x the
    54 prompts and a third (a copy of the Llama one: another folder, another model) on 6
    prompts, scored once per session. Returns (database path, {"llama", "gemma", "six": name}).
    Tests copy the file before writing to it."""
    import shutil

    from core import corpora, prompts, runner
    from core.request import ScoreRequest
    from core.store import Store
    store, _ = big2_store
    root = tmp_path_factory.mktemp("own-models")
    db = root / "own.duckdb"
    shutil.copy(store.path, db)  # closed after every operation: the file is complete
    six = root / "six-prompt-rm"
    shutil.copytree(tiny_llama_rm, six)
    vocab = corpora.load("big2-nouns").vocabulary
    paper = prompts.paper_prompts()
    runs = {"llama": (tiny_llama_rm, paper), "gemma": (tiny_gemma_rm, paper), "six": (six, paper[:3] + paper[27:30])}
    for path, ps in runs.values():
        req = ScoreRequest(str(path), "rm", vocab, ps, corpus="big2-nouns", device="cpu", db=str(db))
        runner.score(req, Store(db), checks=False)
    return db, {k: str(p) for k, (p, _) in runs.items()}
