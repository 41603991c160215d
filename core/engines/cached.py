"""The `cached` engine: each prompt's shared prefix runs once; the words' few suffix
tokens run against it with cascade attention (cascade.py). Same values as `naive`
(METHOD.md §1 and §4) to float rounding:

- RM: the prefix is the formatted conversation up to the answer, tokenized alone (cut back
  where many words merge with its last token, `planning.choose_prefix_length`). A word
  whose full tokenization does not start with the prefix, or adds no token, is scored in
  full as `naive` does. The reward is the model's own linear score head on the hidden
  state of each row's pooled token (its last token that is not the pad token).
- LM: the prefix forward gives the next-token log-softmax, hence every single-token
  word's log-probability at once; a multi-token word runs all but its last token after the
  prefix (teacher forcing), summed as in `forward.lm_forward`.

A batch of suffixes is ONE packed sequence (no padding in the linear layers, each token at
its own full-sequence position) of about the tokens of `batch_size` full sequences; the
attention sees the prefix block once and each row's own tokens as a small padded block.
Out-of-memory halves a batch and retries; the job keeps the halved size (`self.memory`).

Safety: a model with its own Python code, whose attention does not go through
transformers' AttentionInterface, or whose reward head is not a linear layer is scored by
`naive`; so is everything after an exception in a cached forward. The first batch of each
kind (per engine), and the last batch of its first prompt, are partly recomputed with
`naive` (planning.SELF_CHECK_ROWS rows spread over the batch) and the engine falls back if
they differ by more than float rounding explains: `planning.tolerance` in float32; in half
precision, exact arithmetic for the logic and the dtype's measured noise for the rounding
(precision.py). Each fallback's reason is in
`notes` (shown to the user). The model forwards live in `CascadeRunner`; pass another
runner to the engine to test the engine's logic with faults."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

from ..models import LoadedModel
from . import cascade, planning, precision
from .forward import lm_forward, rm_forward, text_config
from .naive import NaiveEngine
from .tokens import Tokenize, rm_text
from ..errors import one_line

log = logging.getLogger(__name__)

MAX_PACK_TOKENS = 8192       # suffix tokens per forward, whatever the batch size
LM_LOGITS_BUDGET = 1 << 28   # LM suffix forwards: at most this many logits (1 GiB in fp32)
_SENTINEL = "\uE000\uE001"   # private-use characters: where the answer goes in the template


class CacheUnsupported(RuntimeError):
    """This model, or this row, cannot be scored with a shared prefix."""


def _cache_kwarg(fn) -> str | None:
    """The name under which a forward takes the KV cache ('cache' in transformers 5)."""
    import inspect
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    return None


@dataclass
class PrefixBlock:
    """One prompt's prefix after its forward: per layer (keys, values) of shape
    (1, kv_heads, P, head_dim); for LMs also the next-token log-softmax (vocab,)."""
    length: int
    layers: list
    next_logp: object = None


class CascadeRunner:
    """The model forwards of the cached engine: the prefix once, then suffix batches with
    cascade attention. Raises CacheUnsupported for models it cannot run exactly."""

    def __init__(self, loaded: LoadedModel):
        import torch
        self.loaded = loaded
        model = loaded.model
        if not (type(model).__module__ or "").startswith("transformers."):
            raise CacheUnsupported(f"{type(model).__name__} runs its own model code; its attention is not known")
        why = cascade.supported(model)
        if why:
            raise CacheUnsupported(why)
        cfg = text_config(model)
        if getattr(cfg, "attention_chunk_size", None):
            raise CacheUnsupported("chunked attention is not modelled by cascade attention")
        self.n_layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
        self.pad_id = getattr(cfg, "pad_token_id", None)
        self.vocab = int(getattr(cfg, "vocab_size", 0) or 0)
        if loaded.kind == "rm":
            base = getattr(model, getattr(model, "base_model_prefix", "model"), None)
            head = getattr(model, "score", None)
            if base is None or not isinstance(head, torch.nn.Linear) or loaded.score_head != "logits":
                raise CacheUnsupported(f"{type(model).__name__}'s reward head is not a linear layer on the last "
                                       "hidden state")
            self.body, self.head = base, head
        else:
            self.body, self.head = model, None
        self.cache_kwarg = _cache_kwarg(self.body.forward)
        if self.cache_kwarg is None:
            raise CacheUnsupported(f"{type(self.body).__name__}.forward takes no key/value cache")

    # -- the prefix ------------------------------------------------------------------------------
    def prefix(self, ids: Sequence[int]) -> PrefixBlock:
        """Run the prefix once with the model's own attention into a DynamicCache (full
        layers: a sliding window is applied later, by position)."""
        import torch
        from transformers import DynamicCache
        cache = DynamicCache()
        x = torch.tensor([list(ids)], dtype=torch.long, device=self.loaded.device)
        kw = {self.cache_kwarg: cache, "use_cache": True, "input_ids": x, "attention_mask": torch.ones_like(x)}
        if self.head is None:
            kw["logits_to_keep"] = 1
        with torch.inference_mode():
            out = self.body(**kw)
        layers = [(layer.keys, layer.values) for layer in getattr(cache, "layers", [])]
        if len(layers) != self.n_layers or any(k is None or k.dim() != 4 or k.shape[2] != len(ids) for k, _ in layers):
            raise CacheUnsupported("the prefix forward did not fill a full key/value cache for every layer")
        logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1).cpu() if self.head is None else None
        return PrefixBlock(len(ids), layers, logp)

    # -- suffix batches ----------------------------------------------------------------------------
    def _suffix_forward(self, block: PrefixBlock, suffixes: Sequence[Sequence[int]]):
        import torch
        layout = planning.pack_suffixes(suffixes, block.length, self.loaded.device)
        state = cascade.CascadeState(block.layers, layout)
        with torch.inference_mode(), cascade.attention(self.loaded.model):
            out = self.body(input_ids=layout.ids, position_ids=layout.positions, use_cache=False, cascade=state)
        if state.calls != self.n_layers:
            raise CacheUnsupported(f"{state.calls} of {self.n_layers} attention layers used cascade attention")
        return out, layout

    def rm_scores(self, block: PrefixBlock, suffixes: Sequence[Sequence[int]]) -> list[float]:
        """Rewards of rows whose suffixes (up to the pooled token) follow the prefix."""
        import torch
        out, layout = self._suffix_forward(block, suffixes)
        with torch.inference_mode():
            score = self.head(out.last_hidden_state[0, layout.last])
        return score.float().reshape(len(suffixes), -1)[:, 0].cpu().tolist()

    def lm_logprobs(self, block: PrefixBlock, suffixes: Sequence[Sequence[int]],
                    targets: Sequence[Sequence[int]]) -> list[float]:
        """Per row, the sum over its suffix positions of log p(target token | prefix + row so far)."""
        import torch
        out, layout = self._suffix_forward(block, suffixes)
        dev = out.logits.device
        tgt = torch.tensor([t for ts in targets for t in ts], dtype=torch.long, device=dev)
        with torch.inference_mode():
            logp = torch.log_softmax(out.logits[0].float(), dim=-1).gather(1, tgt[:, None])[:, 0]
            rows = torch.repeat_interleave(torch.arange(len(suffixes), device=dev),
                                           torch.tensor(layout.lengths, device=dev))
            sums = torch.zeros(len(suffixes), dtype=torch.float64, device=dev).index_add_(0, rows, logp.double())
        return sums.cpu().tolist()


class CachedEngine:
    """Shared-prefix scoring with the same interface as `NaiveEngine`."""

    def __init__(self, loaded: LoadedModel, runner: CascadeRunner | None = None, tokens: Tokenize | None = None,
                 self_check: bool = True):
        """self_check=False: no naive recomputation of the first batches, so no fallback on a
        difference — for diagnosis only (bench/gpu.py times the engine where bf16 rounding
        exceeds the tolerance); every run the app or the CLI makes keeps the check."""
        self.loaded = loaded
        self.name = "cached"
        self.self_check = self_check
        self.notes: list[str] = []
        self.tokens = tokens or Tokenize()  # a TokenMemo: ids and prefix plans shared by a run's checkpoints
        self.naive = NaiveEngine(loaded, self.tokens)
        self.checked: set[str] = set()    # row kinds that passed the self-check
        self.self_checks: list[dict] = []  # each self-check's figures (bench/gpu.py reports them)
        self.stats = {"cached_rows": 0, "full_rows": 0, "prefix_tokens": 0, "suffix_tokens": 0}
        self.memory = planning.MemoryLimit()  # the job's out-of-memory back-off, in rows and tokens
        self.runner = runner
        if runner is None:
            try:
                self.runner = CascadeRunner(loaded)
            except CacheUnsupported as e:
                self._fallback(str(e))

    def _fallback(self, reason: str) -> None:
        if self.name == "naive":
            return
        note = f"engine 'cached' fell back to 'naive' for {self.loaded.name}: {reason}"
        log.warning(note)
        self.notes.append(note)
        self.name = "naive"

    # -- the engine interface -------------------------------------------------------------------
    def score(self, prompt: str, words: Sequence[str], batch_size: int) -> Iterator[tuple[list[str], list[float]]]:
        words = list(words)
        if not words:
            return
        if self.name == "naive":
            yield from self.naive.score(prompt, words, batch_size)
            return
        done = [False] * len(words)
        try:
            gen = self._score_rm if self.loaded.kind == "rm" else self._score_lm
            for idx, values in gen(prompt, words, batch_size):
                for i in idx:
                    done[i] = True
                yield [words[i] for i in idx], values
            return
        except (CacheUnsupported, cascade.CascadeUnsupported) as e:
            self._fallback(str(e))
        except Exception as e:  # noqa: BLE001 - any failure of the cached path: naive is always right
            import torch
            if isinstance(e, torch.OutOfMemoryError):
                raise
            self._fallback(f"a cached forward failed ({type(e).__name__}: {one_line(e)})")
        rest = [w for w, d in zip(words, done) if not d]
        if rest:
            yield from self.naive.score(prompt, rest, batch_size)

    def _budget(self, batch_size: int, prefix_len: int, lengths: Sequence[int]) -> int:
        """Tokens per suffix forward: about the tokens of `batch_size` full sequences."""
        mean = sum(lengths) / max(1, len(lengths))
        return max(1, min(MAX_PACK_TOKENS, int(batch_size * (prefix_len + mean))))

    # -- reward models ------------------------------------------------------------------------------
    def rm_prefix(self, prompt: str, seqs: Sequence[Sequence[int]]) -> list[int]:
        """The shared prefix tokens: the conversation up to the answer, tokenized alone,
        cut back where that saves work."""
        tok = self.loaded.tokenizer
        ref: list[int] = []
        text = rm_text(tok, prompt, _SENTINEL)
        at = text.find(_SENTINEL)
        if at > 0:
            ref = tok(text[:at], add_special_tokens=False)["input_ids"]
        if not ref:
            ref = list(seqs[0][:-1])
        return list(ref[:planning.choose_prefix_length(ref, seqs)])

    def _score_rm(self, prompt: str, words: list[str], batch_size: int):
        tok = self.loaded.tokenizer
        seqs = self.tokens.rm_ids_batch(tok, prompt, words)
        prefix = self.tokens.prefix(tok, prompt, lambda: self.rm_prefix(prompt, seqs))
        P = len(prefix)
        pad = text_config(self.loaded.model).pad_token_id
        ends = [planning.pooled_length(s, pad) for s in seqs]
        cached, full = [], []
        for i, s in enumerate(seqs):
            (cached if P > 0 and ends[i] > P and s[:P] == prefix else full).append(i)
        self.stats["full_rows"] += len(full)
        for lo in range(0, len(full), batch_size):  # boundary merges: the naive way, in full
            idx = full[lo:lo + batch_size]
            yield idx, rm_forward(self.loaded, [seqs[i] for i in idx])
        if not cached:
            return
        block = self.runner.prefix(prefix)
        self.stats["prefix_tokens"] += P
        cached.sort(key=lambda i: ends[i])
        suffix = {i: seqs[i][P:ends[i]] for i in cached}
        lengths = [len(suffix[i]) for i in cached]
        budget = self._budget(batch_size, P, lengths)
        def again(sub):  # the cached path from scratch: the self-check runs it in exact arithmetic
            return self.runner.rm_scores(self.runner.prefix(prefix), [suffix[i] for i in sub])
        for idx, values in planning.run_batches(cached, lengths, budget,
                                                lambda b: self.runner.rm_scores(block, [suffix[i] for i in b]),
                                                memory=self.memory):
            self.stats["cached_rows"] += len(idx)
            self.stats["suffix_tokens"] += sum(len(suffix[i]) for i in idx)
            self._self_check("rm", idx, values, lambda sub: rm_forward(self.loaded, [seqs[i] for i in sub]), again,
                             last=idx[-1] == cached[-1])
            yield idx, values

    # -- language models ------------------------------------------------------------------------------
    def _score_lm(self, prompt: str, words: list[str], batch_size: int):
        prefix = self.tokens.lm_prefix_ids(self.loaded.tokenizer, prompt)
        wids = self.tokens.word_ids_batch(self.loaded.tokenizer, words)
        P = len(prefix)

        def naive(sub):
            return lm_forward(self.loaded, [prefix] * len(sub), [wids[i] for i in sub])
        full = [i for i, w in enumerate(wids) if not w or P == 0]
        self.stats["full_rows"] += len(full)
        for lo in range(0, len(full), batch_size):
            idx = full[lo:lo + batch_size]
            yield idx, naive(idx)
        single = [i for i, w in enumerate(wids) if len(w) == 1 and P > 0]
        multi = [i for i, w in enumerate(wids) if len(w) > 1 and P > 0]
        if not single and not multi:
            return
        block = self.runner.prefix(prefix)  # its next-token log-probs score every one-token word
        self.stats["prefix_tokens"] += P
        first = block.next_logp
        step = max(1, batch_size * 8)
        for lo in range(0, len(single), step):
            idx = single[lo:lo + step]
            values = [float(first[wids[i][0]]) for i in idx]
            self.stats["cached_rows"] += len(idx)
            self._self_check("lm-prefix", idx, values, naive,
                             lambda sub: [float(self.runner.prefix(prefix).next_logp[wids[i][0]]) for i in sub],
                             last=lo + step >= len(single))
            yield idx, values
        if not multi:
            return
        multi.sort(key=lambda i: len(wids[i]))
        lengths = [len(wids[i]) - 1 for i in multi]   # the word but its last token runs after the prefix
        budget = self._budget(batch_size, P, lengths)
        vocab = int(first.shape[-1])
        budget = max(1, min(budget, LM_LOGITS_BUDGET // max(1, vocab)))

        def run(b, blk=block):
            rest = self.runner.lm_logprobs(blk, [wids[i][:-1] for i in b], [wids[i][1:] for i in b])
            return [float(blk.next_logp[wids[i][0]]) + v for i, v in zip(b, rest)]
        for idx, values in planning.run_batches(multi, lengths, budget, run, memory=self.memory):
            self.stats["cached_rows"] += len(idx)
            self.stats["suffix_tokens"] += sum(len(wids[i]) - 1 for i in idx)
            self._self_check("lm-suffix", idx, values, naive, lambda sub: run(sub, self.runner.prefix(prefix)),
                             last=idx[-1] == multi[-1])
            yield idx, values

    # -- the self-check ---------------------------------------------------------------------------------
    def _self_check(self, kind: str, idx: list[int], values: list[float], naive_fn, cached_fn,
                    last: bool = False) -> None:
        """On the first batch of each kind, and on the last batch of its first prompt (the
        longest suffixes), recompute rows spread over the batch (planning.SELF_CHECK_ROWS)
        the naive way; a difference over tolerance raises CacheUnsupported (the caller falls
        back). float32: cached vs naive within planning.tolerance. Half precision
        (precision.py): the rows again through both paths in exact arithmetic, within the
        float32 tolerance (the logic), and cached vs naive in the dtype within NOISE_FACTOR
        times the dtype's measured noise on these rows (the rounding). Each check's figures
        are kept in `self_checks`."""
        if not self.self_check or not idx:
            return
        first = kind not in self.checked
        if not first and (not last or f"{kind}, longest" in self.checked):
            return
        picks = planning.self_check_picks(len(idx))
        rows = [idx[p] for p in picks]
        got = [values[p] for p in picks]
        ref = naive_fn(rows)
        rec = {"kind": kind, "batch": "first" if first else "longest suffixes", "rows": len(rows),
               "dtype": str(self.loaded.dtype).replace("torch.", "")}
        if not precision.is_half(self.loaded.dtype):
            worst, tol = planning.worst_difference(got, ref), planning.tolerance(self.loaded.dtype)
            rec.update(max_difference=worst, tolerance=tol, passed=worst <= tol)
            why = f"cached values differ from naive by {worst:.3g} (tolerance {tol:g})"
        else:
            exact_naive, exact_cached = self._exact(naive_fn, cached_fn, rows)
            logic, logic_tol = planning.worst_difference(exact_cached, exact_naive), planning.tolerance(None)
            noise, bound = precision.rounding_bound(planning.tolerance(self.loaded.dtype), ref, exact_naive)
            rounding = precision.rms_relative(got, ref)
            rec.update(exact_max_difference=logic, exact_tolerance=logic_tol, noise=noise, rms_difference=rounding,
                       bound=bound, fixed=planning.tolerance(self.loaded.dtype), factor=precision.NOISE_FACTOR,
                       max_difference=planning.worst_difference(got, ref),
                       passed=logic <= logic_tol and rounding <= bound)
            why = (f"in exact arithmetic cached values differ from naive by {logic:.3g} (tolerance {logic_tol:g})"
                   if not logic <= logic_tol else
                   f"in {rec['dtype']} cached values differ from naive by {rounding:.3g} rms, over {bound:.3g} "
                   f"({precision.NOISE_FACTOR:g} x the dtype's noise {noise:.3g} on these rows)")
        self.self_checks.append(rec)
        if not rec["passed"]:
            raise CacheUnsupported(f"self-check: {why} on the {rec['batch']} {kind} batch")
        self.checked.add(kind if first else f"{kind}, longest")
        if first and last:
            self.checked.add(f"{kind}, longest")

    def _exact(self, naive_fn, cached_fn, rows: list[int]) -> tuple[list[float], list[float]]:
        """The rows through the naive and the cached path in exact arithmetic (float32 on the
        model's own weights); row by row if that runs out of memory, else the engine falls back."""
        import torch
        for size in (len(rows), 1):
            try:
                with precision.float32_arithmetic():
                    n, c = [], []
                    for lo in range(0, len(rows), size):
                        n += naive_fn(rows[lo:lo + size])
                        c += cached_fn(rows[lo:lo + size])
                    return n, c
            except torch.OutOfMemoryError:
                planning.release_memory()
        raise CacheUnsupported("the self-check ran out of memory computing its rows in float32")
