"""Factor levels as R orders them, and JSON-safe numbers: shared by every part of the analysis."""
from __future__ import annotations

import math


def sorted_levels(values) -> list[str]:
    """Factor levels in R's default (alphabetical, case-insensitive) order: the first is the reference."""
    return sorted({str(v) for v in values}, key=lambda v: (v.casefold(), v))


# The paper's script sets `factor(..., levels = c("positive", "negative"))`: positive framing
# is the mixed model's reference level, so its terms read `framingnegative`.
FRAMING_LEVELS = ("positive", "negative")


def framing_levels(values) -> list[str]:
    """Framing levels in the paper's order (positive, negative), then any others alphabetically."""
    present = {str(v) for v in values}
    return [f for f in FRAMING_LEVELS if f in present] + sorted_levels(present - set(FRAMING_LEVELS))



def json_float(x):
    """JSON-safe float: NaN/inf become None (the CLI dumps with allow_nan=False)."""
    x = float(x)
    return x if math.isfinite(x) else None

