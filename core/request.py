"""One scoring run, spelled once: `ScoreRequest`.

Why one type: the command line (`score` flags), the dashboard's jobs (`jobs.JobSpec`, one
request per model) and the Ray backend all describe the same thing — which model, which
words as answers to which prompts, computed how. Each builds a `ScoreRequest` and hands it
to `core.runner.score`, so a new option is added here once and reaches all three.

What is scored (model, kind, words, prompts) and how (engine, batch size, device,
precision, revision, loading opt-ins) live here; *where* it runs (local process or a Ray
cluster) is the runner's `backend=` argument, and how progress is shown is the caller's,
through `Hooks` (what a backend tells its caller while it runs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .prompts import Prompt


@dataclass(frozen=True)
class ScoreRequest:
    """Score `model` on every (prompt, word) pair not yet stored in `db`."""
    model: str                      # hub id or local folder, as the user gave it (stored name)
    kind: str                       # rm | lm
    words: tuple[str, ...]          # the corpus's answer words (duplicates are scored once)
    prompts: tuple[Prompt, ...]
    corpus: str = ""                # the corpus's name, recorded with the run's checks
    engine: str = "cached"          # cached | naive (same values; see docs/engines.md)
    batch_size: int = 32
    device: str = "auto"            # auto | cpu | cuda | mps
    dtype: str = "auto"             # auto | float32 | bfloat16 | float16
    revision: str | None = None     # hub branch, tag or commit
    trust_remote_code: bool = False
    allow_pickle: bool = False
    family: str | None = None       # overrides the detected family
    db: str | None = None           # DuckDB file; None: $VALUEAUDIT_DB or cache/valueaudit.duckdb
    tokenizer: str | None = None    # load the tokenizer from here (a training run's root; core/sweep.py)
    name: str | None = None         # store under this name, not `model` (a hub checkpoint: <id>@<revision>)

    def __post_init__(self):  # tuples, so a request is hashable and never changes under a job
        object.__setattr__(self, "words", tuple(self.words))
        object.__setattr__(self, "prompts", tuple(self.prompts))

    def load_options(self) -> dict:
        """Keyword arguments of `models.load` (and the app's cached loader)."""
        opts = dict(revision=self.revision or None, device=self.device, dtype=self.dtype,
                    trust_remote_code=self.trust_remote_code, allow_pickle=self.allow_pickle,
                    family=self.family or None)
        if self.tokenizer:  # only when set: a loader without the option serves every other request
            opts["tokenizer"] = self.tokenizer
        return opts


def from_args(args, words: Sequence[str], prompts: Sequence[Prompt], corpus: str) -> ScoreRequest:
    """The request of `python -m core score` (corpus and prompts already resolved)."""
    return ScoreRequest(model=args.model, kind=args.kind, words=tuple(words), prompts=tuple(prompts), corpus=corpus,
                        engine=args.engine, batch_size=args.batch_size, device=args.device, dtype=args.dtype,
                        revision=args.revision, trust_remote_code=args.trust_remote_code,
                        allow_pickle=args.allow_pickle, family=args.family, db=args.db)


@dataclass(frozen=True)
class Started:
    """The model about to be scored, for a status line or a job's table."""
    model: str
    family: str
    kind: str
    n_params: int
    device: str   # where it runs ("cpu", "cuda:0", or "Ray cluster")
    dtype: str
    line: str     # one sentence for the command line


@dataclass
class Hooks:
    """Callbacks a backend calls while it runs (all optional)."""
    on_start: Callable[[Started], None] | None = None
    on_progress: Callable[[Any], None] | None = None  # core.scoring.Progress
    should_stop: Callable[[], bool] | None = None
    say: Callable[[str], None] | None = None
