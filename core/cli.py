"""`python -m core`: the headless command line (score, export, import-published, analyze, ...).

Every failure the user can fix prints one line on stderr and exits non-zero."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from core import settings
from core.errors import ValueAuditError, one_line


class UserError(ValueAuditError):
    """Printed as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Value audits of reward models")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="score corpus words as answers to prompts with an RM or LM")
    s.add_argument("--model", required=True, help="Hugging Face id or local folder")
    s.add_argument("--kind", required=True, choices=["rm", "lm"])
    s.add_argument("--corpus", required=True, help="built-in name (see `corpora`; `vocabulary` = the model's own "
                   "word tokens) or a .csv/.dic/.dicx file")
    s.add_argument("--prompts", default="paper", help="'paper' (the 54 prompts) or a .yaml/.csv file")
    s.add_argument("--db", help="DuckDB file (default: $VALUEAUDIT_DB or cache/valueaudit.duckdb)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    s.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--engine", default="cached", choices=["naive", "cached"])
    s.add_argument("--revision", help="model revision (branch, tag or commit) for hub models")
    s.add_argument("--trust-remote-code", action="store_true", help="allow the model's own Python code to run")
    s.add_argument("--allow-pickle", action="store_true", help="allow non-safetensors (pickle) weights")
    s.add_argument("--family", help="override the detected model family (llama, gemma, qwen, ...)")
    s.add_argument("--backend", default="local", choices=["local", "ray"])
    s.add_argument("--ray-address", help="address of a running Ray cluster (default: start a local one)")
    s.add_argument("--workers", type=int, default=2, help="Ray workers")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("export", help="write stored scores to CSV or Parquet")
    e.add_argument("--db")
    e.add_argument("--model", help="id or path as given to `score`")
    e.add_argument("--kind", choices=["rm", "lm"])
    e.add_argument("--corpus", help="keep only this corpus's words")
    e.add_argument("--out", required=True, help="FILE.csv or FILE.parquet")

    ip = sub.add_parser("import-published", help="load the paper's published RM scores into the store")
    ip.add_argument("--db")

    a = sub.add_parser("analyze", help="the paper's Figure 1 statistics for a corpus")
    a.add_argument("--corpus", required=True)
    a.add_argument("--db")
    a.add_argument("--models", help="comma-separated model ids (default: all RMs scored on the corpus)")
    a.add_argument("--prompts", default=None, help="restrict to these prompts ('paper' or a file)")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.add_argument("--include-incomplete", action="store_true",
                   help="also use models scored on fewer than the compared prompts or corpus words")
    a.add_argument("--permutations", type=int, default=10000)
    a.add_argument("--seed", type=int, default=0, help="seed of the permutation tests and of the stricter analysis")
    a.add_argument("--uncertainty", action="store_true",
                   help="add the stricter analysis (models, prompts and words as samples) and the headline")
    a.add_argument("--reps", type=int, default=10_000, help="bootstrap draws of the stricter analysis")

    am = sub.add_parser("audit-model", help="where one reward model sits among the families: its Figure-1 values "
                                             "with intervals beside the paper's models")
    am.add_argument("--model", required=True, help="id or path as given to `score`")
    am.add_argument("--corpus", required=True)
    am.add_argument("--db")
    am.add_argument("--json", action="store_true", help="print one JSON object")
    am.add_argument("--reps", type=int, default=2000, help="bootstrap replicates (prompts and words resampled)")
    am.add_argument("--seed", type=int, default=0)

    lg = sub.add_parser("logprobs", help="whole-vocabulary next-token log-probabilities of an LM (paper's CSV format)")
    lg.add_argument("--model", required=True, help="Hugging Face id or local folder")
    lg.add_argument("--prompts", default="paper", help="'paper' (the 54 prompts) or a .yaml/.csv file")
    lg.add_argument("--out", required=True, help="folder for <name>.csv (hub id with / as --, or the folder's name)")
    lg.add_argument("--db")
    lg.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    lg.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    lg.add_argument("--revision")
    lg.add_argument("--trust-remote-code", action="store_true")
    lg.add_argument("--allow-pickle", action="store_true")
    lg.add_argument("--family")
    lg.add_argument("--lm-type", default="auto", choices=["auto", "pretrained", "instruction-tuned"],
                    help="auto: the paper's registry, else chat template = instruction-tuned")
    lg.add_argument("--quiet", action="store_true")

    il = sub.add_parser("import-logprobs", help="import log-prob CSVs (<org>--<name>.csv) such as the paper's")
    il.add_argument("paths", nargs="+", help="files or folders")
    il.add_argument("--db")
    il.add_argument("--prompts", help="a .yaml/.csv prompts file naming prompt ids the paper does not use")

    mw = sub.add_parser("mwlr", help="MWLR of two LMs over their shared vocabulary (Table 1)")
    mw.add_argument("--a", required=True, help="model 1 (name or file stem id, e.g. meta-llama/Llama-3.2-3B-Instruct)")
    mw.add_argument("--b", required=True, help="model 2")
    mw.add_argument("--prompt", default="greatest_ever_one", help="prompt id or text")
    mw.add_argument("--top", type=int, default=15)
    mw.add_argument("--db")
    mw.add_argument("--json", action="store_true")

    sw = sub.add_parser("sweep", help="score every checkpoint of a training run (Figures 4a and 5 for your run)")
    sw.add_argument("run", help="a run folder as the Hugging Face Trainer writes it (checkpoint-<step>/ inside), "
                    "or a hub id with --revisions")
    sw.add_argument("--kind", default="rm", choices=["rm", "lm"])
    sw.add_argument("--corpus", required=True, help="built-in name (see `corpora`) or a .csv/.dic/.dicx file")
    sw.add_argument("--prompts", default="paper", help="'paper' (the 54 prompts) or a .yaml/.csv file")
    sw.add_argument("--revisions", help="hub runs: comma-separated branches or tags, e.g. step-1000,step-2000")
    pick = sw.add_mutually_exclusive_group()
    pick.add_argument("--every", type=int, help="every K-th checkpoint (the first and the last always)")
    pick.add_argument("--steps", help="only these steps, comma-separated, e.g. 500,1000")
    sw.add_argument("--db", help="DuckDB file (default: $VALUEAUDIT_DB or cache/valueaudit.duckdb)")
    sw.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    sw.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    sw.add_argument("--batch-size", type=int, default=32)
    sw.add_argument("--engine", default="cached", choices=["naive", "cached"])
    sw.add_argument("--trust-remote-code", action="store_true", help="allow the model's own Python code to run")
    sw.add_argument("--allow-pickle", action="store_true", help="allow non-safetensors (pickle) weights")
    sw.add_argument("--family", help="override the detected model family (llama, gemma, qwen, ...)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")

    tr = sub.add_parser("trajectory", help="a swept run's Figure 4a points and Figure 5 movers")
    tr.add_argument("--run", required=True, help="the run as given to `sweep` (folder or hub id)")
    tr.add_argument("--corpus", required=True)
    tr.add_argument("--kind", default="rm", choices=["rm", "lm"])
    tr.add_argument("--top", type=int, default=10, help="movers each way (default 10)")
    tr.add_argument("--db")
    tr.add_argument("--json", action="store_true", help="print one JSON object")

    sub.add_parser("corpora", help="list built-in corpora")
    sub.add_parser("models", help="list the paper's models (registry)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # our own progress bar and messages only
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    handler = globals()["cmd_" + args.command.replace("-", "_")]
    settings.warn_unknown(lambda line: print(f"warning: {line}", file=sys.stderr))
    try:
        settings.mode()  # a typo in the mode is one error here too, as on every page of the dashboard
        return handler(args) or 0
    except BrokenPipeError:  # output piped into e.g. `head`: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("stopped; finished batches are saved — rerun the same command to continue", file=sys.stderr)
        return 130
    except Exception as e:  # one line, never a traceback
        if settings.debug():
            raise
        msg = one_line(e)
        if getattr(e, "cli_hint", None):
            msg += f" ({e.cli_hint})"
        print(f"error: {msg}", file=sys.stderr)
        return 2


# -- commands --------------------------------------------------------------------------
def _store(args):
    from .store import Store
    return Store(args.db) if getattr(args, "db", None) else Store()


def _existing_store(args, fill: str):
    """The store of a command that only reads: a missing file is the user's one-line error
    naming the command that fills it (`fill`), never a new empty database."""
    store = _store(args)
    if not store.path.exists():
        raise UserError(f"no database at {store.path}; run {fill} first, or pass --db")
    return store


def _progress_bar(quiet: bool):
    """(update, close) of a stderr progress bar, drawn from the first progress report on, so
    a run that fails before scoring (e.g. a model not found) prints its one error line only."""
    if quiet:
        return None, lambda: None
    from tqdm import tqdm
    bars = []

    def update(p):
        if not bars:
            bars.append(tqdm(total=0, unit="row", file=sys.stderr, dynamic_ncols=True, mininterval=0.5))
        bar = bars[0]
        if bar.total != p.total:
            bar.total = p.total
        bar.n = p.done
        bar.set_postfix_str(p.prompt_id, refresh=False)
        bar.refresh() if p.done == p.total else bar.update(0)

    def close():
        for bar in bars:
            bar.close()
    return update, close


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_score(args) -> int:
    """One `ScoreRequest` from the flags, run by `runner.score` on the chosen backend; exit 3
    when the run's measurement checks fail (the scores are stored but flagged)."""
    from . import checks, corpora, family, limits, prompts, request, runner, vocabscan
    limits.check_batch_size(args.batch_size)
    if args.family is not None:
        args.family = family.check(args.family)
    store = _store(args)
    store.stats()  # a locked or corrupt database is reported before any model loads
    scan = args.corpus == vocabscan.NAME
    if scan:
        req, backend = _vocabulary_request(args)
    else:
        corpus = corpora.resolve(args.corpus, store)
        prompt_set = prompts.load(args.prompts)
        limits.check_request(corpus.vocabulary, prompt_set, args.batch_size)  # before the model loads
        req = request.from_args(args, corpus.vocabulary, prompt_set, corpus.name)
        backend = runner.backend_named(args.backend, address=args.ray_address, workers=args.workers)
    ray = args.backend == "ray"
    update, close = _progress_bar(args.quiet or ray)  # Ray: one line per saved shard instead of a bar
    try:
        result = runner.score(req, store, backend=backend, on_progress=update,
                              on_start=None if ray and args.quiet else (lambda s: _stderr(s.line)),
                              say=None if args.quiet and not scan else _stderr)  # a scan always says its cost
    finally:
        close()
    check = result.check  # measurement checks recorded with the run, whatever the backend (issue 15)
    if check is not None:
        print(("warning: " if check["status"] != "passed" else "") + checks.summary_line(check), file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.skipped:
        print(f"skipped {len(result.skipped)} words with no tokens: {', '.join(result.skipped[:5])}", file=sys.stderr)
    print(f"scored {result.new} new, {result.cached} cached")
    return 3 if check is not None and check["status"] == "failed" else 0  # a flagged run


def _vocabulary_request(args):
    """`score --corpus vocabulary`: every word token of the model's own vocabulary, run by
    `runner.score` like any other request (so its checks and provenance are recorded); the
    runner finds the words once the model loads and says the scan's cost before scoring."""
    from . import prompts, request, runner, vocabscan
    if args.backend != "local":
        raise UserError("the vocabulary corpus runs with --backend local")
    return request.from_args(args, (), prompts.load(args.prompts), vocabscan.NAME), runner.Local()


def cmd_sweep(args) -> int:
    """Each checkpoint of a run is one `ScoreRequest` run by `runner.score` (core/sweep.py);
    exit 2 when a checkpoint could not be loaded, 3 when a checkpoint's checks failed."""
    from . import checks, corpora, family, limits, prompts, sweep, vocabscan
    from .request import ScoreRequest
    limits.check_batch_size(args.batch_size)
    if args.family is not None:
        args.family = family.check(args.family)
    if args.corpus == vocabscan.NAME:
        raise UserError("a sweep scores a corpus's words; score the vocabulary of one checkpoint with `score`")
    store = _store(args)
    store.stats()  # a locked or corrupt database is reported before anything loads
    run = sweep.discover(args.run, revisions=sweep.parse_revisions(args.revisions), every=args.every,
                         steps=sweep.parse_steps(args.steps))
    corpus = corpora.resolve(args.corpus, store)
    prompt_set = prompts.load(args.prompts)
    limits.check_request(corpus.vocabulary, prompt_set, args.batch_size)
    template = ScoreRequest(model=args.run, kind=args.kind, words=tuple(corpus.vocabulary), prompts=tuple(prompt_set),
                            corpus=corpus.name, engine=args.engine, batch_size=args.batch_size, device=args.device,
                            dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                            allow_pickle=args.allow_pickle, family=args.family, db=args.db)
    _stderr(f"{run.name}: {len(run.checkpoints)} of {len(run.available)} checkpoints (steps "
            f"{', '.join(map(str, run.steps[:8]))}{', ...' if len(run.steps) > 8 else ''}); "
            f"{len(corpus.vocabulary)} words x {len(prompt_set)} prompts each")
    bars = []

    def on_checkpoint(i, ckpt):
        for close in bars:
            close()
        update, close = _progress_bar(args.quiet)
        bars[:] = [close]
        _stderr(f"[{i + 1}/{len(run.checkpoints)}] step {ckpt.step}: {ckpt.name}")
        return {"on_progress": update, "on_start": None if args.quiet else (lambda s: _stderr(s.line)),
                "say": None if args.quiet else _stderr}
    try:
        result = sweep.sweep(run, template, store, on_checkpoint=on_checkpoint)
    finally:
        for close in bars:
            close()
    flagged = 0
    for ckpt, r in result.results:
        if r.check is not None:
            flagged += r.check["status"] == "failed"
            if r.check["status"] != "passed":
                print(f"warning: step {ckpt.step}: " + checks.summary_line(r.check), file=sys.stderr)
        for note in r.notes:
            print(f"note: step {ckpt.step}: {note}", file=sys.stderr)
        print(f"step {ckpt.step}: scored {r.new} new, {r.cached} cached", file=sys.stderr)
    for ckpt, msg in result.failed:
        print(f"error: step {ckpt.step} ({ckpt.name}): {msg}", file=sys.stderr)
    print(result.line())
    return 2 if result.failed else 3 if flagged else 0


def cmd_trajectory(args) -> int:
    import json

    from . import corpora, trajectory
    store = _existing_store(args, "`sweep`")
    corpus = corpora.resolve(args.corpus, store)
    traj = trajectory.trajectory(store, args.run, corpus.words, corpus.name, ranking=getattr(corpus, "ranking", "word"),
                                 kind=args.kind, n_movers=args.top)
    if args.json:
        print(json.dumps(traj.to_json(), allow_nan=False))
        return 0
    print(trajectory.sentence(traj))
    table = traj.frame().pivot_table(index="step", columns=["framing", "category"], values="value")
    print(table.round(1).to_string())
    for way, label in (("up", "preferred later in training"), ("down", "preferred earlier in training")):
        print(f"\n{label} (mean rank over positive prompts, first -> last checkpoint):")
        for m in traj.movers[way]:
            print(f"  {m['word']!r:22s} {m['category']:12s} {m['rank_first']:7.1f} -> {m['rank_last']:7.1f}  "
                  f"({m['rank_change']:+.1f})")
    for note in traj.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from . import corpora
    from .export import EXPORT_COLUMNS, write_table
    store = _existing_store(args, "`score` or `import-published`")
    words = corpora.resolve(args.corpus, store).vocabulary if args.corpus else None
    df = store.scores(kind=args.kind, models=[args.model] if args.model else None, words=words)
    if df.empty:
        which = f" for model {args.model}" if args.model else ""
        raise UserError(f"nothing stored{which}; check --model (as given to `score`), --kind and --corpus")
    out = write_table(df[EXPORT_COLUMNS], args.out)
    print(f"wrote {len(df)} rows to {out}", file=sys.stderr)
    return 0


def cmd_corpora(args) -> int:
    from . import corpora
    from .vocabscan import DESCRIPTION
    for name, (_, desc) in corpora.BUILTINS.items():
        print(f"{name:15s} {desc}")
    print(f"{'vocabulary':15s} {DESCRIPTION} (score only)")
    return 0


def cmd_models(args) -> int:
    from .models import REGISTRY
    for e in REGISTRY:
        extra = " (needs --trust-remote-code)" if e.trust_remote_code else ""
        kind = e.kind if e.kind == "rm" else f"lm, {e.lm_type}"
        print(f"{e.name:45s} {e.family:6s} {e.size:>4s}  {kind}{extra}")
    return 0


def cmd_import_published(args) -> int:
    from .published import import_published
    counts = import_published(_store(args))
    print(f"imported {counts['rows_added']} new rows for {counts['models']} published runs from {counts['files']} files")
    if counts.get("merged_rows_removed") or counts.get("merged_rows_kept"):
        print(f"migrated an older import: {counts['merged_rows_removed']} merged rows now live in their corpus's run"
              + (f"; {counts['merged_rows_kept']} rows no file holds were kept under the old key"
                 if counts.get("merged_rows_kept") else ""))
    return 0


def cmd_analyze(args) -> int:
    import json

    from . import analysis, corpora, coverage, prompts
    store = _store(args)
    corpus = corpora.resolve(args.corpus, store)
    wanted = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    prompt_texts = [p.text for p in prompts.load(args.prompts)] if args.prompts else None
    result = analysis.figure1_from_store(store, corpus.words, corpus.name, wanted, prompt_texts,
                                         permutations=args.permutations, seed=args.seed,
                                         ranking=getattr(corpus, "ranking", "word"),
                                         include_incomplete=args.include_incomplete)
    earlier = sum(r["reason"] == coverage.EARLIER_CHECKPOINT for r in result.models_left_out or [])
    if earlier:  # a swept run counts once (coverage.select)
        print(f"note: {earlier} earlier checkpoint(s) of swept training runs left out (each run's last "
              "checkpoint is in); name them with --models to include them", file=sys.stderr)
    if not result.median_ranks:
        if result.models_left_out:
            raise UserError(f"no reward model qualifies for corpus {args.corpus}: {analysis.models_text(result)} "
                            "Score the missing prompts and words, or pass --include-incomplete")
        raise UserError(f"no reward-model scores for corpus {args.corpus}; run `import-published` or `score` first")
    from . import headline
    out = result.to_json()
    strict = None
    if args.uncertainty:
        if not 100 <= args.reps <= 100_000:
            raise UserError("--reps must be between 100 and 100000 (10000 is the default)")
        strict = headline.stricter_from_store(store, result, corpus.words, corpus.name, reps=args.reps,
                                              seed=args.seed)
        out.update(strict.to_json())
        out["headline"] = headline.headline(result, strict).to_json()
    # the one story first (as the Report): the headline, then the paper's panels, then the models
    lines = headline.story(result, strict, "(The stricter analysis, which treats the models, prompts and words as "
                                           "samples, is not in this output: add --uncertainty.)")
    lines.append(analysis.models_text(result))
    if args.json:
        print(json.dumps(out, allow_nan=False, default=float))
    else:
        print("\n".join(lines))
    return 0


def cmd_audit_model(args) -> int:
    import json

    from . import corpora, model_audit
    store = _existing_store(args, "`score`")
    if args.reps < 100:
        raise UserError("--reps must be at least 100 for a 95% interval")
    corpus = corpora.resolve(args.corpus, store)
    audit = model_audit.audit_model(store, args.model, corpus.name, corpus.words, getattr(corpus, "ranking", "word"),
                                    reps=args.reps, seed=args.seed)
    if args.json:
        print(json.dumps(audit.to_json(), allow_nan=False))
        return 0
    print(audit.sentence)
    print()
    print(model_audit.panels_table(audit).to_string(index=False))
    print(f"\nReference: {audit.reference_kind} ({len(audit.reference)}); {audit.reps} bootstrap replicates over "
          f"prompts and words, seed {audit.seed}.")
    for c in audit.caveats[1:]:  # the first is in the sentence
        print(f"also: {c}")
    return 0


def cmd_logprobs(args) -> int:
    from . import logprobs, models, prompts
    store = _store(args)
    store.stats()
    prompt_set = prompts.load(args.prompts)
    loaded = models.load(args.model, "lm", revision=args.revision, device=args.device, dtype=args.dtype,
                         trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle, family=args.family)
    print(f"{args.model}: {loaded.family} lm on {loaded.device}; {len(prompt_set)} forward passes "
          "(one per prompt), whole vocabulary", file=sys.stderr)
    bar = None
    if not args.quiet:
        from tqdm import tqdm
        bar = tqdm(total=len(prompt_set), unit="prompt", file=sys.stderr, dynamic_ncols=True)

    def update(done, total, pid):
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(pid, refresh=True)
    try:
        res = logprobs.compute(store, loaded, prompt_set, args.lm_type, on_progress=update)
    finally:
        if bar is not None:
            bar.close()
    table = logprobs.wide(store, loaded.key, [p.prompt_id for p in prompt_set])
    keep = logprobs.META_COLUMNS + [p.prompt_id for p in prompt_set if p.prompt_id in table.columns]
    out = logprobs.write_csv(table[keep], Path(args.out) / f"{logprobs.file_stem(args.model)}.csv")
    side = logprobs.write_sidecar(out, loaded, res.lm_type, prompt_set)  # so import-logprobs knows the model
    print(f"{res.lm_type}: {res.new} prompts computed, {res.cached} stored before; "
          f"{res.n_tokens} tokens; wrote {out} (model identity in {side.name})")
    return 0


def cmd_import_logprobs(args) -> int:
    from . import logprobs, prompts
    extra = prompts.load(args.prompts) if args.prompts else ()
    res = logprobs.import_paths(_store(args), args.paths, extra)
    if res.unknown_prompt_ids:
        print(f"note: prompt ids not among the paper's, stored under their id: {', '.join(res.unknown_prompt_ids[:6])}"
              " (pass --prompts FILE to give their texts)", file=sys.stderr)
    print(f"imported {res.files} files ({', '.join(res.models[:4])}{', ...' if len(res.models) > 4 else ''}): "
          f"{res.prompts_added} prompts added; {res.rows_repaired} rows split by a lone \\r repaired")
    return 0


def cmd_mwlr(args) -> int:
    import json

    from . import implicit
    store = _existing_store(args, "`logprobs` or `import-logprobs`")
    if args.top < 1:
        raise UserError("--top must be at least 1")
    table = implicit.mwlr_from_store(store, args.a, args.b, args.prompt)
    result = implicit.table1(table, args.top)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"{result['n_common']} tokens in both vocabularies; MWLR > 0: {args.a} prefers, < 0: {args.b} prefers")
    for i, r in enumerate(result["top"], 1):
        print(f"{i:>8}  {r['token_decoded']!r:24s} {r['mwlr']:+.5f}")
    print("     ...")
    start = result["n_common"] - len(result["bottom"]) + 1
    for i, r in enumerate(result["bottom"], start):
        print(f"{i:>8}  {r['token_decoded']!r:24s} {r['mwlr']:+.5f}")
    return 0
