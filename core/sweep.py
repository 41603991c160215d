"""Checkpoint sweeps: score every checkpoint of a reward model's training run, each stored as
its own model and tagged with its run and step (table `checkpoints`), so the paper's
Figure 4a and Figure 5 can be drawn for any run (core/trajectory.py).

A run is a folder as the Hugging Face Trainer writes it (`RUN/checkpoint-<step>/`, weights
and tokenizer in each checkpoint or the tokenizer only at the run's root, step from the
checkpoint's `trainer_state.json`, else the folder name), or a hub id with revisions
(branches or tags such as `step-1000`, step from the revision's name, else its
`trainer_state.json`). Each checkpoint is one `ScoreRequest` run by `runner.score` (one
model load, its measurement checks), so a sweep stores what `score` would and `export
--model RUN/checkpoint-N` (or `id@revision`) reads it back.

Once per run, not per checkpoint: the chat template is rendered, the words tokenized and
each prompt's shared prefix planned (one engines.tokens.TokenMemo for the run; a
checkpoint whose tokenizer differs gets its own ids). The prefix's forward pass depends on
the weights, so it runs once per checkpoint and prompt.

Resumable like every run: a checkpoint whose rows are all stored (a local one: known from
its weights' hash without loading it) is not loaded again; a stopped sweep resumes where
it stopped."""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from . import adapters, models, runner, scoring, settings
from .engines.tokens import TokenMemo
from .errors import ModelError, ValueAuditError, one_line
from .request import ScoreRequest
from .scoring import ScoreResult

CHECKPOINT_DIR = re.compile(r"checkpoint-(\d+)")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


class SweepError(ValueAuditError, ValueError):
    """A run that cannot be swept as asked; the message says what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a run: `name` is what it is stored and exported by."""
    step: int
    name: str                      # RUN/checkpoint-<step>, or <id>@<revision>
    model: str                     # what models.load takes: the folder, or the hub id
    revision: str | None = None
    tokenizer: str | None = None   # the run's root, when the checkpoint holds no tokenizer
    adapter: bool = False          # a LoRA/PEFT adapter (loaded through peft)


@dataclass(frozen=True)
class Run:
    """A training run and the checkpoints chosen for a sweep, in step order."""
    name: str                      # as the user gave it
    key: str                       # local:<resolved folder> | hub:<id>
    checkpoints: tuple[Checkpoint, ...]
    available: tuple[int, ...] = ()  # every step the run has (before --every / --steps)

    @property
    def steps(self) -> list[int]:
        return [c.step for c in self.checkpoints]


def run_key(run: str) -> str:
    """A run's identity: its resolved folder, or its hub id (how trajectories find it)."""
    run = str(run).strip()
    if models.is_local(run) or not settings.HUB_ID.fullmatch(run):
        return f"local:{Path(run).expanduser().resolve()}"
    return f"hub:{run}"


# -- finding checkpoints ------------------------------------------------------------------------
def _global_step(folder: Path) -> int | None:
    """`global_step` of a checkpoint's trainer_state.json (None when absent or unreadable)."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        step = state.get("global_step") if isinstance(state, dict) else None
        return int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) and step >= 0 else None
    except (OSError, ValueError):
        return None


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / f).is_file() for f in _TOKENIZER_FILES)


def _local_checkpoints(run: str, name: str | None = None) -> list[Checkpoint]:
    """The run folder's checkpoints; `name`: what they are named and loaded by instead of
    their folders (an operator's run: `<name>/checkpoint-<step>`, its tokenizer `<name>`)."""
    root = Path(run).expanduser()
    if not root.is_dir():
        raise SweepError(f"run folder {run!r} not found: give the folder the Trainer wrote (its output_dir), "
                         "or a hub id with revisions")
    found = []
    for d in sorted(root.iterdir()):
        m = CHECKPOINT_DIR.fullmatch(d.name)
        if not (m and d.is_dir()):
            continue
        step = _global_step(d)
        step = int(m.group(1)) if step is None else step
        adapter = adapters.config_of(str(d)) is not None
        tok = None
        if not _has_tokenizer(d):
            if _has_tokenizer(root):
                tok = name or str(root)
            elif not adapter:  # an adapter falls back to its base model's tokenizer
                raise SweepError(f"{d.name} holds no tokenizer and neither does the run folder; save the tokenizer "
                                 "in the run folder (tokenizer.save_pretrained(output_dir))")
        shown = f"{name}/{d.name}" if name else str(Path(run) / d.name)
        found.append(Checkpoint(step, shown, shown, None, tok, adapter))
    if not found:
        raise SweepError(f"no checkpoint-<step> folders in {run!r}: give the folder the Trainer wrote (its output_dir)")
    return found


def _revision_step(run: str, revision: str) -> int:
    """The step of a hub revision: the number in its name (`step-1000`, `checkpoint_500`),
    else its trainer_state.json's global_step."""
    digits = re.findall(r"\d+", revision)
    if digits:
        return int(digits[-1])
    try:
        from huggingface_hub import hf_hub_download
        step = _global_step(Path(hf_hub_download(run, "trainer_state.json", revision=revision)).parent)
    except Exception:  # noqa: BLE001 - not there, or offline
        step = None
    if step is None:
        raise SweepError(f"cannot tell the training step of revision {revision!r}: name it with its step "
                         "(e.g. step-3000) or add trainer_state.json to it")
    return step


def _hub_checkpoints(run: str, revisions: Sequence[str]) -> list[Checkpoint]:
    if not settings.HUB_ID.fullmatch(run) or ".." in run:
        raise SweepError(f"{run[:80]!r} is neither a run folder nor a Hugging Face id (org/name)")
    out = []
    for r in revisions:
        try:
            rev = models.check_revision(r)
        except ModelError as e:
            raise SweepError(str(e)) from None
        out.append(Checkpoint(_revision_step(run, rev), f"{run}@{rev}", run, rev))
    return out


def select(checkpoints: Sequence[Checkpoint], every: int | None = None,
           steps: Sequence[int] | None = None) -> list[Checkpoint]:
    """The checkpoints to sweep, in step order: all of them, every K-th (the first and the
    last always kept: Figure 5 compares them), or the steps named."""
    cks = sorted(checkpoints, key=lambda c: c.step)
    if steps:
        have = {c.step: c for c in cks}
        unknown = [s for s in steps if s not in have]
        if unknown:
            raise SweepError(f"step {unknown[0]} is not among the run's checkpoints "
                             f"({', '.join(map(str, sorted(have)[:12]))}{', ...' if len(have) > 12 else ''})")
        return [have[s] for s in sorted(set(steps))]
    if every is not None:
        if every < 1:
            raise SweepError("every must be a whole number of checkpoints, 1 or more")
        keep = cks[::every]
        return keep + ([cks[-1]] if cks and keep[-1] is not cks[-1] else [])
    return cks


def discover(run: str, *, revisions: Sequence[str] | None = None, every: int | None = None,
             steps: Sequence[int] | None = None, name: str | None = None) -> Run:
    """The run's checkpoints chosen for a sweep (`revisions` for a hub id; `every` K-th or the
    named `steps`, not both). `name`: what a run folder and its checkpoints are stored, shown
    and loaded by instead of their paths (an operator's model: see `discover_named`)."""
    run = str(run).strip()
    if not run:
        raise SweepError("give a run folder, or a hub id with revisions")
    if every is not None and steps:
        raise SweepError("choose every K-th checkpoint or a list of steps, not both")
    revisions = [r.strip() for r in (revisions or []) if r and r.strip()]
    if revisions:
        if models.is_local(run):
            raise SweepError("revisions are for a hub id; a run folder lists its own checkpoint-<step> folders")
        found = _hub_checkpoints(run, revisions)
    elif models.is_local(run) or not settings.HUB_ID.fullmatch(run):
        found = _local_checkpoints(run, name)
    else:
        raise SweepError(f"{run} is a hub id: give its checkpoints' revisions (branches or tags, e.g. step-1000)")
    dupes = sorted({c.step for c in found if sum(d.step == c.step for d in found) > 1})
    if dupes:
        raise SweepError(f"two checkpoints claim step {dupes[0]}; sweep them separately")
    chosen = select(found, every, steps)
    return Run(name or run, run_key(run), tuple(chosen), tuple(sorted(c.step for c in found)))


def operator_runs() -> list[str]:
    """The operator's models (VALUEAUDIT_MODELS_DIR) that are training runs (they hold
    checkpoint-<step> folders): what a shared server's visitors may sweep by name."""
    return [n for n, folder in settings.operator_models().items()
            if any(CHECKPOINT_DIR.fullmatch(d.name) and d.is_dir() for d in folder.iterdir())]


def discover_named(name: str, **choice) -> Run:
    """The run a dashboard visitor names, by the server's one rule for a visitor's model
    (settings.visitor_model): one of the operator's models (VALUEAUDIT_MODELS_DIR) by its
    folder name, swept the way it is scored — its checkpoints named `<name>/checkpoint-<step>`,
    which that rule loads, so its server path is never shown, stored or asked for (its key
    is its folder's, as a command-line sweep of that folder) — else, on a shared server, a hub
    id with revisions; in local mode any run folder too. A refused name reads nothing on the
    disk. `choice`: discover's revisions, every, steps."""
    name = str(name).strip()
    listed = settings.operator_models()
    if name in listed:
        return discover(str(listed[name]), name=name, **choice)
    if settings.shared():
        settings.visitor_model(name)  # a hub id, or refused before any folder is listed
    return discover(name, **choice)


def parse_steps(text: str | None) -> list[int] | None:
    """'500,1000' -> [500, 1000] (the --steps option)."""
    if not text:
        return None
    try:
        return [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise SweepError(f"steps must be whole numbers separated by commas (e.g. 500,1000), not {text[:40]!r}") from None


def parse_revisions(text: str | None) -> list[str]:
    """'step-1000, step-2000' -> ['step-1000', 'step-2000'] (the --revisions option)."""
    return [r.strip() for r in (text or "").split(",") if r.strip()]


# -- scoring ------------------------------------------------------------------------------------
def request_for(ckpt: Checkpoint, template: ScoreRequest) -> ScoreRequest:
    """The scoring request of one checkpoint: `template`'s words, prompts and options."""
    return dataclasses.replace(template, model=ckpt.model, revision=ckpt.revision, tokenizer=ckpt.tokenizer,
                               name=ckpt.name if ckpt.name != ckpt.model else None)


def stored_key(request: ScoreRequest, resolve: Callable[[str], str] | None = None) -> str | None:
    """The key a local checkpoint's scores are stored under, known without loading it (its
    weights' hash and the precision the run would use); None for a hub checkpoint. `resolve`:
    how the loader turns the model's name into what it loads (the dashboard's
    settings.visitor_model: an operator's checkpoint by its name)."""
    if request.revision:
        return None
    try:
        folder = resolve(request.model) if resolve else request.model
        if not models.is_local(folder):
            return None
        dtype = models.pick_dtype(request.dtype, models.pick_device(request.device))
        cfg = adapters.config_of(folder)
        if cfg is None:
            return models.scored_key(models.model_key(folder), dtype)
        base = cfg["base_model_name_or_path"]
        if not models.is_local(base):
            return None  # the base's commit is known once loaded
        return models.scored_key(adapters.key(folder, None, None, models.model_key(base)), dtype)
    except (OSError, ValueAuditError):
        return None


def complete(store, key: str, request: ScoreRequest) -> tuple[bool, int]:
    """(every (prompt, word) pair stored under `key`, how many are)."""
    todo, cached = scoring.missing_pairs(store, key, request.kind, request.prompts,
                                         list(dict.fromkeys(request.words)))
    return not any(todo.values()), cached


def score_checkpoint(store, run: Run, ckpt: Checkpoint, request: ScoreRequest, backend, *,
                     on_start=None, on_progress=None, should_stop=None, say=None,
                     checks: bool = True, resolve: Callable[[str], str] | None = None) -> ScoreResult:
    """Score one checkpoint (not loaded at all when everything is stored) and tag it with its
    run and step. `resolve`: the loader's name rule (see `stored_key`)."""
    key = stored_key(request, resolve)
    if key is not None:
        done, cached = complete(store, key, request)
        if done:
            result = ScoreResult(new=0, cached=cached, engine=request.engine, model_key=key,
                                 model_name=request.name or request.model,
                                 notes=["everything was already stored (not loaded)"])
            store.tag_checkpoint(key, run.key, run.name, ckpt.step, ckpt.name, ckpt.revision)
            return result
    result = runner.score(request, store, backend=backend, on_start=on_start, on_progress=on_progress,
                          should_stop=should_stop, say=say, checks=checks)
    if not result.stopped:
        store.tag_checkpoint(result.model_key, run.key, run.name, ckpt.step, ckpt.name, ckpt.revision)
    return result


@dataclass
class SweepResult:
    """What a sweep did: per checkpoint its result or its one-line failure."""
    run: Run
    results: list[tuple[Checkpoint, ScoreResult]] = field(default_factory=list)
    failed: list[tuple[Checkpoint, str]] = field(default_factory=list)
    stopped: bool = False
    tokens: TokenMemo | None = None

    @property
    def new(self) -> int:
        return sum(r.new for _, r in self.results)

    @property
    def cached(self) -> int:
        return sum(r.cached for _, r in self.results)

    def line(self) -> str:
        """The sweep's last line: `swept N checkpoints: scored X new, Y cached`."""
        return f"swept {len(self.results)} checkpoints: scored {self.new} new, {self.cached} cached"


def sweep(run: Run, template: ScoreRequest, store, *, loader=None,
          on_checkpoint: Callable[[int, Checkpoint], dict] | None = None,
          should_stop: Callable[[], bool] | None = None, checks: bool = True) -> SweepResult:
    """Score each checkpoint of `run` with `template`'s corpus, prompts and options, in step
    order, with one token memo for the whole run. `on_checkpoint(i, ckpt)` is called before
    each and returns that checkpoint's callbacks (on_start, on_progress, say). A checkpoint
    that cannot be loaded (e.g. one still being written) is reported and skipped."""
    out = SweepResult(run, tokens=TokenMemo())
    backend = runner.Local(loader, tokens=out.tokens)
    for i, ckpt in enumerate(run.checkpoints):
        if should_stop and should_stop():
            out.stopped = True
            break
        hooks = (on_checkpoint(i, ckpt) if on_checkpoint else None) or {}
        try:
            result = score_checkpoint(store, run, ckpt, request_for(ckpt, template), backend,
                                      should_stop=should_stop, checks=checks, **hooks)
        except ModelError as e:
            out.failed.append((ckpt, one_line(e)))
            continue
        out.results.append((ckpt, result))
        if result.stopped:
            out.stopped = True
            break
    return out
