"""One prepared GPU check of the scoring engines on real model shapes (issue 24).

    python -m bench.gpu                 # on a CUDA machine: under 8 minutes on one H100
    python -m bench.gpu --dry-run       # the same code path on CPU, small: under 2 minutes

Random-weight reward models built in this process with the real shapes of Gemma 2 2B (26
layers) and Llama 3.1 8B (32 layers) as *ForSequenceClassification, each with a byte-level
BPE tokenizer trained here (tests/tiny_models.make_tokenizer) and its family's chat template
(the text the real template renders for a [user, assistant] conversation), on CUDA in bf16:

- both engines (`naive`, `cached`) through `scoring.run` — the job the CLI runs — into an
  in-memory sink (`scoring.MemorySink`: no duckdb on the GPU machine): 263 stand-in words x
  the paper's 54 prompts for the 2B (14,202 rows), a 6-prompt subset for the 8B; at the CLI's
  default batch size and at a GPU-sized one; rows/s, tokens/s, peak GPU memory, build time,
  load time (save_pretrained, then `models.load`, the real loader), scoring time;
- the engines' values against each other and both against an fp32 run of a sample;
- the out-of-memory back-off under a forced cap (`torch.cuda.set_per_process_memory_fraction`):
  every row must still be stored, with the same values;
- the useful FLOPs of each run, the share of the GPU's bf16 peak (datasheet, and a measured
  bf16 matrix product) the cached engine reaches, and a projection of the paper's whole Big
  Two run (its 10 RMs, 2B-27B) on this GPU from the measured rates.

Offline by design: the words are a deterministic stand-in of the Big Two nouns' size (263
pseudo-words in two categories; the paper's corpus files are never needed nor committed), the
prompts come from the paper's template rule (core.prompts.paper_prompts, METHOD.md §1), and
nothing imports duckdb, streamlit or plotly. Progress is printed with the elapsed time; the
markdown and JSON report are rewritten after every stage, so an interrupted run leaves its
partial results. --dry-run: CPU, 2 layers of narrow models with the same architectures and
features (soft-capping, sliding window, grouped-query attention, Llama 3 rope scaling), 2 and
1 prompts, a simulated memory cap (a forward refused above a token count), every stage run."""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import json
import logging
import math
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# -- shapes -------------------------------------------------------------------------------------
# The configs of the real models (their config.json), as keyword arguments of Gemma2Config /
# LlamaConfig. Only what changes FLOPs, memory or the attention code path is given.
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
SHAPES = {
    "gemma-2-2b": dict(arch="gemma2", label="Gemma 2 2B", hidden_size=2304, intermediate_size=9216,
                       num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4, head_dim=256,
                       query_pre_attn_scalar=256, vocab_size=256000, sliding_window=4096,
                       attn_logit_softcapping=50.0, final_logit_softcapping=30.0, max_position_embeddings=8192,
                       hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6),
    "gemma-2-27b": dict(arch="gemma2", label="Gemma 2 27B", hidden_size=4608, intermediate_size=36864,
                        num_hidden_layers=46, num_attention_heads=32, num_key_value_heads=16, head_dim=128,
                        query_pre_attn_scalar=144, vocab_size=256000, sliding_window=4096,
                        attn_logit_softcapping=50.0, final_logit_softcapping=30.0, max_position_embeddings=8192,
                        hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6),
    "llama-3.1-8b": dict(arch="llama", label="Llama 3.1 8B", hidden_size=4096, intermediate_size=14336,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                         vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5,
                         rope_parameters=LLAMA3_ROPE),
    "llama-3.2-3b": dict(arch="llama", label="Llama 3.2 3B", hidden_size=3072, intermediate_size=8192,
                         num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8, head_dim=128,
                         vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5,
                         tie_word_embeddings=True, rope_parameters={**LLAMA3_ROPE, "factor": 32.0}),
}
# --dry-run: the same architectures and features, narrow and 2 layers, so CPU runs it in seconds.
DRY = {"gemma-2-2b": dict(hidden_size=128, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2,
                          head_dim=32, query_pre_attn_scalar=32, num_hidden_layers=2),
       "llama-3.1-8b": dict(hidden_size=128, intermediate_size=448, num_attention_heads=8, num_key_value_heads=2,
                            head_dim=16, num_hidden_layers=2)}
# Which shape each of the paper's ten RMs has (core.models.REGISTRY: family, size).
PAPER_SHAPE = {("gemma", "2B"): "gemma-2-2b", ("gemma", "27B"): "gemma-2-27b", ("llama", "8B"): "llama-3.1-8b",
               ("llama", "3B"): "llama-3.2-3b"}
# Dense bf16 tensor-core peak (TFLOP/s, no sparsity) from NVIDIA's datasheets, by device name;
# the more specific names first.
PEAK_BF16_TFLOPS = [("GH200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
                    ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0)]
# The Llama 3 template's fixed text as tokenizer training text (as bench/scoring_speed.py):
# a real Llama 3 tokenizer has merges for it; the one trained here learns them from this.
LLAMA3_FIXED = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
                "2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
GEMMA2_FIXED = "<bos><start_of_turn>user\n<end_of_turn>\n<start_of_turn>model\n<end_of_turn>\n"
# The 8B's prompts: one per adjective, spanning the three frames and three concision styles.
PROMPTS_8B = ["best_ever_one", "greatest_world_single", "good_time_please", "worst_ever_one", "bad_world_single",
              "terrible_time_please"]
BIG2_ROWS = 263 * 54
ENGINES = ("cached", "naive")
UNCHECKED = "cached, self-check off"

log = logging.getLogger("bench.gpu")


# -- progress, budget, report -------------------------------------------------------------------
class Clock:
    def __init__(self, budget_s: float):
        self.t0 = time.perf_counter()
        self.budget_s = budget_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def say(self, msg: str) -> None:
        print(f"[{self.elapsed():7.1f}s] {msg}", flush=True)


class Report:
    """The results so far; written (markdown + JSON) after every stage."""

    def __init__(self, out: Path, stem: str):
        self.out, self.stem = out, stem
        self.data: dict = {"status": "running", "stages": [], "skipped": [], "models": {}}

    def stage(self, clock: Clock, name: str, **extra) -> None:
        self.data["stages"].append({"stage": name, "at_s": round(clock.elapsed(), 1), **extra})
        self.write()

    def skip(self, clock: Clock, what: str, why: str) -> None:
        clock.say(f"skipped: {what} ({why})")
        self.data["skipped"].append({"what": what, "why": why})
        self.write()

    def write(self) -> tuple[Path, Path]:
        self.out.mkdir(parents=True, exist_ok=True)
        js, md = self.out / f"{self.stem}.json", self.out / f"{self.stem}.md"
        tmp = js.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=_jsonable))
        tmp.replace(js)
        tmp = md.with_suffix(".md.tmp")
        try:
            text = markdown(self.data)
        except Exception as e:  # noqa: BLE001 - a partial report must never be lost to its own rendering
            text = f"# GPU check (partial)\n\nThe markdown could not be rendered ({type(e).__name__}: {e}); see {js.name}.\n"
        tmp.write_text(text)
        tmp.replace(md)
        return md, js


def _jsonable(x):
    if hasattr(x, "item"):
        return x.item()
    return str(x)


# -- the data: stand-in words, the paper's prompts ----------------------------------------------
def standin_words(n: int = 263, seed: int = 24) -> list[tuple[str, str]]:
    """(word, category) of n distinct pronounceable pseudo-words, 2-4 syllables, in two
    categories of the Big Two nouns' names: the corpus's size, not its words."""
    rng = random.Random(seed)
    onset = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "pl", "sh", "ch"]
    vowel = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
    coda = ["", "", "", "n", "r", "s", "l", "m", "nd", "st"]
    out: dict[str, str] = {}
    while len(out) < n:
        w = "".join(rng.choice(onset) + rng.choice(vowel) + rng.choice(coda) for _ in range(rng.choice([2, 2, 3, 3, 4])))
        if w not in out:
            out[w] = "Agency" if len(out) % 2 == 0 else "Communion"
    return list(out.items())


def pick_prompts(ids: list[str] | None, n: int | None = None):
    from core import prompts as _prompts
    allp = _prompts.paper_prompts()
    if ids:
        by_id = {p.prompt_id: p for p in allp}
        return [by_id[i] for i in ids]
    return allp[:n] if n else allp


# -- the models ---------------------------------------------------------------------------------
def make_config(shape_name: str, tokenizer=None, dry: bool = False):
    """The transformers config of a shape (real vocabulary size; dry run: narrow, 2 layers and
    the tokenizer's vocabulary), with the tokenizer's special ids where one is given."""
    from transformers import Gemma2Config, LlamaConfig
    kw = {k: v for k, v in SHAPES[shape_name].items() if k not in ("arch", "label")}
    if dry:
        kw.update(DRY[shape_name])
    if tokenizer is not None:
        kw.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
        if dry:
            kw["vocab_size"] = len(tokenizer)
    kw["num_labels"] = 1
    cls = Gemma2Config if SHAPES[shape_name]["arch"] == "gemma2" else LlamaConfig
    return cls(**kw)


@functools.lru_cache(maxsize=None)
def param_counts(shape_name: str) -> dict:
    """Parameters of the RM (total and without the embedding), counted on the meta device."""
    import torch
    from transformers import AutoModelForSequenceClassification
    with torch.device("meta"):
        m = AutoModelForSequenceClassification.from_config(make_config(shape_name))
    total = sum(p.numel() for p in m.parameters())
    emb = m.get_input_embeddings().weight.numel()
    cfg = m.config
    return {"total": total, "non_embedding": total - emb, "layers": cfg.num_hidden_layers,
            "heads": cfg.num_attention_heads, "head_dim": cfg.head_dim, "hidden": cfg.hidden_size}


def build_tokenizer(shape_name: str, words: list[str]):
    from tests.tiny_models import GEMMA2_TEMPLATE, LLAMA3_TEMPLATE, make_tokenizer
    if SHAPES[shape_name]["arch"] == "llama":
        return make_tokenizer("llama", vocab_size=4096, template=LLAMA3_TEMPLATE, llama3_split=True,
                              extra_text=[LLAMA3_FIXED] * 3, corpus=words)
    return make_tokenizer("gemma2", vocab_size=4096, template=GEMMA2_TEMPLATE, extra_text=[GEMMA2_FIXED] * 3,
                          corpus=words)


def build_model(shape_name: str, tokenizer, device: str, dtype, dry: bool):
    """A random-weight RM of the shape, built on the device. Weights: tests.tiny_models.fan_in_init
    (linear layers N(0, 1/fan_in), so activations stay of order one through every layer at any
    width: the dry run's narrow models would fade at transformers' std 0.02; the score head 4x,
    for rewards of spread of a few units)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from core.models import attention_for
    from tests.tiny_models import fan_in_init
    cfg = make_config(shape_name, tokenizer, dry)
    attn = attention_for(cfg.to_dict())  # Gemma 2: eager, as models.load gives it (soft-capping)
    with torch.device(device):  # built where it runs: 16 GB of weights never pass through the CPU
        model = AutoModelForSequenceClassification.from_config(cfg, dtype=dtype, **({"attn_implementation": attn}
                                                                                      if attn else {}))
    model.to(device)
    fan_in_init(model, torch.Generator(device=device).manual_seed(0))
    model.to(device).eval()
    return model


def loaded_model(model, tokenizer, shape_name: str, device: str, dtype):
    from core.models import LoadedModel
    fam = "gemma" if SHAPES[shape_name]["arch"] == "gemma2" else "llama"
    name = f"bench/{shape_name}-random"
    return LoadedModel(name=name, kind="rm", model=model, tokenizer=tokenizer, family=fam, device=device,
                       dtype=dtype, key=f"bench:{name}~{str(dtype).removeprefix('torch.')}",
                       n_params=sum(p.numel() for p in model.parameters()))


def free(*objs) -> None:
    import torch
    del objs
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync(device: str) -> None:
    import torch
    if device == "cuda":
        torch.cuda.synchronize()


# -- the work each run does (useful FLOPs) ------------------------------------------------------
def token_accounting(loaded, prompts, words: list[str]) -> dict:
    """Per run: full-sequence tokens (what `naive` runs; its tokens/s), and what `cached` runs —
    each prompt's prefix once plus the rows' suffixes up to the pooled token (rows whose
    tokenization does not start with the prefix run in full) — with the attention key counts,
    from the engines' own tokenization and prefix choice."""
    from core.engines import planning
    from core.engines.cached import CachedEngine
    from core.engines.tokens import rm_ids_batch
    from core.engines.forward import text_config
    eng = CachedEngine(loaded)
    pad = text_config(loaded.model).pad_token_id
    acc = {"rows": 0, "full_tokens": 0, "full_keys": 0, "cached_tokens": 0, "cached_keys": 0, "prefix_tokens": 0,
           "suffix_tokens": 0}
    for p in prompts:
        seqs = rm_ids_batch(loaded.tokenizer, p.text, words)
        prefix = eng.rm_prefix(p.text, seqs)
        P = len(prefix)
        acc["rows"] += len(seqs)
        acc["prefix_tokens"] += P
        acc["cached_tokens"] += P
        acc["cached_keys"] += P * (P + 1) // 2
        for s in seqs:
            L = len(s)
            acc["full_tokens"] += L
            acc["full_keys"] += L * (L + 1) // 2
            end = planning.pooled_length(s, pad)
            if P > 0 and end > P and s[:P] == prefix:
                n = end - P
                acc["suffix_tokens"] += n
                acc["cached_tokens"] += n
                acc["cached_keys"] += n * P + n * (n + 1) // 2
            else:
                acc["cached_tokens"] += L
                acc["cached_keys"] += L * (L + 1) // 2
    return acc


def flops(params: dict, tokens: int, keys: int) -> float:
    """Useful FLOPs: 2 per weight per token (the linear layers) plus the attention's two
    products, 4 x layers x heads x head_dim per (query, key) pair."""
    return 2.0 * params["non_embedding"] * tokens + 4.0 * params["layers"] * params["heads"] * params["head_dim"] * keys


# -- one scoring run ----------------------------------------------------------------------------
def score(clock: Clock, loaded, prompts, words, engine, batch_size: int, tag: str, label: str | None = None,
          done: list | None = None) -> dict:
    """`scoring.run` into a MemorySink, timed; values kept for the comparisons. `engine`: a
    name, or an engine already made (then `label` names it in the report). `done`: a
    one-item list kept at the rows done so far (the OOM check places each back-off by it)."""
    import torch

    from core import scoring
    label = label or engine
    sink = scoring.MemorySink()
    dev = loaded.device
    if dev == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    last = [time.perf_counter()]

    def progress(p):
        if done is not None:
            done[0] = p.done
        if time.perf_counter() - last[0] >= 10:
            last[0] = time.perf_counter()
            clock.say(f"  {tag} {label} bs={batch_size}: {p.done:,}/{p.total:,} rows, {p.rate:,.0f} rows/s")
    sync(dev)
    t = time.perf_counter()
    res = scoring.run(sink, loaded, prompts, words, engine=engine, batch_size=batch_size, on_progress=progress)
    sync(dev)
    secs = time.perf_counter() - t
    out = {"engine": label, "ran_as": res.engine, "notes": res.notes, "batch_size": batch_size,
           "prompts": len(prompts), "rows": res.new, "rows_expected": len(prompts) * len(words),
           "scoring_s": round(secs, 3), "rows_per_s": res.new / secs if secs > 0 else None}
    if dev == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        out["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    clock.say(f"  {tag} {label} bs={batch_size}: {res.new:,} rows in {secs:.1f} s = {out['rows_per_s']:,.0f} rows/s"
              + (f", peak {out['peak_gib']:.1f} GiB" if "peak_gib" in out else "")
              + (f" (ran as {res.engine}: {'; '.join(res.notes)})" if not label.startswith(res.engine) else ""))
    return {"summary": out, "values": sink.scores()}


def add_rates(run: dict, acc: dict, params: dict, peak_tflops: float | None, gemm_tflops: float | None) -> None:
    """tokens/s (full-sequence tokens: the same work measure for both engines), the tokens the
    engine actually ran, useful TFLOP/s and their share of the peaks."""
    s = run["scoring_s"]
    cached = run["ran_as"] == "cached"
    tokens = acc["cached_tokens"] if cached else acc["full_tokens"]
    keys = acc["cached_keys"] if cached else acc["full_keys"]
    f = flops(params, tokens, keys)
    run.update(tokens_per_s=acc["full_tokens"] / s, processed_tokens=tokens, processed_tokens_per_s=tokens / s,
               tflop=f / 1e12, tflops=f / s / 1e12)
    if peak_tflops:
        run["share_of_peak"] = run["tflops"] / peak_tflops
    if gemm_tflops:
        run["share_of_gemm"] = run["tflops"] / gemm_tflops


# -- agreement ----------------------------------------------------------------------------------
def agreement(a, b, words_cat: dict[str, str]) -> dict:
    """Values of the same rows from two runs: differences (absolute, and relative to
    max(1, |value|) as planning.tolerance: the largest and the rms, which the bf16 rule
    bounds: `judge`), and what the paper's statistic sees: each prompt's word ranks and
    median rank per category."""
    import numpy as np
    m = a.merge(b, on=["prompt", "response"], suffixes=("_a", "_b"))
    if m.empty:
        return {"rows": 0}
    d = (m["value_a"] - m["value_b"]).abs()
    rel = d / np.maximum(1.0, m["value_b"].abs())
    m["rank_a"] = m.groupby("prompt")["value_a"].rank(ascending=False)
    m["rank_b"] = m.groupby("prompt")["value_b"].rank(ascending=False)
    rho = [g["rank_a"].corr(g["rank_b"]) for _, g in m.groupby("prompt")]
    m["category"] = m["response"].map(words_cat)
    med = m.groupby(["prompt", "category"])[["rank_a", "rank_b"]].median()
    return {"rows": int(len(m)), "max_abs": float(d.max()), "p99_abs": float(d.quantile(0.99)),
            "max_rel": float(rel.max()), "rms_rel": float(np.sqrt((rel ** 2).mean())), "value_sd": float(m["value_b"].std()),
            "min_spearman": float(np.nanmin(rho)) if len(rho) else float("nan"), "max_rank_shift": float((m["rank_a"] - m["rank_b"]).abs().max()),
            "max_median_rank_shift": float((med["rank_a"] - med["rank_b"]).abs().max())}


def judge(res: dict, bs: int) -> None:
    """The bf16 rule (core/engines/precision.py) on every comparison of a model: two
    computations in bf16 may differ, in rms relative terms, by NOISE_FACTOR x the dtype's
    noise on this model, never less than the fixed tolerance. The noise: naive bf16 against
    the same weights in fp32 on the fp32 sample, else what the cached engine's self-check
    measured on its rows."""
    import torch

    from core.engines import planning, precision
    fixed = planning.tolerance(torch.bfloat16)
    sample = res["agreement"].get(f"naive bf16 vs naive fp32, batch {bs}", {})
    checks = [c for r in res["runs"] for c in r.get("self_checks", []) if c.get("noise") is not None]
    if sample.get("rows"):
        noise, source = sample["rms_rel"], f"naive bf16 vs fp32 on the fp32 sample ({sample['rows']} rows)"
    elif checks:
        noise, source = checks[0]["noise"], f"the cached engine's self-check ({checks[0]['rows']} rows)"
    else:
        return
    bound = max(fixed, precision.NOISE_FACTOR * noise)
    res["bf16_rule"] = {"noise": noise, "noise_from": source, "factor": precision.NOISE_FACTOR, "fixed": fixed,
                        "bound": bound}
    for a in res["agreement"].values():
        if a.get("rows"):
            a["within_rule"] = bool(a["rms_rel"] <= bound)


# -- out-of-memory back-off ---------------------------------------------------------------------
class _Warnings(logging.Handler):
    """The planning module's warnings, each with the rows done when it came (`done`)."""

    def __init__(self, done: list | None = None):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.at: list[int] = []
        self.done = done

    def emit(self, record):
        self.lines.append(record.getMessage())
        self.at.append(self.done[0] if self.done else 0)


class TokenCap:
    """CPU stand-in for a memory cap (dry run): the first decoder layer refuses, with torch's
    OutOfMemoryError, a forward of more than `cap` tokens; counts the largest forward seen."""

    def __init__(self, model, cap: int | None = None):
        import torch
        self.cap, self.largest = cap, 0
        layer = model.base_model.layers[0]

        def hook(_module, args, kwargs):
            x = args[0] if args else kwargs.get("hidden_states")
            n = int(x.shape[0] * x.shape[1])
            self.largest = max(self.largest, n)
            if self.cap is not None and n > self.cap:
                raise torch.OutOfMemoryError(f"simulated cap: {n} tokens > {self.cap}")
        self.handle = layer.register_forward_pre_hook(hook, with_kwargs=True)

    def remove(self):
        self.handle.remove()


def oom_backoff(clock: Clock, loaded, prompts, words, engine, batch_size: int, reference, label: str) -> dict:
    """Score under a memory cap that the first batch cannot fit: the run must back off
    (batch size or token budget halved, logged by core.engines.planning) and end with every
    row stored, values equal to the uncapped run's."""
    import torch
    done = [0]
    handler = _Warnings(done)
    plog = logging.getLogger("core.engines.planning")
    plog.addHandler(handler)
    info = {"engine": label, "batch_size": batch_size, "prompts": len(prompts)}
    try:
        if loaded.device == "cuda":
            # the cap counts what the caching allocator holds (reserved), as the fraction does
            torch.cuda.empty_cache()
            base = torch.cuda.memory_reserved()
            score(clock, loaded, prompts[:1], words, engine, batch_size, "oom-probe", label)
            extra = torch.cuda.max_memory_reserved() - base
            total = torch.cuda.get_device_properties(0).total_memory
            cap = base + int(0.35 * extra)
            info.update(mechanism="torch.cuda.set_per_process_memory_fraction", held_gib=base / 2**30,
                        uncapped_extra_gib=extra / 2**30, cap_gib=cap / 2**30, fraction=cap / total)
            torch.cuda.empty_cache()
            torch.cuda.set_per_process_memory_fraction(cap / total)
            try:
                run = score(clock, loaded, prompts, words, engine, batch_size, "oom-capped", label, done)
            finally:
                torch.cuda.set_per_process_memory_fraction(1.0)
                torch.cuda.empty_cache()
        else:
            probe = TokenCap(loaded.model)
            try:
                score(clock, loaded, prompts[:1], words, engine, batch_size, "oom-probe", label)
                probe.cap = max(8, int(0.35 * probe.largest))
                info.update(mechanism="simulated on CPU: a forward over a token count raises torch.OutOfMemoryError",
                            uncapped_largest_forward_tokens=probe.largest, cap_tokens=probe.cap)
                run = score(clock, loaded, prompts, words, engine, batch_size, "oom-capped", label, done)
            finally:
                probe.remove()
    except Exception as e:  # noqa: BLE001 - reported, and the rest of the check goes on
        info.update(error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
        return info
    finally:
        plog.removeHandler(handler)
    s = run["summary"]
    oom = [(ln, at) for ln, at in zip(handler.lines, handler.at) if "out of memory" in ln.lower()]
    backoffs = [ln for ln, _ in oom]
    # a back-off with every row of the first prompt done came on a later prompt: the job keeps
    # the size that worked (planning.MemoryLimit), so only a longer prompt may need one
    later = sum(at >= len(words) for _, at in oom)
    agree = agreement(run["values"], reference, {}) if reference is not None else {}
    info.update(rows_stored=s["rows"], rows_expected=s["rows_expected"], ran_as=s["ran_as"], notes=s["notes"],
                backoffs=len(backoffs), backoffs_after_first_prompt=later, backoff_messages=backoffs[:6],
                scoring_s=s["scoring_s"], max_abs_vs_uncapped=agree.get("max_abs"),
                ok=bool(backoffs) and s["rows"] == s["rows_expected"] and agree.get("rows") == s["rows_expected"])
    return info


# -- the machine --------------------------------------------------------------------------------
def machine(device: str) -> dict:
    import torch
    import transformers
    info = {"device": device, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count()}
    if device == "cuda":
        prop = torch.cuda.get_device_properties(0)
        name = torch.cuda.get_device_name(0)
        info.update(gpu=name, gpu_memory_gib=prop.total_memory / 2**30, capability=f"{prop.major}.{prop.minor}",
                    cuda=torch.version.cuda, multiprocessors=prop.multi_processor_count)
        info["peak_bf16_tflops"] = next((v for k, v in PEAK_BF16_TFLOPS if k in name), None)
    return info


def gemm_tflops(device: str, seconds: float = 2.0) -> float:
    """bf16 matrix-product rate this device reaches (n x n x n, n = 8192 on a GPU)."""
    import torch
    n = 8192 if device == "cuda" else 512
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    iters, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        for _ in range(10):
            a @ b
        iters += 10
        sync(device)
    return 2 * n**3 * iters / (time.perf_counter() - t) / 1e12


# -- one model ----------------------------------------------------------------------------------
def check_model(clock: Clock, rep: Report, args, shape_name: str, prompts, words_cat: list[tuple[str, str]],
                device: str, peak: float | None, gemm: float | None) -> dict:
    import torch
    words = [w for w, _ in words_cat]
    cats = dict(words_cat)
    dtype = torch.bfloat16
    label = SHAPES[shape_name]["label"]
    res: dict = {"label": label, "prompts": [p.prompt_id for p in prompts], "words": len(words), "runs": [],
                 "agreement": {}}
    rep.data["models"][shape_name] = res
    t = time.perf_counter()
    tok = build_tokenizer(shape_name, words)
    res["tokenizer_s"] = time.perf_counter() - t
    clock.say(f"{label}: building ({'dry run: 2 narrow layers' if args.dry_run else 'all layers'}) on {device}")
    sync(device)
    t = time.perf_counter()
    model = build_model(shape_name, tok, device, dtype, args.dry_run)
    sync(device)
    res["build_s"] = time.perf_counter() - t
    lm = loaded_model(model, tok, shape_name, device, dtype)
    cfg = model.config
    res["config"] = {"layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size, "heads": cfg.num_attention_heads,
                     "kv_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim, "vocab": cfg.vocab_size,
                     "attn_implementation": getattr(cfg, "_attn_implementation", None)}
    params = {"total": lm.n_params, "non_embedding": lm.n_params - model.get_input_embeddings().weight.numel(),
              "layers": cfg.num_hidden_layers, "heads": cfg.num_attention_heads, "head_dim": cfg.head_dim}
    res["params"] = params
    res["weights_gib"] = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
    acc = token_accounting(lm, prompts, words)
    res["tokens"] = {**acc, "full_per_row": acc["full_tokens"] / acc["rows"],
                     "prefix_per_prompt": acc["prefix_tokens"] / len(prompts),
                     "suffix_per_row": acc["suffix_tokens"] / acc["rows"],
                     "ideal_speedup": acc["full_tokens"] / acc["cached_tokens"],
                     "ideal_flop_ratio": flops(params, acc["full_tokens"], acc["full_keys"])
                     / flops(params, acc["cached_tokens"], acc["cached_keys"])}
    clock.say(f"{label}: built in {res['build_s']:.1f} s, {params['total'] / 1e9:.2f} B parameters, "
              f"{res['weights_gib']:.1f} GiB; {acc['rows']:,} rows, {res['tokens']['full_per_row']:.1f} tokens per row, "
              f"ideal token ratio {res['tokens']['ideal_speedup']:.1f}x")
    rep.stage(clock, f"{shape_name}: built")

    # Both engines as every run makes them; where `cached` falls back to `naive` (its self-check
    # on the first batch finds a difference over the bf16 tolerance), it is also timed with the
    # self-check off (UNCHECKED), so its speed and its differences are still measured.
    from core.engines.cached import CachedEngine
    values = {}
    for bs in (args.batch_size, args.big_batch):
        for engine in ENGINES + (UNCHECKED,):
            tag = f"{engine}@{bs}"
            done = [r for r in res["runs"] if r["engine"] == engine]
            fell_back = any(r["engine"] == "cached" and r["ran_as"] != "cached" for r in res["runs"])
            if engine == UNCHECKED and not fell_back:
                continue
            if bs != args.batch_size:
                est = 1.5 * acc["rows"] / max(1e-9, done[0]["rows_per_s"]) if done else 60.0
                if clock.left() < est + args.reserve_s:
                    rep.skip(clock, f"{label} {tag}", f"{clock.left():.0f} s left of the budget, needs ~{est:.0f} s")
                    continue
            made = CachedEngine(lm, self_check=False) if engine == UNCHECKED else \
                CachedEngine(lm) if engine == "cached" else engine   # made here: its self-checks are reported
            run = score(clock, lm, prompts, words, made, bs, label, engine)
            if engine == "cached":
                run["summary"]["self_checks"] = made.self_checks
            made = None  # an engine holds the model: none may outlive its run
            add_rates(run["summary"], acc, params, peak, gemm)
            res["runs"].append(run["summary"])
            values[tag] = run["values"]
            rep.stage(clock, f"{shape_name}: {tag}")
    def ran(kind: str, bs: int) -> str | None:
        """The tag of the run whose values `kind` ('cached' or 'naive') computed at batch size bs."""
        for r in res["runs"]:
            if r["batch_size"] == bs and r["ran_as"] == kind and r["engine"] in ((kind,) if kind == "naive"
                                                                                else ("cached", UNCHECKED)):
                return f"{r['engine']}@{bs}"
        return None

    bs, big = args.batch_size, args.big_batch
    tc, tn = ran("cached", bs), ran("naive", bs)
    if tc and tn:
        res["agreement"][f"cached vs naive, bf16, batch {bs}"] = agreement(values[tc], values[tn], cats)
        secs = {r["engine"] + "@" + str(r["batch_size"]): r["scoring_s"] for r in res["runs"]}
        res["speedup"] = secs[tn] / secs[tc]
        res["speedup_engine"] = tc.split("@")[0]
    if big != bs:
        for kind in ("cached", "naive"):
            a, b = ran(kind, big), ran(kind, bs)
            if a and b:
                res["agreement"][f"{kind}, bf16, batch {big} vs {bs}"] = agreement(values[a], values[b], cats)

    # fp32 on a sample: the same (bf16-rounded) weights in float32, the naive engine
    if clock.left() > args.reserve_s + 20:
        sample_p, sample_w = prompts[:args.fp32_prompts], words[:args.fp32_words]
        model.float()
        lm32 = loaded_model(model, tok, shape_name, device, torch.float32)
        run32 = score(clock, lm32, sample_p, sample_w, "naive", bs, f"{label} fp32")
        res["fp32_sample"] = {"prompts": len(sample_p), "words": len(sample_w), **run32["summary"]}
        for kind, tag in (("naive", tn), ("cached", tc)):
            if tag:
                res["agreement"][f"{kind} bf16 vs naive fp32, batch {bs}"] = agreement(values[tag], run32["values"], cats)
        model.to(dtype)
        del lm32, run32
        free()
        rep.stage(clock, f"{shape_name}: fp32 sample")
    else:
        rep.skip(clock, f"{label} fp32 sample", "budget")
    judge(res, bs)

    # out-of-memory back-off under a forced cap, both engines (the 2B only, unless asked)
    if shape_name in args.oom_models:
        res["oom"] = []
        for engine in ENGINES:
            if clock.left() < args.reserve_s + 20:
                rep.skip(clock, f"{label} OOM back-off {engine}", "budget")
                continue
            tag = ran(engine, bs)
            ref = values.get(tag) if tag else None
            oom_p = prompts[:args.oom_prompts]
            ref = ref[ref["prompt"].isin([p.text for p in oom_p])] if ref is not None else None
            made = CachedEngine(lm, self_check=False) if tag and tag.startswith(UNCHECKED) else engine
            res["oom"].append(oom_backoff(clock, lm, oom_p, words, made, args.oom_batch, ref,
                                          engine if made == engine else UNCHECKED))
            o = res["oom"][-1]
            clock.say(f"  {label} OOM back-off {engine}: {o.get('backoffs')} back-offs, "
                      f"{o.get('rows_stored')}/{o.get('rows_expected')} rows stored"
                      + (f", error {o['error']}" if "error" in o else ""))
            rep.stage(clock, f"{shape_name}: oom {engine}")
            made = None  # an engine holds the model: none may outlive this stage
    values.clear()

    # the real loader: save_pretrained, then core.models.load (safetensors, identity hash)
    est = 3 * res["weights_gib"] + 10
    if args.load_from_disk and clock.left() > est + args.reserve_s:
        tmp = Path(tempfile.mkdtemp(prefix="valueaudit-gpu-"))
        try:
            t = time.perf_counter()
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            res["save_s"] = time.perf_counter() - t
            del lm, model
            free()
            from core import models
            sync(device)
            t = time.perf_counter()
            again = models.load(str(tmp), "rm", device=device, dtype="bfloat16")
            sync(device)
            res["load_s"] = time.perf_counter() - t
            res["load_gib_per_s"] = res["weights_gib"] / res["load_s"]
            clock.say(f"{label}: saved in {res['save_s']:.1f} s, loaded by models.load in {res['load_s']:.1f} s")
            del again
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rep.stage(clock, f"{shape_name}: load from disk")
    else:
        rep.skip(clock, f"{label} load from disk", f"budget (needs ~{est:.0f} s)" if args.load_from_disk else "off")
    free()
    return res


# -- projection ---------------------------------------------------------------------------------
def projection(rep: Report, batch_size: int) -> dict:
    """The paper's Big Two run (its 10 RMs x 263 nouns x 54 prompts) on this device: each RM's
    useful FLOPs (its shape, the tokens per row measured on its family's model) at the rate
    its family's model reached with the engine it would run (`naive` for the RMs with their
    own model code), plus the weights' load at the measured load rate (hub download not
    counted). A floor at the measured bf16 matrix-product rate beside it."""
    from core.models import REGISTRY
    models = rep.data["models"]
    gemm = rep.data.get("machine", {}).get("gemm_tflops")
    fam_model = {"gemma": models.get("gemma-2-2b"), "llama": models.get("llama-3.1-8b")}
    load_rates = [m["load_gib_per_s"] for m in models.values() if m.get("load_gib_per_s")]
    load_rate = min(load_rates) if load_rates else None
    rows, total, total_floor = [], 0.0, 0.0
    for e in (e for e in REGISTRY if e.kind == "rm"):
        shape = PAPER_SHAPE[(e.family, e.size)]
        params = param_counts(shape)
        engine = "naive" if e.trust_remote_code else "cached"
        ref = fam_model[e.family]
        row = {"model": e.name, "shape": SHAPES[shape]["label"], "params_b": params["total"] / 1e9, "engine": engine,
               "weights_gib": params["total"] * 2 / 2**30}
        run = None
        if ref:  # the run whose values that engine computed (the self-check-off one where cached fell back)
            names = ("cached", UNCHECKED) if engine == "cached" else ("naive",)
            run = next((r for r in ref["runs"] if r["engine"] in names and r["ran_as"] == engine
                        and r["batch_size"] == batch_size), None)
            row["measured_as"] = run["engine"] if run else None
        if run and ref:
            t = ref["tokens"]
            scale = BIG2_ROWS / t["rows"]
            prompts_scale = 54 / len(ref["prompts"])
            if engine == "cached":
                tokens = t["suffix_tokens"] * scale + t["prefix_tokens"] * prompts_scale \
                    + (t["cached_tokens"] - t["suffix_tokens"] - t["prefix_tokens"]) * scale
                keys = t["cached_keys"] * scale
            else:
                tokens, keys = t["full_tokens"] * scale, t["full_keys"] * scale
            f = flops(params, tokens, keys)
            row.update(tflop=f / 1e12, rate_tflops=run["tflops"], compute_s=f / (run["tflops"] * 1e12),
                       floor_s=f / (gemm * 1e12) if gemm else None)
            row["load_s"] = row["weights_gib"] / load_rate if load_rate else None
            row["total_s"] = row["compute_s"] + (row["load_s"] or 0.0)
            total += row["total_s"]
            total_floor += (row["floor_s"] or 0.0) + (row["load_s"] or 0.0)
        gpu_gib = rep.data.get("machine", {}).get("gpu_memory_gib")
        row["fits"] = None if not gpu_gib else row["weights_gib"] * 1.1 < gpu_gib
        rows.append(row)
    out = {"batch_size": batch_size, "rows_per_model": BIG2_ROWS, "models": rows,
           "total_s": total if all("total_s" in r for r in rows) else None, "total_floor_s": total_floor}
    return out


# -- the report ---------------------------------------------------------------------------------
def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _f(x, fmt="{:,.1f}", none="–"):
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def summary(d: dict) -> list[str]:
    """The figures the issue asks for, one line each."""
    out = []
    for r in d.get("models", {}).values():
        runs = r.get("runs", [])
        best = {}
        for run in runs:
            kind = run["ran_as"]
            if kind not in best or run["rows_per_s"] > best[kind]["rows_per_s"]:
                best[kind] = run
        parts = [f"{k} {v['rows_per_s']:,.0f} rows/s ({v['tokens_per_s']:,.0f} tokens/s, batch {v['batch_size']}, "
                 f"peak {_f(v.get('peak_gib'), '{:.1f}')} GiB)" for k, v in sorted(best.items())]
        line = f"- **{r['label']}**, {_n(len(r['prompts']), 'prompt')} x {r['words']} words: " + "; ".join(parts)
        if "cached" in best and best["cached"].get("share_of_peak") is not None:
            line += (f"; the cached engine reaches {best['cached']['share_of_peak']:.1%} of the bf16 peak "
                     f"({best['cached']['share_of_gemm']:.1%} of the measured matrix-product rate)")
        if r.get("speedup"):
            line += f"; {r['speedup']:.1f}x over naive at batch {runs[0]['batch_size']}"
        if r.get("load_s"):
            line += f"; loaded from disk in {r['load_s']:.1f} s"
        a = next((v for k, v in r.get("agreement", {}).items() if k.startswith("cached vs naive")), None)
        rule = r.get("bf16_rule")
        if a and a.get("rows") and rule:
            line += (f"; cached vs naive max |difference| {a['max_abs']:.3g}, rms relative {a['rms_rel']:.3g}: "
                     f"{'within' if a.get('within_rule') else 'OVER'} the bf16 rule's {rule['bound']:.3g} "
                     f"({rule['factor']:g} x bf16's noise {rule['noise']:.3g} on this model)")
        checks = [c for run in runs for c in run.get("self_checks", [])]
        if checks:
            line += (f"; self-check {'passed' if all(c['passed'] for c in checks) else 'FAILED'} on "
                     f"{sum(c['rows'] for c in checks)} rows (exact arithmetic max difference "
                     f"{max(c.get('exact_max_difference', c['max_difference']) for c in checks):.2g})")
        if any(run["engine"] == "cached" and run["ran_as"] != "cached" for run in runs):
            line += "; **the cached engine's self-check fell back to naive**"
        for o in r.get("oom", []):
            line += (f"; OOM back-off {o['engine']}: " + ("FAILED" if "error" in o else
                     f"{o['backoffs']} back-offs, {o['rows_stored']:,}/{o['rows_expected']:,} rows "
                     f"{'ok' if o['ok'] else 'NOT OK'}"))
        out.append(line)
    pr = d.get("projection")
    if pr and pr.get("total_s"):
        big = d.get("projection_big_batch") or {}
        out.append(f"- the paper's whole Big Two run (10 RMs x 14,202 rows) on this device: about "
                   f"**{pr['total_s'] / 60:,.1f} min** at batch {pr['batch_size']}"
                   + (f", {big['total_s'] / 60:,.1f} min at batch {big['batch_size']}" if big.get("total_s") else "")
                   + " (loads included, downloads not)")
    return out or ["- nothing measured yet"]


def markdown(d: dict) -> str:
    m = d.get("machine", {})
    L = [f"# GPU check of the scoring engines ({'DRY RUN on CPU' if d.get('dry_run') else m.get('gpu', m.get('device', '?'))})",
         "", f"`python -m bench.gpu{' --dry-run' if d.get('dry_run') else ''}` — {d.get('started', '')}; "
         f"status: **{d.get('status')}**, {_f(d.get('elapsed_s'))} s in all.", ""]
    if d.get("dry_run"):
        L += ["Dry run: CPU, 2 narrow layers per model, few prompts, a simulated memory cap. It checks that the "
              "code path runs; its rates say nothing about a GPU.", ""]
    L += ["## Summary", ""] + summary(d) + [""]
    L += ["## Machine", "", f"- device: {m.get('gpu', m.get('device'))}"
          + (f", {_f(m.get('gpu_memory_gib'))} GiB, compute capability {m.get('capability')}, CUDA {m.get('cuda')}"
             if m.get("gpu") else ""),
          f"- python {m.get('python')}, torch {m.get('torch')}, transformers {m.get('transformers')}",
          f"- bf16 peak (datasheet, dense): {_f(m.get('peak_bf16_tflops'))} TFLOP/s; measured bf16 matrix product: "
          f"{_f(m.get('gemm_tflops'))} TFLOP/s", ""]
    data = d.get("data", {})
    if data:
        L += ["## Data", "", f"- words: {data.get('words_note')}", f"- prompts: {data.get('prompts_note')}",
              f"- models: {data.get('models_note')}", ""]
    for r in d.get("models", {}).values():
        t = r.get("tokens", {})
        p = r.get("params", {})
        L += [f"## {r['label']} ({_n(len(r['prompts']), 'prompt')} x {r['words']} words)", "",
              f"- {_f(p.get('total', 0) / 1e9, '{:.2f}')} B parameters ({_f(p.get('non_embedding', 0) / 1e9, '{:.2f}')} B "
              f"without the embedding), {r.get('config', {}).get('layers')} layers, {_f(r.get('weights_gib'))} GiB, "
              f"attention {r.get('config', {}).get('attn_implementation')} (as `models.load` picks it); "
              f"built in {_f(r.get('build_s'))} s; saved in {_f(r.get('save_s'))} s and loaded by `models.load` in "
              f"{_f(r.get('load_s'))} s",
              f"- tokens: {_f(t.get('full_per_row'))} per full row; the cached engine runs a {_f(t.get('prefix_per_prompt'))}"
              f"-token prefix per prompt and {_f(t.get('suffix_per_row'), '{:.2f}')} suffix tokens per row: ideal "
              f"speed-up {_f(t.get('ideal_speedup'))}x in tokens, {_f(t.get('ideal_flop_ratio'))}x in FLOPs", "",
              "| engine | batch | ran as | rows | scoring s | rows/s | tokens/s (full rows) | peak GiB | TFLOP/s | share of bf16 peak | share of measured GEMM |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for run in r.get("runs", []):
            L.append(f"| {run['engine']} | {run['batch_size']} | {run['ran_as']} | {run['rows']:,} | "
                     f"{_f(run['scoring_s'])} | {_f(run['rows_per_s'], '{:,.0f}')} | {_f(run.get('tokens_per_s'), '{:,.0f}')} | "
                     f"{_f(run.get('peak_gib'), '{:.2f}')} | {_f(run.get('tflops'), '{:.3g}')} | "
                     f"{_f(run.get('share_of_peak'), '{:.1%}')} | {_f(run.get('share_of_gemm'), '{:.1%}')} |")
        notes = [n for run in r.get("runs", []) for n in run.get("notes", [])]
        L += [""] + [f"- note: {n}" for n in dict.fromkeys(notes)]
        if r.get("speedup"):
            L.append(f"- {r['speedup_engine']} vs naive at the default batch size: **{r['speedup']:.1f}x** "
                     f"({r['speedup'] / t['ideal_speedup']:.0%} of the ideal token ratio)")
        if r.get("agreement"):
            rule = r.get("bf16_rule") or {}
            L += ["", "| values compared | rows | max abs | p99 abs | max rel | rms rel | within the bf16 rule | "
                  "reward sd | min Spearman per prompt | max rank shift | max median-rank shift |",
                  "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
            for k, a in r["agreement"].items():
                if a.get("rows"):
                    L.append(f"| {k} | {a['rows']:,} | {a['max_abs']:.3g} | {a['p99_abs']:.3g} | {a['max_rel']:.3g} | "
                             f"{a['rms_rel']:.3g} | {'–' if 'within_rule' not in a else 'yes' if a['within_rule'] else 'NO'} | "
                             f"{a['value_sd']:.3g} | "
                             f"{a['min_spearman']:.4f} | {a['max_rank_shift']:.0f} | {a['max_median_rank_shift']:.1f} |")
        rule = r.get("bf16_rule")
        if rule:
            L.append(f"- the bf16 rule on this model: bf16's noise {rule['noise']:.3g} (rms relative, {rule['noise_from']}); "
                     f"two bf16 computations may differ by {rule['bound']:.3g} rms = max({rule['fixed']:g}, "
                     f"{rule['factor']:g} x noise)")
        for run in r.get("runs", []):
            for c in run.get("self_checks", []):
                how = (f"exact arithmetic: max difference {c['exact_max_difference']:.2g} (tolerance "
                       f"{c['exact_tolerance']:g}); {c['dtype']}: cached vs naive {c['rms_difference']:.3g} rms "
                       f"(max {c['max_difference']:.3g}), bound {c['bound']:.3g} = max({c['fixed']:g}, "
                       f"{c['factor']:g} x the noise {c['noise']:.3g} measured on these rows)" if "noise" in c
                       else f"max difference {c['max_difference']:.2g} (tolerance {c['tolerance']:g})")
                L.append(f"- self-check of the {run['engine']} run at batch {run['batch_size']}, {c['kind']}, "
                         f"{c['batch']} batch, {c['rows']} rows: {how}: **{'passed' if c['passed'] else 'FAILED'}**")
        for o in r.get("oom", []):
            if "error" in o:
                L.append(f"- OOM back-off, {o['engine']}: FAILED: {o['error']}")
                continue
            cap = (f"cap {o['cap_gib']:.2f} GiB (the {o['held_gib']:.2f} GiB held before + 35 % of the "
                   f"{o['uncapped_extra_gib']:.2f} GiB the first batch took uncapped)" if "cap_gib" in o
                   else f"cap {o.get('cap_tokens')} tokens per forward (uncapped: {o.get('uncapped_largest_forward_tokens')})")
            L.append(f"- OOM back-off, {o['engine']} at batch size {o['batch_size']}, {cap}: {o['backoffs']} back-offs "
                     f"({o.get('backoffs_after_first_prompt')} after the first of {_n(o['prompts'], 'prompt')}: the job "
                     "keeps the size that worked), "
                     f"{o['rows_stored']:,}/{o['rows_expected']:,} rows stored, ran as {o['ran_as']}, max |difference| "
                     f"from the uncapped run {_f(o.get('max_abs_vs_uncapped'), '{:.3g}')}: **{'ok' if o['ok'] else 'NOT OK'}**")
        L.append("")
    tol = d.get("tolerance")
    if tol:
        L += ["## Tolerance", "", tol, ""]
    pr = d.get("projection")
    if pr:
        L += [f"## The paper's whole Big Two run on this device (projection, batch size {pr['batch_size']})", "",
              "Each RM's useful FLOPs for 263 words x 54 prompts, at the rate its family's model reached here with "
              "the engine it would run (`naive` for QRM and ArmoRM, which run their own model code), plus loading its "
              "weights at the measured load rate (hub download not counted). The floor is the same FLOPs at the "
              "measured matrix-product rate. A 27B is projected from the 2B's rate: larger matrices run closer to the "
              "peak, so its figure is an upper bound.", "",
              "| RM | shape | B params | engine | TFLOP | rate TFLOP/s | compute s | load s | total s | floor s | fits |",
              "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in pr["models"]:
            L.append(f"| {r['model']} | {r['shape']} | {r['params_b']:.1f} | {r['engine']} | {_f(r.get('tflop'))} | "
                     f"{_f(r.get('rate_tflops'))} | {_f(r.get('compute_s'))} | {_f(r.get('load_s'))} | "
                     f"{_f(r.get('total_s'))} | {_f(r.get('floor_s'))} | {r.get('fits')} |")
        L += ["", f"Total: **{_f(pr['total_s'] and pr['total_s'] / 60)} min** (floor {_f(pr['total_floor_s'] / 60)} min).", ""]
    if d.get("skipped"):
        L += ["## Skipped", ""] + [f"- {s['what']}: {s['why']}" for s in d["skipped"]] + [""]
    if d.get("error"):
        L += ["## Error", "", f"`{d['error']}`", ""]
    L += ["## Stages", "", " → ".join(f"{s['stage']} ({s['at_s']} s)" for s in d.get("stages", [])), ""]
    return "\n".join(L)


TOLERANCE = (
    "bf16 keeps 8 significant bits: each rounding is off by up to 2^-9 (0.2 %) relative, and a model carries its "
    "roundings through every layer. Two computations of a reward that are equal in real arithmetic but round "
    "differently (the cached engine's prefix block and merged softmax; the naive engine's padded rows; another batch "
    "size) therefore differ by bf16's *noise on that model*: on random-weight models of these shapes a few per cent of "
    "max(1, |value|) on single rows, more than any fixed tolerance that would still catch a bug (the self-check's old "
    "2e-2 sent correct bf16 runs to naive, or passed them by luck on 4 rows). The rule (core/engines/precision.py, "
    "docs/engines.md 'Half precision'), used by the engine's self-check and by every run's measurement checks, has two "
    "parts. Logic: the checked rows are computed again by both engines in exact arithmetic (float32 on the same "
    "weights, `precision.float32_arithmetic`), where they must agree within float32's tolerance (1e-3 relative; "
    "they agree to ~1e-6): a wrong mask, merge or position shows there at full size, whatever bf16 does. Rounding: in "
    "bf16 the two may differ by at most 5 x bf16's noise on the model — the naive engine's rms relative distance from "
    "exact arithmetic on the same rows — in rms over the rows, and never less than 2e-2. The factor 5 was measured: "
    "over 6,000 draws of 12-16 rows on random-weight Gemma 2 / Llama models of 2-32 layers, correct engines differed by "
    "at most 4.7 x that noise (p99 3.1). Below, each model's noise is measured on the fp32 sample (the same weights in "
    "float32) and the comparisons are judged by that rule; the self-check's own figures are listed per run. What the "
    "paper's statistic reads are ranks: the rank columns show how far the rounding moves a word within its prompt and "
    "a category's median rank.")


# -- main ---------------------------------------------------------------------------------------
def parse(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, 2 narrow layers, few prompts (under 2 minutes)")
    ap.add_argument("--out", default=None, help="folder for the report (default bench/results)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="start no optional stage that would end past this many seconds (default 420; the dry "
                         "run has none: it runs every stage)")
    ap.add_argument("--reserve-s", type=float, default=None, help="seconds kept for the stages after an optional one")
    ap.add_argument("--batch-size", type=int, default=32, help="the CLI's default batch size")
    ap.add_argument("--big-batch", type=int, default=256, help="a GPU-sized batch size, run too")
    ap.add_argument("--prompts-2b", type=int, default=None, help="prompts for the 2B (default 54; dry run 2)")
    ap.add_argument("--prompts-8b", type=int, default=None, help="prompts for the 8B (default 6; dry run 1)")
    ap.add_argument("--models", default="gemma-2-2b,llama-3.1-8b", help="which shapes to run")
    ap.add_argument("--no-load-from-disk", dest="load_from_disk", action="store_false",
                    help="skip timing save_pretrained + models.load")
    args = ap.parse_args(argv)
    dry = args.dry_run
    args.budget_s = args.budget_s if args.budget_s is not None else (math.inf if dry else 420.0)
    args.reserve_s = args.reserve_s if args.reserve_s is not None else (5.0 if dry else 60.0)
    args.prompts_2b = args.prompts_2b or (2 if dry else 54)
    args.prompts_8b = args.prompts_8b or (1 if dry else 6)
    args.fp32_prompts, args.fp32_words = (1, 24) if dry else (2, 64)
    args.oom_prompts, args.oom_batch = (2, 256) if dry else (2, 1024)
    args.oom_models = {"gemma-2-2b"}
    return args


def main(argv=None) -> int:
    args = parse(argv)
    clock = Clock(args.budget_s)
    import torch
    logging.basicConfig(level=logging.ERROR)
    import transformers
    transformers.utils.logging.disable_progress_bar()
    for noisy in ("transformers", "core"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.getLogger("core.engines.planning").setLevel(logging.WARNING)
    if args.dry_run:
        device = "cpu"
    elif torch.cuda.is_available():
        device = "cuda"
    else:
        print("error: no CUDA GPU is visible; run `python -m bench.gpu --dry-run` for the CPU check", file=sys.stderr)
        return 2
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else ROOT / "bench" / "results"
    rep = Report(out, f"gpu-{'dry-run-' if args.dry_run else ''}{stamp}")
    rep.data.update(started=stamp, dry_run=args.dry_run, budget_s=None if math.isinf(args.budget_s) else args.budget_s,
                    argv=sys.argv[1:] if argv is None else list(argv), tolerance=TOLERANCE)
    if device == "cpu":
        torch.set_num_threads(1)  # the dry run measures nothing; one thread never waits on a busy neighbour

    def stop(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, stop)
    try:
        rep.data["machine"] = machine(device)
        clock.say(f"device {rep.data['machine'].get('gpu', device)}, torch {torch.__version__}; "
                  f"budget {args.budget_s:.0f} s; report {rep.out / rep.stem}.md")
        rep.data["machine"]["gemm_tflops"] = gemm_tflops(device, 0.3 if args.dry_run else 2.0)
        clock.say(f"bf16 matrix product: {rep.data['machine']['gemm_tflops']:.1f} TFLOP/s "
                  f"(datasheet peak {_f(rep.data['machine'].get('peak_bf16_tflops'))})")
        words_cat = standin_words()
        rep.data["data"] = {
            "words": len(words_cat),
            "words_note": f"{len(words_cat)} stand-in pseudo-words (bench.gpu.standin_words, seeded), "
                          f"{sum(c == 'Agency' for _, c in words_cat)} Agency + {sum(c == 'Communion' for _, c in words_cat)} "
                          "Communion: the Big Two nouns' size, not their words (the paper's corpus is not needed offline)",
            "prompts_note": "the paper's 54 prompts from its template rule (core.prompts.paper_prompts, METHOD.md §1); "
                            f"the 8B: {', '.join(PROMPTS_8B[:args.prompts_8b])}",
            "models_note": "random weights (linear layers N(0, 1/fan_in)), the real configs; a byte-level BPE trained "
                           "in this process on the prompts, every other word and the template's fixed text "
                           "(tests/tiny_models.make_tokenizer), with the family's chat template as rendered for "
                           "[user, assistant] (Llama 3.1: system header with the cutting-knowledge and date lines)"}
        rep.stage(clock, "machine")
        peak = rep.data["machine"].get("peak_bf16_tflops")
        gemm = rep.data["machine"]["gemm_tflops"]
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        for shape_name in wanted:
            if shape_name not in DRY:
                raise SystemExit(f"error: --models takes {', '.join(DRY)}")
            if rep.data["models"] and clock.left() < args.reserve_s:
                rep.skip(clock, SHAPES[shape_name]["label"], "budget")
                continue
            prompts = (pick_prompts(None, args.prompts_2b) if shape_name == "gemma-2-2b"
                       else pick_prompts(PROMPTS_8B[:args.prompts_8b]))
            check_model(clock, rep, args, shape_name, prompts, words_cat, device, peak, gemm)
            free()
        rep.data["projection"] = projection(rep, args.batch_size)
        rep.data["projection_big_batch"] = projection(rep, args.big_batch)
        pr = rep.data["projection"]
        clock.say(f"projection of the paper's Big Two run (10 RMs) at batch size {args.batch_size}: "
                  f"{_f(pr['total_s'] and pr['total_s'] / 60)} min")
        rep.data["status"] = "complete" if not rep.data["skipped"] else "complete, with stages skipped"
        code = 0
    except KeyboardInterrupt as e:
        rep.data["status"] = f"interrupted ({e or 'Ctrl-C'}): partial results"
        code = 130
    except Exception as e:  # noqa: BLE001 - the report keeps what was measured, and says what broke
        import traceback
        rep.data["status"] = "failed: partial results"
        rep.data["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
        code = 1
    rep.data["elapsed_s"] = clock.elapsed()
    md, js = rep.write()
    clock.say(f"{rep.data['status']}; written {md} and {js.name}")
    return code


if __name__ == "__main__":
    sys.exit(main())
