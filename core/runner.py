"""`score(request, backend=...)`: the one way a scoring run is executed.

The command line, the dashboard's jobs (core/jobs.py) and the Ray backend all come through
here, so every run — whatever its backend — scores the missing (prompt, word) pairs,
commits them as they finish, reports progress as it goes, and records its measurement
checks (core/checks.py, table `run_checks`) when it was not stopped early.

Backends say *where* a request runs:
- `Local(loader)`: the model is loaded in this process (`loader` defaults to `models.load`;
  the app passes its cached loader); `core.scoring.run` does the work.
- `Ray(address, workers)`: workers on a Ray cluster score shards and this process alone
  writes them (core/distributed.py); progress arrives shard by shard and the checks run on
  a worker, which holds the model.

Callers choose how to show what happens through callbacks: `on_start(Started)` once the
model is known, `on_progress(Progress)` as rows are saved, `say(line)` for the backend's own
lines (Ray's shard log), `should_stop()` polled between batches (local) or shards (Ray)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from . import models, scoring, vocabscan
from .engines import threads
from .request import Hooks, ScoreRequest, Started
from .scoring import Progress, ScoreResult


@dataclass(frozen=True)
class Local:
    """Load the model in this process and score it here. `tokens` (an engines.tokens.TokenMemo)
    is shared by the requests of one training run (core/sweep.py), so their token ids and
    prefix plans are computed once per run."""
    loader: Callable[..., models.LoadedModel] | None = None
    tokens: Any = None
    name: ClassVar[str] = "local"

    def run(self, request: ScoreRequest, store, hooks: Hooks, checks: bool) -> ScoreResult:
        wanted = threads.requested()
        cpu_before_load = threads.sample() if wanted == "auto" else None  # others' load sets the threads
        loaded = (self.loader or models.load)(request.model, request.kind, **request.load_options())
        if request.name:  # e.g. a hub checkpoint, stored as <id>@<revision>
            loaded.name = request.name
        with threads.for_run(wanted, cpu_before_load, loaded.device) as threads_note:
            result = self._score(loaded, request, store, hooks, checks, self.tokens)
        if threads_note:
            result.notes.insert(0, threads_note)
        return result

    @staticmethod
    def _score(loaded, request: ScoreRequest, store, hooks: Hooks, checks: bool, tokens=None) -> ScoreResult:
        dtype = str(loaded.dtype).replace("torch.", "")
        words = request.words
        if request.corpus == vocabscan.NAME:  # the model's own word tokens (issue 11), known once loaded
            words = vocabscan.prepare(store, loaded)
            if hooks.say:  # the command line's cost line (the Score page shows the cost before it starts)
                hooks.say(vocabscan.estimate(store, loaded, request.prompts, words, request.engine,
                                             request.batch_size).line())
        if hooks.on_start:
            hooks.on_start(Started(
                request.model, loaded.family, request.kind, loaded.n_params, str(loaded.device), dtype,
                f"{request.model}: {loaded.family} {request.kind}, {loaded.n_params / 1e6:.1f}M parameters on "
                f"{loaded.device} ({dtype}); {len(words)} words x {len(request.prompts)} prompts"))
        result = scoring.run(store, loaded, request.prompts, words, engine=request.engine,
                             batch_size=request.batch_size, on_progress=hooks.on_progress,
                             should_stop=hooks.should_stop, tokens=tokens)
        if checks and not result.stopped:
            from . import checks as _checks
            # the engine that produced the stored values (after any fallback), for checks and provenance
            result.check = _checks.run_checks(store, loaded, request.prompts, words, request.corpus,
                                              result.engine or request.engine, request.batch_size)
        return result


@dataclass(frozen=True)
class Ray:
    """Score on a Ray cluster (`address` None: a local Ray instance) with `workers` model copies.
    `scorer` is the worker's class (default `distributed.Scorer`); a subclass may change how a
    worker behaves, e.g. a test's worker that dies once."""
    address: str | None = None
    workers: int = 2
    scorer: type | None = None
    name: ClassVar[str] = "ray"

    def run(self, request: ScoreRequest, store, hooks: Hooks, checks: bool) -> ScoreResult:
        from . import distributed
        return distributed.run(request, store, address=self.address, workers=self.workers, scorer=self.scorer,
                               hooks=hooks, checks=checks)


BACKENDS = {"local": Local, "ray": Ray}


def backend_named(name: str, *, address: str | None = None, workers: int = 2, loader=None):
    """The backend object for a `--backend` value ('local' or 'ray')."""
    if name == "local":
        return Local(loader)
    if name == "ray":
        return Ray(address or None, workers)
    raise scoring.ScoringError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}")


def score(request: ScoreRequest, store=None, *, backend: str | Local | Ray = "local",
          on_start: Callable[[Started], None] | None = None,
          on_progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None, say: Callable[[str], None] | None = None,
          checks: bool = True) -> ScoreResult:
    """Run one scoring request on `backend` and return what it did (rows new and cached,
    words skipped, engine used, notes, and the measurement check record in `.check`)."""
    if store is None:
        from .store import Store
        store = Store(request.db) if request.db else Store()
    if isinstance(backend, str):
        backend = backend_named(backend)
    return backend.run(request, store, Hooks(on_start, on_progress, should_stop, say), checks)
