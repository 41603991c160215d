"""core.family: the one home of a model's base family — detection, checking, display,
order and colour — against the paper's conventions (stored lower case, shown capitalised,
Gemma before Llama as R's alphabetical factor levels put them)."""
from __future__ import annotations

import pytest

from core import family
from core.models import ModelError


@pytest.mark.parametrize("model_type, fam", [("llama", "llama"), ("gemma2", "gemma"), ("mixtral", "mistral"),
                                             ("gpt_neox", "pythia"), ("mamba", "mamba"),
                                             ("<img src=x>", "unknown"), (None, "unknown")])
def test_family_from_a_config_model_type(model_type, fam):
    assert family.from_model_type(model_type) == fam


def test_family_guessed_from_published_ids():
    assert family.from_hub_id("Ray2333/GRM-gemma2-2B-rewardmodel-ft") == "gemma"
    assert family.from_hub_id("LxzGordon/URM-LLaMa-3.1-8B") == "llama"
    assert family.from_hub_id("openbmb/Eurus-RM-7b") is None


def test_a_hand_given_family_is_a_plain_lower_case_name():
    assert family.check(" Llama ") == "llama"
    with pytest.raises(ModelError, match="not a plain name"):
        family.check("llama; DROP TABLE models")


def test_display_label_order_and_colour_agree_across_case():
    assert family.display("gemma") == "Gemma" and family.display(None) is None and family.display(" ") is None
    assert family.label("<b>x</b>") == "Unknown" and family.label("qwen") == "Qwen"
    assert family.order(["llama", "Phi", "Gemma", None, "aaa"]) == ["Gemma", "llama", "aaa", "Phi"]
    assert family.color("Gemma") == family.color("gemma") != family.color("llama")
    assert family.color(None) == family.color("unknown") == family.UNKNOWN_COLOR
    assert family.color("olmo") == family.color("OLMo") and family.color("olmo") in family.PALETTE

