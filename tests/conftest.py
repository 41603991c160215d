"""Shared fixtures: the paper's data (only through VALUEAUDIT_PAPER_DATA), offline hub, tiny real models,
the published scores in a store."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

if not os.environ.get("VALUEAUDIT_PAPER_DATA"):
    raise pytest.UsageError(
        "set VALUEAUDIT_PAPER_DATA to the paper's data folder (see README: the test command)")
PAPER_DATA = Path(os.environ["VALUEAUDIT_PAPER_DATA"]).resolve()
os.environ["VALUEAUDIT_PAPER_DATA"] = str(PAPER_DATA)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.pop("VALUEAUDIT_DB", None)  # tests never touch the user's database
os.environ.setdefault("VALUEAUDIT_MODE", "local")  # the app's full features; shared-mode tests set it themselves
os.environ.pop("VALUEAUDIT_MODELS_DIR", None)
os.environ.setdefault("VALUEAUDIT_CACHE", tempfile.mkdtemp(prefix="valueaudit-cache-"))  # nor its cache/

from tests.tiny_models import make_tiny  # noqa: E402  (tests/ is on the path: pyproject's pythonpath)


def pytest_collection_modifyitems(config, items):
    """Under CI a missing browser is a failure, not a skip: a green run must have run them."""
    if os.environ.get("CI") == "true" and not Path("/usr/bin/chromium").exists():
        if any(item.get_closest_marker("browser") for item in items):
            raise pytest.UsageError("CI=true but /usr/bin/chromium is missing: install Debian's chromium")


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
