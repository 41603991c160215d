"""What a half-precision dtype's arithmetic can reproduce, and how an engine is checked in it.

bfloat16 keeps 8 significant bits: each rounding is off by up to 2^-9 relative, and a
model carries its roundings through every layer. Two computations of the same reward that
are equal in real arithmetic but round differently (the cached engine's prefix block and
merged softmax, the naive engine's padded rows, another batch size on a GPU) therefore
differ by the dtype's *noise on that model*, which no fixed tolerance captures: measured on
random-weight Gemma 2 / Llama models (docs/engines.md, "Half precision"), the rms relative
difference of naive bf16 from exact arithmetic ran from 1e-4 to 6e-2, and single rows of
correct engines differed by up to 26 % of max(1, |value|) — more than some real bugs move
a value. So a half-precision check is split in two:

- **logic, in exact arithmetic**: the same weights, every operation in float32
  (`float32_arithmetic`; float32 rounding, ~1e-6, is exact for this purpose), where two
  correct computations agree to float32's tolerance and any wrong mask, merge or position
  shows at full size;
- **rounding, in the dtype**: two computations may differ by at most `NOISE_FACTOR` times
  the dtype's noise on this model and these rows, measured as the naive engine's rms
  relative distance from exact arithmetic (`noise`), never less than the fixed tolerance."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

HALF_NAMES = ("bfloat16", "float16")
# Two correct computations in the same half dtype differ, in rms relative terms over the
# checked rows, by at most this many times the naive engine's own rms distance from exact
# arithmetic: measured 4.7 at worst over 6,000 draws of 12 rows (random-weight Gemma 2 /
# Llama, 2-32 layers, bf16 on CPU), p99 3.1; docs/engines.md.
NOISE_FACTOR = 5.0
LINEAR_CHUNK = 1 << 27  # weights above this many elements are upcast in slices (an LM head)


def is_half(dtype) -> bool:
    """bfloat16 or float16 (a torch dtype or its name)."""
    return str(dtype).replace("torch.", "") in HALF_NAMES


def relative_errors(values: Sequence[float], reference: Sequence[float]) -> list[float]:
    """|value - reference| / max(1, |reference|) per row (NaN where a value is not finite)."""
    import math
    out = []
    for v, r in zip(values, reference):
        d = abs(float(v) - float(r)) / max(1.0, abs(float(r)))
        out.append(d if math.isfinite(d) else math.nan)
    return out


def rms_relative(values: Sequence[float], reference: Sequence[float]) -> float:
    """The rms of `relative_errors` (NaN if any row is not finite: never within a bound)."""
    import math
    errs = relative_errors(values, reference)
    if not errs:
        return 0.0
    return math.sqrt(sum(e * e for e in errs) / len(errs))


def rounding_bound(fixed: float, naive: Sequence[float], exact: Sequence[float]) -> tuple[float, float]:
    """(noise, bound): the naive engine's rms relative distance from exact arithmetic on
    these rows, and what two computations in the dtype may differ by: NOISE_FACTOR x noise,
    never less than `fixed`."""
    noise = rms_relative(naive, exact)
    return noise, max(fixed, NOISE_FACTOR * noise)


def _upcast(x):
    import torch
    if isinstance(x, torch.Tensor):
        return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
    if isinstance(x, torch.dtype):
        return torch.float32 if x in (torch.bfloat16, torch.float16) else x
    if isinstance(x, (list, tuple)):
        return type(x)(_upcast(i) for i in x)
    if isinstance(x, dict):
        return {k: _upcast(v) for k, v in x.items()}
    return x


def _mode(linear_chunk: int):
    """A torch function mode that computes every operation in float32: half tensors are
    upcast as they enter each operation (the model's weights stay as they are: a bf16
    weight is exact in float32), and a cast to a half dtype becomes a cast to float32."""
    import torch
    from torch.overrides import TorchFunctionMode
    F = torch.nn.functional

    class Float32Arithmetic(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is F.embedding:   # a lookup is exact: gather in the stored dtype, then upcast
                return _upcast(func(*args, **kwargs))
            if func is F.linear:
                x = args[0] if args else kwargs["input"]
                w = args[1] if len(args) > 1 else kwargs["weight"]
                b = args[2] if len(args) > 2 else kwargs.get("bias")
                if w.numel() > linear_chunk:   # an LM head: no 4 GB float32 copy at once
                    rows = max(1, linear_chunk // max(1, w.shape[1]))
                    return torch.cat([func(_upcast(x), _upcast(w[i:i + rows]),
                                           None if b is None else _upcast(b[i:i + rows]))
                                      for i in range(0, w.shape[0], rows)], dim=-1)
            return func(*_upcast(args), **_upcast(kwargs))
    return Float32Arithmetic()


@contextmanager
def float32_arithmetic(linear_chunk: int = LINEAR_CHUNK):
    """Inside the block, every torch operation runs in float32 on the model's own weights
    (no copy of the model, nothing changed in it): the values exact arithmetic gives, to
    float32 rounding. Matrix products use full float32 (no TF32) while it lasts; a linear
    layer's weight of more than `linear_chunk` elements is upcast a slice at a time."""
    import torch
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with _mode(linear_chunk):
            yield
    finally:
        torch.set_float32_matmul_precision(before)
