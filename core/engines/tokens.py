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


# -- token ids kept for a whole training run ------------------------------------------------
def fingerprint(tokenizer) -> str:
    """What decides a tokenizer's ids: its class, its tokenizer model and rules (vocabulary,
    merges, normalizer, pre- and post-processing), special tokens and chat template. Two
    checkpoints of one run with the same fingerprint give the same ids for every text."""
    import hashlib
    import json
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    for part in (type(tokenizer).__name__, body, str(getattr(tokenizer, "chat_template", None)),
                 json.dumps(getattr(tokenizer, "special_tokens_map", {}), sort_keys=True, default=str),
                 str(getattr(tokenizer, "add_bos_token", None)), str(getattr(tokenizer, "add_eos_token", None))):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


class Tokenize:
    """Token ids computed when asked (a plain scoring run): the engines' one way to tokenize."""

    def rm_ids_batch(self, tokenizer, prompt: str, words: Sequence[str]) -> list[list[int]]:
        return rm_ids_batch(tokenizer, prompt, words)

    def word_ids_batch(self, tokenizer, words: Sequence[str]) -> list[list[int]]:
        return word_ids_batch(tokenizer, words)

    def lm_prefix_ids(self, tokenizer, prompt: str) -> list[int]:
        return lm_prefix_ids(tokenizer, prompt)

    def prefix(self, tokenizer, prompt: str, choose) -> list[int]:
        """The cached engine's shared prefix of `prompt` (`choose()` plans it)."""
        return choose()


class TokenMemo(Tokenize):
    """Token ids kept for every checkpoint of a training run (core/sweep.py): the checkpoints
    share a tokenizer, so the chat template is rendered, the words tokenized and each
    prompt's shared prefix planned once per run, not once per checkpoint. Bound to one
    tokenizer by its `fingerprint`: a checkpoint whose tokenizer differs starts afresh, so
    a memo never hands out ids of another tokenizer. Ids are kept as int32 arrays (a
    2,000-word corpus x 54 prompts is a few million tokens)."""

    def __init__(self):
        self.key: str | None = None
        self._tokenizer = None
        self._rm: dict[str, dict[str, object]] = {}
        self._words: dict[str, object] = {}
        self._lm_prefix: dict[str, list[int]] = {}
        self._prefix: dict[str, list[int]] = {}
        self.stats = {"tokenizers": 0, "rows_tokenized": 0, "rows_reused": 0, "prefixes_planned": 0}

    def _bind(self, tokenizer) -> None:
        if tokenizer is self._tokenizer:
            return
        key = fingerprint(tokenizer)
        if key != self.key:
            self.key = key
            self._rm, self._words, self._lm_prefix, self._prefix = {}, {}, {}, {}
            self.stats["tokenizers"] += 1
        self._tokenizer = tokenizer

    def rm_ids_batch(self, tokenizer, prompt: str, words: Sequence[str]) -> list[list[int]]:
        import numpy as np
        self._bind(tokenizer)
        have = self._rm.setdefault(prompt, {})
        missing = [w for w in dict.fromkeys(words) if w not in have]
        for w, ids in zip(missing, rm_ids_batch(tokenizer, prompt, missing)):
            have[w] = np.asarray(ids, dtype=np.int32)
        self.stats["rows_tokenized"] += len(missing)
        self.stats["rows_reused"] += len(words) - len(missing)
        return [have[w].tolist() for w in words]

    def word_ids_batch(self, tokenizer, words: Sequence[str]) -> list[list[int]]:
        import numpy as np
        self._bind(tokenizer)
        missing = [w for w in dict.fromkeys(words) if w not in self._words]
        for w, ids in zip(missing, word_ids_batch(tokenizer, missing)):
            self._words[w] = np.asarray(ids, dtype=np.int32)
        return [self._words[w].tolist() for w in words]

    def lm_prefix_ids(self, tokenizer, prompt: str) -> list[int]:
        self._bind(tokenizer)
        if prompt not in self._lm_prefix:
            self._lm_prefix[prompt] = list(lm_prefix_ids(tokenizer, prompt))
        return list(self._lm_prefix[prompt])

    def prefix(self, tokenizer, prompt: str, choose) -> list[int]:
        self._bind(tokenizer)
        if prompt not in self._prefix:
            self._prefix[prompt] = list(choose())
            self.stats["prefixes_planned"] += 1
        return list(self._prefix[prompt])
