"""Helpers shared by several test files: the command line in a subprocess (`cli`,
`last_line`) and in-process (`run_cli`, `one_line_error`), the crossed model against an R run
(`assert_crossed_equals_r`). The tiny models live in
`tests/tiny_models.py`, the independent scorer in `tests/plain_scorer.py`, Ray's stand-in in
`tests/fake_ray.py`, the browser tests' server in `tests/browser_server.py`."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from core import cli as core_cli

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, check=True, timeout=900):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


def last_line(proc):
    return proc.stdout.strip().splitlines()[-1]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    rc = core_cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc: int, err: str, *fragments: str) -> None:
    # In-process, transformers was imported before the CLI could quiet its progress bars.
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and "it/s]" not in ln]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert rc == 2 and len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err, err
    for f in fragments:
        assert f in errors[0], (f, errors[0])


def assert_crossed_equals_r(fit: dict, ref: dict) -> None:
    """core/crossed.py's fit (or `analyze --uncertainty --json`'s `crossed`) against an R
    lme4 + lmerTest run: estimates 1e-3 relative, SEs 2e-3, df 1e-3, p within 0.002, variances
    1e-3 (issue 22's bar)."""
    assert [t["term"] for t in fit["terms"]] == [t["term"] for t in ref["terms"]]
    for got, want in zip(fit["terms"], ref["terms"]):
        assert got["estimate"] == pytest.approx(want["estimate"], rel=1e-3, abs=1e-9), got["term"]
        assert got["se"] == pytest.approx(want["se"], rel=2e-3), got["term"]
        assert got["df"] == pytest.approx(want["df"], rel=1e-3), got["term"]
        assert abs(got["p"] - want["p"]) <= 0.002, got["term"]
        # the interval is the t interval with those df, not +-1.96 SE
        q = stats.t.ppf(0.975, want["df"])
        assert got["ci_low"] == pytest.approx(want["estimate"] - q * want["se"], rel=2e-3, abs=1e-6)
    assert set(fit["variances"]) == set(ref["variances"])
    for k, v in ref["variances"].items():
        assert fit["variances"][k] == pytest.approx(v, rel=1e-3, abs=1e-6), k
    assert fit["reml"] == pytest.approx(ref["reml"], rel=1e-9)


def synthetic_rm_scores(store, words, models: dict, prompt_ids, seed: int = 0) -> None:
    """Random RM scores of `words` on the paper prompts `prompt_ids` for `models` ({name: family}),
    stored as scored models: enough for a chart's layout (browser tests), never for its numbers."""
    import numpy as np
    import pandas as pd

    from core import prompts as _prompts
    text = {p.prompt_id: p.text for p in _prompts.paper_prompts()}
    rng = np.random.default_rng(seed)
    words = list(dict.fromkeys(words))
    for name, fam in models.items():
        key = f"hub:{name}@synthetic~float32"
        store.upsert_model(key, name, "rm", fam)
        rows = pd.DataFrame([{"prompt_id": p, "prompt": text[p], "response": w} for p in prompt_ids for w in words])
        rows["value"] = rng.normal(size=len(rows))
        store.add_scores(key, "rm", rows)


def shown(markdown: str) -> str:
    """Markdown source as a reader sees it: the backslash escapes that `core.escape.markdown`
    puts before punctuation in data removed (for tests that look for a sentence on a page)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def sent_to_browser(at) -> str:
    """Everything a page run under AppTest sends to the browser (every element's protobuf:
    text, widget options, table data, chart specs), with JSON's and markdown's escaped
    slashes written back as '/', so a server path is found however it was encoded."""
    return unescape_slashes("\n".join(str(node.proto) for node in at._tree if getattr(node, "proto", None) is not None))


def unescape_slashes(text: str) -> str:
    """'/' however JSON (\\u002f) or markdown (\\/) escaped it, once or twice."""
    for escaped in ("\\\\u002f", "\\u002f", "\\\\/", "\\/"):
        text = text.replace(escaped, "/")
    return text
