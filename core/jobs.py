"""Background scoring jobs for the dashboard: a module-level registry of worker threads.

Why a thread registry and not work inside the page script: a Streamlit script reruns on
every click and each browser session has its own script thread. A job started here lives
in the server process, independent of any session, so it survives reruns and page
switches, other sessions stay responsive, and any session can watch or cancel it. Jobs
run one at a time (one accelerator); each batch is committed to the store as it finishes,
so a cancelled job keeps its work and a rerun scores only what is missing.

No streamlit import here: the registry is plain Python and is tested as such."""
from __future__ import annotations

import contextlib
import gc
import hmac
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from . import models as _models
from . import runner, scoring, vocabscan
from .prompts import Prompt
from .request import ScoreRequest
from .store import Store
from .errors import one_line

log = logging.getLogger(__name__)

ACTIVE = ("queued", "loading", "scoring")


@dataclass(frozen=True)
class ModelRequest:
    """One model to score, with its safe-loading choices (all off by default)."""
    name: str
    kind: str = "rm"
    revision: str | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False
    family: str | None = None


@dataclass
class JobSpec:
    """A job of the Score page: several models on one corpus and prompt set; each model is
    one `ScoreRequest` (`request`) run by `runner.score` on this job's backend (`backend_for`)."""
    models: Sequence[ModelRequest]
    prompts: Sequence[Prompt]
    words: Sequence[str]
    corpus: str = ""
    db_path: str | None = None
    engine: str = "cached"
    batch_size: int = 32
    device: str = "auto"
    dtype: str = "auto"
    backend: str = "local"  # local | ray
    ray_address: str | None = None
    workers: int = 2
    sweep: Any = None       # a core.sweep.Run: `models` are its checkpoints, scored in step order

    def request(self, m: ModelRequest) -> ScoreRequest:
        """The scoring request of one of this job's models."""
        return ScoreRequest(model=m.name, kind=m.kind, words=tuple(self.words), prompts=tuple(self.prompts),
                            corpus=self.corpus, engine=self.engine, batch_size=self.batch_size, device=self.device,
                            dtype=self.dtype, revision=m.revision or None, trust_remote_code=m.trust_remote_code,
                            allow_pickle=m.allow_pickle, family=m.family or None, db=self.db_path)

    def backend_for(self, loader: "Loader"):
        """Where this job runs: this process (with the app's model loader) or a Ray cluster."""
        return runner.backend_named(self.backend, address=self.ray_address, workers=self.workers, loader=loader)

    def labels(self) -> list[str]:
        """What the job's table names each model by (a sweep: each checkpoint's stored name)."""
        if self.sweep is not None:
            return [c.name for c in self.sweep.checkpoints]
        return [m.name for m in self.models]


def sweep_spec(run, kind: str, prompts: Sequence[Prompt], words: Sequence[str], corpus: str = "",
               db_path: str | None = None, **options) -> JobSpec:
    """A job that sweeps the checkpoints of a training run (core.sweep.Run), one model each."""
    return JobSpec(models=[ModelRequest(c.model, kind, revision=c.revision) for c in run.checkpoints],
                   prompts=prompts, words=words, corpus=corpus, db_path=db_path, sweep=run, **options)


@dataclass
class ModelStatus:
    """What the Score page shows per model."""
    name: str
    kind: str
    state: str = "queued"  # queued | loading | scoring | done | failed | cancelled
    done: int = 0
    total: int = 0
    new: int = 0
    cached: int = 0
    eta: float | None = None
    device: str = ""
    message: str = ""
    started: float | None = None
    finished: float | None = None

    @property
    def fraction(self) -> float:
        if self.state == "done":
            return 1.0
        return self.done / self.total if self.total else 0.0


@dataclass
class Job:
    id: int
    spec: JobSpec
    statuses: list[ModelStatus]
    state: str = "queued"  # queued | running | done | failed | cancelled
    created: float = field(default_factory=time.time)
    finished: float | None = None
    message: str = ""
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    tokens: Any = field(default=None, repr=False)  # a sweep's TokenMemo: one tokenization for the run
    owner: str | None = field(default=None, repr=False)  # the visitor token of whoever submitted it

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def fraction(self) -> float:
        """Share of the whole job done: every model counts the same (a model's rows are not
        known until it loads), a finished one whole, one not started as nothing, one cancelled
        or failed by what it saved. So the bar moves only forward, model after model: 25 %
        while model 1 of 2 is half done, 50 % when it is done."""
        n = len(self.statuses)
        return sum(min(s.fraction, 1.0) for s in self.statuses) / n if n else 0.0

    @property
    def current(self) -> tuple[int, "ModelStatus"] | None:
        """(1-based position, status) of the model now loading or scoring; None between models."""
        return next(((i, s) for i, s in enumerate(self.statuses, 1) if s.state in ("loading", "scoring")), None)

    def progress_text(self, name: Callable[[str], str] = str) -> str:
        """'40 % of the job · model 2 of 2 (NAME): 60 %' — the job first, then the model now
        running (named by `name`, e.g. the page's short display name); a job that ended says
        how it ended."""
        head = f"{self.fraction:.0%} of the job"
        if not self.active:
            return f"{self.state} at {head}" if self.state in ("cancelled", "failed") else f"{self.state}: {head}"
        now = self.current
        if now is None:
            return head
        i, s = now
        what = "loading" if s.state == "loading" else f"{s.fraction:.0%}"
        return f"{head} · model {i} of {len(self.statuses)} ({name(s.name)}): {what}"

    @property
    def eta(self) -> float | None:
        """Seconds left for the model now scoring (others unknown until they load)."""
        return next((s.eta for s in self.statuses if s.state == "scoring"), None)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (tests and scripts); True when it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.active


Loader = Callable[..., "_models.LoadedModel"]


def may_cancel(job: Job, visitor: str | None, operator: bool = False) -> bool:
    """Who may stop a job: in local mode anyone (the person at the machine), on a shared
    server the operator (settings: VALUEAUDIT_OPERATOR_KEY) and the visitor whose token
    submitted it — a token kept across reloads, so a reload does not orphan a job."""
    from . import settings
    if operator or not settings.shared():
        return True
    return bool(job.owner and visitor) and hmac.compare_digest(job.owner, visitor)


class JobRegistry:
    """All jobs of this server process. Thread-safe; jobs run one after another, first come
    first served; a visitor has at most VALUEAUDIT_MAX_JOBS_PER_VISITOR of them queued or
    running and the server at most VALUEAUDIT_MAX_QUEUED_JOBS (shared mode), so nobody's job
    waits behind a long queue of someone else's."""

    def __init__(self, loader: Loader | None = None):
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()  # one job on the accelerator at a time
        self._turn = threading.Condition()  # the queue: ids of jobs waiting or running, oldest first
        self._queue: list[int] = []
        self.loader = loader or _models.load

    def submit(self, spec: JobSpec, loader: Loader | None = None, owner: str | None = None) -> Job:
        """Queue a job and start its worker thread; returns at once. `owner`: the visitor token
        of the dashboard session submitting it (None: a script or test, no quota)."""
        if not spec.models:
            raise ValueError("choose at least one model to score")
        if not spec.words:
            raise ValueError("the corpus has no words")
        if not spec.prompts:
            raise ValueError("choose at least one prompt")
        _check_allowed(spec)
        with self._lock:
            check_quota(owner, [j for j in self._jobs.values() if j.active])
            job = Job(next(self._ids), spec, [ModelStatus(label, m.kind) for label, m in zip(spec.labels(), spec.models)],
                      owner=owner)
            self._jobs[job.id] = job
            with self._turn:  # queued in the order of the ids
                self._queue.append(job.id)
        t = threading.Thread(target=self._work, args=(job, loader or self.loader),
                             name=f"valueaudit-job-{job.id}", daemon=True)
        job._thread = t
        t.start()
        return job

    def get(self, job_id: int | None) -> Job | None:
        return self._jobs.get(job_id) if job_id is not None else None

    def jobs(self) -> list[Job]:
        """Newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.id, reverse=True)

    def active(self) -> list[Job]:
        return [j for j in self.jobs() if j.active]

    @contextlib.contextmanager
    def accelerator(self):
        """Hold the accelerator outside a job (e.g. to time one batch before a job starts);
        yields False at once, holding nothing, while a job uses it."""
        got = self._run_lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                self._run_lock.release()

    # -- worker ------------------------------------------------------------------
    def _wait_turn(self, job: Job) -> bool:
        """Wait until every job queued before this one has ended; False (and out of the queue
        at once) when it is cancelled while it waits."""
        with self._turn:
            while self._queue[0] != job.id:
                if job.cancel_requested:
                    self._queue.remove(job.id)
                    self._turn.notify_all()
                    return False
                self._turn.wait(0.2)  # a cancel is noticed within this
            return True

    def _work(self, job: Job, loader: Loader) -> None:
        if not self._wait_turn(job):
            self._finish(job, "cancelled")
            return
        try:
            with self._run_lock:
                self._run(job, loader)
        finally:
            with self._turn:
                self._queue.remove(job.id)
                self._turn.notify_all()

    def _run(self, job: Job, loader: Loader) -> None:
        """The job's models one after another (the caller holds the accelerator)."""
        if job.cancel_requested:
            self._finish(job, "cancelled")
            return
        job.state = "running"
        store = Store(job.spec.db_path) if job.spec.db_path else Store()
        if job.spec.sweep is not None:
            from .engines.tokens import TokenMemo
            job.tokens = TokenMemo()
        for i, (req, status) in enumerate(zip(job.spec.models, job.statuses)):
            if job.cancel_requested:
                status.state = "cancelled"
                continue
            self._score_one(job, req, status, store, loader, i)
        failed = [s for s in job.statuses if s.state == "failed"]
        if job.cancel_requested:
            self._finish(job, "cancelled")
        elif failed and len(failed) == len(job.statuses):
            self._finish(job, "failed", failed[0].message)
        else:
            self._finish(job, "done", f"{len(failed)} of {len(job.statuses)} models failed" if failed else "")

    def _score_one(self, job: Job, req: ModelRequest, status: ModelStatus, store: Store, loader: Loader,
                   index: int = 0) -> None:
        """Score one model, locally or on Ray (the same `runner.score`; a sweep's checkpoint
        through `sweep.score_checkpoint`, which tags it with its run and step); progress
        reaches the status as rows (local) or shards (Ray) are saved; every error ends up as
        the model's message, never raised."""
        spec = job.spec
        status.state, status.started = "loading", time.time()

        def on_start(s) -> None:
            status.device, status.state = s.device, "scoring"

        def on_progress(p: scoring.Progress) -> None:
            status.done, status.total, status.new, status.cached, status.eta = p.done, p.total, p.new, p.cached, p.eta

        try:
            if spec.sweep is not None:
                from . import sweep
                ckpt = spec.sweep.checkpoints[index]
                from . import settings  # the dashboard's loader resolves a checkpoint's name by its rule
                result = sweep.score_checkpoint(store, spec.sweep, ckpt, sweep.request_for(ckpt, spec.request(req)),
                                                runner.Local(loader, tokens=job.tokens), on_start=on_start,
                                                on_progress=on_progress, should_stop=job._cancel.is_set,
                                                resolve=settings.visitor_model)
            else:
                result = runner.score(spec.request(req), store, backend=spec.backend_for(loader), on_start=on_start,
                                      on_progress=on_progress, should_stop=job._cancel.is_set)
            status.new, status.cached = result.new, result.cached
            status.total = max(status.total, status.done)
            notes = list(result.notes)
            if result.check is not None:  # measurement checks recorded with the run (issue 15)
                from . import checks
                notes.append(checks.summary_line(result.check))
            if result.skipped:
                notes.append(f"{len(result.skipped)} words have no tokens and were skipped")
            if result.stopped:
                status.state = "cancelled"
                notes.insert(0, f"cancelled after {result.new} new rows (they are saved)")
            else:
                status.state = "done"
                if result.new == 0 and result.cached:
                    notes.insert(0, "everything was already stored")
                _drop_placeholder(store, result.model_name, result.model_key)
            status.message = "; ".join(notes)
        except Exception as e:  # noqa: BLE001 - shown on the page as the model's status
            status.state = "failed"
            status.message = one_line(e)
            log.warning("scoring %s failed: %s", req.name, status.message)
        finally:
            status.finished = time.time()
            status.eta = None
            _free_memory()

    def _finish(self, job: Job, state: str, message: str = "") -> None:
        job.state, job.message, job.finished = state, message, time.time()


def _check_allowed(spec: JobSpec) -> None:
    """A job refused by the server's settings or limits before it is queued (no model loads):
    the dashboard builds these specs from a visitor's choices."""
    from . import limits, settings
    limits.check_request(spec.words, spec.prompts, spec.batch_size)
    limits.check_job_rows(len(spec.models), len(spec.prompts), len(spec.words))
    for m in spec.models:
        _models.check_revision(m.revision)
    vocabscan.check_allowed(spec.corpus, spec.backend)
    if spec.sweep is not None:
        limits.check_checkpoints(len(spec.sweep.checkpoints))
        if spec.backend != "local" or spec.corpus == vocabscan.NAME:
            from .sweep import SweepError
            raise SweepError("a sweep scores a corpus's words on this server's device")
        if settings.shared():  # a hub id's revisions, or an operator's run by name (sweep.discover_named)
            try:
                for c in spec.sweep.checkpoints:
                    for name in filter(None, (c.model, c.tokenizer)):
                        settings.visitor_model(name)
            except settings.SettingsError:
                raise settings.SettingsError("this server is shared: a sweep takes a hub id with revisions, or one "
                                             "of the server's models by its name") from None
    if settings.shared():
        for m in spec.models:
            if m.trust_remote_code or m.allow_pickle:
                raise settings.SettingsError("this server is shared: a model's own code and pickle weights "
                                             "are not allowed; ask the operator to score it")
            settings.visitor_model(m.name)
        if spec.backend != "local":
            raise settings.SettingsError("this server is shared: scoring runs on the server's own device only")


def check_quota(owner: str | None, active: list[Job]) -> None:
    """Room for one more dashboard job (shared mode): the visitor's own jobs queued or running
    within VALUEAUDIT_MAX_JOBS_PER_VISITOR, and everyone's within VALUEAUDIT_MAX_QUEUED_JOBS —
    the server-wide cap is what holds, since a visitor chooses their own token (a new tab
    without `?visitor=` is a new visitor). `owner` None: a script or test, not limited."""
    from . import limits, settings
    if owner is None:
        return
    cap = settings.limit("VALUEAUDIT_MAX_JOBS_PER_VISITOR")
    mine = sum(1 for j in active if j.owner is not None and hmac.compare_digest(j.owner, owner))
    if cap is not None and mine >= cap:
        raise limits.LimitError(f"you already have {mine} job(s) queued or running on this server, the most one "
                                f"visitor may have (VALUEAUDIT_MAX_JOBS_PER_VISITOR={cap}): wait for it to end or "
                                "cancel it, then start this one")
    total = settings.limit("VALUEAUDIT_MAX_QUEUED_JOBS")
    if total is not None and len(active) >= total:
        raise limits.LimitError(f"this server already has {len(active)} job(s) queued or running, the most it takes "
                                f"at once (VALUEAUDIT_MAX_QUEUED_JOBS={total}): wait until one ends and start this "
                                "one again, or ask the server's operator")


def _drop_placeholder(store: Store, name: str, key: str) -> None:
    """A model added on the Models page before it was scored has a placeholder row; once
    scored under its real key (with the resolved revision) the empty placeholder goes."""
    try:
        m = store.models()
        stale = m[(m["name"] == name) & (m["source"] == "added") & (m["model_key"] != key)
                  & (m["n_scores"] == 0)]
        for key in stale["model_key"]:
            store.remove_model(key)
    except Exception:  # noqa: BLE001 - cosmetic; never fail a finished job for it
        pass


def _free_memory() -> None:
    gc.collect()
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001
        pass


def fmt_seconds(s: float | None) -> str:
    """'2 min 5 s' for an ETA; '' when unknown."""
    if s is None:
        return ""
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


REGISTRY = JobRegistry()
