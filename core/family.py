"""A model's base family — the pretrained model a reward model was fine-tuned from, the
thing whose values the paper says it inherits. One home for how a family is detected,
checked, written, ordered and coloured.

Stored in lower case ('llama'); shown capitalised ('Llama', as in the paper's figures and
R factor levels)."""
from __future__ import annotations

import math
import re

import pandas as pd

from .errors import ModelError

BY_MODEL_TYPE = {  # config.model_type prefix -> family
    "llama": "llama", "gemma": "gemma", "qwen": "qwen", "mistral": "mistral", "mixtral": "mistral",
    "phi": "phi", "gpt2": "gpt2", "gpt_neox": "pythia", "olmo": "olmo", "falcon": "falcon",
    "deepseek": "deepseek", "internlm": "internlm", "granite": "granite", "smollm": "llama",
}
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
UNKNOWN = "unknown"
KNOWN_ORDER = ["gemma", "llama", "qwen"]  # the paper's two first, so panels line up

COLORS = {"gemma": "#DB4437", "llama": "#0064E0", "qwen": "#7C3AED"}
PALETTE = ["#0F9D58", "#F4B400", "#00897B", "#8D6E63", "#EC407A", "#5C6BC0", "#26A69A", "#FF7043"]
UNKNOWN_COLOR = "#9E9E9E"


def _missing(family) -> bool:
    return family is None or (isinstance(family, float) and math.isnan(family)) or str(family).strip() == ""


def from_model_type(model_type: str | None) -> str:
    """The family of a config's model_type; 'unknown' for anything that is not a plain
    name (a config is data from whoever made the model and is shown to every visitor)."""
    mt = str(model_type or "").strip().lower()
    for prefix, fam in BY_MODEL_TYPE.items():
        if mt.startswith(prefix):
            return fam
    return mt if NAME.fullmatch(mt) else UNKNOWN


def from_hub_id(hub_id: str) -> str | None:
    """A guess from an id like 'Ray2333/GRM-gemma2-2B' when the registry does not know the
    model (published scores); None when the id names no family."""
    low = str(hub_id).lower()
    for key in ("gemma", "llama", "qwen", "mistral", "phi"):
        if key in low:
            return key
    return None


def check(family: str) -> str:
    """A family given by hand (--family, the Models page): lower-case letters, digits, '.', '_', '-'."""
    fam = str(family).strip().lower()
    if not NAME.fullmatch(fam):
        raise ModelError(f"family {str(family)[:40]!r} is not a plain name; use lower-case letters, digits, "
                         "'.', '_' or '-' (at most 32), e.g. llama")
    return fam


def display(family) -> str | None:
    """'gemma' -> 'Gemma' (the paper's figures and R factor levels); missing -> None."""
    if _missing(family):
        return None
    s = str(family).strip()
    return s[:1].upper() + s[1:]


def label(family) -> str:
    """A family as plain text for a page or report: only a validated name is shown (a family
    comes from a model's config.json or --family, i.e. from whoever made the model)."""
    fam = str(family).strip().lower()
    return fam.capitalize() if NAME.fullmatch(fam) else "Unknown"


def order(families) -> list[str]:
    """Families in a fixed order (Gemma, Llama, Qwen, then alphabetical) so panels line up."""
    vals = [str(f) for f in pd.unique(pd.Series(list(families)).dropna())]
    return sorted(vals, key=lambda f: (KNOWN_ORDER.index(f.lower()) if f.lower() in KNOWN_ORDER else 9, f.lower()))


def color(family) -> str:
    """The colour of a family, the same on every chart (case-insensitive); other families
    take a stable colour from one palette."""
    if _missing(family):
        return UNKNOWN_COLOR
    key = str(family).strip().lower()
    if key in COLORS:
        return COLORS[key]
    if key in (UNKNOWN, "none"):
        return UNKNOWN_COLOR
    return PALETTE[sum(map(ord, key)) % len(PALETTE)]
