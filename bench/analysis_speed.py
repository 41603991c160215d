"""Benchmark: the Figure 1 analysis and the Compare page's corpus switch (issue 12: under 2 s
for MFD 2.0 with the 10 published models).

Two measurements:
- synthetic: 10 reward models (2 families) x 54 paper prompts x 1,650 words (5 categories,
  some words in two) = 891,000 scores in a temporary DuckDB, random scores, fixed seed;
  the analysis path of the CLI and the app (ranks in DuckDB, then the statistics);
- the page (with --paper-data DIR, a copy of the paper's data/ folder holding
  reward_model_scores/dict_MFD_20): the published files imported into a temporary DuckDB,
  then Streamlit's AppTest runs the real Compare page and switches Big Two -> MFD 2.0
  (mfd2-paper) -> mfd2, each switch a cold cache, timed as the page's whole script run.

Run from the repository root: python -m bench.analysis_speed [--repeats N] [--paper-data DIR]"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core import analysis, prompts, ranks, wording
from core.store import Store

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
    med = ranks.rank_summaries(store, words, prompt_texts=texts)["medians"]
    t1, c1 = time.perf_counter(), time.process_time()
    result = analysis.figure1_from_store(store, words, "synthetic-mfd", prompt_texts=texts,
                                         permutations=10000, seed=0)
    t2, c2 = time.perf_counter(), time.process_time()
    assert len(med) == len(result.median_ranks)
    return t1 - t0, t2 - t1, c1 - c0, c2 - c1, result


def switch_once(store: Store, words: pd.DataFrame, texts: list[str]) -> tuple[float, float]:
    """Wall seconds of what the Compare page does on a corpus switch (issue 12): who is
    scored and how completely (one aggregate in DuckDB), the statistics, and the chart."""
    from core import charts, coverage
    t0, c0 = time.perf_counter(), time.process_time()
    sel = coverage.select(store, "synthetic-mfd", words, texts)
    result = analysis.figure1_from_store(store, words, "synthetic-mfd", permutations=10000, seed=0, selection=sel)
    med = pd.DataFrame(result.median_ranks)
    charts.compare_figure(med, wording.tests_table(result)).to_plotly_json()
    return time.perf_counter() - t0, time.process_time() - c0


def page_switches(paper_data: Path, repeats: int) -> dict[str, list[float]]:
    """Seconds of the Compare page's script run on each corpus switch, as a visitor sees it
    (minus the browser's drawing): the published results imported once, caches cleared
    before every switch so each is the first visit to that corpus."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import appkit
    from core.published import import_published
    os.environ["VALUEAUDIT_PAPER_DATA"] = str(paper_data)
    times: dict[str, list[float]] = {"big2-nouns": [], "mfd2-paper": [], "mfd2": []}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VALUEAUDIT_DB"] = str(Path(tmp) / "published.duckdb")
        t = time.perf_counter()
        n = import_published(Store(os.environ["VALUEAUDIT_DB"]))
        print(f"imported the published results ({n}) in {time.perf_counter() - t:.1f} s")
        for _ in range(repeats):
            st.cache_data.clear()
            at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "compare.py"),
                                   default_timeout=300)
            t = time.perf_counter()
            at.run()
            times["big2-nouns"].append(time.perf_counter() - t)
            st.cache_data.clear()
            t = time.perf_counter()
            at.selectbox(key="cmp-corpus").set_value(appkit.MFD_CHOICE).run()
            times["mfd2-paper"].append(time.perf_counter() - t)
            assert at.radio(key="cmp-mfd-variant").value == "mfd2-paper" and not at.exception
            st.cache_data.clear()
            t = time.perf_counter()
            at.radio(key="cmp-mfd-variant").set_value("mfd2").run()
            times["mfd2"].append(time.perf_counter() - t)
            n_mfd = len(list((paper_data / "reward_model_scores" / "dict_MFD_20").glob("*.csv")))
            assert len(at.multiselect(key="cmp-models").value) == n_mfd and not at.exception  # models with an MFD run
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--paper-data", type=Path, help="a copy of the paper's data/ folder with its MFD score files")
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
    print(f"{len(res.median_ranks):,} median ranks, {len(res.family_tests or [])} family tests, "
          f"{len(res.mixed_model.terms) if res.mixed_model else 0} mixed-model terms; {args.repeats} repeats, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':<22}{'median s':>10}{'min s':>8}{'max s':>8}{'median CPU s':>14}")
    for name, xs, cs in (("medians in DuckDB", load, load_cpu), ("figure1_from_store", fig, fig_cpu)):
        print(f"{name:<22}{statistics.median(xs):>10.3f}{min(xs):>8.3f}{max(xs):>8.3f}{statistics.median(cs):>14.3f}")
    print(f"{'Compare corpus switch':<22}{statistics.median(switch):>10.3f}{min(switch):>8.3f}{max(switch):>8.3f}"
          f"{statistics.median(switch_cpu):>14.3f}")
    target = 2.0
    ok = statistics.median(total) < target and statistics.median(switch) < target
    if args.paper_data:
        for corpus_name, xs in page_switches(args.paper_data, args.repeats).items():
            print(f"{'Compare page: ' + corpus_name:<22}{statistics.median(xs):>10.3f}{min(xs):>8.3f}{max(xs):>8.3f}")
            ok = ok and statistics.median(xs) < target
    print(f"target < {target:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
