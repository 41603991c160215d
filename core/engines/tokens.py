"""Token ids of what a model scores (METHOD.md §1, §4).

RM: the conversation [user: prompt, assistant: word] formatted with the model's own chat
template and tokenized once, without adding special tokens again (the template already
holds BOS). LM: the prompt formatted for generation (or the raw prompt with the
tokenizer's usual BOS when there is no template), then the word's own tokens."""
from __future__ import annotations

from typing import Sequence

from ..models import ModelError


def _need_template(tokenizer) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError("the tokenizer has no chat template, which reward scoring needs; add the base "
                         "model's chat_template to tokenizer_config.json (or chat_template.jinja) in the model folder")


def _conversation(prompt: str, word: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": word}]


def rm_text(tokenizer, prompt: str, word: str) -> str:
    _need_template(tokenizer)
    return tokenizer.apply_chat_template(_conversation(prompt, word), tokenize=False)


def rm_ids(tokenizer, prompt: str, word: str) -> list[int]:
    """Token ids of the formatted conversation, tokenized once, no second BOS."""
    return tokenizer(rm_text(tokenizer, prompt, word), add_special_tokens=False)["input_ids"]


def rm_ids_batch(tokenizer, prompt: str, words: Sequence[str]) -> list[list[int]]:
    """`rm_ids` of many words at once: one batched template render and one batched
    tokenizer call (the same ids, a fraction of the per-call overhead)."""
    if not words:
        return []
    _need_template(tokenizer)
    texts = tokenizer.apply_chat_template([_conversation(prompt, w) for w in words], tokenize=False)
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def lm_prefix_ids(tokenizer, prompt: str) -> list[int]:
    """The context an LM answers in: chat template with the generation prompt, or the raw
    prompt (with the tokenizer's usual BOS) for pretrained models without a template."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]


def word_ids(tokenizer, word: str) -> list[int]:
    return tokenizer(word, add_special_tokens=False)["input_ids"]


def word_ids_batch(tokenizer, words: Sequence[str]) -> list[list[int]]:
    if not words:
        return []
    return [list(ids) for ids in tokenizer(list(words), add_special_tokens=False)["input_ids"]]
