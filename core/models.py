"""Models: any Hugging Face id or local folder, as a reward model ('rm') or language model ('lm').

Loading is safe by default: safetensors weights only, and a model whose config asks for
its own Python code is refused before any of that code runs, unless the user opts in."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from . import family as _family
from .errors import ModelError, one_line  # noqa: F401  (ModelError is public here: models.ModelError)

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RegistryEntry:
    name: str
    kind: str  # rm | lm
    family: str
    display_name: str
    size: str
    score_head: str = "logits"  # logits: logits[:, 0]; score: the output's .score
    dtype: str = "bfloat16"
    revision: str | None = None
    trust_remote_code: bool = False
    lm_type: str | None = None  # pretrained | instruction-tuned


def _rm(name, family, display, size, head="logits", remote=False):
    return RegistryEntry(name, "rm", family, display, size, head, trust_remote_code=remote)


def _lm(name, family, display, size, lm_type):
    return RegistryEntry(name, "lm", family, display, size, lm_type=lm_type)


# The paper's ten reward models and twelve language models (METHOD.md section 5).
REGISTRY: list[RegistryEntry] = [
    _rm("nicolinho/QRM-Gemma-2-27B", "gemma", "QRM Gemma 2 27B", "27B", "score", remote=True),
    # The version first: a sidebar chip shows about 18 characters, and 'Skywork Gemma 2 27B v0.2'
    # and 'Skywork Gemma 2 27B' read the same there.
    _rm("Skywork/Skywork-Reward-Gemma-2-27B-v0.2", "gemma", "Skywork v0.2 Gemma 2 27B", "27B"),
    _rm("Skywork/Skywork-Reward-Gemma-2-27B", "gemma", "Skywork Gemma 2 27B", "27B"),
    _rm("Ray2333/GRM-gemma2-2B-rewardmodel-ft", "gemma", "GRM Gemma 2 2B", "2B"),
    _rm("Skywork/Skywork-Reward-Llama-3.1-8B-v0.2", "llama", "Skywork v0.2 Llama 3.1 8B", "8B"),
    _rm("nicolinho/QRM-Llama3.1-8B", "llama", "QRM Llama 3.1 8B", "8B", "score", remote=True),
    _rm("LxzGordon/URM-LLaMa-3.1-8B", "llama", "URM Llama 3.1 8B", "8B"),
    _rm("Ray2333/GRM-Llama3-8B-rewardmodel-ft", "llama", "GRM Llama 3 8B", "8B"),
    _rm("Ray2333/GRM-Llama3.2-3B-rewardmodel-ft", "llama", "GRM Llama 3.2 3B", "3B"),
    _rm("RLHFlow/ArmoRM-Llama3-8B-v0.1", "llama", "ArmoRM Llama 3 8B", "8B", "score", remote=True),
    _lm("google/gemma-2-2b", "gemma", "Gemma 2 2B", "2B", "pretrained"),
    _lm("google/gemma-2-2b-it", "gemma", "Gemma 2 IT 2B", "2B", "instruction-tuned"),
    _lm("google/gemma-2-9b-it", "gemma", "Gemma 2 IT 9B", "9B", "instruction-tuned"),
    _lm("google/gemma-2-27b-it", "gemma", "Gemma 2 IT 27B", "27B", "instruction-tuned"),
    _lm("meta-llama/Llama-3.2-3B", "llama", "Llama 3.2 3B", "3B", "pretrained"),
    _lm("meta-llama/Llama-3.2-3B-Instruct", "llama", "Llama 3.2 3B Instruct", "3B", "instruction-tuned"),
    _lm("meta-llama/Llama-3.2-1B-Instruct", "llama", "Llama 3.2 1B Instruct", "1B", "instruction-tuned"),
    _lm("meta-llama/Meta-Llama-3-8B-Instruct", "llama", "Llama 3 8B Instruct", "8B", "instruction-tuned"),
    _lm("meta-llama/Llama-3.1-8B-Instruct", "llama", "Llama 3.1 8B Instruct", "8B", "instruction-tuned"),
    _lm("meta-llama/Meta-Llama-3-70B-Instruct", "llama", "Llama 3 70B Instruct", "70B", "instruction-tuned"),
    _lm("meta-llama/Llama-3.1-70B-Instruct", "llama", "Llama 3.1 70B Instruct", "70B", "instruction-tuned"),
    _lm("meta-llama/Llama-3.3-70B-Instruct", "llama", "Llama 3.3 70B Instruct", "70B", "instruction-tuned"),
]


def registry_entry(name: str) -> RegistryEntry | None:
    for e in REGISTRY:
        if e.name.lower() == name.lower():
            return e
    return None




def pick_device(device: str = "auto") -> str:
    import torch
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("device cuda asked for, but no CUDA GPU is visible; choose device auto or cpu")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError("device mps asked for, but MPS is not available; choose device auto or cpu")
    return device


def pick_dtype(dtype: str, device: str):
    import torch
    if dtype == "auto":
        return torch.bfloat16 if device in ("cuda", "mps") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


# -- identity ------------------------------------------------------------------------
MAX_REVISION_CHARS = 255
_REVISION_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


def check_revision(revision: str | None) -> str | None:
    """A hub revision (branch, tag or commit) as git's check-ref-format allows one, roughly;
    None or blank -> None. Why: a revision goes into the model's key and the hub cache's
    paths, so `../x`, an absolute path or a control character is refused here, wherever a
    revision is accepted (CLI, Models and Score pages, jobs, the log-prob download)."""
    if revision is None:
        return None
    if not isinstance(revision, str):
        raise ModelError(f"revision must be text (a branch, tag or commit), not {type(revision).__name__}")
    rev = revision.strip()
    if not rev:
        return None
    bad = (len(rev) > MAX_REVISION_CHARS or _REVISION_BAD.search(rev) or rev == "@"
           or rev.startswith("/") or rev.endswith(("/", "."))
           or any(part.startswith(".") or part.endswith(".lock") for part in rev.split("/")))
    if bad:
        raise ModelError(f"revision {rev[:60]!r} is not a branch, tag or commit name: use letters, digits and "
                         f"-_./ (no '..', no leading '/', no spaces or control characters, at most "
                         f"{MAX_REVISION_CHARS} characters)")
    return rev


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
# What the Hugging Face Trainer saves beside a checkpoint's weights: optimizer and scheduler
# state, RNG state and its arguments. They never change a score, so they are no part of a
# model's identity (an optimizer file is twice the model: hashing it would double the work).
TRAINER_STATE_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin")


def is_weight_file(name: str) -> bool:
    """A file that may hold model weights (not the Trainer's optimizer, scheduler or RNG state)."""
    if name in TRAINER_STATE_FILES or (name.startswith("rng_state") and name.endswith(".pth")):
        return False
    return name.endswith(_WEIGHT_SUFFIXES)


def weights_hash(folder: Path) -> str:
    """sha256 over the weight files' names and contents: a local model's identity, so
    retraining into the same folder never mixes old and new scores. Each file's digest is
    remembered by (path, inode, size, mtime, ctime), so a 50 GB model is read once, not on
    every run; ctime and inode change on any write or replacement, even one that restores
    the old mtime (`cp -p`, `rsync -a`, `tar x`), so a replaced file is always re-hashed."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_weight_file(p.name))
    for p in files:
        h.update(p.name.encode())
        h.update(_file_digest(p).encode())
    return h.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    from .paperdata import cache_dir
    st = path.stat()
    key = f"{path.resolve()}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
    memo_file = cache_dir() / "weight_digests.json"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    memo[key] = h.hexdigest()
    try:  # a read-only cache folder only costs the re-hash next time
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        tmp.replace(memo_file)
    except OSError:
        pass
    return memo[key]


def is_local(name: str) -> bool:
    return Path(name).expanduser().is_dir()


def model_key(name: str, revision: str | None = None, commit: str | None = None) -> str:
    """Identity of a model's weights: hub id + revision (commit when known), or local path + weights hash."""
    revision = check_revision(revision)
    if is_local(name):
        folder = Path(name).expanduser().resolve()
        return f"local:{folder}#{weights_hash(folder)}"
    return f"hub:{name}@{commit or revision or 'main'}"


def scored_key(key: str, dtype) -> str:
    """The identity of scores computed from these weights in this precision: float16 and
    float32 values differ by about 1e-3, so they never share rows (key + '~' + dtype).
    Rows stored before the dtype was part of the key keep their old key and stay apart."""
    return f"{key}~{str(dtype).replace('torch.', '')}"


# -- config and safety checks (no model code runs here) -------------------------------
def read_config(name: str, revision: str | None = None) -> dict:
    """config.json as plain JSON: read before loading so remote code is never imported."""
    revision = check_revision(revision)
    if is_local(name):
        p = Path(name).expanduser() / "config.json"
        if not p.is_file():
            raise ModelError(f"{name} has no config.json: it is not a model saved with save_pretrained",
                             cli_hint="give a folder saved with save_pretrained, or a hub id")
        return _json_config(p, name)
    if "/" not in name and not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ModelError(f"model '{name}' not found: give a Hugging Face id (org/name) or an existing local folder")
    try:
        from huggingface_hub import hf_hub_download
        p = hf_hub_download(name, "config.json", revision=revision)
    except Exception as e:  # noqa: BLE001 - hub errors come in many types
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (offline: HF_HUB_OFFLINE=1 and it is not in the local cache)" if offline else ""
        kind = type(e).__name__
        raise ModelError(f"model '{name}' not found{hint}: check the id ({kind})",
                         cli_hint="or give a local folder saved with save_pretrained") from None
    return _json_config(Path(p), name)


def _json_config(path: Path, name: str) -> dict:
    """config.json as a dict; a broken file is named in the error."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{name}: config.json is not readable JSON ({one_line(e)}); "
                         "re-save the model with save_pretrained") from None
    if not isinstance(config, dict):
        raise ModelError(f"{name}: config.json is not a JSON object; re-save the model with save_pretrained")
    return config


def check_remote_code(name: str, config: dict, kind: str, trust_remote_code: bool, revision: str | None) -> None:
    auto_map = config.get("auto_map") or {}
    needs = [k for k in auto_map if k in ("AutoModelForSequenceClassification", "AutoModelForCausalLM",
                                              "AutoModel", "AutoConfig", "AutoTokenizer")]
    if needs and not trust_remote_code:
        rev = f" at revision {revision}" if revision else ""
        raise ModelError(f"{name}{rev} ships its own Python code ({', '.join(needs)}); it was not run. "
                         "Allow remote code only if you trust that repository",
                         cli_hint="--trust-remote-code")


def check_rm_head(name: str, config: dict) -> None:
    archs = config.get("architectures") or []
    if config.get("auto_map", {}).get("AutoModelForSequenceClassification"):
        return
    if archs and not any("SequenceClassification" in a or "Reward" in a for a in archs):
        raise ModelError(f"{name} has no reward (classification) head ({', '.join(archs)}); "
                         "score it as kind lm, or pick a reward model")


def check_lm_head(name: str, config: dict) -> None:
    """A reward model loaded as a language model gets an untrained (or tied) LM head, and
    its log-probabilities would be noise: refuse it by its architecture."""
    archs = config.get("architectures") or []
    if archs and all("SequenceClassification" in a or "Reward" in a for a in archs):
        raise ModelError(f"{name} is a reward model ({', '.join(archs)}), not a language model; "
                         "score it as kind rm, or pick its base language model")


def check_loaded_weights(name: str, kind: str, info: dict) -> None:
    """Every weight of the model must come from the checkpoint: a missing one is randomly
    initialised and every score would be noise. A checkpoint holding another kind's head
    (a reward head loaded as an LM whose head is tied to the embeddings) is refused too."""
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        hint = "score it as kind lm" if kind == "rm" else "score it as kind rm"
        raise ModelError(f"{name} loads as {kind} with {len(missing)} weight(s) missing from its files "
                         f"({missing[0]}), which would be random; {hint}, or give a complete checkpoint")
    heads = sorted(k for k in (info.get("unexpected_keys") or []) if k.split(".")[0] in ("score", "classifier", "v_head"))
    if kind == "lm" and heads:
        raise ModelError(f"{name} holds a reward head ({heads[0]}), so it is not a language model; "
                         "score it as kind rm")


def weight_files(name: str, revision: str | None = None) -> list[str]:
    if is_local(name):
        return [p.name for p in Path(name).expanduser().iterdir() if is_weight_file(p.name)]
    try:
        from huggingface_hub import list_repo_files
        return [f for f in list_repo_files(name, revision=revision) if is_weight_file(f.rsplit("/", 1)[-1])]
    except Exception:  # noqa: BLE001 - offline: let from_pretrained decide
        return []


def check_safetensors(name: str, revision: str | None, allow_pickle: bool) -> None:
    files = weight_files(name, revision)
    if files and not any(f.endswith(".safetensors") for f in files) and not allow_pickle:
        raise ModelError(f"{name} has only pickle weights ({files[0]}, ...), which can run code when loaded; "
                         "allow pickle weights only if you trust its source", cli_hint="--allow-pickle")


def preflight(name: str, kind: str, revision: str | None = None, trust_remote_code: bool = False,
              allow_pickle: bool = False, head_check: bool = True) -> tuple[dict, str | None]:
    """Every refusal that needs no model code, before anything loads: (config, revision).
    Used by `load` and by the Ray driver, which must refuse a model before starting workers.
    `head_check=False` for an adapter's base (a LoRA reward model trains its head with the
    adapter; core.adapters checks that the adapter brings every weight the base lacks)."""
    if kind not in ("rm", "lm"):
        raise ModelError(f"kind must be 'rm' or 'lm', not {kind!r}")
    revision = check_revision(revision)
    entry = registry_entry(name)
    if revision is None and entry is not None:
        revision = entry.revision
    config = read_config(name, revision)
    check_remote_code(name, config, kind, trust_remote_code, revision)
    if not head_check:
        pass
    elif kind == "rm":
        check_rm_head(name, config)
    else:
        check_lm_head(name, config)
    check_safetensors(name, revision, allow_pickle)
    return config, revision


# -- loading -------------------------------------------------------------------------
@dataclass
class LoadedModel:
    name: str
    kind: str
    model: object
    tokenizer: object
    family: str
    device: str
    dtype: object
    key: str
    revision: str | None = None
    score_head: str = "logits"
    display_name: str | None = None
    n_params: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))


def load(name: str, kind: str, *, revision: str | None = None, device: str = "auto", dtype: str = "auto",
         trust_remote_code: bool = False, allow_pickle: bool = False, family: str | None = None,
         tokenizer: str | None = None, base_resolver=None) -> LoadedModel:
    """Load a model for scoring, refusing unsafe or unusable ones with a one-line reason.
    `tokenizer`: a folder or hub id to read the tokenizer from instead of `name` (a training
    run whose checkpoints hold only weights keeps it at the run's root). A LoRA/PEFT adapter
    (`adapter_config.json` and adapter weights on a base model) is loaded by core.adapters;
    `base_resolver` is how the base it names may be loaded (the app: the visitor's rule)."""
    from . import adapters
    adapter = adapters.config_of(name, check_revision(revision))
    if adapter is not None:
        return adapters.load(name, kind, adapter, revision=revision, device=device, dtype=dtype,
                             trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, family=family,
                             tokenizer=tokenizer, base_resolver=base_resolver)
    config, revision = preflight(name, kind, revision, trust_remote_code, allow_pickle)
    entry = registry_entry(name)
    if family is not None:
        family = _family.check(family)

    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype if dtype != "auto" or entry is None or dev == "cpu" else entry.dtype, dev)
    tok = load_tokenizer(tokenizer or name, kind, None if tokenizer else revision, trust_remote_code)
    model, info = load_weights(name, kind, revision, trust_remote_code, allow_pickle, torch_dtype, config)
    check_loaded_weights(name, kind, info)
    model.to(dev).eval()
    fam = (family or (entry.family if entry else None) or _family.from_model_type(config.get("model_type"))).lower()
    commit = getattr(model.config, "_commit_hash", None) if not is_local(name) else None
    return LoadedModel(
        name=name, kind=kind, model=model, tokenizer=tok, family=fam, device=dev, dtype=torch_dtype,
        key=scored_key(model_key(name, revision, commit), torch_dtype), revision=commit or revision,
        score_head=entry.score_head if entry else "logits",
        display_name=entry.display_name if entry else None,
        n_params=sum(p.numel() for p in model.parameters()))


def load_tokenizer(name: str, kind: str, revision: str | None = None, trust_remote_code: bool = False):
    """The tokenizer of `name` (a reward model's must hold a chat template)."""
    from transformers import AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise ModelError(f"could not load the tokenizer of {name}: {one_line(e)}") from None
    if kind == "rm" and not getattr(tokenizer, "chat_template", None):
        raise ModelError(f"{name}: the tokenizer has no chat template, which reward scoring needs; add the base "
                         "model's chat template (chat_template.jinja or tokenizer_config.json) to the model folder")
    return tokenizer


def attention_for(config: dict | None) -> str | None:
    """The attention implementation a model must load with to compute what its config
    defines, or None for transformers' default. Gemma 2 soft-caps its attention logits
    (`attn_logit_softcapping`); PyTorch's sdpa kernel cannot, and transformers drops the
    cap there silently (5.17 still runs Gemma 2 with sdpa by default, 5.25 forces eager):
    such a model loads with eager attention, so its scores do not depend on the version."""
    config = config or {}
    for cfg in (config, config.get("text_config") or {}):
        if isinstance(cfg, dict) and cfg.get("attn_logit_softcapping"):
            return "eager"
    return None


def attention_of(model) -> str | None:
    """The attention implementation a loaded model runs (recorded in a run's provenance)."""
    return getattr(getattr(model, "config", None), "_attn_implementation", None)


def load_weights(name: str, kind: str, revision: str | None, trust_remote_code: bool, allow_pickle: bool,
                 torch_dtype, config: dict | None = None):
    """(model, loading info) from safetensors (pickle only when allowed), every failure one line.
    `config` (config.json as read by `preflight`) picks the attention (`attention_for`)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    cls = AutoModelForSequenceClassification if kind == "rm" else AutoModelForCausalLM
    kwargs = dict(revision=revision, trust_remote_code=trust_remote_code, dtype=torch_dtype)
    if attention_for(config):
        kwargs["attn_implementation"] = attention_for(config)
    if not allow_pickle:
        kwargs["use_safetensors"] = True
    try:
        return cls.from_pretrained(name, output_loading_info=True, **kwargs)
    except OSError as e:
        msg = str(e)
        if "safetensors" in msg.lower() or ".bin" in msg:
            raise ModelError(f"{name} has no safetensors weights; allow pickle weights only if you trust its source",
                             cli_hint="--allow-pickle") from None
        raise ModelError(f"could not load {name}: {one_line(e)}") from None
    except ValueError as e:
        raise ModelError(f"could not load {name} as {kind}: {one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - e.g. a damaged safetensors header: name the files
        files = ", ".join(sorted(weight_files(name, revision))[:3]) or "its weight files"
        first = one_line(e)
        raise ModelError(f"could not read the weights of {name} ({files}): {first}") from None
