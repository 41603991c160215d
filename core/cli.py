"""`python -m core`: the headless command line (score, export, import-published, analyze, ...).

Every failure the user can fix prints one line on stderr and exits non-zero."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


class UserError(Exception):
    """Printed as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Value audits of reward models")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="score corpus words as answers to prompts with an RM or LM")
    s.add_argument("--model", required=True, help="Hugging Face id or local folder")
    s.add_argument("--kind", required=True, choices=["rm", "lm"])
    s.add_argument("--corpus", required=True, help="built-in name (see `corpora`) or a .csv/.dic/.dicx file")
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
    a.add_argument("--permutations", type=int, default=10000)
    a.add_argument("--seed", type=int, default=0)

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
    try:
        return handler(args) or 0
    except BrokenPipeError:  # output piped into e.g. `head`: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("stopped; finished batches are saved — rerun the same command to continue", file=sys.stderr)
        return 130
    except Exception as e:  # one line, never a traceback
        if os.environ.get("VALUEAUDIT_DEBUG"):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2


# -- commands --------------------------------------------------------------------------
def _store(args):
    from .store import Store
    return Store(args.db) if getattr(args, "db", None) else Store()


def resolve_corpus(name: str, store=None):
    """A built-in corpus, a corpus file, or a corpus saved in the store from the app."""
    from . import corpora
    if name in corpora.BUILTINS or Path(name).exists() or store is None:
        return corpora.load(name)
    saved = store.corpus_words(name)
    if saved.empty:
        return corpora.load(name)  # raises the one-line 'no corpus' error
    return corpora.Corpus(name, saved[["word", "category", "subcategory"]],
                          saved["description"].iloc[0] or "")


def _progress_bar(quiet: bool):
    if quiet:
        return None, lambda: None
    from tqdm import tqdm
    bar = tqdm(total=0, unit="row", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    def update(p):
        if bar.total != p.total:
            bar.total = p.total
        bar.n = p.done
        bar.set_postfix_str(p.prompt_id, refresh=False)
        bar.refresh() if p.done == p.total else bar.update(0)
    return update, bar.close


def cmd_score(args) -> int:
    from . import models, prompts, scoring
    store = _store(args)
    store.stats()  # a locked or corrupt database is reported before any model loads
    corpus = resolve_corpus(args.corpus, store)
    prompt_set = prompts.load(args.prompts)
    if args.backend == "ray":
        from . import distributed
        result = distributed.run(args, corpus, prompt_set, store)
    else:
        loaded = models.load(args.model, args.kind, revision=args.revision, device=args.device, dtype=args.dtype,
                             trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle,
                             family=args.family)
        print(f"{args.model}: {loaded.family} {args.kind}, {loaded.n_params / 1e6:.1f}M parameters on "
              f"{loaded.device} ({str(loaded.dtype).replace('torch.', '')}); {len(corpus.vocabulary)} words x "
              f"{len(prompt_set)} prompts", file=sys.stderr)
        update, close = _progress_bar(args.quiet)
        try:
            result = scoring.run(store, loaded, prompt_set, corpus.vocabulary, engine=args.engine,
                                 batch_size=args.batch_size, on_progress=update)
        finally:
            close()
        from . import checks  # measurement checks recorded with the run (issue 15)
        check = checks.run_checks(store, loaded, prompt_set, corpus.vocabulary, corpus.name, args.engine, args.batch_size)
        print(("warning: " if check["status"] != "passed" else "") + checks.summary_line(check), file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.skipped:
        print(f"skipped {len(result.skipped)} words with no tokens: {', '.join(result.skipped[:5])}", file=sys.stderr)
    print(f"scored {result.new} new, {result.cached} cached")
    return 3 if args.backend != "ray" and check["status"] == "failed" else 0  # flagged run (issue 15)


def cmd_export(args) -> int:
    from .export import EXPORT_COLUMNS, write_table
    store = _store(args)
    if not store.path.exists():
        raise UserError(f"no database at {store.path}; run `score` or `import-published` first, or pass --db")
    words = resolve_corpus(args.corpus, store).vocabulary if args.corpus else None
    df = store.scores(kind=args.kind, models=[args.model] if args.model else None, words=words)
    if df.empty:
        which = f" for model {args.model}" if args.model else ""
        raise UserError(f"nothing stored{which}; check --model (as given to `score`), --kind and --corpus")
    out = write_table(df[EXPORT_COLUMNS], args.out)
    print(f"wrote {len(df)} rows to {out}", file=sys.stderr)
    return 0


def cmd_corpora(args) -> int:
    from . import corpora
    for name, (_, desc) in corpora.BUILTINS.items():
        print(f"{name:15s} {desc}")
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
    print(f"imported {counts['rows_added']} new rows for {counts['models']} models from {counts['files']} files")
    return 0


def cmd_analyze(args) -> int:
    import json

    from . import analysis, prompts
    store = _store(args)
    corpus = resolve_corpus(args.corpus, store)
    wanted = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    prompt_texts = [p.text for p in prompts.load(args.prompts)] if args.prompts else None
    result = analysis.figure1_from_store(store, corpus.words, corpus.name, wanted, prompt_texts,
                                         permutations=args.permutations, seed=args.seed)
    if not result["median_ranks"]:
        raise UserError(f"no reward-model scores for corpus {args.corpus}; run `import-published` or `score` first")
    if args.json:
        print(json.dumps(result, allow_nan=False, default=float))
    else:
        print(analysis.summary_text(result))
    return 0
