"""Issue 12/13: one process, many threads, one database file — a job writing while pages
read never fails; other processes get the file back between operations; a SQLite or
damaged file is refused before anything is written. Real threads, real files, real DuckDB."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time

import duckdb
import pandas as pd
import pytest

from core import jobs, prompts, ranks
from core.store import Store, StoreError

WORDS = [f"w{i:03d}" for i in range(60)]


def _batch(prompt_no: int) -> pd.DataFrame:
    return pd.DataFrame({"prompt_id": f"p{prompt_no}", "prompt": f"prompt {prompt_no}",
                         "response": WORDS, "value": [float(i * prompt_no % 17) for i in range(len(WORDS))]})


def _readers(db, stop: threading.Event, errors: list, counts: list) -> list[threading.Thread]:
    """Threads doing what pages do: counts, the score table, ranks, coverage — in a loop."""
    corpus = pd.DataFrame({"word": WORDS, "category": ["a", "b"] * 30})

    def read(fn):
        while not stop.is_set():
            try:
                counts.append(fn(Store(db)))
            except Exception as e:  # noqa: BLE001 - collected and asserted on
                errors.append(e)

    fns = [lambda s: s.stats()["n_scores"], lambda s: len(s.scores()), lambda s: len(ranks.rank_summaries(s, corpus)["medians"]),
           lambda s: len(s.coverage())]
    return [threading.Thread(target=read, args=(fn,), daemon=True) for fn in fns]


def test_job_writing_while_pages_read_stores_every_row(tmp_path):
    db = tmp_path / "shared.duckdb"
    Store(db).upsert_model("m1", "model one", "rm", "llama")
    stop, errors, counts = threading.Event(), [], []
    readers = _readers(db, stop, errors, counts)
    for t in readers:
        t.start()
    write_errors = []

    def job():
        try:
            for p in range(40):
                Store(db).add_scores("m1", "rm", _batch(p))
        except Exception as e:  # noqa: BLE001
            write_errors.append(e)

    writer = threading.Thread(target=job)
    writer.start()
    writer.join(120)
    time.sleep(0.2)
    stop.set()
    for t in readers:
        t.join(30)
    assert not write_errors and not errors, (write_errors, errors[:3])
    assert len(counts) > 40  # the readers really ran while the job wrote
    with duckdb.connect(str(db), read_only=True) as con:  # an independent count, from the file itself
        n, n_distinct = con.execute("SELECT count(*), count(DISTINCT (prompt, response)) FROM scores").fetchall()[0]
    assert n == n_distinct == 40 * len(WORDS)


def test_reader_first_then_writer_in_the_same_process(tmp_path):
    """The order that used to fail: a read holds the file when the job's write starts."""
    db = tmp_path / "order.duckdb"
    s = Store(db)
    s.upsert_model("m1", "model one", "rm", "llama")
    with s.connect() as con:  # a page is mid-read …
        assert con.execute("SELECT count(*) FROM models").fetchall()[0][0] == 1
        assert s.add_scores("m1", "rm", _batch(1)) == len(WORDS)  # … and the job commits a batch
        assert con.execute("SELECT count(*) FROM scores").fetchall()[0][0] == len(WORDS)


def test_file_is_released_to_other_processes_between_operations(tmp_path):
    db = tmp_path / "release.duckdb"
    s = Store(db)
    s.upsert_model("m1", "model one", "rm", "llama")
    s.add_scores("m1", "rm", _batch(1))
    assert s.stats()["n_scores"] == len(WORDS)
    # Another process opens the file read-write at once: this process holds nothing between operations.
    code = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "print(c.execute('SELECT count(*) FROM scores').fetchall()[0][0])")
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == str(len(WORDS)), out.stderr


def test_scoring_job_while_pages_read(tmp_path, tiny_llama_rm):
    """The app's own job thread (a tiny real model) with page-like readers beside it."""
    db = tmp_path / "job.duckdb"
    words = ["love", "power", "freedom", "family", "success", "kindness", "honesty", "wealth"]
    registry = jobs.JobRegistry()
    spec = jobs.JobSpec([jobs.ModelRequest(str(tiny_llama_rm), "rm")], prompts.paper_prompts()[:6], words,
                        db_path=str(db), engine="naive", batch_size=2, device="cpu")
    stop, errors, counts = threading.Event(), [], []
    Store(db).stats()  # an empty file the readers can open from the start
    job = registry.submit(spec)
    readers = _readers(db, stop, errors, counts)
    for t in readers:
        t.start()
    assert job.wait(300)
    stop.set()
    for t in readers:
        t.join(30)
    assert job.state == "done", (job.state, job.message, [s.message for s in job.statuses])
    assert not errors, errors[:3]
    with duckdb.connect(str(db), read_only=True) as con:
        n = con.execute("SELECT count(DISTINCT (prompt, response)) FROM scores").fetchall()[0][0]
    assert n == 6 * len(words)


def test_sqlite_file_is_refused_in_one_line_without_network(tmp_path):
    import sqlite3
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE x (a)")
    before = db.read_bytes()
    for op in (lambda s: s.stats(), lambda s: s.upsert_model("m", "m", "rm", None)):
        with pytest.raises(StoreError, match="SQLite") as e:
            op(Store(db))
        assert "\n" not in str(e.value)
    assert db.read_bytes() == before


def _damage(path, tmp_path):
    """A real database with a block overwritten after its header: it opens, reading fails."""
    s = Store(path)
    s.upsert_model("m1", "model one", "rm", "llama")
    for p in range(30):
        s.add_scores("m1", "rm", _batch(p))
    data = bytearray(path.read_bytes())
    assert len(data) > 300_000
    data[12_288:len(data) - 4096] = bytes(len(data) - 4096 - 12_288)
    path.write_bytes(bytes(data))


def test_damaged_database_refused_before_any_write(tmp_path, paper_data):
    from core import published
    db = tmp_path / "damaged.duckdb"
    _damage(db, tmp_path)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(StoreError, match="not a readable DuckDB database"):
        published.import_published(Store(db))
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert not db.with_name(db.name + ".wal").exists()


def test_store_errors_name_the_database_file_never_its_folder(tmp_path):
    """Issue 25: visitors saw the database's full path in errors; they see its file name only."""
    secret = tmp_path / "srv-secret-folder"
    secret.mkdir()
    corrupt = secret / "corrupt.duckdb"
    corrupt.write_bytes(b"\0" * 4096 + b"not a database" * 100)
    sqlite = secret / "old.duckdb"
    sqlite.write_bytes(b"SQLite format 3\0" + b"\0" * 100)
    blocker = secret / "a-file"
    blocker.write_text("x")
    for db in (corrupt, sqlite, blocker / "sub" / "x.duckdb"):
        with pytest.raises(StoreError) as e:
            Store(db).save_corpus("c", pd.DataFrame({"word": ["a"], "category": ["A"], "subcategory": ""}))
        msg = str(e.value)
        assert db.name in msg and "srv-secret-folder" not in msg and str(tmp_path) not in msg, msg
