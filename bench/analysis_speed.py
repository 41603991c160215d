"""Benchmark: analysis.figure1_from_store on an MFD-sized synthetic store.

10 reward models (2 families) x 54 paper prompts x 1,650 words (5 categories, some words
in two) = 891,000 scores in a temporary DuckDB. Random scores with a fixed seed; the
target is well under 2 s end to end. Run: python bench/analysis_speed.py [--repeats N]"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import analysis, prompts  # noqa: E402
from core.store import Store  # noqa: E402

N_MODELS, N_WORDS = 10, 1650
CATEGORIES = ["Authority", "Care", "Fairness", "Loyalty", "Sanctity"]


def synthetic_words(rng: np.random.Generator) -> pd.DataFrame:
    """1,650 words, each in one foundation; every tenth also in a second one (as in MFD)."""
    words = [f"word{i:04d}" for i in range(N_WORDS)]
    first = rng.integers(0, len(CATEGORIES), N_WORDS)
    rows = [(w, CATEGORIES[c], "") for w, c in zip(words, first)]
    rows += [(w, CATEGORIES[(c + 1) % len(CATEGORIES)], "") for w, c in zip(words[::10], first[::10])]
    return pd.DataFrame(rows, columns=["word", "category", "subcategory"])


def build_store(path: Path, words: pd.DataFrame, rng: np.random.Generator) -> Store:
    store = Store(path)
    vocab = words["word"].unique()
    ps = prompts.paper_prompts()
    pid = np.repeat([p.prompt_id for p in ps], len(vocab))
    ptext = np.repeat([p.text for p in ps], len(vocab))
    resp = np.tile(vocab, len(ps))
    for m in range(N_MODELS):
        family = "gemma" if m < 4 else "llama"
        key = f"bench:{family}-rm-{m}"
        store.upsert_model(key, f"bench/{family}-rm-{m}", "rm", family, source="scored")
        rows = pd.DataFrame({"prompt_id": pid, "prompt": ptext, "response": resp,
                             "value": rng.normal(size=len(resp)).round(3)})  # rounding makes ties
        store.add_scores(key, "rm", rows)
    return store


def run_once(store: Store, words: pd.DataFrame, texts: list[str]) -> tuple[float, float, float, float, dict]:
    """Wall and CPU seconds of the path the CLI and app take: ranks and medians inside
    DuckDB (store.median_ranks), then the statistics in numpy (CPU counts all threads)."""
    t0, c0 = time.perf_counter(), time.process_time()
    med = store.median_ranks(words, "rm", None, texts)
    t1, c1 = time.perf_counter(), time.process_time()
    result = analysis.figure1_from_store(store, words, "synthetic-mfd", prompt_texts=texts,
                                         permutations=10000, seed=0)
    t2, c2 = time.perf_counter(), time.process_time()
    assert len(med) == len(result["median_ranks"])
    return t1 - t0, t2 - t1, c1 - c0, c2 - c1, result


def switch_once(store: Store, words: pd.DataFrame, texts: list[str]) -> tuple[float, float]:
    """Wall seconds of what the Compare page does on a corpus switch (issue 12): who is
    scored and how completely (one aggregate in DuckDB), the statistics, and the chart."""
    from core import charts, coverage, ui
    t0, c0 = time.perf_counter(), time.process_time()
    vocab = pd.DataFrame({"w": words["word"].unique()}, dtype=str)
    counts = store.query("""SELECT m.name AS model, m.family, s.prompt_id, count(*) AS n_words
                            FROM scores s JOIN models m USING (model_key)
                            WHERE s.kind = 'rm' AND s.response IN (SELECT w FROM vocab) GROUP BY ALL""", vocab=vocab)
    cov = coverage.model_coverage_counts(counts)
    result = analysis.figure1_from_store(store, words, "synthetic-mfd", list(cov["model"]), texts,
                                         permutations=10000, seed=0)
    med = pd.DataFrame(result["median_ranks"])
    charts.compare_figure(med, ui.tests_table(result)).to_plotly_json()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    words = synthetic_words(rng)
    texts = [p.text for p in prompts.paper_prompts()]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        store = build_store(Path(tmp) / "bench.duckdb", words, rng)
        print(f"built store: {store.stats()['n_scores']:,} scores in {time.perf_counter() - t:.1f} s")
        runs = [run_once(store, words, texts) for _ in range(args.repeats)]
        switched = [switch_once(store, words, texts) for _ in range(args.repeats)]
    switch, switch_cpu = [s[0] for s in switched], [s[1] for s in switched]
    load, fig, load_cpu, fig_cpu = ([r[i] for r in runs] for i in range(4))
    total = fig  # figure1_from_store is the whole analysis (it computes the medians itself)
    res = runs[-1][4]
    print(f"{len(res['median_ranks']):,} median ranks, {len(res['family_tests'])} family tests, "
          f"{len(res['mixed_model']['terms'])} mixed-model terms; {args.repeats} repeats, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':<22}{'median s':>10}{'min s':>8}{'max s':>8}{'median CPU s':>14}")
    for name, xs, cs in (("medians in DuckDB", load, load_cpu), ("figure1_from_store", fig, fig_cpu)):
        print(f"{name:<22}{statistics.median(xs):>10.3f}{min(xs):>8.3f}{max(xs):>8.3f}{statistics.median(cs):>14.3f}")
    print(f"{'Compare corpus switch':<22}{statistics.median(switch):>10.3f}{min(switch):>8.3f}{max(switch):>8.3f}"
          f"{statistics.median(switch_cpu):>14.3f}")
    target = 2.0
    ok = statistics.median(total) < target and statistics.median(switch) < target
    print(f"target < {target:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
