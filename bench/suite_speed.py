"""How long the default test command takes (issue 21: at most 8 minutes on an idle 2-core
machine), and where its CPU goes. One command, results in bench/results/:

    python -m bench.suite_speed                 # README's test command, as .ci/run reads it
    python -m bench.suite_speed -- -n 0         # extra pytest arguments after --, e.g. no workers

It runs README's test command (between the test-command markers) with bench/suite_cpu.py
loaded, and records the wall seconds, the CPU seconds of the whole process tree (pytest, its
xdist workers and every process they waited for), the costliest tests and files, and how
many cores other processes kept busy during the run (from /proc/stat, as
core/engines/threads.py measures it). Wall time on a machine shared with other work says more
about the neighbours than about the suite: judge such a run by its CPU seconds, and by the
wall time only when the other processes kept (nearly) no core busy."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if not os.environ.get("VALUEAUDIT_PAPER_DATA") and (ROOT.parent / "shared" / "paper-data").is_dir():
    os.environ["VALUEAUDIT_PAPER_DATA"] = str(ROOT.parent / "shared" / "paper-data")  # as .ci/run does
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def readme_test_command() -> list[str]:
    """The first line between README's test-command markers, as .ci/run takes it."""
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("<!-- test-command -->") + 1:lines.index("<!-- /test-command -->")]
    return shlex.split(next(ln for ln in block if ln.strip() and not ln.startswith("```")))


def _per_worker(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        out[r.get("worker") or "main"] = round(out.get(r.get("worker") or "main", 0.0) + r["cpu_s"], 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("extra", nargs="*", help="more pytest arguments (after --)")
    args = ap.parse_args(argv)
    from core.engines import threads
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "results" / f"suite_speed-{stamp}"
    cmd = readme_test_command()
    if cmd[:1] == ["python"]:
        cmd[0] = sys.executable
    cmd += ["-p", "bench.suite_cpu", "--suite-cpu-json", f"{out}.tests.json", *args.extra]
    before, t0 = threads.sample(), time.monotonic()
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    wall, after = time.monotonic() - t0, threads.sample()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = threads.others_busy(before, after) if before and after else None
    # others_busy subtracts only this process's own time: the suite's (its children's) as well here.
    others = None if busy is None else max(0.0, busy - (kids.ru_utime + kids.ru_stime) / wall)
    tests = json.loads(Path(f"{out}.tests.json").read_text()) if Path(f"{out}.tests.json").exists() else {}
    result = {"command": shlex.join(cmd[:1] + cmd[1:]), "exit_code": rc, "wall_s": round(wall, 1),
              "user_s": round(kids.ru_utime, 1), "sys_s": round(kids.ru_stime, 1),
              "cores": os.cpu_count(), "other_processes_busy_cores": None if others is None else round(others, 2),
              "n_tests": len(tests.get("tests", [])),
              # the longest chain: what each xdist worker ran one after the other, in CPU seconds
              "cpu_s_per_worker": _per_worker(tests.get("tests", [])),
              "costliest_tests": tests.get("tests", [])[:15],
              "costliest_files": sorted(tests.get("by_file", {}).items(), key=lambda kv: -kv[1])[:10]}
    Path(f"{out}.json").write_text(json.dumps(result, indent=1))
    idle = others is not None and others < 0.3
    print(f"{result['n_tests']} tests, exit {rc}: {wall / 60:.1f} min wall, "
          f"{(kids.ru_utime + kids.ru_stime) / 60:.1f} min CPU ({kids.ru_utime:.0f} s user + {kids.ru_stime:.0f} s sys) "
          f"on {os.cpu_count()} cores; other processes kept {others if others is not None else float('nan'):.2f} "
          f"cores busy{'' if idle else ' — NOT an idle machine: judge by CPU seconds'}; "
          f"CPU s per worker {result['cpu_s_per_worker']}; {out}.json")
    return rc


if __name__ == "__main__":
    sys.exit(main())
