"""Benchmark: the stricter analysis on the paper's published Big Two scores (issue 22) — the
word-level table, the draws (prompts and words; 10,000 by default), the
family gaps, the four rank-interval panels, the crossed mixed model with Satterthwaite df,
and the whole `python -m core analyze --corpus big2-nouns --uncertainty --json` as a process.

Each step is timed as wall and CPU seconds (CPU ~ wall on an idle machine; on a busy one the
wall time says more about the machine than the code). Needs VALUEAUDIT_PAPER_DATA (the
published scores are imported into a temporary DuckDB).

Run from the repository root: python -m bench.uncertainty_speed [--reps N] [--repeats N] [--no-cli]"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI run")
    args = ap.parse_args()
    from core import corpora, crossed, uncertainty, words
    from core.published import import_published
    from core.store import Store
    rows: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        store = Store(db)
        import_published(store)
        w = corpora.load("big2-nouns").words
        for _ in range(args.repeats):
            ranks, *t = timed(lambda: words.ranked_from_store(store, w, "big2-nouns"))
            rows.setdefault("word ranks from the store", []).append(t)
            draws, *t = timed(lambda: uncertainty.resample(ranks, w, reps=args.reps))
            rows.setdefault(f"resample ({args.reps:,} draws, 4 panels)", []).append(t)
            _, *t = timed(lambda: uncertainty.family_gaps(resamples=draws))
            rows.setdefault("family gaps (from the draws)", []).append(t)
            _, *t = timed(lambda: [uncertainty.rank_intervals(None, None, fr, cat, resamples=draws)
                                   for fr, cat in draws.panels])
            rows.setdefault("rank intervals, 4 panels", []).append(t)
            _, *t = timed(lambda: crossed.crossed_model(ranks, w))
            rows.setdefault("crossed mixed model + df", []).append(t)
            if not args.no_cli:
                cmd = [sys.executable, "-m", "core", "analyze", "--corpus", "big2-nouns", "--db", str(db),
                       "--uncertainty", "--reps", str(args.reps), "--json"]
                t0 = time.perf_counter()
                r0 = os.times()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                r1 = os.times()
                rows.setdefault("CLI analyze --uncertainty --json", []).append(
                    (time.perf_counter() - t0, (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)))
    print(f"{args.repeats} repeats, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':<42}{'median wall s':>14}{'min wall s':>11}{'median CPU s':>14}")
    for name, ts in rows.items():
        wall, cpu = [x[0] for x in ts], [x[1] for x in ts]
        print(f"{name:<42}{statistics.median(wall):>14.2f}{min(wall):>11.2f}{statistics.median(cpu):>14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
