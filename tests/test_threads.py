"""CPU threads of a scoring run (core/engines/threads.py): torch's default less the cores
other processes keep busy, measured while the model loads; the operator's setting wins.

The measurement is checked against real processes (a child that spins, this process
spinning), the choice against the rule written out here, and a real run on a tiny model
records the count it used and gives torch its previous count back."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from core import prompts, request, runner, settings
from core.engines import threads

SPIN = "import time\nt = time.time()\nwhile time.time() - t < {s}:\n    pass\n"


def _spin_here(seconds: float) -> None:
    t = time.time()
    while time.time() - t < seconds:
        pass


def test_a_busy_neighbour_is_counted_and_this_process_is_not():
    before = threads.sample()
    child = subprocess.Popen([sys.executable, "-c", SPIN.format(s=1.5)])
    time.sleep(1.0)                       # this process idle, the child spinning
    after = threads.sample()
    child.wait()
    assert threads.others_busy(before, after) >= 0.6
    before = threads.sample()
    _spin_here(0.8)                       # only this process busy
    after = threads.sample()
    assert threads.others_busy(before, after) <= 0.5


@pytest.mark.parametrize("setting,default,busy,expected", [
    ("auto", 2, 0.0, 2), ("auto", 2, 1.0, 1), ("auto", 2, 0.3, 2), ("auto", 2, 1.8, 1), ("auto", 2, 5.0, 1),
    ("", 8, 3.2, 5), ("auto", 2, None, 2), ("3", 2, 1.0, 3), (" Torch ", 2, 1.0, None)])
def test_choice_is_the_default_less_the_busy_cores(setting, default, busy, expected, monkeypatch):
    monkeypatch.setenv("VALUEAUDIT_THREADS", setting)
    assert threads.choose(threads.requested(), default, busy) == expected


@pytest.mark.parametrize("bad", ["many", "0", "-2"])
def test_a_bad_setting_is_one_line_that_names_it_before_any_model_loads(bad, monkeypatch, tmp_path):
    monkeypatch.setenv("VALUEAUDIT_THREADS", bad)
    with pytest.raises(settings.SettingsError) as e:
        threads.requested()
    assert "VALUEAUDIT_THREADS" in str(e.value) and "\n" not in str(e.value)
    loads = []
    req = request.ScoreRequest(model="org/never-loaded", kind="rm", words=("love",),
                               prompts=tuple(prompts.paper_prompts()[:1]), db=str(tmp_path / "t.duckdb"))
    with pytest.raises(settings.SettingsError):
        runner.score(req, backend=runner.Local(lambda *a, **k: loads.append(a)))
    assert loads == []


def test_a_run_uses_the_set_threads_records_them_and_restores_torch(tiny_llama_rm, tmp_path, monkeypatch):
    monkeypatch.setenv("VALUEAUDIT_THREADS", "1")
    before = torch.get_num_threads()
    seen = []
    req = request.ScoreRequest(model=str(tiny_llama_rm), kind="rm", words=("love", "power", "truth"),
                               prompts=tuple(prompts.paper_prompts()[:2]), corpus="mini", db=str(tmp_path / "t.duckdb"),
                               batch_size=2, device="cpu", engine="naive")
    result = runner.score(req, on_progress=lambda p: seen.append(torch.get_num_threads()))
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before
    assert json.loads(result.check["provenance"])["cpu_threads"] == 1
    if threads.torch_default() != 1:
        assert any(n.startswith("1 CPU thread instead of torch's") and n.endswith("(VALUEAUDIT_THREADS=1)")
                   for n in result.notes)
