"""The `cached` scoring engine: the prompt's key/value cache computed once, reused by every word.

Every (prompt, word) sequence shares the prompt part, so per prompt the shared prefix
tokens run once (use_cache=True) and each batch of candidates runs only its own suffix
tokens against that cache, expanded over the batch (right-padded suffixes, position ids
offset by the prefix length, attention mask = ones over the prefix + the suffix mask).
Values equal the `naive` engine's (METHOD.md §1 and §4) to float rounding:

- RM: the prefix is the formatted conversation up to the answer, tokenized alone. A word
  whose full tokenization (`rm_ids`) does not start with those tokens (a BPE merge across
  the template / answer boundary), or adds no token, is scored as a full sequence exactly
  as `naive` does. The reward is the model's own score head on the hidden state of each
  candidate's last real token.
- LM: one forward of the prefix gives log-softmax of the next-token logits, hence every
  single-token word's log-probability at once; a multi-token word runs all but its last
  token against the cache (teacher forcing), summed as in `lm_forward`.

Batching. Suffixes are short (a word and the end-of-turn token, against ~40-60 prompt
tokens), so a batch of `batch_size` of them would be a tiny forward (and padding would
cost as much as the real tokens). Where the attention takes a 4D mask as given (sdpa,
eager), a batch is packed into ONE sequence over the batch-1 prefix cache: each token
sees the prefix and the earlier tokens of its own suffix, at its own position — no
padding, no cache copies. A pack holds about the tokens of `batch_size` full sequences
(at most PACK_MAX_TOKENS, SUFFIX_BATCH_FACTOR x batch_size rows). Otherwise (flash
attention, ...) right-padded batches of suffixes run over the cache expanded over the
batch, rows of one suffix length together, up to SUFFIX_BATCH_FACTOR x batch_size rows.
Either is halved on out-of-memory and retried.

Safety: a model with its own Python code (remote code) or whose forward takes no cache
is scored by `naive`; so is everything after an exception in a cached forward. On the
first batch of each kind (per engine) up to 4 rows are recomputed with `naive` and the
engine falls back to `naive` if they differ by more than 1e-3 (fp32) or 2e-2 (bf16/fp16),
relative to max(1, |value|). Each fallback's reason is in `notes` (shown to the user)."""
from __future__ import annotations

import copy
import inspect
import logging
from typing import Iterator, Sequence

from .models import LoadedModel
from .scoring import (NaiveEngine, lm_forward, lm_prefix_ids, pooling_pad_id, rm_forward, text_config, rm_ids,
                      rm_text, word_ids)

log = logging.getLogger(__name__)

SUFFIX_BATCH_FACTOR = 8      # suffix-only forwards: up to 8x the requested batch size
LM_LOGITS_BUDGET = 1 << 28   # LM suffix batches: at most this many logits (1 GiB in fp32)
SELF_CHECK_ROWS = 4
PACK = True                  # False: right-padded batches of suffixes over an expanded cache
PACK_MAX_TOKENS = 2048       # a packed sequence's attention grows with its length squared
_SENTINEL = "\uE000\uE001"   # private-use characters: where the answer goes in the template


def _pooled_length(seq: Sequence[int], pad_id: int | None) -> int:
    """Length up to the token a classification head pools: the rightmost token that is not
    the model's pad token (some RMs use end-of-turn as pad). Later tokens cannot change that
    token's hidden state under causal attention, so the cached path may drop them."""
    if pad_id is None:
        return len(seq)
    n = len(seq)
    while n > 0 and seq[n - 1] == pad_id:
        n -= 1
    return n


class CacheUnsupported(RuntimeError):
    """This model cannot be scored with a prefix cache."""


def _cache_kwarg(fn) -> str | None:
    """The name under which a forward takes the KV cache ('cache' in transformers 5)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    return None


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _tolerance(dtype) -> float:
    import torch
    return 1e-3 if dtype in (None, torch.float32, torch.float64) else 2e-2


class CachedEngine:
    """Prefix-cache scoring with the same interface as `NaiveEngine`."""

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self.name = "cached"
        self.notes: list[str] = []
        self._naive = NaiveEngine(loaded)
        self._checked: set[str] = set()    # row kinds that passed the self-check
        self.stats = {"cached_rows": 0, "full_rows": 0, "prefix_tokens": 0, "suffix_tokens": 0}
        self._setup()

    # -- set-up and fallback ------------------------------------------------------------
    def _setup(self) -> None:
        model = self.loaded.model
        self._base = None
        self._head = None
        self._max_len = None
        self._packed = None
        module = type(model).__module__ or ""
        if not module.startswith("transformers."):
            self._fallback(f"{type(model).__name__} runs its own model code; its forward is not known to "
                           "take a prefix cache")
            return
        if self.loaded.kind == "rm":
            import torch
            prefix = getattr(model, "base_model_prefix", "model")
            base = getattr(model, prefix, None)
            head = getattr(model, "score", None)
            if base is not None and isinstance(head, torch.nn.Linear) and _cache_kwarg(base.forward):
                self._base, self._head = base, head   # base model with the cache, then the score head
            elif _cache_kwarg(model.forward) is None:
                self._fallback(f"{type(model).__name__}.forward takes no key/value cache")
                return
        elif _cache_kwarg(model.forward) is None:
            self._fallback(f"{type(model).__name__}.forward takes no key/value cache")
            return
        cfg = text_config(model)
        windows = []
        layer_types = getattr(cfg, "layer_types", None) or []
        if getattr(cfg, "sliding_window", None) and (not layer_types or any("sliding" in t for t in layer_types)):
            windows.append(int(cfg.sliding_window))
        if getattr(cfg, "attention_chunk_size", None):
            windows.append(int(cfg.attention_chunk_size))
        # sequences at least this long are scored in full: within a window the cache is exact
        self._max_len = min(windows) - 1 if windows else None
        # pack the suffixes of a batch into one sequence with a 4D mask where the attention
        # takes one as given (sdpa: boolean, eager: additive); otherwise right-padded batches
        impl = getattr(cfg, "_attn_implementation", None) or getattr(model.config, "_attn_implementation", None)
        self._packed = impl if (impl in ("sdpa", "eager") and PACK) else None

    def _fallback(self, reason: str) -> None:
        if self.name == "naive":
            return
        note = f"engine 'cached' fell back to 'naive' for {self.loaded.name}: {reason}"
        log.warning(note)
        self.notes.append(note)
        self.name = "naive"

    # -- the engine interface -------------------------------------------------------------
    def score(self, prompt: str, words: Sequence[str], batch_size: int) -> Iterator[tuple[list[str], list[float]]]:
        words = list(words)
        if not words:
            return
        if self.name == "naive":
            yield from self._naive.score(prompt, words, batch_size)
            return
        done = [False] * len(words)
        try:
            gen = self._score_rm if self.loaded.kind == "rm" else self._score_lm
            for idx, values in gen(prompt, words, batch_size):
                for i in idx:
                    done[i] = True
                yield [words[i] for i in idx], values
            return
        except CacheUnsupported as e:
            self._fallback(str(e))
        except Exception as e:  # noqa: BLE001 - any failure of the cached path: naive is always right
            import torch
            if isinstance(e, torch.OutOfMemoryError):
                raise
            self._fallback(f"a cached forward failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        rest = [w for w, d in zip(words, done) if not d]
        if rest:
            yield from self._naive.score(prompt, rest, batch_size)

    # -- reward models ----------------------------------------------------------------------
    def rm_prefix(self, prompt: str, seqs: Sequence[Sequence[int]]) -> list[int]:
        """The shared prefix tokens: the conversation up to the answer, tokenized alone, cut
        back where that saves work (when many words merge with its last token)."""
        tok = self.loaded.tokenizer
        ref: list[int] = []
        text = rm_text(tok, prompt, _SENTINEL)
        at = text.find(_SENTINEL)
        if at > 0:
            ref = tok(text[:at], add_special_tokens=False)["input_ids"]
        if not ref:
            ref = list(seqs[0][:-1])
        lcps = [min(_lcp(ref, s), len(s) - 1) for s in seqs]
        # total tokens run for prefix length L: L once + suffixes of words that share it + full others
        best, best_cost = 0, None
        for L in sorted(set(lcps) | {len(ref)}):
            if L <= 0:
                continue
            cost = L + sum(len(s) - L if c >= L else len(s) for s, c in zip(seqs, lcps))
            if best_cost is None or cost < best_cost:
                best, best_cost = L, cost
        return list(ref[:best])

    def _score_rm(self, prompt: str, words: list[str], batch_size: int):
        tok = self.loaded.tokenizer
        seqs = [rm_ids(tok, prompt, w) for w in words]
        prefix = self.rm_prefix(prompt, seqs)
        P = len(prefix)
        ends = [_pooled_length(s, text_config(self.loaded.model).pad_token_id) for s in seqs]
        cached, full = [], []
        for i, s in enumerate(seqs):
            ok = P > 0 and ends[i] > P and s[:P] == prefix
            if ok and self._max_len is not None and len(s) > self._max_len:
                ok = False
            (cached if ok else full).append(i)
        self.stats["full_rows"] += len(full)
        for lo in range(0, len(full), batch_size):  # boundary merges: the naive way, in full
            idx = full[lo:lo + batch_size]
            yield idx, rm_forward(self.loaded, [seqs[i] for i in idx])
        if not cached:
            return
        cache = self._prefix_cache(prefix)
        self.stats["prefix_tokens"] += P
        cached.sort(key=lambda i: len(seqs[i]))
        suffixes = {i: seqs[i][P:ends[i]] for i in cached}
        for idx, values in self._batches(cached, suffixes, batch_size, P,
                                         lambda b: self._rm_suffix_batch(cache, P, [suffixes[i] for i in b])):
            self.stats["cached_rows"] += len(idx)
            self.stats["suffix_tokens"] += sum(len(suffixes[i]) for i in idx)
            self._self_check("rm", idx, values, lambda sub: rm_forward(self.loaded, [seqs[i] for i in sub]))
            yield idx, values

    def _rm_suffix_batch(self, cache, P: int, suffixes: list[list[int]]) -> list[float]:
        import torch
        loaded = self.loaded
        if self._packed and self._base is not None:
            ids, mask, pos, ends, _ = self._packed_inputs(P, suffixes)
            kw = dict(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
            kw[_cache_kwarg(self._base.forward)] = self._expand(cache, 1)
            with torch.inference_mode():
                hidden = self._base(**kw).last_hidden_state
                score = self._head(hidden[0, ends])
            return score.float().reshape(len(suffixes), -1)[:, 0].cpu().tolist()
        pad = pooling_pad_id(loaded, suffixes)
        ids, mask, pos, last = self._suffix_inputs(P, suffixes, pad)
        kw = dict(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        with torch.inference_mode():
            if self._base is not None:
                kw[_cache_kwarg(self._base.forward)] = self._expand(cache, len(suffixes))
                hidden = self._base(**kw).last_hidden_state
                rows = hidden[torch.arange(len(suffixes), device=hidden.device), last]
                score = self._head(rows)
                return score.float().reshape(len(suffixes), -1)[:, 0].cpu().tolist()
            # the whole model (its own pooling at the last non-pad token of the suffix)
            from .scoring import reward_from_output
            cfg = text_config(loaded.model)
            old = getattr(cfg, "pad_token_id", None)
            cfg.pad_token_id = pad
            kw[_cache_kwarg(loaded.model.forward)] = self._expand(cache, len(suffixes))
            try:
                out = loaded.model(**kw)
            finally:
                cfg.pad_token_id = old
            return reward_from_output(out, loaded.score_head)

    # -- language models --------------------------------------------------------------------
    def _score_lm(self, prompt: str, words: list[str], batch_size: int):
        tok = self.loaded.tokenizer
        prefix = lm_prefix_ids(tok, prompt)
        wids = [word_ids(tok, w) for w in words]
        P = len(prefix)
        full = [i for i, w in enumerate(wids)
                if not w or (self._max_len is not None and P + len(w) > self._max_len)]
        fullset = set(full)
        single = [i for i, w in enumerate(wids) if len(w) == 1 and i not in fullset]
        multi = [i for i, w in enumerate(wids) if len(w) > 1 and i not in fullset]
        self.stats["full_rows"] += len(full)
        for lo in range(0, len(full), batch_size):
            idx = full[lo:lo + batch_size]
            yield idx, lm_forward(self.loaded, [prefix] * len(idx), [wids[i] for i in idx])
        if not single and not multi:
            return
        cache, first = self._prefix_cache(prefix, logits=True)  # log-probs of every next token
        self.stats["prefix_tokens"] += P
        step = batch_size * SUFFIX_BATCH_FACTOR
        for lo in range(0, len(single), step):
            idx = single[lo:lo + step]
            values = [float(first[wids[i][0]]) for i in idx]
            self.stats["cached_rows"] += len(idx)
            self._self_check("lm-prefix", idx, values,
                             lambda sub: lm_forward(self.loaded, [prefix] * len(sub), [wids[i] for i in sub]))
            yield idx, values
        if not multi:
            return
        multi.sort(key=lambda i: len(wids[i]))
        suffixes = {i: wids[i][:-1] for i in multi}
        vocab = int(first.shape[-1])

        def run(b):
            vals = self._lm_suffix_batch(cache, P, [suffixes[i] for i in b], [wids[i] for i in b])
            return [float(first[wids[i][0]]) + v for i, v in zip(b, vals)]
        limit = max(1, LM_LOGITS_BUDGET // (vocab * max(len(s) for s in suffixes.values())))
        for idx, values in self._batches(multi, suffixes, batch_size, P, run, cap=max(batch_size, limit)):
            self.stats["cached_rows"] += len(idx)
            self.stats["suffix_tokens"] += sum(len(suffixes[i]) for i in idx)
            self._self_check("lm-suffix", idx, values,
                             lambda sub: lm_forward(self.loaded, [prefix] * len(sub), [wids[i] for i in sub]))
            yield idx, values

    def _lm_suffix_batch(self, cache, P: int, suffixes: list[list[int]], words: list[list[int]]) -> list[float]:
        """Sum over word tokens 2..n of log p(token | prefix + earlier word tokens)."""
        import torch
        loaded = self.loaded
        if self._packed:
            ids, mask, pos, _, starts = self._packed_inputs(P, suffixes)
            kw = dict(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
            kw[_cache_kwarg(loaded.model.forward)] = self._expand(cache, 1)
            with torch.inference_mode():
                logp = torch.log_softmax(loaded.model(**kw).logits[0].float(), dim=-1)
            out = []
            for st, w in zip(starts, words):
                pos_r = torch.arange(st, st + len(w) - 1, device=logp.device)
                out.append(float(logp[pos_r, torch.tensor(w[1:], device=logp.device)].sum()))
            return out
        pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
        ids, mask, pos, _ = self._suffix_inputs(P, suffixes, pad)
        kw = dict(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        kw[_cache_kwarg(loaded.model.forward)] = self._expand(cache, len(suffixes))
        with torch.inference_mode():
            logits = loaded.model(**kw).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        out = []
        for r, w in enumerate(words):
            n = len(w) - 1
            pos_r = torch.arange(0, n, device=logp.device)
            tgt = torch.tensor(w[1:], device=logp.device)
            out.append(float(logp[r, pos_r, tgt].sum()))
        return out

    # -- shared machinery ----------------------------------------------------------------------
    def _prefix_cache(self, prefix: list[int], logits: bool = False):
        """Run the prefix once; its DynamicCache (batch 1), and for LMs the next-token log-probs."""
        import torch
        from transformers import DynamicCache
        loaded = self.loaded
        model = self._base if self._base is not None else loaded.model
        name = _cache_kwarg(model.forward)
        cache = DynamicCache(config=loaded.model.config)
        ids = torch.tensor([prefix], dtype=torch.long, device=loaded.device)
        kw = {name: cache, "use_cache": True, "input_ids": ids, "attention_mask": torch.ones_like(ids)}
        with torch.inference_mode():
            out = model(**kw)
        if cache.get_seq_length() != len(prefix):
            raise CacheUnsupported("the prefix forward did not fill the key/value cache")
        if logits:
            return cache, torch.log_softmax(out.logits[0, -1].float(), dim=-1).cpu()
        return cache

    def _expand(self, cache, batch: int):
        """A cache for `batch` rows over the same prefix. The layers' tensors are expanded
        views of the prefix's (no copy); the forward concatenates new keys onto them
        (a new tensor), so the stored prefix cache is never changed."""
        layers = getattr(cache, "layers", None)
        if layers is None or not all(hasattr(l, "keys") and hasattr(l, "values") for l in layers):
            out = copy.deepcopy(cache)
            out.batch_repeat_interleave(batch)
            return out
        out = copy.copy(cache)
        out.layers = []
        for layer in layers:
            new = copy.copy(layer)
            if getattr(layer, "is_initialized", True) and layer.keys is not None and layer.keys.dim() == 4:
                new.keys = layer.keys.expand(batch, -1, -1, -1)
                new.values = layer.values.expand(batch, -1, -1, -1)
            out.layers.append(new)
        return out

    def _packed_inputs(self, P: int, suffixes: list[list[int]]):
        """All suffixes as one sequence (batch 1, no padding) over the prefix cache: each
        token sees the prefix and the earlier tokens of its own suffix only (a 4D mask),
        at the position it has in its own full sequence."""
        import torch
        dev = self.loaded.device
        flat = [t for s in suffixes for t in s]
        seg = torch.repeat_interleave(torch.arange(len(suffixes)), torch.tensor([len(s) for s in suffixes]))
        off = torch.cat([torch.arange(len(s)) for s in suffixes])
        own = (seg[:, None] == seg[None, :]) & (off[None, :] <= off[:, None])
        allowed = torch.cat([torch.ones((len(flat), P), dtype=torch.bool), own], dim=1)[None, None]
        if self._packed == "eager":  # additive float mask, as the model's own eager masks
            dtype = self.loaded.model.dtype
            mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
        else:
            mask = allowed
        starts, acc = [], 0
        for s in suffixes:
            starts.append(acc)
            acc += len(s)
        ends = torch.tensor([st + len(s) - 1 for st, s in zip(starts, suffixes)], dtype=torch.long)
        ids = torch.tensor([flat], dtype=torch.long)
        pos = (off + P)[None]
        return ids.to(dev), mask.to(dev), pos.to(dev), ends.to(dev), starts

    def _suffix_inputs(self, P: int, suffixes: list[list[int]], pad: int):
        import torch
        dev = self.loaded.device
        n, width = len(suffixes), max(len(s) for s in suffixes)
        ids = torch.full((n, width), pad, dtype=torch.long)
        mask = torch.zeros((n, P + width), dtype=torch.long)
        mask[:, :P] = 1
        for r, s in enumerate(suffixes):
            ids[r, :len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, P:P + len(s)] = 1
        pos = (torch.arange(width, dtype=torch.long) + P).unsqueeze(0).expand(n, -1)
        last = torch.tensor([len(s) - 1 for s in suffixes], dtype=torch.long)
        return ids.to(dev), mask.to(dev), pos.to(dev), last.to(dev)

    def _batches(self, order: list[int], suffixes: dict, batch_size: int, P: int, fn, cap: int | None = None):
        """Run `fn` over `order` (sorted by suffix length) in batches. A batch holds rows of
        one suffix length where there are enough of them (padding in suffix-only batches
        costs as much as the real tokens), and its work, in tokens, is about that of
        `batch_size` full sequences, with at most SUFFIX_BATCH_FACTOR x batch_size rows.
        On out-of-memory the batch is halved and retried."""
        import torch
        limit = batch_size * SUFFIX_BATCH_FACTOR if cap is None else min(cap, batch_size * SUFFIX_BATCH_FACTOR)
        budget = None
        if self._packed:  # one packed sequence of about the tokens of batch_size full sequences
            mean = sum(len(suffixes[i]) for i in order) / len(order)
            budget = max(1, min(PACK_MAX_TOKENS, int(batch_size * (P + mean))))
            if cap is not None:  # LM: the cap is in rows of the longest suffix; keep the logits bound
                budget = min(budget, cap * max(len(suffixes[i]) for i in order))
        pos = 0
        while pos < len(order):
            n, width = 0, 0
            while budget is not None and pos + n < len(order):
                if n and (width + len(suffixes[order[pos + n]]) > budget or n >= limit):
                    break
                n, width = n + 1, width + len(suffixes[order[pos + n]])
            while budget is None and pos + n < len(order):
                w = len(suffixes[order[pos + n]])
                if n and w > width and n >= min(batch_size, limit):
                    break  # a longer suffix would pad every row so far: start a new batch
                rows = max(1, min(limit, max(batch_size, batch_size * (P + w) // max(1, w))))
                if n >= rows:
                    break
                n, width = n + 1, max(width, w)
            idx = order[pos:pos + n]
            try:
                values = fn(idx)
            except torch.OutOfMemoryError:
                if n == 1:
                    raise
                limit = max(1, n // 2)
                if budget is not None:
                    budget = max(1, width // 2)
                batch_size = min(batch_size, limit)
                log.warning("out of memory in a cached batch of %d: batch halved to %d", n, limit)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            pos += len(idx)
            yield idx, values

    def _self_check(self, kind: str, idx: list[int], values: list[float], naive_fn) -> None:
        """On the first batch of each kind, recompute up to 4 rows the naive way; a
        difference over tolerance raises CacheUnsupported (the caller falls back)."""
        if kind in self._checked or not idx:
            return
        n = len(idx)
        picks = sorted({round(k * (n - 1) / max(1, SELF_CHECK_ROWS - 1)) for k in range(min(n, SELF_CHECK_ROWS))})
        ref = naive_fn([idx[p] for p in picks])
        tol = _tolerance(self.loaded.dtype)
        worst = max(abs(values[p] - r) / max(1.0, abs(r)) for p, r in zip(picks, ref))
        if not worst <= tol:
            raise CacheUnsupported(f"self-check: cached values differ from naive by {worst:.3g} "
                                   f"(tolerance {tol:g}) on the first {kind} batch")
        self._checked.add(kind)
