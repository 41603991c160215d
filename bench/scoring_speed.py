"""Naive vs cached scoring speed, end to end through the CLI (issue 5).

A random-weight Llama-architecture reward model of about 30M parameters with the Llama 3
chat template (system header with the knowledge-cutoff and date lines), the Big Two nouns
x the 18 best/greatest prompts, on CPU. Each engine runs as its own process:

    python -m core score --model DIR --kind rm --corpus big2-nouns --prompts FILE.yaml \
        --engine naive|cached --db DB --device cpu --quiet
    python -m core export --db DB --model DIR --out FILE.csv

timed from process start to export written (imports and model loading included), with the
peak resident memory of the score process. Also reported: rows/s, the speed-up, the max
|difference| between the two exports, and the ideal speed-up (mean full-sequence tokens /
mean suffix tokens per row, prefix tokens counted once per prompt).

    python bench/scoring_speed.py [--out DIR] [--batch-size 32] [--threads 1] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
if not os.environ.get("VALUEAUDIT_PAPER_DATA") and (ROOT.parent / "shared" / "paper-data").is_dir():
    os.environ["VALUEAUDIT_PAPER_DATA"] = str(ROOT.parent / "shared" / "paper-data")  # offline copy
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODEL = dict(arch="llama", kind="rm", hidden=512, layers=8, heads=8, kv_heads=8, intermediate=1792, seed=0)


def build(out: Path) -> tuple[Path, Path]:
    from core import prompts
    from tiny_models import LLAMA3_TEMPLATE, make_tiny
    model = out / "llama-rm-30m"
    if not (model / "config.json").exists():
        make_tiny(model, template=LLAMA3_TEMPLATE, **MODEL)
    pfile = out / "prompts_best_greatest.yaml"
    chosen = [p for p in prompts.paper_prompts() if p.prompt_id.split("_")[0] in ("best", "greatest")]
    assert len(chosen) == 18
    pfile.write_text("".join(f'{p.prompt_id}: "{p.text}"\n' for p in chosen))
    return model, pfile


def run_engine(engine: str, model: Path, pfile: Path, out: Path, batch_size: int, env: dict) -> dict:
    db = out / f"{engine}.duckdb"
    csv = out / f"{engine}.csv"
    for f in (db, csv, Path(str(db) + ".wal")):
        f.unlink(missing_ok=True)
    score = [sys.executable, "-m", "core", "score", "--model", str(model), "--kind", "rm", "--corpus", "big2-nouns",
             "--prompts", str(pfile), "--engine", engine, "--db", str(db), "--device", "cpu",
             "--batch-size", str(batch_size), "--quiet"]
    export = [sys.executable, "-m", "core", "export", "--db", str(db), "--model", str(model), "--out", str(csv)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(score, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    t_score = time.perf_counter() - t0
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{engine}: score failed\n{stdout}\n{stderr}")
    subprocess.run(export, cwd=ROOT, env=env, check=True, capture_output=True)
    t_total = time.perf_counter() - t0
    return dict(engine=engine, seconds_score=t_score, seconds=t_total, peak_rss_mb=usage.ru_maxrss / 1024,
                stdout=stdout.strip(), notes=[l for l in stderr.splitlines() if l.startswith("note:")], csv=str(csv))


def ideal_ratio(model: Path, pfile: Path) -> dict:
    """Tokens a naive run processes per row / tokens the cached run processes per row."""
    from core import corpora, models, prompts, scoring
    from core.prefix_cache import CachedEngine
    loaded = models.load(str(model), "rm", device="cpu", dtype="float32")
    eng = CachedEngine(loaded)
    words = corpora.load("big2-nouns").vocabulary
    full = cached = rows = 0
    for p in prompts.load(pfile):
        seqs = [scoring.rm_ids(loaded.tokenizer, p.text, w) for w in words]
        prefix = eng.rm_prefix(p.text, seqs)
        full += sum(len(s) for s in seqs)
        cached += len(prefix) + sum(len(s) - len(prefix) if s[:len(prefix)] == prefix else len(s) for s in seqs)
        rows += len(seqs)
    return dict(n_params=loaded.n_params, rows=rows, mean_full_tokens=full / rows,
                mean_cached_tokens=cached / rows, ideal_ratio=full / cached)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "cache" / "bench"), help="folder for the model, DBs and CSVs")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads of each score process (OMP_NUM_THREADS; default 1: on a small shared "
                         "machine more threads than free cores make both engines slower and the timings noisy)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error",
               OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    model, pfile = build(out)
    info = ideal_ratio(model, pfile)
    res = {e: run_engine(e, model, pfile, out, args.batch_size, env) for e in ("naive", "cached")}

    import pandas as pd
    a, b = (pd.read_csv(res[e]["csv"]).set_index(["prompt_id", "response"])["value"] for e in ("naive", "cached"))
    assert len(a) == len(b) == info["rows"], (len(a), len(b), info["rows"])
    diff = float((a - b.reindex(a.index)).abs().max())
    summary = dict(info, batch_size=args.batch_size, threads=args.threads, cpu_count=os.cpu_count(),
                   load_average=os.getloadavg(),
                   max_abs_diff=diff, speedup=res["naive"]["seconds"] / res["cached"]["seconds"],
                   speedup_score_only=res["naive"]["seconds_score"] / res["cached"]["seconds_score"])
    for e in ("naive", "cached"):
        r = res[e]
        r["rows_per_s"] = info["rows"] / r["seconds"]
        summary[e] = {k: v for k, v in r.items() if k != "csv"}
    print(f"model: Llama RM, {info['n_params'] / 1e6:.1f}M parameters; {info['rows']} rows "
          f"(big2-nouns x 18 best/greatest prompts), CPU ({os.cpu_count()} cores, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.1f}), batch size {args.batch_size}")
    for e in ("naive", "cached"):
        r = res[e]
        print(f"{e:7s} {r['seconds']:7.1f} s end to end ({r['seconds_score']:.1f} s score)  "
              f"{r['rows_per_s']:7.1f} rows/s  peak RSS {r['peak_rss_mb']:.0f} MB  {' '.join(r['notes'])}")
    print(f"speed-up {summary['speedup']:.1f}x end to end; ideal (mean full {info['mean_full_tokens']:.1f} tokens / "
          f"mean cached {info['mean_cached_tokens']:.2f} tokens per row) {info['ideal_ratio']:.1f}x; "
          f"max |difference| {diff:.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
