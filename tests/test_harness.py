"""The test command itself (tests/conftest.py), run in a subprocess as a user or CI runs it:
in a fresh clone without VALUEAUDIT_PAPER_DATA and offline it stops in one line; a test whose
R reference file is missing is skipped with a reason naming the variable, and under CI=true
that skip, and a browser test's skip for want of chromium, fail the run — with xdist workers
too. The rules run on two stand-in tests marked as the real ones are (written to a temporary
folder, with conftest.py loaded as a plugin), so that each run takes a second, not a model."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAND_INS = """
from pathlib import Path

import pytest

from tests.browser_server import CHROMIUM


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")
def test_in_a_browser():
    pass


@pytest.mark.r_reference("fig1_big2.json")
def test_against_r(paper_data):
    assert (paper_data / "reference" / "fig1_big2.json").is_file()
"""


def pytest_run(*args: str, env: dict, cwd: Path = ROOT) -> tuple[int, list[str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CI"))} | {"COLUMNS": "1000"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=300)
    return proc.returncode, [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]


def test_a_fresh_clone_offline_without_the_setting_stops_in_one_line(tmp_path):
    """No VALUEAUDIT_PAPER_DATA, an empty cache and no internet (a proxy nobody listens on):
    a usage error of one line before any test runs."""
    dead = "http://127.0.0.1:9"
    env = dict(VALUEAUDIT_CACHE=str(tmp_path / "cache"), https_proxy=dead, HTTPS_PROXY=dead, no_proxy="", NO_PROXY="")
    rc, lines = pytest_run("--collect-only", "tests/test_paperdata.py",
                           env={**env, "VALUEAUDIT_PAPER_DATA": ""})
    assert rc == 4, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: no VALUEAUDIT_PAPER_DATA and no copy of the paper's data yet: could not "
                               "download https://raw.githubusercontent.com/brchristian/"), lines
    assert lines[0].endswith("without internet, set VALUEAUDIT_PAPER_DATA to a copy of the paper's data/ folder")


def _without_reference(paper_data: Path, tmp_path: Path) -> Path:
    """The paper-data folder as a download holds it: everything but reference/."""
    root = tmp_path / "paper-data"
    root.mkdir()
    for sub in paper_data.iterdir():
        if sub.name != "reference":
            (root / sub.name).symlink_to(sub)
    return root


def _stand_ins(tmp_path: Path) -> tuple[list[str], dict]:
    """pytest arguments and environment that run the stand-in tests under tests/conftest.py, with
    a plugin (loaded with -p, before the tests import it) that moves chromium out of sight."""
    folder = tmp_path / "stand-ins"
    folder.mkdir()
    (folder / "test_stand_ins.py").write_text(STAND_INS)
    (folder / "no_chromium.py").write_text("import tests.browser_server as b\nb.CHROMIUM = '/nonexistent/chromium'\n")
    args = ["-c", str(ROOT / "pyproject.toml"), "-p", "tests.conftest", "-p", "no_chromium", str(folder)]
    return args, {"PYTHONPATH": f"{ROOT}{os.pathsep}{folder}"}


def test_a_missing_reference_file_is_a_skip_that_names_the_setting(paper_data, tmp_path):
    args, env = _stand_ins(tmp_path)
    rc, lines = pytest_run("-rs", *args, "-k", "against_r",
                           env={**env, "VALUEAUDIT_PAPER_DATA": str(_without_reference(paper_data, tmp_path))})
    assert rc == 0, lines
    skipped = [ln for ln in lines if ln.startswith("SKIPPED")]
    assert len(skipped) == 1 and "needs reference/fig1_big2.json (an R re-run, not in the paper's repository)" \
        in skipped[0], lines
    assert skipped[0].endswith("set VALUEAUDIT_PAPER_DATA to a folder that holds it"), lines
    rc, lines = pytest_run("-rs", *args, "-k", "against_r", env={**env, "VALUEAUDIT_PAPER_DATA": str(paper_data)})
    assert rc == 0 and not any(ln.startswith("SKIPPED") for ln in lines), lines   # with the file, it runs


def test_under_ci_a_skipped_reference_or_browser_test_fails_the_run_with_xdist_too(paper_data, tmp_path):
    args, env = _stand_ins(tmp_path)
    env = {**env, "CI": "true", "VALUEAUDIT_PAPER_DATA": str(_without_reference(paper_data, tmp_path))}
    for workers in ([], ["-n", "2"]):
        rc, lines = pytest_run("-rfEs", *workers, *args, env=env)
        assert rc == 1, lines
        # The skip happens while setting a test up, so pytest reports the failure as an ERROR.
        failed = {ln.split(" ")[1].split("::")[1]: ln.split(" - ", 1)[1]
                  for ln in lines if ln.startswith(("ERROR ", "FAILED "))}
        assert sorted(failed) == ["test_against_r", "test_in_a_browser"], (workers, lines)
        assert not any(ln.startswith("SKIPPED") for ln in lines), lines
        assert failed["test_against_r"].startswith("CI=true but VALUEAUDIT_PAPER_DATA=")
        assert "needs reference/fig1_big2.json" in failed["test_against_r"]
        assert failed["test_in_a_browser"] == "CI=true but /nonexistent/chromium is missing: install Debian's chromium"
