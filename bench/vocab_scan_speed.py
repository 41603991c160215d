"""Cost of a vocabulary scan (issue 11): rows/s of the cached engine vs the naive one.

A random-weight Llama-architecture reward model (the same ~30M-parameter model as
bench/scoring_speed.py, Llama 3 chat template, ~1000-token byte-level BPE vocabulary),
corpus `vocabulary` (every word token of its own vocabulary, single-token answers: the
cached engine's best case) x N paper prompts, on CPU, each engine in its own process:

    python -m core score --model DIR --kind rm --corpus vocabulary --prompts FILE.yaml \
        --engine naive|cached --db DB --device cpu --quiet

Reported: rows, seconds (process start to exit, model load and the one-batch cost
estimate included), rows/s, the speed-up, the max |difference| between the two engines'
scores, and the cost line the command printed before the job started. A real model's
vocabulary is ~100x larger (Llama 3: ~80k word tokens), so multiply the time accordingly.

    python -m bench.vocab_scan_speed [--out DIR] [--prompts 3] [--batch-size 32] [--threads 1] [--json FILE]
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
if not os.environ.get("VALUEAUDIT_PAPER_DATA") and (ROOT.parent / "shared" / "paper-data").is_dir():
    os.environ["VALUEAUDIT_PAPER_DATA"] = str(ROOT.parent / "shared" / "paper-data")  # offline copy
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.scoring_speed import build_small, write_prompts  # noqa: E402  (same model as the engine benchmark)


def run_engine(engine: str, model: Path, pfile: Path, out: Path, batch_size: int, env: dict) -> dict:
    import duckdb
    db = out / f"vocab-{engine}.duckdb"
    for f in (db, Path(str(db) + ".wal")):
        f.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "core", "score", "--model", str(model), "--kind", "rm", "--corpus", "vocabulary",
           "--prompts", str(pfile), "--engine", engine, "--db", str(db), "--device", "cpu",
           "--batch-size", str(batch_size), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{engine}: {proc.stderr.strip().splitlines()[-1]}")
    con = duckdb.connect(str(db), read_only=True)
    scores = dict(((p, r), v) for p, r, v in con.execute("SELECT prompt, response, value FROM scores").fetchall())
    con.close()
    cost = next((l for l in proc.stderr.splitlines() if l.startswith("vocabulary scan:")), "")
    return {"engine": engine, "rows": len(scores), "seconds": round(seconds, 2),
            "rows_per_s": round(len(scores) / seconds, 1), "cost_line": cost, "_scores": scores}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "cache" / "bench"))
    ap.add_argument("--prompts", type=int, default=3, help="best/greatest prompts to scan (1-18)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model, pfile18 = build_small(out), write_prompts(out, None)
    lines = pfile18.read_text().splitlines()[: a.prompts]
    pfile = out / f"prompts_vocab_{a.prompts}.yaml"
    pfile.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    res = {e: run_engine(e, model, pfile, out, a.batch_size, env) for e in ("naive", "cached")}
    n, c = res["naive"].pop("_scores"), res["cached"].pop("_scores")
    assert n.keys() == c.keys()
    report = {"prompts": a.prompts, "threads": a.threads, "batch_size": a.batch_size,
              "naive": res["naive"], "cached": res["cached"],
              "speedup": round(res["cached"]["rows_per_s"] / res["naive"]["rows_per_s"], 2),
              "max_abs_diff": max(abs(n[k] - c[k]) for k in n)}
    print(json.dumps(report, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
