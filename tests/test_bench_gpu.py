"""bench/gpu.py's dry run, as the GPU machine would run it: a subprocess that cannot import
duckdb, streamlit or plotly, cannot open a network connection, and has no paper data. Every
stage must run and its report must hold every part the GPU run fills in (the figures are
CPU figures of 2-layer narrow models: only their presence and consistency are checked)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What the GPU machine lacks, made to fail here: those packages, and any connection out.
GPU_MACHINE = r"""
import runpy, socket, sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("duckdb", "streamlit", "plotly"):
            raise ImportError(f"{name} is not installed on the GPU machine")
sys.meta_path.insert(0, _Absent())
def _offline(*a, **k):
    raise OSError("no network on the GPU machine")
socket.socket.connect = _offline
socket.create_connection = _offline
sys.argv = ["bench.gpu", *sys.argv[1:]]
runpy.run_module("bench.gpu", run_name="__main__")
assert not {"duckdb", "streamlit", "plotly"} & set(sys.modules)
"""


@pytest.mark.slow
def test_gpu_bench_dry_run_runs_every_stage_offline_without_duckdb(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "VALUEAUDIT_PAPER_DATA"}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", VALUEAUDIT_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", GPU_MACHINE, "--dry-run", "--out", str(tmp_path / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (js,) = (tmp_path / "out").glob("gpu-dry-run-*.json")
    md = js.with_suffix(".md").read_text()
    rep = json.loads(js.read_text())
    assert rep["status"] == "complete" and rep["dry_run"] and not rep["skipped"] and rep["machine"]["device"] == "cpu"
    assert all(re.match(r"\[ *\d+\.\ds\] ", ln) for ln in proc.stdout.splitlines())  # progress: elapsed time
    assert rep["data"]["words"] == 263
    for name, n_prompts in (("gemma-2-2b", 2), ("llama-3.1-8b", 1)):
        m = rep["models"][name]
        assert m["config"]["layers"] == 2 and len(m["prompts"]) == n_prompts
        rows = 263 * n_prompts
        assert m["tokens"]["rows"] == rows and m["tokens"]["ideal_speedup"] > 1
        runs = {(r["engine"], r["batch_size"]) for r in m["runs"]}
        assert {("cached", 32), ("naive", 32), ("cached", 256), ("naive", 256)} <= runs
        for r in m["runs"]:
            assert r["rows"] == r["rows_expected"] == rows, r
            assert r["tokens_per_s"] > 0 and r["tflops"] > 0
        cmp = m["agreement"]["cached vs naive, bf16, batch 32"]
        assert cmp["rows"] == rows and cmp["max_abs"] >= 0
        # exact in real arithmetic: bf16's rounding must not send the cached engine to naive
        assert all(r["ran_as"] == "cached" for r in m["runs"] if r["engine"] == "cached"), m["runs"]
        checks = [c for r in m["runs"] for c in r.get("self_checks", [])]
        assert checks and all(c["passed"] and c["exact_max_difference"] <= 1e-4 for c in checks), checks
        rule = m["bf16_rule"]
        assert rule["bound"] >= rule["fixed"] and cmp["within_rule"] and cmp["rms_rel"] <= rule["bound"]
        assert m["agreement"]["naive bf16 vs naive fp32, batch 32"]["rows"] == 24
        assert m["load_s"] > 0 and m["save_s"] > 0  # save_pretrained + core.models.load
        assert f"## {m['label']}" in md
    oom = rep["models"]["gemma-2-2b"]["oom"]
    assert [o["engine"].split(",")[0] for o in oom] == ["cached", "naive"]
    for o in oom:  # the back-off ran, and every row was stored
        assert o["ok"] and o["backoffs"] >= 1 and o["rows_stored"] == o["rows_expected"] == 2 * 263, o
        assert o["backoffs_after_first_prompt"] == 0, o  # the job kept the size that worked
    proj = rep["projection"]
    assert len(proj["models"]) == 10 and proj["total_s"] > 0
    assert {r["shape"] for r in proj["models"]} == {"Gemma 2 2B", "Gemma 2 27B", "Llama 3.1 8B", "Llama 3.2 3B"}
    assert {r["engine"] for r in proj["models"] if "QRM" in r["model"] or "ArmoRM" in r["model"]} == {"naive"}
    assert "whole Big Two run" in md and "## Tolerance" in md and "exact arithmetic" in md
    assert "the cached engine's self-check fell back" not in md and "self-check passed" in md
