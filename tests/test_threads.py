"""CPU threads of a scoring run (core/engines/threads.py): torch's default less the cores
other processes keep busy, measured while the model loads; the operator's setting wins.

The measurement is checked against real processes (a child that spins, this process
spinning), the choice against the rule written out here, and a real run on a tiny model
records the count it used and gives torch its previous count back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from core import prompts, request, runner, settings
from core.engines import threads

# The child spins until it has used `s` seconds of CPU, however long a busy machine makes that take.
SPIN = "import time\nwhile time.process_time() < {s}:\n    pass\n"
TICK = 0.05   # /proc/stat counts whole clock ticks per core; a few ticks of slack on each side


def _spin_here(cpu_seconds: float) -> None:
    t = time.process_time()
    while time.process_time() - t < cpu_seconds:
        pass


def test_others_busy_is_the_machine_less_this_process_per_second():
    """The accounting on recorded counters: cores = (machine busy - own) / wall, never negative."""
    before = threads.CpuSample(wall=100.0, busy=5000.0, own=12.0)
    assert threads.others_busy(before, threads.CpuSample(102.0, 5003.0, 12.5)) == pytest.approx(1.25)  # (3 - 0.5) / 2
    assert threads.others_busy(before, threads.CpuSample(101.0, 5001.0, 13.0)) == 0.0    # only this process worked
    assert threads.others_busy(before, threads.CpuSample(104.0, 5000.2, 13.0)) == 0.0    # tick rounding: clamped
    assert threads.others_busy(before, threads.CpuSample(100.0, 5009.0, 12.0)) == 0.0    # no time passed


def test_sample_reads_the_cpu_line_of_proc_stat(monkeypatch):
    """A recorded /proc/stat: busy = user .. steal less idle and iowait, guest not counted twice."""
    import io
    stat = ("cpu  4705 356 584 3699176 23060 0 277 13 700 0\n"
            "cpu0 2350 178 292 1849588 11530 0 138 6 350 0\n")
    monkeypatch.setattr(threads, "open", lambda *a, **k: io.StringIO(stat), raising=False)
    s = threads.sample()
    hz = os.sysconf("SC_CLK_TCK")
    assert s.busy == pytest.approx((4705 + 356 + 584 + 0 + 277 + 13) / hz)
    t = os.times()
    assert t.user + t.system - 0.5 <= s.own <= t.user + t.system


@pytest.mark.skipif(threads.sample() is None, reason="no /proc/stat on this system")
def test_a_busy_neighbour_is_counted_and_this_process_is_not():
    """Real processes, whatever else the machine runs: a child's CPU seconds are all counted
    as another process's (other processes only add to that), and this process's own spinning
    is counted in the machine's total and subtracted as its own."""
    before = threads.sample()
    child = subprocess.Popen([sys.executable, "-c", SPIN.format(s=0.6)])
    _, status, usage = os.wait4(child.pid, 0)
    after = threads.sample()
    assert status == 0
    child_cpu = usage.ru_utime + usage.ru_stime
    others = threads.others_busy(before, after) * (after.wall - before.wall)
    assert child_cpu >= 0.6 and others >= child_cpu - TICK

    before, t0 = threads.sample(), time.process_time()
    _spin_here(0.6)
    after, t1 = threads.sample(), time.process_time()
    own = after.own - before.own
    assert own == pytest.approx(t1 - t0, abs=TICK) and own >= 0.6 - TICK
    assert after.busy - before.busy >= own - TICK


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
    """A count other than torch's default (the test session runs torch with one thread: conftest)."""
    wanted = threads.torch_default() + 1
    monkeypatch.setenv("VALUEAUDIT_THREADS", str(wanted))
    before = torch.get_num_threads()
    seen = []
    req = request.ScoreRequest(model=str(tiny_llama_rm), kind="rm", words=("love", "power", "truth"),
                               prompts=tuple(prompts.paper_prompts()[:2]), corpus="mini", db=str(tmp_path / "t.duckdb"),
                               batch_size=2, device="cpu", engine="naive")
    result = runner.score(req, on_progress=lambda p: seen.append(torch.get_num_threads()))
    assert seen and set(seen) == {wanted}
    assert torch.get_num_threads() == before
    assert json.loads(result.check["provenance"])["cpu_threads"] == wanted
    assert f"{wanted} CPU threads instead of torch's {wanted - 1} (VALUEAUDIT_THREADS={wanted})" in result.notes
