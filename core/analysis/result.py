"""The typed result of the Figure 1 analysis, and its JSON form.

Why typed: a part that could not be computed (one family only: no mixed model, no family
tests) is `None` with a `reason`, never a `{"message": ...}` dict standing where data would
be. `to_json()` gives the one JSON object the CLI prints (`analyze --json`) and the R
reference is compared with; there a missing part is `{"message": reason}`, as before."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Term:
    """One fixed effect of the mixed model (R's term name, estimate, nlme's t-test p)."""
    term: str
    estimate: float
    p: float | None  # None: not estimable (no denominator df)

    def to_json(self) -> dict:
        return {"term": self.term, "estimate": self.estimate, "p": self.p}


@dataclass(frozen=True)
class MixedModel:
    """Fixed effects of median_rank ~ family*category*framing, random intercept per model."""
    terms: list[Term]
    reference: dict[str, str]              # factor -> its reference level
    dropped_terms: list[str] = field(default_factory=list)  # aliased columns (empty design cells)
    note: str | None = None                # factors left out (one level only)

    def estimate(self, term: str) -> float:
        return next(t.estimate for t in self.terms if t.term == term)

    def to_json(self) -> dict:
        out = {"terms": [t.to_json() for t in self.terms], "reference": dict(self.reference)}
        if self.dropped_terms:
            out["dropped_terms"] = list(self.dropped_terms)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class FamilyTest:
    """One family against the reference family in one (category, framing) panel. p-values
    and effect sizes are None where a family has fewer than two rows (JSON has no NaN)."""
    category: str
    framing: str
    comparison: str                        # "<family> vs <reference>"
    welch_p: float | None
    welch_p_bonferroni: float | None
    permutation_p: float | None
    permutation_p_bonferroni: float | None
    effect_size: float | None              # Hedges' g of (family - reference)
    effect_ci_low: float | None
    effect_ci_high: float | None

    def to_json(self, with_comparison: bool = True) -> dict:
        head = {"category": self.category, "framing": self.framing}
        if with_comparison:
            head["comparison"] = self.comparison
        return {**head, "welch_p": self.welch_p, "welch_p_bonferroni": self.welch_p_bonferroni,
                "permutation_p": self.permutation_p, "permutation_p_bonferroni": self.permutation_p_bonferroni,
                "effect_size": self.effect_size, "effect_ci_low": self.effect_ci_low,
                "effect_ci_high": self.effect_ci_high}


def tests_json(tests: list[FamilyTest]) -> list[dict]:
    """Family tests as JSON rows; `comparison` is named only when there are several (three or
    more families), as the paper's two-family tables have no such column."""
    several = len({t.comparison for t in tests}) > 1
    return [t.to_json(several) for t in tests]


@dataclass(frozen=True)
class Figure1:
    """Everything Figure 1 shows for one corpus (METHOD.md section 3). Tables are JSON-ready
    rows (numbers as float or None); `mixed_model` and `family_tests` are None, with
    `reason`, when they cannot be computed (fewer than two families)."""
    corpus: str
    n_words: int
    median_ranks: list[dict]                 # model, family, prompt_id, framing, category, median_rank
    family_means: list[dict]                 # framing, category, family, mean_rank
    average_ranks: list[dict] | None = None  # the paper's "avg ranks" table, long form
    mixed_model: MixedModel | None = None
    family_tests: list[FamilyTest] | None = None
    reason: str | None = None                # why mixed_model and family_tests are missing
    notes: list[str] = field(default_factory=list)
    models_used: list[str] | None = None     # from a store: the models analysed (core/coverage.py's rule)
    models_left_out: list[dict] | None = None  # ... and those left out: {model, reason}
    models_published: list[str] | None = None  # ... and which of those used are the paper's published scores

    def to_json(self) -> dict:
        missing = {"message": self.reason}
        out = {"corpus": self.corpus, "n_words": self.n_words}
        if self.models_used is not None:
            out["models_used"] = list(self.models_used)
            out["models_left_out"] = [dict(r) for r in self.models_left_out or []]
            if self.models_published is not None:
                out["models_published"] = list(self.models_published)
        out.update(median_ranks=self.median_ranks, family_means=self.family_means)
        if self.average_ranks is not None:
            out["average_ranks"] = self.average_ranks
        out["mixed_model"] = self.mixed_model.to_json() if self.mixed_model is not None else missing
        out["family_tests"] = tests_json(self.family_tests) if self.family_tests is not None else missing
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def as_json(result) -> dict:
    """A `Figure1` or its JSON form (e.g. read back from `analyze --json`) as the JSON form:
    the text and table renderers read either."""
    if isinstance(result, Figure1):
        return result.to_json()
    return result or {}
