"""Naive vs cached scoring speed, end to end through the CLI (issues 5 and 16).

One command, results as markdown ready for docs/benchmarks.md (and JSON) in bench/results/:

    python -m bench.scoring_speed --busy     # the full set (~25-45 min on an idle 2-core CPU)
    python -m bench.scoring_speed --quick    # 3 prompts and a 2-layer big model: a smoke run

What it measures, each engine as its own process and alone (the other engine is not running):

1. The issue's configuration: a random-weight Llama-architecture RM shaped like the issue's
   (hidden 512, 8 layers, MLP 1536: 27.7M parameters) whose byte-level BPE is trained
   in-process with Llama 3's own pre-tokenizer split and the Llama 3 chat template's fixed
   lines, so a row is ~51 tokens and a suffix ~3 (the issue: 48 and 2.8; ideal ratio ~16x),
   on the Big Two nouns x the 18 best/greatest prompts (4,734 rows), CPU float32, batch
   size 32 — at torch's default thread count and at 1 thread. Per run:
       python -m core score --model DIR --kind rm --corpus big2-nouns --prompts FILE.yaml \
           --engine naive|cached --db DB --device cpu --quiet
       python -m core export --db DB --model DIR --out FILE.csv
   timed from process start to the CSV written (end to end), plus, from inside the score
   process, the seconds in `scoring.run` (scoring only) and in imports + model load; peak
   RSS of the score process; rows/s.
2. With --busy: the same at the default thread count with a second busy process on the
   machine (a 1-thread matrix-product loop, started before and stopped after each run).
3. A 2B-class model: Gemma 2 2B's shapes (hidden 2304, 8 heads, 4 KV heads, head dim 256,
   MLP 9216, soft-capping, sliding window) with random weights and fewer layers
   (--big-layers, default 8 of 26) on the first --big-prompts prompts.

Also: the ideal speed-up (tokens a naive run processes per row / tokens the cached run
processes per row, the prefix counted once per prompt) and each ratio's share of it, the
max |difference| between the two engines' exports (must be <= 1e-4), CPU model, core
count, torch threads, the cores other processes keep busy at the start and before each
run (and the load average), versions. Timings taken while other work runs on the machine
are not comparable: the report says so when other processes keep more than IDLE_BUSY
cores busy at the start (measured over 3 s from
/proc/stat, as core/engines/threads.py does; the load average lags by minutes)."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if not os.environ.get("VALUEAUDIT_PAPER_DATA") and (ROOT.parent / "shared" / "paper-data").is_dir():
    os.environ["VALUEAUDIT_PAPER_DATA"] = str(ROOT.parent / "shared" / "paper-data")  # offline copy
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SMALL = dict(arch="llama", kind="rm", hidden=512, layers=8, heads=8, kv_heads=8, intermediate=1536, seed=0,
             llama3_split=True)
SMALL_NAME = "llama3-rm-28m"
# The Llama 3 template's fixed text, as tokenizer training text: a real Llama 3 tokenizer
# has merges for it ("Today", "assistant", "\n\n", digit groups), the in-process one learns them here.
LLAMA3_FIXED = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
                "2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
IDLE_BUSY = 0.3   # cores other processes keep busy at the start above this: not an idle machine
ENGINES = ("naive", "cached")

# The score process, instrumented from outside: wraps models.load, scoring.run and the
# measurement checks the CLI runs after scoring (issue 15) to time them
# (nothing in core changes) and prints one JSON line on stderr at exit.
_SCORE_WRAPPER = r"""
import json, sys, time
t0 = time.perf_counter()
from core import checks, cli, models, scoring
marks = {"imports_s": time.perf_counter() - t0}
_load, _run, _checks = models.load, scoring.run, checks.run_checks
def load(*a, **k):
    t = time.perf_counter(); r = _load(*a, **k); marks["load_s"] = time.perf_counter() - t; return r
def run(*a, **k):
    marks["torch_threads"] = __import__("torch").get_num_threads()   # what core/engines/threads.py chose
    t = time.perf_counter(); r = _run(*a, **k); marks["scoring_s"] = time.perf_counter() - t
    marks["engine"] = r.engine; marks["notes"] = r.notes; return r
def run_checks(*a, **k):
    t = time.perf_counter(); r = _checks(*a, **k); marks["checks_s"] = time.perf_counter() - t; return r
models.load, scoring.run, checks.run_checks = load, run, run_checks
code = cli.main(sys.argv[1:])
print("BENCH " + json.dumps(marks), file=sys.stderr)
sys.exit(code)
"""

_BUSY = "import torch\ntorch.set_num_threads(1)\na = torch.randn(1024, 1024)\nwhile True:\n    a = (a @ a).tanh_()\n"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_small(out: Path) -> Path:
    from tests.tiny_models import LLAMA3_TEMPLATE, make_tiny
    model = out / SMALL_NAME
    if not (model / "config.json").exists():
        make_tiny(model, template=LLAMA3_TEMPLATE, extra_text=[LLAMA3_FIXED], **SMALL)
    return model


def build_big(out: Path, layers: int) -> Path:
    """Gemma 2 2B's shapes with random weights, `layers` decoder layers, the test tokenizer."""
    import torch
    from transformers import AutoModelForSequenceClassification, Gemma2Config

    from tests.tiny_models import make_tokenizer
    model = out / f"gemma2-2b-shape-{layers}l-rm"
    if (model / "config.json").exists():
        return model
    tok = make_tokenizer("gemma2")
    cfg = Gemma2Config(vocab_size=len(tok), hidden_size=2304, intermediate_size=9216, num_hidden_layers=layers,
                       num_attention_heads=8, num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256,
                       sliding_window=4096, max_position_embeddings=8192, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, num_labels=1)
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(cfg).save_pretrained(model)
    tok.save_pretrained(model)
    return model


def write_prompts(out: Path, n: int | None) -> Path:
    from core import prompts
    chosen = [p for p in prompts.paper_prompts() if p.prompt_id.split("_")[0] in ("best", "greatest")]
    assert len(chosen) == 18
    chosen = chosen[:n] if n else chosen
    pfile = out / f"prompts_best_greatest_{len(chosen)}.yaml"
    pfile.write_text("".join(f'{p.prompt_id}: "{p.text}"\n' for p in chosen))
    return pfile


def ideal_ratio(model: Path, pfile: Path) -> dict:
    """Tokens a naive run processes per row / tokens the cached run processes per row."""
    from core import corpora, models, prompts
    from core.engines.cached import CachedEngine
    from core.engines.tokens import rm_ids_batch
    loaded = models.load(str(model), "rm", device="cpu", dtype="float32")
    eng = CachedEngine(loaded)
    words = corpora.load("big2-nouns").vocabulary
    full = cached = rows = 0
    for p in prompts.load(pfile):
        seqs = rm_ids_batch(loaded.tokenizer, p.text, words)
        prefix = eng.rm_prefix(p.text, seqs)
        full += sum(len(s) for s in seqs)
        cached += len(prefix) + sum(len(s) - len(prefix) if s[:len(prefix)] == prefix else len(s) for s in seqs)
        rows += len(seqs)
    return dict(n_params=loaded.n_params, rows=rows, mean_full_tokens=full / rows,
                mean_cached_tokens=cached / rows, ideal_ratio=full / cached)


def busy_cores(seconds: float) -> float:
    """Cores other processes keep busy over the next `seconds` (this process sleeps)."""
    from core.engines import threads
    before = threads.sample()
    time.sleep(seconds)
    after = threads.sample()
    return threads.others_busy(before, after) if before and after else float("nan")


def run_engine(engine: str, model: Path, pfile: Path, out: Path, threads: int | None, tag: str,
               batch_size: int) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
        if threads:
            env[var] = str(threads)
    db, csv = out / f"{tag}-{engine}.duckdb", out / f"{tag}-{engine}.csv"
    for f in (db, csv, Path(str(db) + ".wal")):
        f.unlink(missing_ok=True)
    args = ["score", "--model", str(model), "--kind", "rm", "--corpus", "big2-nouns", "--prompts", str(pfile),
            "--engine", engine, "--db", str(db), "--device", "cpu", "--batch-size", str(batch_size), "--quiet"]
    busy_before = busy_cores(1.0)
    log_out, log_err = out / f"{tag}-{engine}.stdout", out / f"{tag}-{engine}.stderr"
    t0 = time.perf_counter()
    with open(log_out, "w") as fo, open(log_err, "w") as fe:
        proc = subprocess.Popen([sys.executable, "-c", _SCORE_WRAPPER, *args], cwd=ROOT, env=env, stdout=fo, stderr=fe)
        _, status, usage = os.wait4(proc.pid, 0)   # rusage of this process alone: its peak RSS
    t_score = time.perf_counter() - t0
    stderr = log_err.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{engine}: score failed\n{log_out.read_text()}\n{stderr}")
    subprocess.run([sys.executable, "-m", "core", "export", "--db", str(db), "--model", str(model), "--out", str(csv)],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    marks = next(json.loads(line[6:]) for line in stderr.splitlines() if line.startswith("BENCH "))
    marks["engine_ran"] = marks.pop("engine")
    return dict(engine=engine, seconds=time.perf_counter() - t0, seconds_score_process=t_score,
                peak_rss_mb=usage.ru_maxrss / 1024, busy_before=busy_before, csv=str(csv), **marks)


def compare(model, pfile, out, threads, tag, batch_size, rows, busy=False) -> dict:
    res = {}
    for e in ENGINES:
        hog = subprocess.Popen([sys.executable, "-c", _BUSY], env=dict(os.environ, OMP_NUM_THREADS="1")) \
            if busy else None
        try:
            if hog:
                time.sleep(2)
            res[e] = run_engine(e, model, pfile, out, threads, tag, batch_size)
        finally:
            if hog:
                hog.kill()
                hog.wait()
    import pandas as pd
    a, b = (pd.read_csv(res[e]["csv"]).set_index(["prompt_id", "response"])["value"] for e in ENGINES)
    assert len(a) == len(b) == rows, (len(a), len(b), rows)
    for r in res.values():
        r["rows_per_s"] = rows / r["seconds"]
        r.pop("csv")
    return dict(tag=tag, threads=threads or "default", busy=busy, engines=res,
                max_abs_diff=float((a - b.reindex(a.index)).abs().max()),
                ratio=res["naive"]["seconds"] / res["cached"]["seconds"],
                ratio_scoring=res["naive"]["scoring_s"] / res["cached"]["scoring_s"])


def markdown(meta: dict, small: dict, runs: list[dict], big: dict | None, big_runs: list[dict]) -> str:
    la, busy = meta["load_start"], meta["busy_start"]
    lines = [f"## Scoring engines, {meta['date']}", "",
             f"Machine: {meta['cpu']}, {meta['cores']} cores, torch default threads {meta['default_threads']}; "
             f"other processes kept {busy:.2f} cores busy at the start (3 s, /proc/stat); load average "
             f"{la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} (1 / 5 / 15 min); torch "
             f"{meta['torch']}, transformers {meta['transformers']}, Python {meta['python']}.", ""]
    if not busy <= IDLE_BUSY:
        lines.extend([f"**Not an idle machine** (other processes kept {busy:.2f} cores busy at the start, over "
                      f"{IDLE_BUSY}): these timings are not valid as speed ratios; rerun on an idle machine.", ""])

    def table(title, info, rs):
        lines.extend([f"### {title}", "",
                      f"{info['rows']} rows, {info['n_params'] / 1e6:.1f}M parameters; ideal ratio "
                      f"{info['mean_full_tokens']:.1f} / {info['mean_cached_tokens']:.2f} tokens per row = "
                      f"**{info['ideal_ratio']:.1f}x**.", "",
                      "| threads (torch) | second busy process | engine | end to end | scoring only | imports + load "
                      "| checks | rows/s | peak RSS | cores busy elsewhere before | ratio end to end | ratio scoring | share of ideal "
                      "(e2e / scoring) | max abs diff |",
                      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"])
        for r in rs:
            for e in ENGINES:
                x = r["engines"][e]
                ratio = (f"**{r['ratio']:.1f}x**", f"{r['ratio_scoring']:.1f}x",
                         f"{100 * r['ratio'] / info['ideal_ratio']:.0f} % / "
                         f"{100 * r['ratio_scoring'] / info['ideal_ratio']:.0f} %", f"{r['max_abs_diff']:.1e}") \
                    if e == "cached" else ("", "", "", "")
                lines.append(f"| {r['threads']} ({x.get('torch_threads', '?')}) | {'yes' if r['busy'] else 'no'} "
                             f"| {e} | {x['seconds']:.1f} s | "
                             f"{x['scoring_s']:.1f} s | {x['imports_s'] + x['load_s']:.1f} s | {x.get('checks_s', 0):.1f} s | "
                             f"{x['rows_per_s']:.0f} | "
                             f"{x['peak_rss_mb']:.0f} MB | {x['busy_before']:.2f} | " + " | ".join(ratio) + " |")
        notes = sorted({n for r in rs for e in ENGINES for n in r["engines"][e].get("notes", [])})
        lines.extend([""] + [f"- note: {n}" for n in notes] + [""])
    table(f"Issue configuration: {small['n_params'] / 1e6:.1f}M Llama-3-template RM, Big Two nouns x "
          f"{meta['prompts']} best/greatest prompts", small, runs)
    if big:
        table(f"2B-class model: Gemma 2 2B shapes, {meta['big_layers']} of 26 layers, random weights", big, big_runs)
    lines.append("Reproduce: `python -m bench.scoring_speed" + (" --quick" if meta["quick"] else "")
                 + (" --busy" if meta["busy"] else "") + "`.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "cache" / "bench"), help="folder for models, DBs and CSVs")
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"), help="folder for the markdown and JSON")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="3 prompts, big model with 2 layers on 1 prompt")
    ap.add_argument("--busy", action="store_true",
                    help="also run both engines (default threads) beside a second busy process")
    ap.add_argument("--big-layers", type=int, default=None,
                    help="decoder layers of the 2B-class model (default 8, 2 with --quick; 0: skip it)")
    ap.add_argument("--big-prompts", type=int, default=2, help="prompts for the 2B-class model")
    args = ap.parse_args(argv)
    out, results = Path(args.out), Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    import torch
    import transformers
    meta = dict(date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), cpu=cpu_model(),
                cores=os.cpu_count(), default_threads=torch.get_num_threads(), load_start=os.getloadavg(),
                busy_start=busy_cores(3.0),
                torch=torch.__version__, transformers=transformers.__version__, python=platform.python_version(),
                quick=args.quick, busy=args.busy, big_layers=args.big_layers if args.big_layers is not None else 2 if args.quick else 8,
                prompts=3 if args.quick else 18)
    n_prompts = 3 if args.quick else None
    small_model, pfile = build_small(out), write_prompts(out, n_prompts)
    small = ideal_ratio(small_model, pfile)
    runs = [compare(small_model, pfile, out, None, "small-default", args.batch_size, small["rows"]),
            compare(small_model, pfile, out, 1, "small-1t", args.batch_size, small["rows"])]
    if args.busy:
        runs.append(compare(small_model, pfile, out, None, "small-busy", args.batch_size, small["rows"], busy=True))
    big, big_runs = None, []
    if meta["big_layers"]:
        big_model = build_big(out, meta["big_layers"])
        bfile = write_prompts(out, 1 if args.quick else args.big_prompts)
        big = ideal_ratio(big_model, bfile)
        big_runs = [compare(big_model, bfile, out, None, "big-default", args.batch_size, big["rows"])]
    md = markdown(meta, small, runs, big, big_runs)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (results / f"scoring_speed-{stamp}.md").write_text(md)
    (results / f"scoring_speed-{stamp}.json").write_text(json.dumps(
        dict(meta=meta, small=small, runs=runs, big=big, big_runs=big_runs), indent=2, default=str))
    print(md)
    print(f"written: {results / f'scoring_speed-{stamp}.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
