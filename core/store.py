"""The DuckDB store: one file holding every score ever computed or imported.

Scores are keyed by (model identity, kind, prompt text, response text) — never by engine
or batch size, which do not change the value — so any rerun scores only what is missing.

Concurrency: DuckDB lets one process write at a time. Every operation opens the file for
as short as it can (one batch = one transaction), then closes it; a process that finds
the file locked by another waits and retries. So a scoring job, an export and the
dashboard can share one file: readers see every committed batch and never a partial one.
"""
from __future__ import annotations

import contextlib
import random
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

import duckdb
import pandas as pd
from . import settings
from .errors import ValueAuditError, one_line

SCHEMA_VERSION = "1"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS models (
        model_key VARCHAR PRIMARY KEY,   -- hub:<id>@<revision> | local:<path>#<weights hash> | published:<id>@<commit>
        name VARCHAR NOT NULL,           -- the id or path as the user gave it
        kind VARCHAR NOT NULL,           -- rm | lm
        family VARCHAR,
        display_name VARCHAR,
        revision VARCHAR,
        source VARCHAR,                  -- scored | published
        n_params BIGINT,
        added_at TIMESTAMP DEFAULT current_timestamp)""",
    """CREATE TABLE IF NOT EXISTS scores (
        model_key VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        prompt VARCHAR NOT NULL,
        response VARCHAR NOT NULL,
        value DOUBLE NOT NULL,
        prompt_id VARCHAR,
        PRIMARY KEY (model_key, kind, prompt, response))""",
    # Whole-vocabulary next-token log-probabilities of LMs (core/logprobs.py): the answer is
    # the token id, since decoded texts collide; `vocab` holds each model's id -> text.
    """CREATE TABLE IF NOT EXISTS vocab (
        model_key VARCHAR NOT NULL, token_id BIGINT NOT NULL, token_name VARCHAR, token_decoded VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS logprobs (
        model_key VARCHAR NOT NULL, prompt VARCHAR NOT NULL, prompt_id VARCHAR,
        token_id BIGINT NOT NULL, value DOUBLE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS corpora (
        name VARCHAR NOT NULL, word VARCHAR NOT NULL, category VARCHAR NOT NULL, subcategory VARCHAR,
        description VARCHAR)""",
    # Measurement checks and provenance of each scoring run (core/checks.py, issue 15).
    """CREATE TABLE IF NOT EXISTS run_checks (
        run_id VARCHAR PRIMARY KEY,
        model_key VARCHAR NOT NULL,
        model VARCHAR, kind VARCHAR, corpus VARCHAR,
        created_at TIMESTAMP,
        status VARCHAR NOT NULL,          -- passed | failed | error
        message VARCHAR,
        max_abs_diff DOUBLE, tolerance_abs DOUBLE, tolerance_rel DOUBLE, n_sampled INTEGER, bos_ok BOOLEAN,
        n_words INTEGER, n_one_token INTEGER, n_multi_token INTEGER, n_dropped INTEGER, n_changed INTEGER,
        template_text VARCHAR,
        invariance VARCHAR,               -- JSON: one entry per variant
        coverage VARCHAR,                 -- JSON: words that split, dropped or changed
        provenance VARCHAR)               -- JSON: provenance.run_record""",
    # A training run's checkpoints (core/sweep.py, issue 23): each checkpoint is scored and
    # stored as its own model; this tags it with its run and training step. Created on the
    # first write to an older database (no other table changes, so no row moves).
    """CREATE TABLE IF NOT EXISTS checkpoints (
        run_key VARCHAR NOT NULL,        -- local:<resolved run folder> | hub:<id>
        run VARCHAR NOT NULL,            -- the run as the user gave it
        step BIGINT NOT NULL,            -- trainer_state.json's global_step, else the folder or revision name
        model_key VARCHAR NOT NULL,      -- the checkpoint's scores (models.model_key)
        name VARCHAR NOT NULL,           -- the checkpoint's stored name: RUN/checkpoint-<step> or <id>@<revision>
        revision VARCHAR,
        added_at TIMESTAMP DEFAULT current_timestamp,
        PRIMARY KEY (run_key, step))""",
]


class StoreError(ValueAuditError, RuntimeError):
    """The database cannot be used; the message says what to do."""


def default_path() -> Path:
    return settings.path("VALUEAUDIT_DB")


# DuckDB must never fetch or load extensions on its own: a SQLite file given as --db
# would otherwise trigger a download of the sqlite extension.
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


class _Shared:
    """This process's one open instance of a database file, and who is using it."""

    def __init__(self, key: str, root: duckdb.DuckDBPyConnection, verified: bool):
        self.key = key
        self.root = root
        self.users = 0
        self.writes = 0
        self.verified = verified
        self.schema_ready = False
        self.write_lock = threading.RLock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with _LOCK:  # cursor() on the root connection from two threads at once is not safe
            return self.root.cursor()


_LOCK = threading.Lock()                      # guards the three dicts below
_SHARED: dict[str, _Shared] = {}              # resolved path -> open instance
_OPENING: dict[str, threading.Lock] = {}      # resolved path -> lock held while opening/closing it
_VERIFIED: dict[str, tuple] = {}              # resolved path -> file version last read in full or written here


def _key(path: Path) -> str:
    return str(path.resolve())


def _acquire(store: "Store", write: bool) -> _Shared:
    """The shared instance of store.path, opened if need be, with one more user counted."""
    key = _key(store.path)
    with _LOCK:
        opening = _OPENING.setdefault(key, threading.Lock())
    with opening:  # one thread opens; the others wait for it and share the result
        with _LOCK:
            shared = _SHARED.get(key)
            if shared is not None:
                shared.users += 1
                shared.writes += write
                return shared
        before = store.version()
        shared = _Shared(key, store._open(write), verified=_VERIFIED.get(key) == before)
        if write:  # ready before any reader can share it: checked, with its tables
            try:
                _prepare_for_writes(store.path, shared)
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    shared.root.close()
                raise
        with _LOCK:
            shared.users = 1
            shared.writes = int(write)
            _SHARED[key] = shared
        return shared


def _release(shared: _Shared) -> None:
    """One user fewer; the last one closes the instance so other processes can open the file."""
    key = shared.key
    with _LOCK:
        opening = _OPENING[key]
    with opening:
        with _LOCK:
            shared.users -= 1
            if shared.users > 0:
                return
            _SHARED.pop(key, None)
        wrote = shared.writes > 0
        with contextlib.suppress(duckdb.Error):
            shared.root.close()
        if wrote or shared.verified:
            _VERIFIED[key] = Store(key).version()  # what we wrote (or read in full) is known good


def _refuse_foreign(path: Path) -> None:
    """A SQLite (or other non-DuckDB) file: one line, before DuckDB tries to handle it."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return
    if head.startswith(b"SQLite format 3"):
        raise StoreError(f"{path.name} is a SQLite database, not DuckDB; choose another database path (or move it "
                         "aside)")


def _prepare_for_writes(path: Path, shared: _Shared) -> None:
    """Before the first write through an instance: refuse a damaged file (nothing written
    yet, so it stays byte-identical), then create the tables if they are missing."""
    with shared.write_lock:
        if shared.verified and shared.schema_ready:
            return
        con = shared.cursor()
        try:
            if not shared.verified:
                _check_readable(path, con)
                shared.verified = True
            if not shared.schema_ready:
                _create(con)
                shared.schema_ready = True
        except duckdb.Error as e:
            raise StoreError(_explain(path, str(e))) from None
        finally:
            with contextlib.suppress(duckdb.Error):
                con.close()


def _check_readable(path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Read every row of every table once; StoreError when a block is damaged."""
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()]
        for t in tables:
            quoted = '"' + t.replace('"', '""') + '"'
            con.execute(f"SELECT count(*), bit_xor(hash(x)) FROM {quoted} x").fetchall()
    except duckdb.Error as e:
        raise StoreError(_explain(path, str(e))) from None


class Store:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self._schema_ready = False

    # -- connections -------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on this process's one instance of the file, held only for the operation.

        Why one instance: DuckDB refuses a second connection to a file in the same process
        with another configuration (read-only vs read-write), so a page reading while a job
        writes would fail. Every thread gets its own cursor on a shared read-write instance;
        the instance is closed as soon as no operation uses it, so other processes (CLI
        export, score) wait only for one short operation."""
        if not write and not self.path.exists():
            con = duckdb.connect(":memory:", config=DUCKDB_CONFIG)
            _create(con)
            try:
                yield con
            finally:
                con.close()
            return
        if write:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the folder of {self.path.name} ({e.strerror}); choose a writable "
                                 "database path") from None
        shared = _acquire(self, write)
        try:
            cur = shared.cursor()
        except BaseException:
            _release(shared)
            raise
        try:
            if write:
                with shared.write_lock:  # one writer per file in this process: no write-write conflicts
                    _prepare_for_writes(self.path, shared)
                    yield cur
            else:
                yield cur
        finally:
            with contextlib.suppress(duckdb.Error):
                cur.close()
            _release(shared)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Keep this process's instance of the file open for a block of several reads (one
        run of a page), so each read does not reopen the file (~25 ms each). Other
        processes then wait for the block, not only for one operation."""
        try:
            shared = _acquire(self, write=False) if self.path.exists() else None
        except StoreError:  # only a speed-up: the block's own reads report what is wrong
            shared = None
        if shared is None:
            yield
            return
        try:
            yield
        finally:
            _release(shared)

    def _open(self, write: bool) -> duckdb.DuckDBPyConnection:
        """Open the file (read-write unless `write` is False and the file is not writable),
        waiting while another process holds its lock."""
        _refuse_foreign(self.path)
        wait_s = lock_wait_s()
        deadline = time.monotonic() + wait_s
        delay = 0.02
        read_only = False
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=DUCKDB_CONFIG)
            except duckdb.IOException as e:
                msg = str(e)
                low = msg.lower()
                if not write and not read_only and ("permission denied" in low or "read-only file system" in low):
                    read_only = True  # a file we may only read: share a read-only instance
                    continue
                if "lock" not in low:
                    raise StoreError(_explain(self.path, msg)) from None
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{self.path.name} is locked by another process for over {wait_s:.0f} s; "
                        "wait for it to finish or use another database path") from None
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
            except duckdb.Error as e:
                raise StoreError(_explain(self.path, str(e))) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic write: everything inside lands, or nothing does."""
        with self.connect(write=True) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException as e:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if isinstance(e, duckdb.Error):
                    raise StoreError(_explain(self.path, str(e))) from None
                raise

    def query(self, sql: str, params: Iterable | None = None, **frames: pd.DataFrame) -> pd.DataFrame:
        """Run a read query (parameterised; DataFrames passed by name become views)."""
        with self.connect() as con:
            for name, df in frames.items():
                con.register(name, df)
            try:
                return con.execute(sql, list(params or [])).df()
            except duckdb.Error as e:
                raise StoreError(_explain(self.path, str(e))) from None

    # -- models --------------------------------------------------------------------
    def upsert_model(self, model_key: str, name: str, kind: str, family: str | None,
                     display_name: str | None = None, revision: str | None = None,
                     source: str = "scored", n_params: int | None = None) -> None:
        with self.transaction() as con:
            con.execute(
                """INSERT INTO models (model_key, name, kind, family, display_name, revision, source, n_params)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (model_key) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                     family = excluded.family, display_name = excluded.display_name,
                     revision = excluded.revision, source = excluded.source,
                     n_params = coalesce(excluded.n_params, models.n_params)""",
                [model_key, name, kind, family, display_name, revision, source, n_params])

    def add_model(self, model_key: str, name: str, kind: str, family: str | None,
                  display_name: str | None = None, revision: str | None = None, source: str = "added") -> bool:
        """A new catalogue row, or nothing: a stored row (and what its scores mean: kind,
        family) is never rewritten from here. True when the row was added."""
        with self.transaction() as con:
            added = con.execute(
                """INSERT INTO models (model_key, name, kind, family, display_name, revision, source)
                   VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_key) DO NOTHING RETURNING model_key""",
                [model_key, name, kind, family, display_name, revision, source]).fetchall()
        return bool(added)

    def models(self) -> pd.DataFrame:
        return self.query(
            """SELECT m.*, coalesce(s.n_scores, 0) AS n_scores FROM models m
               LEFT JOIN (SELECT model_key, count(*) AS n_scores FROM scores GROUP BY model_key) s
               USING (model_key) ORDER BY m.kind, m.family, m.name""")

    def remove_model(self, model_key: str) -> int:
        """Delete a model and its scores; returns the number of scores removed."""
        with self.transaction() as con:
            n = con.execute("SELECT count(*) FROM scores WHERE model_key = ?", [model_key]).fetchall()[0][0]
            con.execute("DELETE FROM scores WHERE model_key = ?", [model_key])
            con.execute("DELETE FROM logprobs WHERE model_key = ?", [model_key]).fetchall()
            con.execute("DELETE FROM vocab WHERE model_key = ?", [model_key]).fetchall()
            con.execute("DELETE FROM checkpoints WHERE model_key = ?", [model_key]).fetchall()
            con.execute("DELETE FROM models WHERE model_key = ?", [model_key])
        return int(n)

    # -- scores --------------------------------------------------------------------
    def existing(self, model_key: str, kind: str) -> set[tuple[str, str]]:
        """(prompt, response) pairs already stored for this model and kind."""
        df = self.query("SELECT prompt, response FROM scores WHERE model_key = ? AND kind = ?",
                        [model_key, kind])
        return set(zip(df["prompt"], df["response"]))

    def add_scores(self, model_key: str, kind: str, rows: pd.DataFrame) -> int:
        """Insert rows (prompt_id, prompt, response, value) in one transaction; returns rows added.
        A row already stored is kept as it was (first write wins)."""
        if rows.empty:
            return 0
        batch = pd.DataFrame({
            "model_key": model_key, "kind": kind,
            "prompt": rows["prompt"].astype(str), "response": rows["response"].astype(str),
            "value": rows["value"].astype(float), "prompt_id": rows["prompt_id"].astype(str)})
        with self.transaction() as con:
            con.register("batch", batch)
            added = con.execute("""INSERT OR IGNORE INTO scores (model_key, kind, prompt, response, value, prompt_id)
                                   SELECT model_key, kind, prompt, response, value, prompt_id FROM batch""").fetchall()
            con.unregister("batch")
        return int(added[0][0]) if added else 0

    def scores(self, kind: str | None = None, models: Iterable[str] | None = None,
               words: Iterable[str] | None = None, prompts: Iterable[str] | None = None) -> pd.DataFrame:
        """Scores joined with their model's name and family.

        `models` matches names (as given to `score`) or model keys; `words` keeps only those
        responses; `prompts` keeps only those prompt texts."""
        where, params, frames = ["TRUE"], [], {}
        if kind:
            where.append("s.kind = ?")
            params.append(kind)
        if models is not None:
            frames["want_models"] = pd.DataFrame({"m": list(models)}, dtype=str)
            where.append("(m.name IN (SELECT m FROM want_models) OR s.model_key IN (SELECT m FROM want_models))")
        if words is not None:
            frames["want_words"] = pd.DataFrame({"w": list(dict.fromkeys(words))}, dtype=str)
            where.append("s.response IN (SELECT w FROM want_words)")
        if prompts is not None:
            frames["want_prompts"] = pd.DataFrame({"p": list(prompts)}, dtype=str)
            where.append("s.prompt IN (SELECT p FROM want_prompts)")
        sql = f"""SELECT m.name AS model, s.model_key, m.family, m.display_name, m.source, s.kind,
                         s.prompt_id, s.prompt, s.response, s.value
                  FROM scores s JOIN models m USING (model_key)
                  WHERE {' AND '.join(where)}
                  ORDER BY m.name, s.model_key, s.prompt_id, s.response"""
        return self.query(sql, params, **frames)

    def coverage(self) -> pd.DataFrame:
        """Per model and kind: rows, prompts and distinct responses stored."""
        return self.query(
            """SELECT m.name AS model, m.model_key, m.kind, m.family, m.source,
                      count(s.value) AS n_scores, count(DISTINCT s.prompt) AS n_prompts,
                      count(DISTINCT s.response) AS n_responses
               FROM models m LEFT JOIN scores s USING (model_key)
               GROUP BY ALL ORDER BY m.kind, m.family, m.name""")

    def coverage_of_words(self, words: Iterable[str]) -> pd.DataFrame:
        """Per model: how many of these words and how many prompts it has scores for."""
        return self.query(
            """SELECT m.name AS model, s.model_key, m.kind, m.family, m.source,
                      count(DISTINCT s.response) AS n_words, count(DISTINCT s.prompt) AS n_prompts,
                      count(*) AS n_scores
               FROM scores s JOIN models m USING (model_key)
               WHERE s.response IN (SELECT w FROM vocab) GROUP BY ALL""",
            vocab=pd.DataFrame({"w": list(dict.fromkeys(words))}, dtype=str))

    def stats(self) -> dict:
        """Counts shown on the home page; also the cache key for the app's data caches."""
        # A published model's runs (`published:<id>@<commit>#<run>`, one per corpus) are one model.
        df = self.query("""SELECT (SELECT count(DISTINCT CASE WHEN source = 'published' AND model_key LIKE 'published:%#%'
                                                         THEN split_part(model_key, '#', 1) ELSE model_key END)
                                   FROM models) AS n_models,
                                  (SELECT count(*) FROM scores) AS n_scores,
                                  (SELECT count(*) FROM scores WHERE kind = 'rm') AS n_rm_scores,
                                  (SELECT count(*) FROM scores WHERE kind = 'lm') AS n_lm_scores""")
        out = {k: int(v) for k, v in df.iloc[0].items()}
        # whole-vocabulary next-token log-probs (`logprobs`, `import-logprobs`) are stored apart from word scores
        out["n_vocab_logprobs"] = (int(self.query("SELECT count(*) AS n FROM logprobs")["n"].iloc[0])
                                   if self.has_table("logprobs") else 0)
        return out

    def version(self) -> tuple:
        """Changes whenever the stored data changes (for cache invalidation)."""
        try:
            st = self.path.stat()
            wal = self.path.with_name(self.path.name + ".wal")
            return (str(self.path), st.st_mtime_ns, st.st_size, wal.stat().st_mtime_ns if wal.exists() else 0)
        except FileNotFoundError:
            return (str(self.path), 0, 0, 0)

    # -- training runs (checkpoint sweeps) -------------------------------------------
    def has_table(self, name: str) -> bool:
        """False for a database written before `name` existed (a read never creates tables)."""
        df = self.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ?", [name])
        return int(df["n"].iloc[0]) > 0

    def tag_checkpoint(self, model_key: str, run_key: str, run: str, step: int, name: str,
                       revision: str | None = None) -> None:
        """Tag a scored model as the checkpoint at `step` of a training run (a rerun re-tags it)."""
        with self.transaction() as con:
            con.execute(
                """INSERT INTO checkpoints (run_key, run, step, model_key, name, revision) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_key, step) DO UPDATE SET run = excluded.run, model_key = excluded.model_key,
                     name = excluded.name, revision = excluded.revision""",
                [run_key, run, int(step), model_key, name, revision])

    def checkpoints(self, run_key: str | None = None) -> pd.DataFrame:
        """Tagged checkpoints (run_key, run, step, model_key, name, revision, family, kind), by run and step."""
        cols = ["run_key", "run", "step", "model_key", "name", "revision", "family", "kind"]
        if not self.has_table("checkpoints"):
            return pd.DataFrame(columns=cols)
        where, params = ("WHERE c.run_key = ?", [run_key]) if run_key is not None else ("", [])
        return self.query(
            f"""SELECT c.run_key, c.run, c.step, c.model_key, c.name, c.revision, m.family, m.kind
                FROM checkpoints c LEFT JOIN models m USING (model_key) {where}
                ORDER BY c.run_key, c.step""", params)[cols]

    # -- user corpora ---------------------------------------------------------------
    def save_corpus(self, name: str, words: pd.DataFrame, description: str = "") -> None:
        frame = words[["word", "category", "subcategory"]].astype(str).assign(name=name, description=description)
        with self.transaction() as con:
            con.execute("DELETE FROM corpora WHERE name = ?", [name])
            con.register("frame", frame)
            con.execute("INSERT INTO corpora SELECT name, word, category, subcategory, description FROM frame")
            con.unregister("frame")

    def corpus_words(self, name: str) -> pd.DataFrame:
        return self.query("SELECT word, category, subcategory, description FROM corpora WHERE name = ?", [name])

    def saved_words(self) -> int:
        """Rows of the corpora people saved (the word lists vocabulary scans save are not counted)."""
        return int(self.query("SELECT count(*) AS n FROM corpora WHERE NOT starts_with(name, 'vocabulary:')")
                   ["n"].iloc[0])

    def corpus_names(self) -> list[str]:
        return self.query("SELECT DISTINCT name FROM corpora ORDER BY name")["name"].tolist()

    def delete_corpus(self, name: str) -> None:
        with self.transaction() as con:
            con.execute("DELETE FROM corpora WHERE name = ?", [name])


def lock_wait_s() -> float:
    """Seconds a process waits for another one to release the database (VALUEAUDIT_LOCK_WAIT,
    read when used, so a test or an operator can change it without re-importing)."""
    raw = settings.get("VALUEAUDIT_LOCK_WAIT")
    try:
        return float(raw)
    except ValueError:
        raise settings.SettingsError(f"VALUEAUDIT_LOCK_WAIT={raw!r} is not a number of seconds; fix or unset it") from None

def _create(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in SCHEMA:
        con.execute(stmt)
    con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])


def _without_folder(path: Path, text: str) -> str:
    """`text` with the database's folder left out: an error may reach a dashboard visitor,
    who is never told where the server keeps its files (the operator set VALUEAUDIT_DB)."""
    for folder in {str(path.parent.resolve()), str(path.parent)} - {"", "."}:
        text = text.replace(folder.rstrip("/") + "/", "")
    return text


def _explain(path: Path, msg: str) -> str:
    """A DuckDB error in one line that names the database by its file name only."""
    first = _without_folder(path, one_line(msg))
    path = Path(path.name)
    low = msg.lower()
    if "not a valid duckdb" in low or "corrupt" in low or "could not read enough bytes" in low or "magic" in low or "invalid" in low and "file" in low:
        return f"{path} is not a readable DuckDB database (corrupt or another format); move it aside or choose another database path"
    if "no space" in low or "disk" in low and "full" in low:
        return f"the disk holding {path} is full; the last batch was rolled back — free space and rerun to continue"
    return f"database error on {path}: {first}"
