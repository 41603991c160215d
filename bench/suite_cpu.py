"""Where the test suite spends its CPU: a pytest plugin that records, per test, the CPU seconds of
the process running it and of the child processes it waited for (CLI runs, dashboard servers,
the browser), with the wall seconds beside them. On a machine shared with other work, wall time
says more about the neighbours than about the tests; CPU seconds do not.

    python -m pytest -p bench.suite_cpu                      # the slowest 25 tests at the end
    python -m pytest -p bench.suite_cpu --suite-cpu-json bench/results/suite_cpu.json --suite-cpu-top 60

Works with xdist workers too (each worker's numbers travel with its reports). A session-scoped
fixture is counted in the first test that uses it: that is what the test costs when run alone,
and what the worker that runs it first pays. Used for docs/benchmarks.md's test-suite section."""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest

_rows: dict[str, dict] = {}
_start: dict[str, float] = {}


def pytest_addoption(parser):
    group = parser.getgroup("suite_cpu")
    group.addoption("--suite-cpu-json", default=None, help="write every test's CPU and wall seconds to this JSON file")
    group.addoption("--suite-cpu-top", type=int, default=25, help="how many of the costliest tests to list")


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Set-up, call and tear-down each add their CPU and wall seconds to the phase's report."""
    if call.when == "setup":
        _start[item.nodeid] = time.monotonic()
    outcome = yield
    report = outcome.get_result()
    if call.when == "teardown":
        began = _start.pop(item.nodeid, None)
        cpu0 = getattr(item, "_suite_cpu0", None)
        if began is not None and cpu0 is not None:
            report.user_properties.append(("suite_cpu", (_cpu() - cpu0, time.monotonic() - began)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._suite_cpu0 = _cpu()


def pytest_runtest_logreport(report):
    for key, value in report.user_properties:
        if key == "suite_cpu" and report.when == "teardown":
            cpu, wall = value
            _rows[report.nodeid] = {"test": report.nodeid, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                                    "worker": getattr(report, "node", None) and report.node.gateway.id}


def pytest_terminal_summary(terminalreporter, config):
    if not _rows:
        return
    rows = sorted(_rows.values(), key=lambda r: -r["cpu_s"])
    tr = terminalreporter
    total_cpu, total_wall = sum(r["cpu_s"] for r in rows), sum(r["wall_s"] for r in rows)
    tr.section("CPU seconds per test (this process + the children it waited for)")
    tr.write_line(f"{len(rows)} tests: {total_cpu:.0f} CPU s, {total_wall:.0f} wall s summed over tests")
    by_file: dict[str, float] = {}
    for r in rows:
        by_file[r["test"].split("::")[0]] = by_file.get(r["test"].split("::")[0], 0.0) + r["cpu_s"]
    for r in rows[:config.getoption("--suite-cpu-top")]:
        tr.write_line(f"{r['cpu_s']:8.1f} cpu {r['wall_s']:8.1f} wall  {r['test']}")
    tr.write_line("by file:")
    for f, cpu in sorted(by_file.items(), key=lambda kv: -kv[1])[:15]:
        tr.write_line(f"{cpu:8.1f} cpu  {f}")
    out = config.getoption("--suite-cpu-json")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({"tests": rows, "by_file": by_file}, indent=1))
