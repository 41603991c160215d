"""Score: choose models x corpus x prompt set and run them through core in a background job
(core.jobs), with a progress bar, per-model status, time left and cancel. Rows already
stored are skipped; the job lives in the server, so it survives reruns and page switches."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

import appkit as ak
from core import jobs, limits, models, prompts, settings, sweep, vocabscan
from core.errors import ValueAuditError, one_line
from core.escape import markdown as md

STATE_ICON = {"queued": "…", "loading": "↻", "scoring": "▶", "done": "✔", "failed": "✖", "cancelled": "■"}


def model_choices(kind: str) -> list[str]:
    """The paper's models of this kind, then any added or scored here."""
    names = [e.name for e in models.REGISTRY if e.kind == kind]
    names += [n for n in settings.operator_models() if n not in names]
    stored = ak.cached("models")
    if not stored.empty:
        mine = stored[(stored["kind"] == kind) & (stored["source"] != "published")]["name"]
        names += [n for n in mine if n not in names and usable(n)]
    return names


def usable(name: str) -> bool:
    """Whether this server lets a visitor load the model (shared mode: hub ids and the operator's models)."""
    try:
        settings.visitor_model(name)
        return True
    except settings.SettingsError:
        return False


def prompt_set(prefix: str = "score") -> list[prompts.Prompt]:
    choice = st.radio("Prompts", ["The paper's 54 prompts", "Some of the paper's prompts", "Upload a prompt file"],
                      key=f"{prefix}-prompts", horizontal=True)
    if choice.startswith("Some"):
        ids = st.multiselect("Prompts to use", list(ak.PROMPT_TEXT), default=["greatest_ever_one", "worst_ever_one"],
                             format_func=ak.prompt_label, key=f"{prefix}-prompt-ids")
        return [p for p in ak.PAPER_PROMPTS if p.prompt_id in ids]
    if choice.startswith("Upload"):
        f = st.file_uploader("Prompts (.yaml `id: text` or .csv `prompt_id,prompt`)", type=["yaml", "yml", "csv"],
                             key=f"{prefix}-prompt-file")
        if f is None:
            return []
        if f.size > prompts.MAX_BYTES:  # refused before it is read, hashed or parsed
            st.error(f"Cannot use this prompt file: {md(f.name)} is larger than 1 MB; a prompt set should be a "
                     "short list")
            return []
        plist, error = parsed_prompts(f.name, f.getvalue())
        if error:
            st.error(f"Cannot use this prompt file: {md(error)}")
        return plist
    return list(ak.PAPER_PROMPTS)


@st.cache_data(show_spinner="Reading the prompt file…", max_entries=16)
def parsed_prompts(name: str, data: bytes) -> tuple[list[prompts.Prompt], str | None]:
    """A prompt file parsed once per content (the cache key hashes the bytes), not again on
    every rerun of the page; a refusal is kept too, as its one line."""
    try:
        return prompts.parse(name, data), None
    except prompts.PromptError as e:
        return [], one_line(e)


def stored_counts(names: list[str], kind: str, corpus: str, plist: list[prompts.Prompt]) -> pd.DataFrame:
    """Per chosen model: rows already stored for this corpus and prompt set (shown as done)."""
    texts = tuple(p.text for p in plist)
    sc = ak.cached("scores", kind, corpus, tuple(names), texts)
    total = len(ak.corpus_vocab(corpus)) * len(plist)
    rows = []
    for n in names:
        d = sc[sc["model"] == n]
        here = int((d["source"] != "published").sum())
        rows.append({"model": ak.display_name(n), "to do": max(total - here, 0), "stored (scored here)": here,
                     "published scores": int((d["source"] == "published").sum()),
                     "status": "✔ done" if total and here >= total else ("◐ partly stored" if here else "not yet")})
    return pd.DataFrame(rows)


def stored_table(names: list[str], kind: str, corpus: str, plist: list[prompts.Prompt]) -> None:
    """The chosen models' stored counts, refreshed every 2 s while a job runs (a fragment)."""
    @st.fragment(run_every=2.0 if jobs.REGISTRY.active() else None)
    def table():
        st.dataframe(stored_counts(names, kind, corpus, plist), hide_index=True, width="stretch")
    table()


def answers(kind: str) -> str:
    """What the models answer with: a corpus's words, or (reward models) every word token of
    each model's own vocabulary — where the operator allows such long jobs."""
    if kind == "rm":
        if settings.allow_vocab_scans():
            what = st.radio("Answers", ["corpus", vocabscan.NAME], horizontal=True, key="score-answers",
                            format_func={"corpus": "Words of a corpus",
                                         vocabscan.NAME: "Scan the model's vocabulary (every word token)"}.get)
            if what == vocabscan.NAME:
                st.caption("Vocabulary scan: every token of each model's own vocabulary whose text is a word "
                           "(letters, optionally a leading space), scored as the one-word answer; the Words "
                           "page shows each prompt's top and bottom tokens.")
                return vocabscan.NAME
        else:
            st.caption("Vocabulary scans (every word token of a model's vocabulary) are not enabled on this server.")
    return ak.corpus_picker("score-corpus")


@st.cache_data(show_spinner="Reading the tokenizer…", max_entries=16, ttl=3600)
def planned_words(name: str, trust: bool, pickle: bool) -> list[str]:
    """The word tokens a scan of this model would score (tokenizer only, no weights). An
    operator model is read from its folder but named by its folder name, never its path."""
    path = settings.visitor_model(name)
    with settings.named_as_visitor(name, path):
        return vocabscan.plan_words(path, trust_remote_code=trust, allow_pickle=pickle)


def _timing_key(name: str, opts: dict) -> tuple:
    return (name, opts["engine"], opts["device"], opts["dtype"], opts["batch_size"])


def vocab_cost(names: list[str], plist: list[prompts.Prompt], trust: dict, pickle: bool,
               opts: dict) -> tuple[pd.DataFrame, list[str]]:
    """Per model, before the job starts: word tokens x prompts = rows, rows already stored,
    rows to do and, once timed on one batch here, rows/s and the time left; and the union of
    the word tokens (for the job's checks)."""
    timed = st.session_state.get("vocab-rates", {})
    texts = [p.text for p in plist]
    rows, union = [], {}
    for n in names:
        try:
            words = planned_words(n, trust.get(n, False), pickle)
        except ValueAuditError as e:
            rows.append({"model": n, "note": one_line(e)})
            continue
        union.update(dict.fromkeys(words))
        stored = vocabscan.stored_rows(ak.store(), n, "rm", texts, words)
        todo = len(words) * len(plist) - stored
        rate = timed.get(_timing_key(n, opts))
        rows.append({"model": n, "word tokens": len(words), "prompts": len(plist), "rows": len(words) * len(plist),
                     "already stored": stored, "to do": todo, "rows/s": round(rate, 1) if rate else None,
                     "time": (jobs.fmt_seconds(todo / rate) if rate else "not timed yet") if todo else "nothing to do",
                     "note": ""})
    return pd.DataFrame(rows), list(union)


def time_one_batch(names: list[str], plist: list[prompts.Prompt], trust: dict, pickle: bool, opts: dict) -> None:
    """Load each model as the job will (the same cached instance) and time one batch of its
    word tokens on this server's device; nothing is stored."""
    rates = st.session_state.setdefault("vocab-rates", {})
    with jobs.REGISTRY.accelerator() as free:
        if not free:
            st.warning("A scoring job is using the device; time the batch when it has ended.")
            return
        for n in names:
            with st.spinner(f"Loading {n} and timing one batch…"):
                try:
                    loaded = ak.load_model(n, "rm", revision=None, device=opts["device"], dtype=opts["dtype"],
                                           trust_remote_code=trust.get(n, False), allow_pickle=pickle, family=None)
                    cost = vocabscan.estimate(ak.store(), loaded, plist[:1],
                                              planned_words(n, trust.get(n, False), pickle),
                                              opts["engine"], opts["batch_size"])
                except ValueAuditError as e:
                    st.error(f"{md(n)}: {md(one_line(e))}")
                    continue
            if cost.rows_per_s:
                rates[_timing_key(n, opts)] = cost.rows_per_s


def vocab_plan(names: list[str], plist: list[prompts.Prompt], trust: dict, pickle: bool,
               opts: dict) -> tuple[list[str], bool]:
    """The scan's cost, said before it starts; (word tokens, ready to start)."""
    if not (names and plist):
        return [], False
    st.markdown("**Cost of the vocabulary scan**")
    if st.button("Time one batch on this device", key="score-vocab-time",
                 help="Loads each model (kept in memory for the job) and times one batch of its word tokens; "
                      "nothing is stored."):
        time_one_batch(names, plist, trust, pickle, opts)
    table, words = vocab_cost(names, plist, trust, pickle, opts)

    @st.fragment(run_every=2.0 if jobs.REGISTRY.active() else None)
    def shown():  # rows already stored grow while a job runs
        t = vocab_cost(names, plist, trust, pickle, opts)[0]
        st.dataframe(t if (t["note"].fillna("") != "").any() else t.drop(columns="note"),
                     hide_index=True, width="stretch")
    shown()
    ok = bool(words) and "word tokens" in table and table["word tokens"].notna().all()
    total = int(table["to do"].sum()) if ok else 0
    untimed = ok and (table["time"] == "not timed yet").any()
    if ok:
        st.caption(f"{total:,} rows to score in all. Time = rows to do / rows per second measured on one batch here "
                   f"(engine {opts['engine']}, batch {opts['batch_size']}); "
                   + ("press **Time one batch** for the estimate before starting." if untimed else
                      "the job's progress shows the time left as it runs."))
    busy = bool(jobs.REGISTRY.active())
    return words, ok and (not untimed or busy)


def safety(names: list[str]) -> tuple[dict[str, bool], bool]:
    """Safe loading is the default; the user opts in per repository, knowing the revision.
    On a shared server there is nothing to opt in to: only the operator may run a model's
    own code or pickle weights (from the command line)."""
    if not settings.allow_remote_code():
        st.caption(":material/shield: Safe loading only on this shared server: models that ship their own code "
                   "or only pickle weights are refused before anything of theirs runs.")
        return {n: False for n in names}, False
    with st.expander("Safe loading", expanded=any(getattr(models.registry_entry(n), "trust_remote_code", False)
                                                 for n in names)):
        trust = {}
        for n in names:
            e = models.registry_entry(n)
            needs = bool(e and e.trust_remote_code)
            local = models.is_local(n)
            if local:  # a folder has no revision: its code is whatever the folder holds now
                what = f"Run the Python code in the folder {md(ak.display_name(n))}"
            else:
                what = (f"Run the Python code shipped in {md(n)} at revision "
                        f"{md((e.revision if e else None) or 'main (latest)')}")
            trust[n] = st.checkbox(what, key=f"trust-{n}", help="Some models (QRM, ArmoRM) define their own "
                                   "architecture in the repository; that code runs with your permissions.")
            if trust[n]:  # said on the page, not only in the tooltip
                st.warning(f"The Python code shipped with {md(ak.display_name(n))} will run on this machine, with "
                           "your permissions, when the job loads it. Tick this only for "
                           + ("a folder whose code you trust." if local else "a repository (and revision) you trust."),
                           icon=":material/warning:")
            elif needs:
                st.caption(f"{md(n)} needs its own code; without this box it is refused before any code runs.")
        pickle = st.checkbox("Allow pickle (.bin/.pt) weights", key="allow-pickle")
        if pickle:
            st.warning("Pickle files can execute arbitrary code when loaded. Allow them only for models you trust; "
                       "safetensors weights are always preferred.")
    return trust, pickle


def options(prefix: str = "opt") -> dict:
    with st.expander("Options"):
        c1, c2, c3, c4 = st.columns(4)
        return {"engine": c1.selectbox("Engine", ["cached", "naive"], key=f"{prefix}-engine",
                                       help="cached reuses the prompt's key/value cache; same values, faster"),
                "batch_size": int(c2.number_input("Batch size", 1, 1024, 32, key=f"{prefix}-bs")),
                "device": c3.selectbox("Device", ["auto", "cuda", "mps", "cpu"], key=f"{prefix}-device"),
                "dtype": c4.selectbox("Precision", ["auto", "bfloat16", "float16", "float32"], key=f"{prefix}-dtype")}


@st.cache_data(ttl=30, show_spinner="Connecting to Ray…")
def ray_resources(address: str) -> dict:
    """The cluster's resources (CPU, GPU, memory); a local instance when no address is given."""
    import ray
    from core.distributed import probe
    started = not ray.is_initialized()
    if started:
        if address:
            probe(address)  # one line at once, not minutes of retries
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": 2}))
    try:
        return {k: v for k, v in ray.cluster_resources().items() if not k.startswith("node:")}
    finally:
        if started:
            ray.shutdown()


def ray_backend() -> dict:
    """Backend choice, shown only when Ray is installed: {} for local, else the Ray options
    (address, workers) after showing the cluster's resources."""
    import importlib.util
    if importlib.util.find_spec("ray") is None or settings.shared():  # no cluster address from visitors
        return {}
    if st.radio("Backend", ["local", "Ray cluster"], horizontal=True, key="score-backend") == "local":
        return {}
    addr = st.text_input("Ray address", key="score-ray-address", placeholder="empty: a local Ray instance",
                         help="e.g. 10.0.0.5:6379, the head node started with `ray start --head`").strip()
    workers = int(st.number_input("Workers", 1, 256, 2, key="score-ray-workers",
                                  help="one model copy each; one GPU each when the cluster has GPUs"))
    try:
        res = ray_resources(addr)
        st.caption("Cluster resources: " + ", ".join(
            f"{k} {v / 2**30:.0f} GiB" if "memory" in k else f"{k} {v:g}" for k, v in sorted(res.items())))
    except Exception as e:  # noqa: BLE001 - any connection failure is one line here
        st.error(f"Ray: {md(one_line(e))}")
    st.caption("Workers score shards (model x prompts); this app alone writes them to its database, shard "
               "by shard. Command-line equivalent: `python -m core score ... --backend ray`; see docs/cluster.md.")
    return {"backend": "ray", "ray_address": addr or None, "workers": workers}


def sweep_form() -> None:
    """A training run's checkpoints, each scored as its own model (core.sweep) in one
    background job: local mode takes a run folder (or a hub id), a shared server a hub id
    with its revisions or one of the operator's runs by its name (sweep.discover_named)."""
    shared = settings.shared()
    runs = sweep.operator_runs()
    c1, c2 = st.columns([3, 2])
    label = ("Hugging Face id of the run" + (", or one of this server's runs" if runs else "") if shared
             else "Run folder (the Trainer's output_dir) or a hub id")
    run = c1.text_input(label, key="sw-run", max_chars=300,
                        placeholder="org/name" if shared else "/path/to/output_dir or org/name").strip()
    revs = c2.text_input("Revisions (hub runs: branches or tags)", key="sw-revs", max_chars=2000,
                         placeholder="step-1000, step-2000, step-3000",
                         help="Each revision is one checkpoint; its step is the number in its name.")
    if not run:
        what = ("Each revision of the hub repository is one checkpoint (its step is the number in its name)"
                if shared else  # a shared server takes no folder: a visitor is not told about one
                "A run folder holds checkpoint-<step>/ folders (weights, and the tokenizer there or in the run "
                "folder)")
        st.caption(f"{what}; LoRA/PEFT adapter checkpoints load through the peft library. Each checkpoint is "
                   "scored as its own model and tagged with its step; the Training dynamics page draws the run.")
        if runs:
            st.caption("This server's runs, by name: " + ", ".join(md(n) for n in runs))
        return
    if shared and not usable(run):
        st.error("This server is shared: give a Hugging Face id (org/name) and its revisions"
                 + (", or one of this server's runs by its name." if runs else "."))
        return
    try:
        found = sweep.discover_named(run, revisions=sweep.parse_revisions(revs))
    except ValueAuditError as e:
        st.error(md(one_line(e)))
        return
    c1, c2 = st.columns([2, 3])
    pick = c1.radio("Checkpoints", ["all", "every", "steps"], horizontal=True, key="sw-pick",
                    format_func={"all": "All", "every": "Every K-th", "steps": "Choose steps"}.get)
    every, steps = None, None
    if pick == "every":
        every = int(c2.number_input("K", 1, 1000, 2, key="sw-every",
                                    help="Every K-th checkpoint in step order; the first and the last always."))
    elif pick == "steps":
        steps = c2.multiselect("Steps", list(found.available), default=list(found.available)[-2:], key="sw-steps")
    try:
        chosen = sweep.discover_named(run, revisions=sweep.parse_revisions(revs), every=every, steps=steps or None)
    except ValueAuditError as e:
        st.error(md(one_line(e)))
        return
    st.dataframe(pd.DataFrame([{"step": c.step, "checkpoint": c.name if not shared or c.revision else Path(c.name).name,
                                "tokenizer": "run folder" if c.tokenizer else "its own",
                                "kind": ("seen when loaded" if c.revision else
                                         "LoRA/PEFT adapter" if c.adapter else "full weights")}
                               for c in chosen.checkpoints]), hide_index=True, width="stretch")
    corpus = ak.corpus_picker("sw-corpus")
    plist = prompt_set("sw")
    opts = options("sw-opt")
    n = len(chosen.checkpoints)
    st.caption("Each checkpoint is loaded once, the words are tokenized once for the whole run, and checkpoints "
               "already stored are not loaded again.")
    allowed = cost(n, "checkpoint(s)", len(plist), len(ak.corpus_vocab(corpus)))
    busy = jobs.REGISTRY.active()
    if st.button("Start the sweep" if not busy else "Queue after the running job", type="primary",
                 disabled=not (plist and allowed), key="sw-start"):
        submit(jobs.sweep_spec(chosen, "rm", plist, ak.corpus_vocab(corpus), corpus, str(ak.store().path), **opts))


def cost(n_models: int, what: str, n_prompts: int, n_words: int) -> bool:
    """The job's size, said before it starts, and whether this server takes it from this
    visitor (rows per job, jobs per visitor, jobs on the server: settings); a refusal is one line."""
    if not (n_models and n_prompts and n_words):
        return False
    cap = settings.limit("VALUEAUDIT_MAX_JOB_ROWS")
    rows = limits.job_rows(n_models, n_prompts, n_words)
    st.caption(f"Cost: {n_models} {what} × {n_prompts} prompts × {n_words:,} words = **{rows:,} rows** to score "
               "at most (rows already stored are skipped)"
               + (f"; this server takes up to {cap:,} rows per job." if cap else "."))
    try:
        limits.check_job_rows(n_models, n_prompts, n_words)
        jobs.check_quota(ak.visitor(), jobs.REGISTRY.active())
    except ValueAuditError as e:
        st.error(md(one_line(e)))
        return False
    return True


def submit(spec: jobs.JobSpec) -> None:
    """Queue the job as this visitor's (their token: they can cancel it, also after a reload)."""
    try:
        job = jobs.REGISTRY.submit(spec, loader=ak.load_model, owner=ak.visitor())
    except ValueAuditError as e:
        st.error(md(one_line(e)))
        return
    st.session_state["job_id"] = job.id
    st.toast(f"Job {job.id} started")
    st.rerun()  # redraw with the job running, so the tables above refresh while it runs


def start_form() -> None:
    st.info(f"Device: **{ak.device_label()}**", icon=":material/memory:")
    kind = st.radio("Kind", ["rm", "lm"], horizontal=True, key="score-kind",
                    format_func=lambda k: {"rm": "Reward models (score answers)",
                                           "lm": "Language models (log-probability of answers)"}[k])
    choices = model_choices(kind)
    names = st.multiselect("Models", choices, key="score-models", format_func=ak.display_name,
                           help=ak.models_help(choices),
                           placeholder="choose from the paper's models or those you added")
    label = "…or another Hugging Face id" if settings.shared() else "…or another hub id / local folder"
    extra = st.text_input(label, key="score-extra", max_chars=200,
                          placeholder="org/name" if settings.shared() else "org/name or /path/to/folder")
    if extra.strip() and extra.strip() not in names:
        if usable(extra.strip()):
            names = names + [extra.strip()]
        else:
            st.error(f"'{md(extra.strip()[:80])}' is not available on this server: choose one of the listed models "
                     "or give a Hugging Face id (org/name).")
    corpus = answers(kind)
    scan = corpus == vocabscan.NAME
    plist = prompt_set()
    if names and plist and not scan:
        stored_table(names, kind, corpus, plist)
    trust, pickle = safety(names)
    opts = options()
    if not scan:
        opts.update(ray_backend())
    words, ready = vocab_plan(names, plist, trust, pickle, opts) if scan else (None, True)
    answer_words = (words or []) if scan else ak.corpus_vocab(corpus)
    allowed = cost(len(names), "model(s)", len(plist), len(answer_words)) if names and plist and ready else False
    busy = jobs.REGISTRY.active()
    label = ("Start the vocabulary scan" if scan else "Start scoring") if not busy else "Queue after the running job"
    if st.button(label, type="primary", disabled=not (names and plist and ready and allowed), key="score-start"):
        submit(jobs.JobSpec(
            models=[jobs.ModelRequest(n, kind, trust_remote_code=trust.get(n, False), allow_pickle=pickle)
                    for n in names],
            prompts=plist, words=answer_words, corpus=corpus, db_path=str(ak.store().path), **opts))
    if not names:
        st.caption("Choose at least one model to start.")


def model_status(s: jobs.ModelStatus) -> str:
    """'▶ scoring 40%', '✔ done': the state with the model's own share while it runs."""
    icon = STATE_ICON.get(s.state, "")  # kept on the state's line (a no-break space) in a narrow cell
    return (f"{icon}\u00a0{s.state}" if icon else s.state) + (f" {s.fraction:.0%}" if s.state == "scoring" else "")


def job_table(job: jobs.Job) -> pd.DataFrame:
    """Per model of a job, in words a table cell can wrap: names are data, so escaped (st.table
    renders markdown); the notes go below the table, in full."""
    return pd.DataFrame([{
        "Model": md(ak.display_name(s.name)), "Status": model_status(s),
        "Rows scored": (f"{s.done:,} of {s.total:,}" if s.total else
                        "nothing to do" if s.state == "done" else ""),
        "Already stored": f"{s.cached:,}", "Time left": jobs.fmt_seconds(s.eta), "Device": md(s.device),
        "note": s.message} for s in job.statuses])


def show_job(job: jobs.Job) -> None:
    spec = job.spec
    what = (f"sweep of {len(spec.models)} checkpoint(s)" if spec.sweep is not None else f"{len(spec.models)} model(s)")
    st.markdown(f"**Job {job.id}** · {what} × corpus {md(spec.corpus)} × "
                f"{len(spec.prompts)} prompts · **{job.state}**" + (f" — {md(job.message)}" if job.message else ""))
    eta = jobs.fmt_seconds(job.eta)
    st.progress(min(job.fraction, 1.0))  # the whole job; the text says which model runs (names are data: plain text)
    st.text(job.progress_text(ak.display_name) + (f" · about {eta} left for this model" if eta else ""))
    table = job_table(job)
    # a static table: its cells wrap at 768 px, where a dataframe's cut the names and hid columns
    st.table(table.drop(columns="note"), hide_index=True)
    for s in job.statuses:  # a check line is a sentence: in full, not cut in a cell
        if s.message:
            st.text(f"{ak.display_name(s.name)}: {s.message}")  # plain text: a message may quote a model's own files
    if job.active:
        if job.cancel_requested:
            st.caption("Stopping after the current batch…")
        elif not jobs.may_cancel(job, st.session_state.get("visitor"), bool(st.session_state.get("operator"))):
            st.caption("Started by another visitor: only they (or the server's operator) can cancel it.")
        elif st.button("Cancel", key=f"cancel-{job.id}"):
            job.cancel()
            st.rerun(scope="fragment")


def jobs_panel() -> None:
    """Polls the job registry every second while something runs (a fragment: the rest of
    the page does not rerun)."""
    all_jobs = jobs.REGISTRY.jobs()[:5]
    active = any(j.active for j in all_jobs)

    @st.fragment(run_every=1.0 if active else None)
    def panel():
        current = jobs.REGISTRY.jobs()[:5]
        if not current:
            st.caption("No scoring jobs yet in this server session.")
            return
        for job in current:
            with st.container(border=True):
                show_job(job)
        if active and not any(j.active for j in current):
            st.rerun()  # the last job just ended: refresh stored counts and coverage

    panel()


@ak.guarded
def main() -> None:
    ak.header("Score", "Run reward models (or language models) on a corpus. Each (prompt, word) result is saved "
              "as soon as its batch finishes, so stopping loses nothing and a rerun does only what is missing. "
              "Large models need a GPU; the command line does the same: "
              "`python -m core score --model ORG/NAME --kind rm --corpus big2-nouns`.")
    ak.visitor()  # this visitor's token in the address before anything is submitted or shown
    ak.operator()
    start_form()
    st.subheader("A training run's checkpoints")
    with st.expander("Sweep a run: score every checkpoint, then see it on Training dynamics (Figures 4a and 5)",
                     expanded=bool(st.session_state.get("sw-run"))):
        sweep_form()
    st.subheader("Jobs")
    jobs_panel()


main()
