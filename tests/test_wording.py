"""p-values and model terms as a paper prints them (issue 12)."""
import pytest

from core import analysis
from core.wording import p_text, term_in_words


@pytest.mark.parametrize("p, text", [
    (0.0, "p < 1e-15"), (1e-17, "p < 1e-15"), (3.2e-8, "p = 3.2e-8"), (0.0004, "p = 4.0e-4"),
    (0.0123, "p = 0.012"), (0.5, "p = 0.50"), (1.0, "p = 1.00"), (None, "p not available"),
    (float("nan"), "p not available")])
def test_p_text(p, text):
    assert p_text(p) == text


def test_terms_in_words():
    assert term_in_words("familyLlama:categoryCommunion:framingnegative", "Gemma") == \
        "Llama vs Gemma models, Communion words, negative prompts"
    assert term_in_words("(Intercept)") == "(Intercept)"


def test_summary_never_prints_zero_or_none_p():
    fm = [{"framing": "positive", "category": "Agency", "family": f, "mean_rank": m}
          for f, m in (("Gemma", 132.5), ("Llama", 128.3))]
    result = {"corpus": "c", "n_words": 263, "family_means": fm,
              "family_tests": [{"framing": "positive", "category": "Agency", "comparison": "Llama vs Gemma",
                                "welch_p_bonferroni": 0.0}]}
    text = analysis.summary_text(result)
    assert "p < 1e-15" in text and "0.00" not in text and "None" not in text


def test_p_values_in_table_cells_read_as_a_reader_would_write_them():
    from core.wording import p_cell
    assert [p_cell(p) for p in (9e-14, 0.0009999, 0.001, 0.01234, 0.09996, 0.1, 0.456, 0.99999, float("nan"), None)] == \
        ["< 0.001", "< 0.001", "0.001", "0.012", "0.100", "0.10", "0.46", "1.00", "", ""]
