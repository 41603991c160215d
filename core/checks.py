"""Measurement checks recorded with every scoring run (table `run_checks`).

Why: a reward can silently change with batch size, padding side, engine or a doubled BOS,
and corpus words can silently split, drop or change on tokenization. Each run therefore
re-scores a small fixed sample several ways and compares with what was stored, counts how
each corpus word tokenizes, and keeps the exact chat-template text sent for one example.
A run whose invariance check fails is stored with status 'failed' and reported loudly —
never silently as good.

(a) invariance: stored value vs naive/cached engines at batch sizes 1 and k, and a
    left-padded batch (position ids from the mask); a second BOS is never added. In half
    precision each way is also re-scored in exact arithmetic (core/engines/precision.py),
    where it must equal the naive engine to float32's tolerance, and in the dtype it may
    differ from the stored value by the dtype's measured noise on this model: bf16's own
    rounding is not flagged, a wrong mask or a batch-dependent value is.
(b) tokenization coverage: per word, tokens alone and after a space; dropped (no tokens)
    or changed (decodes to other text: leading space, case, normalisation).
(c) the chat-template text actually sent for one (prompt, word)."""
from __future__ import annotations

import datetime as _dt
import json
import logging
import uuid
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from . import provenance, scoring
from .engines import precision
from .store import SCHEMA
from .errors import one_line

log = logging.getLogger(__name__)

TABLE_SQL = next(s for s in SCHEMA if "run_checks" in s)  # the table (core/store.py)

EngineFactory = Callable[[str, object], object]


def tolerance(dtype) -> tuple[float, float]:
    """(absolute, relative) tolerance: float32 math differs by ~1e-6; half precision by ~1e-2
    (the least allowed: `invariance` widens it to the dtype's measured noise on the model)."""
    return (1e-4, 1e-4) if "32" in str(dtype) or "64" in str(dtype) else (5e-2, 2e-2)


# ----------------------------------------------------------------------------------
# (a) invariance
# ----------------------------------------------------------------------------------
def sample(prompts: Sequence, words: Sequence[str], n_prompts: int = 2, n_words: int = 6, seed: int = 0):
    """A fixed, seeded sample: the first and last prompts and n_words spread over the corpus."""
    ps = list(prompts)
    ps = [ps[0], ps[-1]][:n_prompts] if len(ps) > 1 else ps
    ws = list(dict.fromkeys(words))
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(ws), size=min(n_words, len(ws)), replace=False)) if ws else []
    return ps, [ws[i] for i in pick]


def left_padded_scores(loaded, prompt: str, words: Sequence[str]) -> list[float]:
    """The sample scored in one LEFT-padded batch (position ids from the mask) — the way many
    pipelines batch; it must give the same values as the right-padded batches the engines use."""
    import torch
    tok = loaded.tokenizer
    if loaded.kind == "rm":
        seqs = [scoring.rm_ids(tok, prompt, w) for w in words]
        pad = scoring.pooling_pad_id(loaded, seqs)
    else:
        prefix = scoring.lm_prefix_ids(tok, prompt)
        wids = [scoring.word_ids(tok, w) for w in words]
        seqs = [list(prefix) + list(w) for w in wids]
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s)
        mask[i, width - len(s):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    dev = loaded.device
    cfg = scoring.text_config(loaded.model)
    old = getattr(cfg, "pad_token_id", None)
    if loaded.kind == "rm":
        cfg.pad_token_id = pad
    try:
        with torch.inference_mode():
            out = loaded.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev))
    finally:
        cfg.pad_token_id = old
    if loaded.kind == "rm":
        return scoring.reward_from_output(out)
    logp = torch.log_softmax(out.logits.float(), dim=-1)
    vals = []
    for i, w in enumerate(wids):
        start = width - len(seqs[i]) + len(prefix)
        p = torch.arange(start - 1, start + len(w) - 1, device=logp.device)
        vals.append(float(logp[i, p, torch.tensor(w, device=logp.device)].sum()))
    return vals


def bos_count(loaded, prompt: str, word: str) -> int:
    """How many BOS tokens open the sequence the model is fed (must be at most 1)."""
    tok = loaded.tokenizer
    bos = getattr(tok, "bos_token_id", None)
    if bos is None:
        return 0
    ids = scoring.rm_ids(tok, prompt, word) if loaded.kind == "rm" else scoring.lm_prefix_ids(tok, prompt)
    n = 0
    while n < len(ids) and ids[n] == bos:
        n += 1
    return n


def run_variants(engine: str, batch_size: int, n_words: int) -> list[tuple[str, int]]:
    """The re-scorings a run's checks need, one per axis the stored values must not depend
    on: the same engine at batch size 1 (batch size), the other engine at the run's batch
    size (engine); left padding is added by invariance() (padding side)."""
    other = "naive" if engine != "naive" else "cached"
    return [(engine, 1), (other, max(2, min(batch_size, n_words)))]


def _scores(engine, prompt: str, words: Sequence[str], batch_size: int) -> dict[str, float]:
    got = {}
    for ws, vs in engine.score(prompt, list(words), batch_size):
        got.update(zip(ws, vs))
    return got


def invariance(loaded, prompts: Sequence, words: Sequence[str], stored: dict | None = None, *,
               variants: Sequence[tuple[str, int]] = (("naive", 1), ("naive", 4), ("cached", 1), ("cached", 4)),
               left_padding: bool = True, make_engine: EngineFactory = scoring.make_engine,
               tol: tuple[float, float] | None = None) -> dict:
    """Re-score the sample each way in `variants` ((engine, batch size) pairs, each engine
    built once) and compare with the reference (the stored values when given, else the first
    variant). `make_engine(name, loaded)` builds each engine — pass your own to check an
    engine of yours. Half precision (unless `tol` is given): each way is also re-scored in
    exact arithmetic and must equal the naive engine's exact values within float32's
    tolerance; in the dtype a way passes within `tol`, or within NOISE_FACTOR x the dtype's
    noise on this sample in rms (precision.rounding_bound)."""
    atol, rtol = tol or tolerance(loaded.dtype)
    half = tol is None and precision.is_half(loaded.dtype)
    scored: dict[str, dict] = {}
    exact: dict[str, dict] = {}
    oracle: dict[str, dict] = {"naive": {}, "exact": {}}
    engines = {name: make_engine(name, loaded) for name in dict.fromkeys(n for n, _ in variants)}
    # separate engines for exact arithmetic: a cached engine's self-check must see its own dtype
    exact_engines = {name: make_engine(name, loaded) for name in engines} if half else {}
    naive = scoring.NaiveEngine(loaded)  # the oracle of the noise, never an engine under test
    for p in prompts:
        for eng_name, bs in variants:
            name = f"{eng_name}, batch size {bs}"
            scored.setdefault(name, {}).update(
                {(p.text, w): float(v) for w, v in _scores(engines[eng_name], p.text, words, bs).items()})
            if half:
                with precision.float32_arithmetic():
                    got = _scores(exact_engines[eng_name], p.text, words, bs)
                exact.setdefault(name, {}).update({(p.text, w): float(v) for w, v in got.items()})
        if left_padding:
            vals = left_padded_scores(loaded, p.text, list(words))
            scored.setdefault("naive, left padding", {}).update(
                {(p.text, w): float(v) for w, v in zip(words, vals)})
            if half:
                with precision.float32_arithmetic():
                    vals = left_padded_scores(loaded, p.text, list(words))
                exact.setdefault("naive, left padding", {}).update(
                    {(p.text, w): float(v) for w, v in zip(words, vals)})
        if half:
            oracle["naive"].update({(p.text, w): float(v) for w, v in _scores(naive, p.text, words, len(words)).items()})
            with precision.float32_arithmetic():
                got = _scores(naive, p.text, words, len(words))
            oracle["exact"].update({(p.text, w): float(v) for w, v in got.items()})
    noise = bound = None
    if half:
        keys = list(oracle["exact"])
        noise, bound = precision.rounding_bound(rtol, [oracle["naive"][k] for k in keys],
                                                [oracle["exact"][k] for k in keys])
    ref_name = "stored" if stored else f"{variants[0][0]}, batch size {variants[0][1]}"
    ref = {k: v for k, v in (stored or scored[ref_name]).items() if k[1] in set(words)}
    rows, worst = [], 0.0
    eatol, ertol = tolerance("float32")  # exact arithmetic: float32 rounding only
    for name, vals in scored.items():
        common = [k for k in vals if k in ref]
        diffs = np.array([abs(vals[k] - ref[k]) for k in common]) if common else np.array([np.inf])
        bounds = np.array([atol + rtol * abs(ref[k]) for k in common]) if common else np.array([0.0])
        ok = bool(np.all(diffs <= bounds))
        worst = max(worst, float(diffs.max()))
        row = {"variant": name, "vs": ref_name, "n": len(common), "max_abs_diff": float(diffs.max()), "passed": ok}
        if half:
            rms = precision.rms_relative([vals[k] for k in common], [ref[k] for k in common]) if common else np.inf
            x = oracle["exact"]
            shared = [k for k in exact.get(name, {}) if k in x]
            ediff = np.array([abs(exact[name][k] - x[k]) for k in shared]) if shared else np.array([np.inf])
            exact_ok = bool(shared) and bool(np.all(ediff <= np.array([eatol + ertol * abs(x[k]) for k in shared])))
            row.update(rms_rel=float(rms), rounding_bound=bound, exact_max_abs_diff=float(ediff.max()),
                       exact_passed=exact_ok, passed=exact_ok and (ok or bool(rms <= bound)))
        rows.append(row)
    bos = [bos_count(loaded, p.text, words[0]) for p in prompts] if words else [0]
    return {"variants": rows, "max_abs_diff": worst, "tolerance_abs": atol, "tolerance_rel": rtol,
            "noise": noise, "rounding_bound": bound, "dtype": str(loaded.dtype).replace("torch.", ""),
            "n_sampled": len(prompts) * len(words), "bos_ok": max(bos) <= 1, "bos_count": max(bos),
            "passed": all(r["passed"] for r in rows) and max(bos) <= 1}


# ----------------------------------------------------------------------------------
# (b) tokenization coverage and (c) the template text
# ----------------------------------------------------------------------------------
def coverage(tokenizer, words: Sequence[str]) -> pd.DataFrame:
    """Per word: tokens alone and after a space, the decoded text, and status one-token,
    multi-token or dropped; `changed` names how decoding differs from the word."""
    rows = []
    for w in dict.fromkeys(words):
        ids = tokenizer(w, add_special_tokens=False)["input_ids"]
        spaced = tokenizer(" " + w, add_special_tokens=False)["input_ids"]
        dec = tokenizer.decode(ids) if ids else ""
        status = "dropped" if not ids else "one-token" if len(ids) == 1 else "multi-token"
        if not ids or dec == w:
            changed = ""
        elif dec.strip() == w:
            changed = "leading/trailing space"
        elif dec.casefold() == w.casefold() or dec.strip().casefold() == w.casefold():
            changed = "case"
        else:
            changed = "other text"
        rows.append({"word": w, "n_tokens": len(ids), "n_tokens_after_space": len(spaced),
                     "tokens": [tokenizer.decode([i]) for i in ids], "decoded": dec, "status": status,
                     "changed": changed})
    return pd.DataFrame(rows, columns=["word", "n_tokens", "n_tokens_after_space", "tokens", "decoded",
                                       "status", "changed"])


def template_text(loaded, prompt: str, word: str) -> str:
    """The exact text sent for one example (RM: whole conversation; LM: context + word)."""
    tok = loaded.tokenizer
    if loaded.kind == "rm":
        return scoring.rm_text(tok, prompt, word)
    return tok.decode(scoring.lm_prefix_ids(tok, prompt)) + word


# ----------------------------------------------------------------------------------
# One call after a scoring run: check, store, summarise
# ----------------------------------------------------------------------------------
def stored_values(store, model_key: str, kind: str, prompt_texts, words) -> dict:
    df = store.query("SELECT prompt, response, value FROM scores WHERE model_key = ? AND kind = ? "
                     "AND prompt IN (SELECT p FROM want_p) AND response IN (SELECT w FROM want_w)",
                     [model_key, kind], want_p=pd.DataFrame({"p": list(prompt_texts)}, dtype=str),
                     want_w=pd.DataFrame({"w": list(words)}, dtype=str))
    return {(p, r): float(v) for p, r, v in zip(df["prompt"], df["response"], df["value"])}


def run_checks(store, loaded, prompts: Sequence, words: Sequence[str], corpus: str = "", engine: str = "cached",
               batch_size: int = 32, make_engine: EngineFactory = scoring.make_engine) -> dict:
    """Run (a), (b), (c) for a finished scoring run and store one row in run_checks.
    Never raises: a check that cannot run is stored with status 'error' and its reason."""
    def stored_for(ps, ws):
        return stored_values(store, loaded.key, loaded.kind, [p.text for p in ps], ws)
    rec = measure(loaded, prompts, words, stored_for, corpus, engine, batch_size, make_engine)
    save(store, rec)
    return rec


def measure(loaded, prompts: Sequence, words: Sequence[str], stored_for: Callable, corpus: str = "",
            engine: str = "cached", batch_size: int = 32, make_engine: EngineFactory = scoring.make_engine) -> dict:
    """The check record of one run, not yet saved: wherever the model is loaded (this
    process, or a Ray worker). `stored_for(prompts, words)` gives the stored values of the
    sample, {(prompt text, word): value}. Never raises (status 'error' and its reason)."""
    rec = {"run_id": uuid.uuid4().hex, "model_key": getattr(loaded, "key", "?"),
           "model": getattr(loaded, "name", "?"), "kind": getattr(loaded, "kind", "?"), "corpus": corpus,
           "created_at": _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)}
    try:
        ps, ws = sample(prompts, scoring.scorable(loaded, words)[0])  # Ray's driver: the same `sample`
        stored = stored_for(ps, ws)
        ways = {"variants": run_variants(engine, batch_size, len(ws))} if stored else {}  # else all four
        inv = invariance(loaded, ps, ws, stored or None, make_engine=make_engine, **ways)
        cov = coverage(loaded.tokenizer, words)
        counts = cov["status"].value_counts()
        flagged = cov[(cov["status"] != "one-token") | (cov["changed"] != "")]
        rec.update({
            "status": "passed" if inv["passed"] else "failed",
            "message": _message(inv), "max_abs_diff": inv["max_abs_diff"],
            "tolerance_abs": inv["tolerance_abs"], "tolerance_rel": inv["tolerance_rel"],
            "n_sampled": inv["n_sampled"], "bos_ok": inv["bos_ok"], "n_words": len(cov),
            "n_one_token": int(counts.get("one-token", 0)), "n_multi_token": int(counts.get("multi-token", 0)),
            "n_dropped": int(counts.get("dropped", 0)), "n_changed": int((cov["changed"] != "").sum()),
            "template_text": template_text(loaded, ps[0].text, ws[0]) if ps and ws else "",
            "invariance": json.dumps(inv["variants"]),
            "coverage": flagged.drop(columns="tokens").assign(
                tokens=flagged["tokens"].map(lambda t: " | ".join(t))).to_json(orient="records"),
            "provenance": json.dumps(provenance.run_record(loaded, corpus, words, prompts, engine, batch_size))})
    except Exception as e:  # noqa: BLE001 - the check itself failing is recorded, not raised
        log.warning("measurement checks could not run: %s", e)
        rec.update({"status": "error", "message": f"checks could not run: {one_line(e)}"})
    return rec


def not_run(model_key: str, model: str, kind: str, corpus: str, reason: str) -> dict:
    """The record of a check that could not even start (e.g. its Ray worker died)."""
    return {"run_id": uuid.uuid4().hex, "model_key": model_key, "model": model, "kind": kind, "corpus": corpus,
            "created_at": _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None), "status": "error",
            "message": f"checks could not run: {reason}"}


def _message(inv: dict) -> str:
    bad = [v for v in inv["variants"] if not v["passed"]]
    parts = []
    if bad:
        parts.append("scores change with " + ", ".join(
            f"{v['variant']} (max diff {v['exact_max_abs_diff']:.3g} in exact arithmetic)" if v.get("exact_passed") is False
            else f"{v['variant']} (max diff {v['max_abs_diff']:.3g})" for v in bad))
    if not inv["bos_ok"]:
        parts.append(f"{inv['bos_count']} BOS tokens at the start of the input (a second BOS was added)")
    if not parts:
        line = (f"scores unchanged across {len(inv['variants'])} ways of computing them "
                f"(max diff {inv['max_abs_diff']:.2g} on {inv['n_sampled']} sampled pairs")
        if inv.get("noise") is not None:
            line += (f"; equal in exact arithmetic, and within {inv['dtype']} rounding: rms at most "
                     f"{inv['rounding_bound']:.2g} = max({inv['tolerance_rel']:g}, {precision.NOISE_FACTOR:g} x its "
                     f"noise {inv['noise']:.2g} on this model)")
        return line + "); one BOS"
    return "; ".join(parts)


COLUMNS = ["run_id", "model_key", "model", "kind", "corpus", "created_at", "status", "message", "max_abs_diff",
           "tolerance_abs", "tolerance_rel", "n_sampled", "bos_ok", "n_words", "n_one_token", "n_multi_token",
           "n_dropped", "n_changed", "template_text", "invariance", "coverage", "provenance"]


def save(store, rec: dict) -> None:
    row = pd.DataFrame([{c: rec.get(c) for c in COLUMNS}])
    with store.transaction() as con:
        con.execute(TABLE_SQL)  # a database created before this table existed
        con.register("chk", row)
        con.execute(f"INSERT INTO run_checks ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM chk")
        con.unregister("chk")


def latest(store, model_keys=None) -> pd.DataFrame:
    """The latest check of each model (and corpus); empty when none was recorded."""
    try:
        df = store.query("""SELECT * FROM run_checks QUALIFY row_number() OVER (
                                PARTITION BY model_key, corpus ORDER BY created_at DESC) = 1
                            ORDER BY model, corpus""")
    except Exception:  # noqa: BLE001 - an old database without the table
        return pd.DataFrame(columns=COLUMNS)
    if model_keys is not None:
        df = df[df["model_key"].isin(list(model_keys))]
    return df.reset_index(drop=True)


def summary_line(rec: dict) -> str:
    """One line for the CLI and the Score page."""
    if rec["status"] == "passed":
        return (f"measurement checks passed: {rec['message']}; {rec['n_one_token']} one-token, "
                f"{rec['n_multi_token']} multi-token, {rec['n_dropped']} dropped, {rec['n_changed']} changed words")
    if rec["status"] == "failed":
        return f"MEASUREMENT CHECK FAILED — these scores are flagged: {rec['message']}"
    return f"measurement checks not run: {rec.get('message')}"
