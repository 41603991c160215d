"""Tiny but real models for tests and benchmarks: Llama and Gemma 2 architectures with
random weights, a byte-level BPE tokenizer trained in-process, and the families' real
chat templates — saved with save_pretrained and loaded exactly like a hub model."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = \"\" %}{%- endif %}"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}"
    "{{- system_message }}{{- \"<|eot_id|>\" }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# Llama 3's pre-tokenizer split (its tokenizer.json): newline runs, 1-3 digit groups, words.
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")

GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)

SPECIALS = {
    "llama": dict(bos="<|begin_of_text|>", eos="<|eot_id|>", pad="<|finetune_right_pad_id|>",
                  extra=["<|start_header_id|>", "<|end_header_id|>"], template=LLAMA3_TEMPLATE),
    "gemma2": dict(bos="<bos>", eos="<eos>", pad="<pad>", extra=["<start_of_turn>", "<end_of_turn>"],
                   template=GEMMA2_TEMPLATE),
}


def _training_text(corpus: Sequence[str] | None = None) -> list[str]:
    """Words and prompts so the tokenizer splits some words and keeps others whole: every
    other word of `corpus` (default: the Big Two nouns, through corpora.load)."""
    from core import prompts
    words = ["love", "freedom", "power", "kindness", "success", "family", "truth", "honor", "wisdom",
             "Cutting Knowledge Date December Today Date Jul", "system user assistant model"]
    if corpus is not None:
        words += list(corpus)[::2]
    else:
        try:  # every other Big Two noun: the rest split into several tokens
            from core import corpora
            words += corpora.load("big2-nouns").vocabulary[::2]
        except Exception:  # noqa: BLE001 - without paper data, the short list above will do
            pass
    return [p.text for p in prompts.paper_prompts()] * 3 + words


def make_tokenizer(arch: str, vocab_size: int = 1000, template: str | None = None, pre_tokenize: bool = True,
                   add_bos: bool = False, llama3_split: bool = False, extra_text: Sequence[str] = (),
                   corpus: Sequence[str] | None = None):
    """add_bos: a post-processor that prepends BOS when add_special_tokens=True, as Llama 3's
    and Gemma's real tokenizers do (so encoding a chat-templated text *with* special tokens
    doubles the BOS, the most common reward-model scoring bug). llama3_split: Llama 3's own
    pre-tokenizer (its split regex, then byte-level), so newlines, digits and the
    template/answer boundary split as in the real tokenizer; extra_text: more training
    text (e.g. the template's fixed lines, so they take as few tokens as in Llama 3);
    corpus: the answer words to learn every other one of (default: the Big Two nouns, which
    corpora.load reads from the paper's data or downloads; bench/gpu.py, offline, passes its own)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast
    sp = SPECIALS[arch]
    tok = Tokenizer(models.BPE())
    if llama3_split:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    elif pre_tokenize:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:  # no word boundaries: merges may cross the chat-template / answer boundary
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    specials = [sp["bos"], sp["eos"], sp["pad"], *sp["extra"]]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_training_text(corpus) + list(extra_text), trainer)
    if add_bos:
        bos = (sp["bos"], tok.token_to_id(sp["bos"]))
        tok.post_processor = processors.TemplateProcessing(
            single=f"{sp['bos']} $A", pair=f"{sp['bos']} $A {sp['bos']} $B", special_tokens=[bos])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=sp["bos"], eos_token=sp["eos"],
                                   pad_token=sp["pad"], additional_special_tokens=sp["extra"])
    fast.chat_template = template if template is not None else sp["template"]
    return fast


def make_tiny(path: str | os.PathLike, arch: str = "llama", kind: str = "rm", *, hidden: int = 64,
              layers: int = 2, heads: int = 4, kv_heads: int = 2, intermediate: int | None = None,
              vocab_size: int = 1000, seed: int = 0, template: str | None = None,
              pre_tokenize: bool = True, safetensors: bool = True, add_bos: bool = False,
              llama3_split: bool = False, extra_text: Sequence[str] = (), init: str = "small") -> Path:
    """Build, save and return a folder with a random-weight model of the given architecture.
    init "small": every weight N(0, 0.2) (norms 0.02); "fan_in": `fan_in_init`, the scale of
    bench/gpu.py's models, whose bf16 rounding moves rewards by a few per cent."""
    import torch
    from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, Gemma2Config,
                              LlamaConfig)
    path = Path(path)
    tokenizer = make_tokenizer(arch, vocab_size, template, pre_tokenize, add_bos, llama3_split, extra_text)
    common = dict(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=kv_heads,
                  intermediate_size=intermediate or hidden * 2, max_position_embeddings=512,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id, num_labels=1)
    if arch == "llama":
        config = LlamaConfig(**common)
    else:
        config = Gemma2Config(**common, head_dim=hidden // heads, sliding_window=64)
    torch.manual_seed(seed)
    cls = AutoModelForSequenceClassification if kind == "rm" else AutoModelForCausalLM
    model = cls.from_config(config)
    if init == "fan_in":
        fan_in_init(model)
    else:
        with torch.no_grad():  # random heads give scores of usable spread
            for p in model.parameters():
                p.normal_(0, 0.2 if p.dim() > 1 else 0.02)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    if not safetensors:  # a pickle-only checkpoint, as old hub repositories have
        torch.save(model.state_dict(), path / "pytorch_model.bin")
        (path / "model.safetensors").unlink()
    return path


def fan_in_init(model, generator=None) -> None:
    """Weights for activations of order one through every layer at any width: linear layers
    N(0, 1/fan_in) (transformers' std 0.02 is that only near a width of 2,500), embeddings of
    unit scale as the model reads them (Gemma multiplies by sqrt(hidden)), the score head 4x
    for rewards of spread of a few units; norms as built."""
    import torch
    gemma = "gemma" in str(getattr(model.config, "model_type", ""))
    hidden = model.config.hidden_size
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "embed_tokens" in name:
                p.normal_(0, hidden ** -0.5 if gemma else 1.0, generator=generator)
            elif p.dim() == 2:
                p.normal_(0, (4.0 if name.startswith("score") else 1.0) * p.shape[1] ** -0.5, generator=generator)


def make_run(path: str | os.PathLike, base: str | os.PathLike, steps: Sequence[int] = (100, 200, 300), *,
             scale: float = 0.02, seed: int = 7, tokenizer_at_root: bool = True) -> Path:
    """A training run as the Hugging Face Trainer writes it, from a tiny model folder `base`:
    RUN/checkpoint-<step>/ with the weights (moved further from the base at each step: the
    same seeded direction times step/steps[0] times `scale`), trainer_state.json and the
    Trainer's optimizer and scheduler files; the tokenizer at the run's root only (as when
    the Trainer was given no tokenizer), or in each checkpoint."""
    import json
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    path, base = Path(path), Path(base)
    path.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(base)
    if tokenizer_at_root:
        tok.save_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(base, dtype=torch.float32)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    direction = {k: torch.randn(v.shape, generator=gen) for k, v in start.items() if v.is_floating_point()}
    for step in steps:
        ck = path / f"checkpoint-{step}"
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if k in direction:
                    v.copy_(start[k] + direction[k] * scale * step / steps[0])
        model.save_pretrained(ck)
        if not tokenizer_at_root:
            tok.save_pretrained(ck)
        (ck / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": step / steps[-1]}))
        for name in ("optimizer.pt", "scheduler.pt", "training_args.bin", "rng_state.pth"):
            (ck / name).write_bytes(os.urandom(64))  # stand-ins: never loaded, never part of the identity
    shutil.copy(base / "config.json", path / "base_config.json")
    return path


def make_lora_run(path: str | os.PathLike, base: str | os.PathLike, steps: Sequence[int] = (100, 200), *,
                  seed: int = 11) -> Path:
    """A LoRA reward-model run as a PEFT Trainer saves it: from a tiny *language* model `base`
    (no reward head), RUN/checkpoint-<step>/ holding adapter_config.json and
    adapter_model.safetensors (LoRA on q/v and the reward head trained in full, growing with
    the step), trainer_state.json, and the tokenizer at the run's root."""
    import json

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    path, base = Path(path), Path(base)
    path.mkdir(parents=True, exist_ok=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(path)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8,
                                                  target_modules=["q_proj", "v_proj"]))
    gen = torch.Generator().manual_seed(seed)
    trained = {n: p for n, p in peft_model.named_parameters() if "lora_" in n or "modules_to_save" in n}
    start = {n: p.detach().clone() for n, p in trained.items()}
    direction = {n: torch.randn(p.shape, generator=gen) for n, p in trained.items()}
    for step in steps:
        with torch.no_grad():
            for n, p in trained.items():
                p.copy_(start[n] + direction[n] * 0.1 * step / steps[0])
        ck = path / f"checkpoint-{step}"
        peft_model.save_pretrained(ck)
        (ck / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path
