"""Cascade (shared-prefix) attention: the idea of Hydragen and of FlashInfer's cascade
attention, for scoring many short answers after one prompt.

Every suffix token of a batch attends to (1) the ONE prefix key/value block, computed once
per prompt — all queries of the batch against it in a single batched matrix product, no
copy of the block per row — and (2) the few tokens of its own row, a causal band of at most
the longest suffix's length. Each part is a softmax over its own keys; the two are merged exactly
through their log-sum-exp:

    out = exp(lse_1 - lse) * out_1 + exp(lse_2 - lse) * out_2,  lse = logaddexp(lse_1, lse_2)

which is the softmax over the union of the keys. Attention logit soft-capping (Gemma 2) is
applied to the scores of both parts before the softmax, and a sliding window masks the
prefix keys a query is too far from, exactly as the model's own masks do (a key at
position k is seen from position q when q - k < window).

transformers plugs it in through its supported extension points: `register()` adds the
function to `AttentionInterface` under ATTENTION_NAME, `attention(model)` switches the
model to it for one forward with `set_attn_implementation` (and back), and the prefix
block and the suffix layout arrive as the `cascade` keyword argument, which transformers
passes through to attention functions. With no mask function registered for the name, the
model builds no mask (attention_mask=None): the layout defines both masks."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

ATTENTION_NAME = "valueaudit_cascade"
_UNSUPPORTED_KWARGS = ("s_aux", "sinks")  # attention sinks (gpt-oss): not modelled here


# -- the math on plain tensors ------------------------------------------------------------------
def _softmax_scores(s, scaling: float, softcap: float | None, mask):
    """Scale, soft-cap and mask raw scores in place; return (unnormalised weights, max, sum)."""
    import torch
    s.mul_(scaling)
    if softcap:
        s.div_(softcap).tanh_().mul_(softcap)
    if mask is not None:
        s.masked_fill_(~mask, float("-inf"))
    m = s.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))   # a fully masked query: weights 0
    s.sub_(m).exp_()
    return s, m, s.sum(dim=-1, keepdim=True)


def _finish(out, m, z):
    """(output normalised within the part, its log-sum-exp); 0 and -inf where no key was seen."""
    return out.div_(z.clamp_min(1e-30)), (m + z.log()).squeeze(-1)


def softmax_part(q, k, v, scaling: float, softcap: float | None = None, mask=None):
    """Attention of queries q (..., M, D) over keys/values k, v (..., K, D), the softmax
    taken over these keys only: (output (..., M, D) in float32, log-sum-exp (..., M)).
    Scores are computed in q's dtype and soft-maxed in float32, as the models' eager path."""
    import torch
    p, m, z = _softmax_scores(torch.matmul(q, k.transpose(-1, -2)).float(), scaling, softcap, mask)
    return _finish(torch.matmul(p.to(v.dtype), v).float(), m, z)


def band_part(q, k, v, offsets, width: int, scaling: float, softcap: float | None = None,
              sliding_window: int | None = None):
    """Attention of packed queries q (..., N, D) over their own row's keys only: token n
    sees the keys n - l for l = 0 .. offsets[n] (its row's earlier tokens, causal), read as
    a band of `width` lags over the packed keys k, v (..., N, D) — no gathered copies, no
    N x N matrix. Returns (output (..., N, D) float32, log-sum-exp (..., N))."""
    import torch
    n = q.shape[-2]
    pad = [0, 0, width - 1, 0]                                       # width - 1 zero keys in front
    kp, vp = torch.nn.functional.pad(k, pad), torch.nn.functional.pad(v, pad)
    lag = torch.arange(width, device=q.device)
    s = torch.stack([torch.linalg.vecdot(q, kp[..., width - 1 - l:width - 1 - l + n, :]).float()
                     for l in range(width)], dim=-1)                  # (..., N, width)
    mask = lag[None, :] <= offsets[:, None]
    if sliding_window is not None:
        mask = mask & (lag[None, :] < sliding_window)
    p, m, z = _softmax_scores(s, scaling, softcap, mask)
    p = p.to(v.dtype)
    out = p[..., 0:1] * vp[..., width - 1:width - 1 + n, :]
    for l in range(1, width):
        out = out + p[..., l:l + 1] * vp[..., width - 1 - l:width - 1 - l + n, :]
    return _finish(out.float(), m, z)


def merge_softmax_parts(out_1, lse_1, out_2, lse_2):
    """The softmax over the union of two key sets from the two partial softmaxes."""
    import torch
    lse = torch.logaddexp(lse_1, lse_2)
    return torch.exp(lse_1 - lse)[..., None] * out_1 + torch.exp(lse_2 - lse)[..., None] * out_2


def cascade_attention(query, key, value, prefix_key, prefix_value, layout, scaling: float,
                      softcap: float | None = None, sliding_window: int | None = None):
    """query (1, H, N, D) and key/value (1, Hkv, N, D) of the N packed suffix tokens;
    prefix_key/value (1, Hkv, P, D); `layout` a planning.SuffixLayout. Returns the
    attention output (1, N, H, D) in query's dtype, as transformers' attention functions do.
    Query head h uses key head h // (H / Hkv) (grouped-query attention, as repeat_kv)."""
    import torch
    _, H, N, D = query.shape
    Hkv, P = key.shape[1], prefix_key.shape[2]
    g = H // Hkv
    pos = layout.positions[0]                                      # (N,) positions of the queries
    # (1) every query against the one prefix block: one batched product over the Hkv heads
    mask_p = None
    if sliding_window is not None and P and layout.max_position >= sliding_window:
        near = (pos[:, None] - torch.arange(P, device=pos.device)[None, :]) < sliding_window   # (N, P)
        mask_p = near.unsqueeze(0).expand(g, N, P).reshape(1, g * N, P)
    out_p, lse_p = softmax_part(query[0].reshape(Hkv, g * N, D), prefix_key[0], prefix_value[0],
                                scaling, softcap, mask_p)
    # (2) every query against its own row's tokens: a band of max-suffix-length lags
    q = query[0].view(Hkv, g, N, D)
    out_o, lse_o = band_part(q, key[0].unsqueeze(1), value[0].unsqueeze(1), layout.offsets, layout.width,
                             scaling, softcap, sliding_window)
    out = merge_softmax_parts(out_p.view(Hkv, g, N, D), lse_p.view(Hkv, g, N), out_o, lse_o)
    return out.reshape(H, N, D).transpose(0, 1).unsqueeze(0).to(query.dtype)


# -- transformers' side ---------------------------------------------------------------------------
@dataclass
class CascadeState:
    """What the attention function needs for one suffix forward: the prefix block of each
    layer (keys, values (1, Hkv, P, D)) and the suffix layout. `calls` counts the layers
    that used it, so a model whose layers bypass the attention interface is caught."""
    prefix: list
    layout: object
    calls: int = 0
    layers: set = field(default_factory=set)


class CascadeUnsupported(RuntimeError):
    """The model's attention cannot be computed this way (the engine then falls back)."""


def cascade_attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                              softcap=None, sliding_window=None, cascade: CascadeState | None = None, **kwargs):
    """The function registered with transformers' AttentionInterface."""
    if cascade is None:
        raise CascadeUnsupported("cascade attention was called without its prefix block")
    if dropout or not getattr(module, "is_causal", True) or any(kwargs.get(k) is not None for k in _UNSUPPORTED_KWARGS):
        raise CascadeUnsupported(f"{type(module).__name__} uses attention features cascade attention does not model")
    layer = module.layer_idx
    keys, values = cascade.prefix[layer]
    cascade.calls += 1
    cascade.layers.add(layer)
    if scaling is None:
        scaling = module.head_dim ** -0.5
    out = cascade_attention(query, key, value, keys.to(query.dtype), values.to(query.dtype), cascade.layout,
                            scaling, softcap, sliding_window)
    return out, None


def register() -> None:
    """Make ATTENTION_NAME a valid attn_implementation (idempotent)."""
    from transformers import AttentionInterface
    AttentionInterface.register(ATTENTION_NAME, cascade_attention_forward)


def supported(model) -> str | None:
    """None if the model dispatches attention through the interface, else why not."""
    can = getattr(model, "_can_set_attn_implementation", None)
    if can is None or not can():
        return f"{type(model).__name__} does not dispatch its attention through transformers' AttentionInterface"
    return None


@contextmanager
def attention(model):
    """Run the model with cascade attention inside the block, its own implementation after."""
    register()
    before = model.config._attn_implementation
    model.set_attn_implementation(ATTENTION_NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(before)
