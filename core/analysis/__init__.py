"""The paper's statistics behind Figure 1 (METHOD.md sections 3, 4 and 6), one module per part:

- `medians`: word ranks, median ranks per category, family means, the average-ranks table
  (the pandas path; the DuckDB fast path is core/ranks.py);
- `mixed`: the mixed model (REML random intercept per model, nlme's p-values);
- `comparisons`: family tests per panel (Welch, permutation, Hedges' g, Bonferroni);
- `figure1`: the entry points `figure1` (scores in) and `figure1_from_store` (a store in);
- `result`: the typed result `Figure1` (and `MixedModel`, `FamilyTest`) with `to_json()`;
- `summary`: the result in a few sentences.

Pure pandas/numpy/scipy: no UI imports, so the CLI, the dashboard and the tests all call the
same functions and get the same numbers. Callers use `from core import analysis` and the
names below."""
from .comparisons import (bootstrap_ci, family_tests, hedges_g, permutation_labels, permutation_p,
                          permutation_p_many)
from .figure1 import average_ranks_table, figure1, figure1_from_store
from .levels import FRAMING_LEVELS, framing_levels, json_float, sorted_levels
from .medians import average_ranks, family_means, median_ranks, model_mean_ranks, word_ranks
from .mixed import design_matrix, drop_aliased, mixed_model, nlme_df, reml_random_intercept
from .result import FamilyTest, Figure1, MixedModel, Term, as_json
from .summary import models_text, summary_text

__all__ = ["FRAMING_LEVELS", "FamilyTest", "Figure1", "MixedModel", "Term", "as_json", "average_ranks",
           "average_ranks_table", "bootstrap_ci", "design_matrix", "drop_aliased", "family_means", "family_tests",
           "figure1", "figure1_from_store", "framing_levels", "hedges_g", "json_float", "median_ranks",
           "mixed_model", "model_mean_ranks", "models_text", "nlme_df", "permutation_labels", "permutation_p", "permutation_p_many",
           "reml_random_intercept", "sorted_levels", "summary_text", "word_ranks"]
