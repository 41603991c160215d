"""How many CPU threads a scoring run uses: the cores other processes leave free.

Why: torch's intra-op threads meet at a barrier after every parallel operation. When
another process holds one of the cores, the thread that shares that core is descheduled
while the others wait at the barrier, so a run with more threads than free cores gets
slower than one thread, not faster. Measured on the bench's 2-core machine with a
one-thread neighbour (bench/scoring_speed.py, docs/benchmarks.md): the cached engine took
1.43 s per prompt at 2 threads and 0.89 s at 1; the naive engine 15.9 s and 13.1 s.

`VALUEAUDIT_THREADS` (operator's setting): `auto` (default) = torch's default count, less
the cores other processes kept busy while the model was loading (measured from /proc/stat
minus this process's own CPU time, so the load itself is not counted); a number = exactly
that many; `torch` = leave torch's own choice. An `OMP_NUM_THREADS` set by the operator is
respected as torch's default. Only CPU runs are affected."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

from .. import settings

MIN_WINDOW_S = 0.2   # a shorter measuring window is extended to this by sleeping (a cached model load)
_TORCH_DEFAULT: int | None = None


@dataclass(frozen=True)
class CpuSample:
    """Machine-wide busy CPU seconds (all cores) and this process's own CPU seconds."""
    wall: float
    busy: float
    own: float


def sample() -> CpuSample | None:
    """A reading of /proc/stat and of this process's CPU time; None where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)          # idle + iowait
    busy = sum(fields[:8]) - idle                                        # user .. steal, guest excluded
    t = os.times()
    return CpuSample(time.monotonic(), busy / hz, t.user + t.system)


def others_busy(before: CpuSample, after: CpuSample) -> float:
    """Cores (a fraction) that other processes kept busy between two samples."""
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0
    others = (after.busy - before.busy) - (after.own - before.own)
    return max(0.0, others / wall)


def torch_default() -> int:
    """torch's own thread count in this process, read before this module first changes it."""
    global _TORCH_DEFAULT
    if _TORCH_DEFAULT is None:
        import torch
        _TORCH_DEFAULT = torch.get_num_threads()
    return _TORCH_DEFAULT


def requested() -> str | int:
    """The operator's VALUEAUDIT_THREADS: 'auto', 'torch' or a count (checked before a model
    is loaded, so a typo costs one line, not a load)."""
    raw = settings.get("VALUEAUDIT_THREADS").strip().lower()
    if raw in ("", "auto", "torch"):
        return raw or "auto"
    try:
        n = int(raw)
    except ValueError:
        raise settings.SettingsError(f"VALUEAUDIT_THREADS={raw!r} is not auto, torch or a number; "
                                     "fix or unset it") from None
    if n < 1:
        raise settings.SettingsError(f"VALUEAUDIT_THREADS={raw!r} must be at least 1")
    return n


def choose(wanted: str | int, default: int, busy_elsewhere: float | None) -> int | None:
    """Threads for a run (None: leave torch as it is). `auto`: the default less the cores
    other processes keep busy, rounded, at least 1."""
    if wanted == "torch":
        return None
    if wanted == "auto":
        return max(1, min(default, round(default - (busy_elsewhere or 0.0))))
    return int(wanted)


@contextmanager
def for_run(wanted: str | int, before: CpuSample | None, device: str):
    """Inside the block torch uses the threads `choose` gives (`wanted` from `requested()`)
    for a CPU run whose model load began at `before`; torch's previous count is restored
    after it. Yields a note for the run's log when the count differs from torch's default."""
    if str(device) != "cpu":
        yield None
        return
    import torch
    default, previous = torch_default(), torch.get_num_threads()
    busy = None
    if wanted == "auto" and before is not None:   # only `auto` looks at the other processes
        after = sample()
        if after is not None and after.wall - before.wall < MIN_WINDOW_S:
            time.sleep(MIN_WINDOW_S - (after.wall - before.wall))
            after = sample()
        busy = others_busy(before, after) if after is not None else None
    n = choose(wanted, default, busy)
    if n is None:
        yield None
        return
    torch.set_num_threads(n)
    try:
        if n == default:
            yield None
        else:
            why = (f"other processes kept {busy or 0.0:.1f} of the cores busy" if wanted == "auto"
                   else f"VALUEAUDIT_THREADS={wanted}")
            yield f"{n} CPU thread{'s' if n != 1 else ''} instead of torch's {default} ({why})"
    finally:
        torch.set_num_threads(previous)
