"""`score --backend ray`: the same scoring job spread over a Ray cluster.

The driver (the CLI process) owns the DuckDB store; workers never touch it. Workers are
Ray actors that load the model once (one GPU each when the cluster has GPUs, else one
CPU with torch limited to one thread) and score shards with the same engine code as the
local backend (`scoring.make_engine` and its OOM back-off). The driver:

1. asks the first worker for the model's identity (`LoadedModel.key`, so hub ids resolve
   to their commit exactly as a local run does) and which words its tokenizer can score —
   nothing is loaded in the driver;
2. computes the missing (prompt, word) pairs from the store (`scoring.missing_pairs`) and
   splits them into deterministic shards: consecutive prompts, in prompt-set order, each
   with its missing words in corpus order (a prompt's words are split only when one prompt
   alone exceeds the shard size);
3. keeps every worker busy, and as each shard comes back (`ray.wait`) writes its rows in
   one transaction (`Store.add_scores`) and reports progress (`on_progress`), so a job's
   page moves shard by shard. A driver killed mid-job therefore keeps every finished shard;
   the rerun recomputes the missing pairs and scores only those;
4. when every shard is saved, asks the first worker for the run's measurement checks
   (`checks.measure`, with the stored values of the checks' sample read here) and saves
   them in `run_checks`, as a local run does.

The entry is `core.runner.score(request, backend=runner.Ray(...))`; `run` here is its Ray half.

A worker that dies mid-shard is restarted by Ray (`max_restarts`) and its shards retried
(`max_task_retries`). Ray is optional: importing this module does not import it."""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from . import models, scoring
from .prompts import Prompt
from .request import Hooks, Started
from .scoring import ScoreResult, ScoringError
from .errors import one_line

INSTALL_HINT = "Ray is not installed; pip install -r requirements-ray.txt"
SHARD_ROWS = 4096          # at most this many (prompt, word) rows per shard
SHARDS_PER_WORKER = 4      # smaller shards on small jobs, so progress and resume stay fine-grained
IN_FLIGHT_PER_WORKER = 2   # queued on each actor so it never idles between shards
MAX_RESTARTS = 3


def import_ray():
    try:
        import ray
    except ImportError:
        raise ScoringError(INSTALL_HINT) from None
    return ray


# -- shards ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shard:
    index: int
    items: tuple  # ((prompt_id, prompt_text, (word, ...)), ...)

    @property
    def rows(self) -> int:
        return sum(len(w) for _, _, w in self.items)


def shard_size(total: int, workers: int, batch_size: int) -> int:
    """Rows per shard: about SHARDS_PER_WORKER shards per worker, at most SHARD_ROWS, a whole
    number of batches."""
    size = min(SHARD_ROWS, max(1, math.ceil(total / max(1, workers * SHARDS_PER_WORKER))))
    return max(batch_size, math.ceil(size / batch_size) * batch_size)


def make_shards(prompts: Sequence[Prompt], todo: dict[str, list[str]], size: int) -> list[Shard]:
    """Deterministic shards of the missing pairs: consecutive prompts until a shard holds
    `size` rows; a prompt with more than `size` missing words is split in corpus order."""
    shards: list[Shard] = []
    cur: list[tuple] = []
    rows = 0
    for p in prompts:
        words = todo.get(p.prompt_id) or []
        for i in range(0, len(words), size):
            chunk = tuple(words[i:i + size])
            if cur and rows + len(chunk) > size:
                shards.append(Shard(len(shards), tuple(cur)))
                cur, rows = [], 0
            cur.append((p.prompt_id, p.text, chunk))
            rows += len(chunk)
    if cur:
        shards.append(Shard(len(shards), tuple(cur)))
    return shards


# -- the worker ----------------------------------------------------------------------------
class Scorer:
    """One model loaded once; scores shards. Runs as a Ray actor (see `_actor_class`)."""

    def __init__(self, name: str, kind: str, opts: dict):
        import torch
        self.error = None
        self.loaded = None
        self.engines: dict = {}
        try:
            if not torch.cuda.is_available():
                torch.set_num_threads(1)  # one CPU per worker: no oversubscription
            self.loaded = models.load(name, kind, **opts)
        except Exception as e:  # noqa: BLE001 - reported to the driver as one line, no restart loop
            self.error = one_line(e)

    def info(self, words: Sequence[str]) -> dict:
        if self.error:
            return {"error": self.error}
        lm = self.loaded
        ok, bad = scoring.scorable(lm, list(words))
        return {"key": lm.key, "name": lm.name, "kind": lm.kind, "family": lm.family, "display_name": lm.display_name,
                "revision": lm.revision, "n_params": lm.n_params, "device": lm.device,
                "dtype": str(lm.dtype).replace("torch.", ""), "skipped": bad, "node": os.uname().nodename}

    def score(self, index: int, items: tuple, engine: str, batch_size: int) -> dict:
        if self.error:
            raise ScoringError(self.error)
        eng = self.engines.get(engine)
        if eng is None:
            eng = self.engines[engine] = scoring.make_engine(engine, self.loaded)
        pids, texts, resp, vals = [], [], [], []
        for pid, text, words in items:
            for batch_words, values in scoring.with_oom_backoff(eng, text, list(words), batch_size):
                pids += [pid] * len(batch_words)
                texts += [text] * len(batch_words)
                resp += list(batch_words)
                vals += [float(v) for v in values]
        return {"index": index, "key": self.loaded.key, "prompt_id": pids, "prompt": texts, "response": resp,
                "value": vals, "engine": eng.name, "notes": list(getattr(eng, "notes", []))}

    def check(self, prompts: tuple, words: Sequence[str], corpus: str, engine: str, batch_size: int,
              stored: dict) -> dict:
        """The run's measurement checks on this worker's model (`stored`: the driver's stored
        values of the checks' sample); the driver saves the record."""
        from . import checks
        return checks.measure(self.loaded, list(prompts), list(words), lambda ps, ws: stored, corpus, engine,
                              batch_size)


def _actor_class(ray, gpu: bool, scorer: type | None = None):
    res = {"num_gpus": 1} if gpu else {"num_cpus": 1}
    return ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS, **res)(scorer or Scorer)


# -- the driver ------------------------------------------------------------------------------
def _connect(ray, address: str | None, workers: int) -> bool:
    """Connect to the cluster (or start a local one); True when this call started Ray."""
    if ray.is_initialized():
        return False
    import logging
    import warnings
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    warnings.filterwarnings("ignore", message=".*accelerator visible devices.*", category=FutureWarning)
    root = str(Path(__file__).resolve().parents[1])
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if address:
        probe(address)
        # the cluster's workers get this very package (the driver's copy of core/)
        kw["runtime_env"] = {"py_modules": [str(Path(__file__).resolve().parent)]}
        try:
            ray.init(address=address, **kw)
        except Exception as e:  # noqa: BLE001
            msg = one_line(e)
            raise ScoringError(f"cannot connect to the Ray cluster at {address}: {msg}") from None
    else:
        # a local instance: its workers inherit the environment, so they import this same core/
        paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
        os.environ["PYTHONPATH"] = os.pathsep.join(paths)
        ray.init(address="local", num_cpus=max(2, workers), **kw)  # never an existing cluster
    return True


def probe(address: str, timeout: float = 10.0) -> None:
    """Fail fast, in one line, when a host:port address does not answer (ray.init would retry
    for minutes)."""
    import socket
    if address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as e:
        raise ScoringError(f"cannot reach the Ray cluster at {address} ({e.__class__.__name__}); "
                           "check `ray status` on the head node and the address") from None


def run(request, store, *, address: str | None = None, workers: int = 2, scorer: type | None = None,
        hooks=None, checks: bool = True) -> ScoreResult:
    """Score `request` (a `core.request.ScoreRequest`) on Ray; the driver alone writes to `store`.
    `hooks` (`core.runner.Hooks`): on_start once the workers know the model, on_progress after
    every saved shard, should_stop between shards, say for the shard log."""
    hooks = hooks or Hooks()
    say = hooks.say or (lambda _msg: None)
    ray = import_ray()
    if request.batch_size < 1:
        raise ScoringError("batch size must be at least 1")
    if workers < 1:
        raise ScoringError("workers must be at least 1")
    start = time.monotonic()
    name = str(Path(request.model).expanduser().resolve()) if models.is_local(request.model) else request.model
    # the checks that need no model code, here, so a refused model fails in one line before Ray starts
    models.preflight(name, request.kind, request.revision, request.trust_remote_code, request.allow_pickle)
    prompt_set = list(request.prompts)
    words = list(dict.fromkeys(request.words))

    started = _connect(ray, address, workers)
    actors = []
    try:
        res = ray.cluster_resources()
        gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 0))
        use_gpu = gpus >= 1 and request.device in ("auto", "cuda")
        if request.device == "cuda" and not gpus:
            raise ScoringError("device cuda asked for, but the Ray cluster has no GPU; choose device auto or cpu")
        n = min(workers, gpus if use_gpu else max(1, cpus))
        # request.model, not the resolved path, is the stored name, so it matches a local run's
        cls = _actor_class(ray, use_gpu, scorer)
        actors = [cls.remote(name, request.kind, request.load_options()) for _ in range(n)]
        info = ray.get(actors[0].info.remote(words))
        if "error" in info:
            raise ScoringError(info["error"])
        key = info["key"]
        skipped = set(info["skipped"])
        all_words, words = words, [w for w in words if w not in skipped]
        if not words:
            raise ScoringError("none of the corpus words can be scored by this model's tokenizer; check the corpus")
        store.upsert_model(key, request.model, request.kind, info["family"], info["display_name"], info["revision"],
                           "scored", info["n_params"])
        todo, cached = scoring.missing_pairs(store, key, request.kind, prompt_set, words)
        total = sum(len(v) for v in todo.values())
        shards = make_shards(prompt_set, todo, shard_size(total, n, request.batch_size))
        where = f"{n} Ray worker{'s' if n > 1 else ''} ({info['device']}, {info['dtype']})"
        if hooks.on_start:
            hooks.on_start(Started(
                request.model, info["family"], request.kind, info["n_params"], "Ray cluster", info["dtype"],
                f"{request.model}: {info['family']} {request.kind}, {info['n_params'] / 1e6:.1f}M parameters on "
                f"{where}; {len(request.words)} words x {len(prompt_set)} prompts; "
                f"{total} rows to score in {len(shards)} shards"))
        result = ScoreResult(new=0, cached=cached, skipped=[w for w in all_words if w in skipped],
                             engine=request.engine, model_key=key, model_name=request.model)
        _score_shards(ray, actors, shards, request, store, key, total, result, hooks, say)
        if checks and not result.stopped:
            result.check = _checks(ray, actors[0], request, store, key, info, all_words, words)
        result.seconds = time.monotonic() - start
        return result
    finally:
        for a in actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - best effort
                pass
        if started:
            ray.shutdown()


def _score_shards(ray, actors, shards, request, store, key, total, result, hooks, say) -> None:
    """Keep every worker busy; save each shard as it returns and report progress; stop
    between shards when asked (unsaved shards in flight are dropped; a rerun scores them)."""
    queue = list(shards)
    pending: dict = {}  # object ref -> (actor index, shard)

    def submit(i: int) -> None:
        if queue:
            s = queue.pop(0)
            pending[actors[i].score.remote(s.index, s.items, request.engine, request.batch_size)] = (i, s)

    for i in range(len(actors)):
        for _ in range(IN_FLIGHT_PER_WORKER):
            submit(i)
    done = finished = 0
    t0 = time.monotonic()
    if hooks.on_progress:  # the total at once, before the first shard returns
        hooks.on_progress(scoring.Progress(0, total, 0, result.cached, 0.0, "preparing", request.engine,
                                           request.batch_size))
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        i, shard = pending.pop(ready[0])
        try:
            out = ray.get(ready[0])
        except ray.exceptions.RayError as e:
            raise ScoringError(f"shard {shard.index + 1} failed on a Ray worker ({one_line(e)}); "
                               "finished shards are saved — rerun the same command to continue") from None
        if out["key"] != key:
            raise ScoringError("the Ray workers loaded different weights for the same model; "
                               "pin the model revision and rerun")
        rows = pd.DataFrame({k: out[k] for k in ("prompt_id", "prompt", "response", "value")})
        result.new += store.add_scores(key, request.kind, rows)
        result.engine = out["engine"]
        result.notes += [x for x in out["notes"] if x not in result.notes]
        done += len(rows)
        finished += 1
        el = time.monotonic() - t0
        say(f"shard {finished}/{len(shards)} saved: {done}/{total} rows, {done / el if el else 0:.0f} rows/s")
        if hooks.on_progress:
            hooks.on_progress(scoring.Progress(done, total, result.new, result.cached, el, shard.items[-1][0],
                                               result.engine, request.batch_size))
        if hooks.should_stop and hooks.should_stop():
            result.stopped = True
            return
        submit(i)


def _checks(ray, actor, request, store, key, info, all_words, words) -> dict:
    """The run's measurement checks, computed on a worker and saved here; a worker that
    cannot run them gives a record with status 'error', never a lost run."""
    from . import checks
    ps, ws = checks.sample(request.prompts, words)
    stored = checks.stored_values(store, key, request.kind, [p.text for p in ps], ws)
    try:
        rec = ray.get(actor.check.remote(tuple(request.prompts), all_words, request.corpus, request.engine,
                                         request.batch_size, stored))
    except ray.exceptions.RayError as e:
        rec = checks.not_run(key, info.get("name", request.model), request.kind, request.corpus, one_line(e))
    checks.save(store, rec)
    return rec
