"""LoRA/PEFT adapter checkpoints: `adapter_config.json` and adapter weights on a base model,
as reward-model training with LoRA saves them (a Trainer checkpoint of a PEFT model).

Loaded through the `peft` library (optional: `pip install -r requirements-peft.txt`),
never by hand: the base model loads as any model does (models.preflight and
models.load_weights: safetensors only, remote code only when allowed), peft applies the
adapter, and the adapter is merged into the weights (`merge_and_unload`), so the scored
model is a plain transformers model and both engines run it as they run any other.

Safety as for any model: the adapter's weights must be safetensors (pickle only when
allowed); its base must be a model the caller may load (on a shared server a hub id or an
operator model, never a server path an uploaded config names); a weight the base lacks
(a reward head trained with the adapter) must come from the adapter's own file, or the
load is refused, since it would be random.

Identity: the adapter's key (its folder and weights hash, or hub id and commit) joined to
its base's key, so a new base under the same adapter never shares scores."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from . import family as _family
from . import models, settings
from .errors import ModelError, one_line

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
PICKLE_WEIGHTS = "adapter_model.bin"
_FULL_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                 "pytorch_model.bin.index.json")
INSTALL = "pip install -r requirements-peft.txt"


def available() -> bool:
    """Whether the optional `peft` library is installed."""
    import importlib.util
    return importlib.util.find_spec("peft") is not None


def _has_full_weights(folder: Path) -> bool:
    return any((folder / f).is_file() for f in _FULL_WEIGHTS) or any(folder.glob("model-*.safetensors"))


def _read(path: Path, name: str) -> dict:
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{name}: {CONFIG} is not readable JSON ({one_line(e)})") from None
    if not isinstance(cfg, dict):
        raise ModelError(f"{name}: {CONFIG} is not a JSON object")
    base = cfg.get("base_model_name_or_path")
    if not isinstance(base, str) or not base.strip():
        raise ModelError(f"{name}: {CONFIG} names no base model (base_model_name_or_path); "
                         "give the adapter's base model there")
    return cfg


def config_of(name: str, revision: str | None = None) -> dict | None:
    """`adapter_config.json` of an adapter checkpoint; None for a full model. A local folder
    is an adapter when it holds that file and no full model weights; a hub repository when
    its revision has that file and no config.json (the hub is asked only then)."""
    if models.is_local(name):
        folder = Path(name).expanduser()
        p = folder / CONFIG
        if p.is_file() and not _has_full_weights(folder):
            return _read(p, name)
        return None
    if not settings.HUB_ID.fullmatch(name or ""):
        return None
    try:
        from huggingface_hub import hf_hub_download
        hf_hub_download(name, "config.json", revision=revision)
        return None  # a full model (or one read_config will explain)
    except Exception:  # noqa: BLE001 - not found, offline, gated: maybe an adapter
        pass
    try:
        from huggingface_hub import hf_hub_download
        return _read(Path(hf_hub_download(name, CONFIG, revision=revision)), name)
    except ModelError:
        raise
    except Exception:  # noqa: BLE001 - not an adapter either: read_config says what is wrong
        return None


def base_of(name: str, cfg: dict, resolve=None) -> str:
    """The base model an adapter names, as the caller may load it: `resolve` is the app's
    rule for a visitor's model (settings.visitor_model on a shared server: a hub id or an
    operator model), so a config a visitor brings never opens a server folder; the command
    line, the operator's own tool, loads the base it names."""
    base = cfg["base_model_name_or_path"].strip()
    if resolve is None:
        return base
    try:
        return resolve(base)
    except settings.SettingsError:
        raise ModelError(f"{name}: its adapter's base model {base[:80]!r} is not available on this server: "
                         "an adapter on a shared server must name a Hugging Face id") from None


def _weights_folder(name: str, revision: str | None, allow_pickle: bool) -> tuple[Path, str | None]:
    """(a local folder holding the adapter's config and weights, the hub commit) — from a
    hub repository only those two files are downloaded, so peft never sees pickle weights
    unless they are allowed."""
    if models.is_local(name):
        folder = Path(name).expanduser()
        if not (folder / WEIGHTS).is_file():
            if (folder / PICKLE_WEIGHTS).is_file() and not allow_pickle:
                raise ModelError(f"{name}: the adapter has only pickle weights ({PICKLE_WEIGHTS}), which can run "
                                 "code when loaded; allow pickle weights only if you trust its source",
                                 cli_hint="--allow-pickle")
            if not (folder / PICKLE_WEIGHTS).is_file():
                raise ModelError(f"{name}: {CONFIG} but no adapter weights ({WEIGHTS}); the checkpoint is "
                                 "incomplete (still being written?)")
        return folder, None
    from huggingface_hub import hf_hub_download
    try:
        cfg = Path(hf_hub_download(name, CONFIG, revision=revision))
        try:
            hf_hub_download(name, WEIGHTS, revision=revision)
        except Exception:  # noqa: BLE001 - no safetensors: pickle only when allowed
            if not allow_pickle:
                raise ModelError(f"{name}: the adapter has no safetensors weights ({WEIGHTS}); allow pickle "
                                 "weights only if you trust its source", cli_hint="--allow-pickle") from None
            hf_hub_download(name, PICKLE_WEIGHTS, revision=revision)
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001 - hub errors come in many types
        raise ModelError(f"could not download the adapter {name}: {one_line(e)}") from None
    return cfg.parent, cfg.parent.name  # the snapshot folder is named by its commit


def adapter_keys(folder: Path) -> set[str]:
    """Names of the tensors in the adapter's weights file (read from the safetensors header)."""
    p = folder / WEIGHTS
    if not p.is_file():
        return set()
    from safetensors import safe_open
    with safe_open(str(p), framework="pt") as f:
        return set(f.keys())


def uncovered(missing: list[str], keys: set[str]) -> list[str]:
    """Base weights missing from the base's files that the adapter does not bring either
    (peft saves a module trained in full, e.g. a reward head, as base_model.model.<name>)."""
    return sorted(k for k in missing if f"base_model.model.{k}" not in keys and k not in keys)


def key(name: str, revision: str | None, commit: str | None, base_key: str) -> str:
    """The adapter's identity: its own key joined to its base's (never the dtype: models.scored_key adds it)."""
    return f"{models.model_key(name, revision, commit)}+{base_key}"


def _has_tokenizer(name: str) -> bool:
    if not models.is_local(name):
        return True  # a hub adapter: its revision's tokenizer if it has one (load_tokenizer says if not)
    folder = Path(name).expanduser()
    return (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()


def load(name: str, kind: str, cfg: dict, *, revision: str | None = None, device: str = "auto",
         dtype: str = "auto", trust_remote_code: bool = False, allow_pickle: bool = False,
         family: str | None = None, tokenizer: str | None = None, base_resolver=None) -> models.LoadedModel:
    """Load base + adapter through peft and merge them; the tokenizer comes from `tokenizer`,
    else the adapter's folder when it has one, else the base model. `base_resolver`: see `base_of`."""
    if not available():
        raise ModelError(f"{name} is a LoRA/PEFT adapter; install the optional peft library to score it ({INSTALL})")
    import peft
    revision = models.check_revision(revision)
    base = base_of(name, cfg, base_resolver)
    base_rev = models.check_revision(cfg.get("revision") or None)
    if family is not None:
        family = _family.check(family)
    config, base_rev = models.preflight(base, kind, base_rev, trust_remote_code, allow_pickle, head_check=False)
    folder, commit = _weights_folder(name, revision, allow_pickle)
    dev = models.pick_device(device)
    torch_dtype = models.pick_dtype(dtype, dev)
    if tokenizer:
        tok = models.load_tokenizer(tokenizer, kind, None, trust_remote_code)
    elif _has_tokenizer(name):
        tok = models.load_tokenizer(str(folder) if models.is_local(name) else name, kind,
                                    None if models.is_local(name) else revision, trust_remote_code)
    else:
        tok = models.load_tokenizer(base, kind, base_rev, trust_remote_code)
    model, info = models.load_weights(base, kind, base_rev, trust_remote_code, allow_pickle, torch_dtype,
                                       config)
    gaps = uncovered(list(info.get("missing_keys") or []), adapter_keys(folder))
    models.check_loaded_weights(name, kind, {**info, "missing_keys": gaps})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            wrapped = peft.PeftModel.from_pretrained(model, str(folder), is_trainable=False)
        except Exception as e:  # noqa: BLE001 - peft's errors come in many types: one line
            raise ModelError(f"could not apply the adapter {name} to {base}: {one_line(e)}") from None
    lost = [str(w.message) for w in caught if "missing adapter keys" in str(w.message).lower()]
    if lost:
        raise ModelError(f"{name}: the adapter's weights do not match {base} ({one_line(lost[0])[:160]}); "
                         "give the base model it was trained on")
    merged = wrapped.merge_and_unload()
    merged.to(dev).eval()
    base_commit = getattr(merged.config, "_commit_hash", None) if not models.is_local(base) else None
    base_key = models.model_key(base, base_rev, base_commit)
    fam = (family or _family.from_model_type(config.get("model_type"))).lower()
    return models.LoadedModel(
        name=name, kind=kind, model=merged, tokenizer=tok, family=fam, device=dev, dtype=torch_dtype,
        key=models.scored_key(key(name, revision, commit, base_key), torch_dtype), revision=commit or revision,
        n_params=sum(p.numel() for p in merged.parameters()), extra={"adapter_of": base})
