"""What only the SQLite backend promises: its URL forms, WAL durability, a clean file after
forget, and no lost acknowledged ingest when the writing process is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from prismrec.profile import Event, StoreError, open_store
from prismrec.profile.sqlite_store import SQLiteStore


def test_relative_url_is_relative_to_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    with open_store("sqlite:///data/profiles.db") as store:
        store.append_events([Event("ann", "i1", 1.0)])
    assert (tmp_path / "data" / "profiles.db").is_file()


def test_absolute_url_and_options(tmp_path):
    path = tmp_path / "p.db"
    with open_store(f"sqlite:///{path}?synchronous=full&timeout=2.5") as store:
        assert isinstance(store, SQLiteStore)
        assert (store.path, store.synchronous, store.timeout) == (path, "full", 2.5)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/nowhere/p.db")


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"these are not the pages you are looking for" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        open_store(f"sqlite:///{junk}")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match="not a profile store"):
        open_store(f"sqlite:///{other}")


def test_a_schema_1_file_is_migrated_on_open_and_keeps_its_states(tmp_path):
    path = tmp_path / "p.db"
    with open_store(f"sqlite:///{path}") as store:
        store.append_events([Event("ann", "i1", 1.0, "e1"), Event("ann", "i2", 2.0, "e2")])
        store.put_state("ann", _state(2, blob=b"x" * 1500))
    with sqlite3.connect(path) as conn:  # rewrite it the way schema 1 laid the states out
        conn.execute("CREATE TABLE old (user TEXT PRIMARY KEY, checkpoint TEXT NOT NULL, "
                     "version INTEGER NOT NULL, blob BLOB NOT NULL, last_timestamp REAL NOT "
                     "NULL, n_events INTEGER NOT NULL, needs_rebuild INTEGER NOT NULL, "
                     "updated_at REAL NOT NULL) WITHOUT ROWID")
        conn.execute("INSERT INTO old SELECT * FROM states")
        conn.execute("DROP TABLE states")
        conn.execute("ALTER TABLE old RENAME TO states")
        conn.execute("UPDATE store_meta SET value='1' WHERE key='schema'")
    conn.close()
    with open_store(f"sqlite:///{path}") as store:
        got = store.get_state("ann")
        assert (got.blob, got.version, got.n_events) == (b"x" * 1500, 1, 2)
        assert store.put_state("ann", _state(2, blob=b"y"), expected_version=1) == 2
    with sqlite3.connect(path) as conn:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name='states'").fetchone()[0]
        version = conn.execute("SELECT value FROM store_meta WHERE key='schema'").fetchone()[0]
    conn.close()
    assert "WITHOUT ROWID" not in ddl and version == "4"


def test_a_store_from_a_newer_prismrec_is_refused(tmp_path):
    path = tmp_path / "p.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE store_meta SET value='99' WHERE key='schema'")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(f"sqlite:///{path}")


def test_forget_leaves_no_bytes_of_the_user_in_the_file_even_before_vacuum(tmp_path):
    path = tmp_path / "p.db"
    secret = "quentin-42c1"
    with open_store(f"sqlite:///{path}") as store:
        for b in range(20):  # enough rows to span many pages, interleaved with another user
            store.append_events(
                [Event(secret, f"{secret}-item{b}-{k}", float(b * 10 + k), f"{secret}-{b}-{k}")
                 for k in range(10)] + [Event("ann", f"i{b}", float(b), f"ann-{b}")]
            )
        store.put_state(secret, _state(200, blob=secret.encode() * 100))
        assert secret.encode() in path.read_bytes() + _wal(path)
        store.forget(secret)
        assert secret.encode() not in path.read_bytes() + _wal(path)
        assert store.event_count("ann") == 20
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")
    conn.close()
    assert secret.encode() not in path.read_bytes() + _wal(path)


def _wal(path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def _state(n: int, blob: bytes):
    from prismrec.profile import StoredState

    return StoredState(checkpoint="c", blob=blob, last_timestamp=0.0, n_events=n)


KILLED_WRITER = """
import sys
from prismrec.profile import Event, open_store
store = open_store(sys.argv[1])
for b in range(10**9):
    store.append_events([Event("u%d" % (k % 3), "i%d" % k, float(b), event_id="b%d-%d" % (b, k))
                         for k in range(10)])
    print(b, flush=True)  # the acknowledgement: batch b is committed
"""


@pytest.mark.slow
@pytest.mark.parametrize("synchronous", ["normal", "full"])
def test_acknowledged_batches_survive_sigkill(tmp_path, synchronous):
    url = f"sqlite:///{tmp_path / 'p.db'}?synchronous={synchronous}"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = -1
    while acked < 200:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        acked = int(line)
    os.kill(proc.pid, signal.SIGKILL)  # mid-way through the next batch
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    with open_store(url) as store:
        ids = {e.event_id for u in ("u0", "u1", "u2") for e in store.events(u)}
        assert {f"b{b}-{k}" for b in range(acked + 1) for k in range(10)} <= ids
        assert len(ids) % 10 == 0  # a batch is in whole or not at all
        assert store.stats()["events"] == len(ids)
    with sqlite3.connect(tmp_path / "p.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


WRITER_LOOP = """
import sqlite3, sys, threading, time
from prismrec.profile import Event, open_store
store = open_store(sys.argv[1])

def long_reader():  # a reader holding its snapshot for a while, again and again
    conn = sqlite3.connect(store.path, isolation_level=None)
    while True:
        conn.execute("BEGIN")
        conn.execute("SELECT COUNT(*) FROM events").fetchone()
        time.sleep(0.5)  # longer than the store's busy timeout: one checkpoint try fails
        conn.execute("COMMIT")
        time.sleep(0.05)

threading.Thread(target=long_reader, daemon=True).start()
print("ready", flush=True)
for b in range(10**9):
    store.append_events([Event("bystander-%d" % (k % 4), "item-%d" % (b % 50), float(b),
                               "w%d-%d" % (b, k)) for k in range(8)])
    store.events("bystander-%d" % (b % 4))  # a reader's snapshot too
"""


def test_forget_during_a_writer_loop_leaves_no_trace_in_file_wal_or_free_pages(tmp_path):
    """Finding 2 of the service review: a delete made while other writes ran left an event
    id in free pages and a 4 MB WAL. Here another process writes and reads all along, and
    each delete meets a reader whose snapshot predates it (held past the store's busy
    timeout): the files are grepped the moment ``forget`` returns, and again at the end.
    A forget that tries the checkpoint once and moves on (the old one) returns while the
    file still holds the user's pages, every time."""
    path = tmp_path / "p.db"
    url = f"sqlite:///{path}?timeout=0.3"
    secrets = [f"erase-me-{n:02d}-7f3a" for n in range(3)]
    with open_store(url) as store:
        for b in range(30):  # many pages of each secret user, interleaved with a bystander
            store.append_events(
                [Event(s, f"item-{b}", float(b), f"{s}-ev{b}") for s in secrets]
                + [Event("bystander-0", f"item-{b}", float(b), f"keep-{b}")])
        for s in secrets:
            store.put_state(s, _state(30, blob=s.encode() * 60))
    assert all(s.encode() in path.read_bytes() for s in secrets)  # the test can fail
    writer = subprocess.Popen([sys.executable, "-c", WRITER_LOOP, url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    leaked, scrubs = [], []
    try:
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        with open_store(url) as store:
            for s in secrets:
                with _reader_before(path, release_after=1.0):  # 1 s: longer than one try
                    assert store.forget(s) is True
                    leaked += _traces(path, s.encode())  # at once: no checkpoint helps later
                scrubs.append(store.last_scrub)
                time.sleep(0.05)  # let the writer commit between deletes
    finally:
        writer.kill()
        writer.wait(timeout=30)
        writer.stdout.close()
        writer.stderr.close()
    assert not leaked, f"bytes of erased users left (where, page, bytes): {leaked}"
    assert all(scrub.done for scrub in scrubs), scrubs  # retried until the checkpoint went in
    assert not _traces(path, b"erase-me-"), _traces(path, b"erase-me-")
    with open_store(url) as store:
        assert store.event_count("bystander-0") >= 30
    assert b"keep-29" in path.read_bytes() + _wal(path)


def _traces(path, secret: bytes) -> list[tuple[str, int, bytes]]:
    """Where ``secret`` still is in the store's file and WAL: (file, 4 KiB page, bytes)."""
    out = []
    for name, data in (("file", path.read_bytes()), ("wal", _wal(path))):
        at = data.find(secret)
        if at >= 0:
            out.append((name, at // 4096, data[at:at + 40]))
    return out


@contextmanager
def _reader_before(path, release_after: float):
    """A reader holding a snapshot taken now, released after ``release_after`` seconds (or
    on leaving the block, whichever comes first)."""
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    lock = threading.Lock()
    open_ = [True]

    def release():
        with lock:
            if open_[0]:
                reader.execute("COMMIT")
                open_[0] = False

    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM events").fetchone()
    timer = threading.Timer(release_after, release)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        release()
        reader.close()


def test_a_schema_2_file_is_migrated_to_event_ids_per_user(tmp_path):
    path = tmp_path / "p.db"
    with sqlite3.connect(path) as conn:  # the schema-2 layout: event ids unique store-wide
        conn.executescript("""
        CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO store_meta VALUES ('schema', '2');
        CREATE TABLE events (seq INTEGER PRIMARY KEY, user TEXT NOT NULL,
            user_seq INTEGER NOT NULL, item TEXT NOT NULL, timestamp REAL NOT NULL,
            event TEXT NOT NULL, value REAL, event_id TEXT UNIQUE);
        CREATE UNIQUE INDEX events_by_user ON events (user, user_seq);
        CREATE TABLE users (user TEXT PRIMARY KEY, n_events INTEGER NOT NULL,
            last_timestamp REAL NOT NULL, rebuild_upto INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO events VALUES (1, 'ann', 0, 'i1', 1.0, 'view', NULL, 'e1');
        INSERT INTO users VALUES ('ann', 1, 1.0, 0);
        """)
    conn.close()
    with open_store(f"sqlite:///{path}") as store:
        assert [e.event_id for e in store.events("ann")] == ["e1"]
        assert store.append_events([Event("bob", "i2", 2.0, event_id="e1")]).accepted == 1
        assert store.append_events([Event("ann", "i2", 2.0, event_id="e1")]).duplicates == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM store_meta").fetchone()[0] == "4"
    conn.close()


def test_a_schema_3_file_gets_the_preferences_table_and_keeps_its_data(tmp_path):
    path = tmp_path / "p.db"
    with open_store(f"sqlite:///{path}") as store:
        store.append_events([Event("ann", "i1", 1.0, event_id="e1")])
    with sqlite3.connect(path) as conn:  # the schema-3 layout: no preferences table
        conn.execute("DROP TABLE preferences")
        conn.execute("UPDATE store_meta SET value='3' WHERE key='schema'")
    conn.close()
    with open_store(f"sqlite:///{path}") as store:
        assert [e.event_id for e in store.events("ann")] == ["e1"]
        store.set_preference("ann", 2, "mute")
    with open_store(f"sqlite:///{path}") as store:
        assert [(p.interest, p.steer) for p in store.preferences("ann")] == [(2, "mute")]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM store_meta").fetchone()[0] == "4"
    conn.close()


def test_forget_retries_the_checkpoint_past_a_long_reader_and_reports_it(tmp_path):
    path = tmp_path / "p.db"
    secret = "long-reader-secret-91"
    with open_store(f"sqlite:///{path}?timeout=0.2") as store:
        store.append_events([Event(secret, f"i{k}", float(k), f"{secret}-{k}")
                             for k in range(50)] + [Event("ann", "i1", 1.0)])
        reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM events").fetchone()  # holds its snapshot...
        release = threading.Timer(0.8, lambda: reader.execute("COMMIT"))  # ...for 0.8 s
        release.start()
        assert store.forget(secret) is True
        release.join()
        reader.close()
        scrub = store.last_scrub
        assert scrub.done and scrub.attempts > 1, scrub  # one try (0.2 s) was not enough
        assert _wal(path) == b""  # emptied: no old page image of the user
        assert secret.encode() not in path.read_bytes()
        assert store.event_count("ann") == 1
