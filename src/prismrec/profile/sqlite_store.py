"""The default profile store: one SQLite file, no server.

Durability: the file runs in WAL mode. With `synchronous="normal"` (the default) a commit is
in the WAL before `append_events` returns, so acknowledged batches survive a crash or kill -9
of the process, but the last commits may be lost if the machine itself loses power (the WAL is
fsynced at checkpoints, not per commit). `synchronous="full"` fsyncs every commit and survives
power loss too, at the cost of one fsync per batch. Concurrency: one connection per thread;
writers in any process take the write lock up front (BEGIN IMMEDIATE) and wait up to
`timeout` seconds for it.

Erasure: `forget` deletes the user's rows with secure_delete on (deleted cells are
overwritten with zeros), then `scrub()`: VACUUM rewrites every page from a clean copy --
secure_delete alone is not enough: a b-tree page rebalanced under concurrent writes can keep
a stale copy of a moved cell in its unused space (measured: 2 of 6 runs of the writer-loop
test left a user id so) -- and a TRUNCATE checkpoint, retried until it succeeds (for up to
30 s), copies the WAL into the file and empties it, so no old page image keeps the data.
The outcome is in `last_scrub`. VACUUM holds the write lock while it copies the file: a
delete costs time in proportion to the store's size, and ingest waits meanwhile.
Event ids are unique per user (schema 3): two users may use the same id. Schema 4 adds the
users' stored interest preferences (`prismrec.profile.preferences`); a schema-3 file gets the
empty table when opened.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prismrec.profile.preferences import Preference, check_preference
from prismrec.profile.store import (
    URL_FORMS,
    ConcurrentUpdateError,
    Event,
    IngestResult,
    PutStatesResult,
    Scrub,
    StatePut,
    StoreBase,
    StoredState,
    StoreError,
    StoreUnavailableError,
    check_id,
    check_since,
    check_tails,
    check_users,
    lookup_id,
    no_events_error,
    too_many_events_error,
    validate_events,
    validate_puts,
    validate_state,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = "4"  # 4: preferences; 3: event ids unique per user; 2: states a rowid table
_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,          -- global ingest order
    user TEXT NOT NULL,
    user_seq INTEGER NOT NULL,        -- 0-based position in the user's log
    item TEXT NOT NULL,
    timestamp REAL NOT NULL,
    event TEXT NOT NULL,
    value REAL,
    event_id TEXT,                    -- unique per user, NULLs distinct (always stored)
    UNIQUE (user, event_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_user ON events (user, user_seq);
CREATE TABLE IF NOT EXISTS users (
    user TEXT PRIMARY KEY,
    n_events INTEGER NOT NULL,
    last_timestamp REAL NOT NULL,     -- latest event time in the log
    rebuild_upto INTEGER NOT NULL     -- log length when the latest late event arrived
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS states (
    user TEXT PRIMARY KEY,
    checkpoint TEXT NOT NULL,
    version INTEGER NOT NULL,
    blob BLOB NOT NULL,
    last_timestamp REAL NOT NULL,
    n_events INTEGER NOT NULL,
    needs_rebuild INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS preferences (
    user TEXT NOT NULL,
    interest INTEGER NOT NULL,
    steer TEXT NOT NULL,              -- 'mute' | 'boost'
    updated_at REAL NOT NULL,
    PRIMARY KEY (user, interest)
) WITHOUT ROWID;
"""
# A state blob is 1-3 KB (it grows with the user's seen items). A WITHOUT ROWID table keeps
# at most ~1 KB of a row in its b-tree page and spills the rest to an overflow page, which
# every update frees and reallocates; a rowid table keeps up to ~4 KB in place. Measured:
# 100 updates of 1.3 KB states in one transaction, 2.5 ms as schema 1 against 0.9 ms now.
_MIGRATE_1_TO_2 = (
    _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS states"):
            _SCHEMA.index("CREATE TABLE IF NOT EXISTS preferences")].replace(
        "IF NOT EXISTS states", "states_v2").rstrip().rstrip(";"),
    "INSERT INTO states_v2 SELECT user, checkpoint, version, blob, last_timestamp, n_events, "
    "needs_rebuild, updated_at FROM states",
    "DROP TABLE states",
    "ALTER TABLE states_v2 RENAME TO states",
    "UPDATE store_meta SET value='2' WHERE key='schema'",
)
# Schema 3 scopes event ids per user: one producer can no longer suppress another user's
# events or learn whether an id exists. The table is rebuilt with its new constraint.
_MIGRATE_2_TO_3 = (
    _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS events"):
            _SCHEMA.index("CREATE UNIQUE INDEX")].replace(
        "IF NOT EXISTS events", "events_v3").rstrip().rstrip(";"),
    "INSERT INTO events_v3 SELECT seq, user, user_seq, item, timestamp, event, value, event_id "
    "FROM events",
    "DROP TABLE events",
    "ALTER TABLE events_v3 RENAME TO events",
    "CREATE UNIQUE INDEX events_by_user ON events (user, user_seq)",
    "UPDATE store_meta SET value='3' WHERE key='schema'",
)
SCRUB_RETRY_SECONDS = 0.02  # first wait between checkpoint attempts (doubles up to 0.5 s)
SCRUB_SECONDS = 30.0  # how long scrub() retries the checkpoint before it reports failure


# An upsert rewrites the row in place; INSERT OR REPLACE deletes and reinserts it (twice the
# b-tree work: measured 2x slower for a batch of 100 states).
_PUT_STATE = (
    "INSERT INTO states (user, checkpoint, version, blob, last_timestamp, n_events, "
    "needs_rebuild, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user) DO UPDATE "
    "SET checkpoint=excluded.checkpoint, version=excluded.version, blob=excluded.blob, "
    "last_timestamp=excluded.last_timestamp, n_events=excluded.n_events, "
    "needs_rebuild=excluded.needs_rebuild, updated_at=excluded.updated_at"
)
_SYNCHRONOUS = ("normal", "full")


class SQLiteStore(StoreBase):
    """`ProfileStore` in one SQLite file (see the module docstring for durability)."""

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: str = "normal", timeout: float = 10.0
    ) -> None:
        if synchronous not in _SYNCHRONOUS:
            raise StoreError(f"synchronous={synchronous!r}; use one of {_SYNCHRONOUS}")
        if not timeout > 0:
            raise StoreError(f"timeout={timeout!r}; use a positive number of seconds")
        self.path = Path(path)
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            raise StoreError(f"SQLite store path {str(path)!r}: give a file path; "
                             "an in-memory database is not durable")
        if not self.path.parent.is_dir():
            raise StoreError(f"SQLite store {self.path}: folder {self.path.parent} does not "
                             "exist; create it first")
        self.synchronous = synchronous
        self.timeout = float(timeout)
        self._idle: list[sqlite3.Connection] = []  # pool: any thread, one at a time
        self._lock = threading.Lock()
        self._closed = False
        self.last_scrub: Scrub | None = None  # what the latest forget's scrub did
        try:
            self._init_schema()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """`sqlite:///relative.db` or `sqlite:////absolute.db`, options as query parameters."""
        parts = urlsplit(url)
        path = parts.path[1:] if parts.path.startswith("/") else ""
        if parts.netloc or not path:
            raise StoreError(f"store URL {url!r}: expected sqlite:///relative/path.db or "
                             f"sqlite:////absolute/path.db; accepted forms: {URL_FORMS}")
        options: dict[str, Any] = {}
        for key, values in parse_qs(parts.query, keep_blank_values=True).items():
            if key == "synchronous":
                options["synchronous"] = values[-1].lower()
            elif key == "timeout":
                try:
                    options["timeout"] = float(values[-1])
                except ValueError:
                    raise StoreError(f"store URL {url!r}: timeout must be seconds") from None
            else:
                raise StoreError(f"store URL {url!r}: unknown option {key!r}; "
                                 "SQLite accepts synchronous=normal|full and timeout=SECONDS")
        return cls(path, **options)

    # -- connections --------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"SQLite store {self.path}: cannot open ({exc}); is it a SQLite "
                             "file you can write?") from exc
        if mode.lower() != "wal":
            conn.close()
            raise StoreError(f"SQLite store {self.path}: cannot switch to WAL mode "
                             f"(got {mode!r}); use a local file system")
        conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        conn.execute("PRAGMA secure_delete=ON")
        return conn

    @contextmanager
    def _borrow(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection for this thread until the block ends."""
        with self._lock:
            if self._closed:
                raise StoreError(f"SQLite store {self.path} is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            with self._lock:
                if self._closed:
                    conn.close()
                else:
                    self._idle.append(conn)

    @contextmanager
    def _read(self, statements: int = 2) -> Iterator[sqlite3.Connection]:
        """One read transaction: every statement in the block sees the same snapshot (one
        statement alone always does, so it needs no BEGIN and COMMIT)."""
        with self._borrow() as conn:
            if statements > 1:
                conn.execute("BEGIN")
            yield conn
            if statements > 1:
                conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the database write lock from the start."""
        with self._borrow() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(
                    f"SQLite store {self.path}: could not get the write lock within "
                    f"{self.timeout} s ({exc}); another process holds it"
                ) from exc
            yield conn  # an exception rolls back in _borrow
            conn.execute("COMMIT")

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._borrow() as conn:
            return conn.execute(sql, params).fetchall()

    def _init_schema(self) -> None:
        with self._write() as c:
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "store_meta" not in tables:
                raise StoreError(f"SQLite store {self.path}: the file holds other tables "
                                 f"({', '.join(sorted(tables))}); it is not a profile store")
            for stmt in _SCHEMA.split(";"):  # not executescript(): it would COMMIT
                if stmt.strip():
                    c.execute(stmt)
            c.execute("INSERT OR IGNORE INTO store_meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            found = c.execute("SELECT value FROM store_meta WHERE key='schema'").fetchone()[0]
            if found == "1":  # same columns, new layout; in this transaction, so all or nothing
                for stmt in _MIGRATE_1_TO_2:
                    c.execute(stmt)
                log.info("SQLite store %s: migrated from schema 1 to 2", self.path)
                found = "2"
            migrated = found == "2"
            if migrated:
                for stmt in _MIGRATE_2_TO_3:
                    c.execute(stmt)
                log.info("SQLite store %s: migrated from schema 2 to 3", self.path)
                found = "3"
            if found == "3":  # the preferences table was created above (IF NOT EXISTS)
                c.execute("UPDATE store_meta SET value='4' WHERE key='schema'")
                log.info("SQLite store %s: migrated from schema 3 to 4", self.path)
                found = "4"
        if found != SCHEMA_VERSION:
            raise StoreError(f"SQLite store {self.path}: schema version {found}, this prismrec "
                             f"reads {SCHEMA_VERSION}; migrate or use a new file")

    # -- events -------------------------------------------------------------------------------

    def append_events(self, events: Sequence[Event]) -> IngestResult:
        batch = validate_events(events)
        if not batch:
            return IngestResult(0, 0, 0, [])
        accepted = duplicates = late = 0
        late_users: dict[str, None] = {}
        tails: dict[str, tuple[int, list[Event]]] = {}
        rows = []
        with self._write() as c:
            # Read what the batch needs in a few statements; the write lock held since BEGIN
            # IMMEDIATE keeps it true until COMMIT.
            meta: dict[str, list] = {u: [0, None, 0] for u in dict.fromkeys(e.user for e in batch)}
            for chunk in _chunks(list(meta)):
                for user, *m in c.execute(
                    "SELECT user, n_events, last_timestamp, rebuild_upto FROM users "
                    f"WHERE user IN ({','.join('?' * len(chunk))})", chunk,
                ):
                    meta[user] = m
            pairs = list(dict.fromkeys((e.user, e.event_id) for e in batch
                                       if e.event_id is not None))
            seen: set[tuple[str, str]] = set()
            for chunk in _chunks(pairs):
                values = ",".join(["(?, ?)"] * len(chunk))
                seen.update(c.execute(
                    f"WITH ask(u, e) AS (VALUES {values}) SELECT ev.user, ev.event_id "
                    "FROM ask CROSS JOIN events ev ON ev.user = ask.u AND ev.event_id = ask.e",
                    [x for pair in chunk for x in pair],
                ))
            for ev in batch:
                if ev.event_id is not None:
                    if (ev.user, ev.event_id) in seen:
                        duplicates += 1
                        continue
                    seen.add((ev.user, ev.event_id))
                m = meta[ev.user]
                rows.append((ev.user, m[0], ev.item, ev.timestamp, ev.event, ev.value, ev.event_id))
                tails.setdefault(ev.user, (m[0], []))[1].append(ev)
                accepted += 1
                m[0] += 1
                if m[1] is not None and ev.timestamp < m[1]:
                    late += 1
                    late_users[ev.user] = None
                    m[2] = m[0]
                else:
                    m[1] = ev.timestamp
            c.executemany(
                "INSERT INTO events (user, user_seq, item, timestamp, event, value, event_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            c.executemany(
                "INSERT INTO users (user, n_events, last_timestamp, rebuild_upto) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (user) DO UPDATE SET "
                "n_events=excluded.n_events, last_timestamp=excluded.last_timestamp, "
                "rebuild_upto=excluded.rebuild_upto",
                [(u, m[0], m[1], m[2]) for u, m in meta.items() if m[0] > 0],
            )
        if late:
            log.debug("ingest: %d late event(s) for %d user(s)", late, len(late_users))
        return IngestResult(accepted, duplicates, late, list(late_users), tails)

    def events(self, user: str, *, since_seq: int | None = None) -> list[Event]:
        """The user's logged events in ingest order, from position `since_seq` (0-based) on."""
        start = check_since(since_seq)
        rows = self._rows(
            "SELECT user, item, timestamp, event, value, event_id FROM events "
            "WHERE user=? AND user_seq>=? ORDER BY user_seq",
            (lookup_id(user, "user"), start),
        )
        return [Event(*row) for row in rows]

    def events_since(self, since: Mapping[str, int]) -> dict[str, list[Event]]:
        """Each user's log tail from their position on, in one read transaction.

        Users without events past their position map to an empty list.
        """
        wanted = check_tails(since)
        out: dict[str, list[Event]] = {u: [] for u in wanted}
        if not wanted:
            return out
        pairs = list(wanted.items())
        with self._read(_n_chunks(pairs)) as c:
            for chunk in _chunks(pairs):
                values = ",".join(["(?, ?)"] * len(chunk))
                params = [x for pair in chunk for x in pair]
                for user, *rest in c.execute(
                    f"WITH tail(u, s) AS (VALUES {values}) "
                    "SELECT e.user, e.item, e.timestamp, e.event, e.value, e.event_id "
                    "FROM tail CROSS JOIN events e ON e.user = tail.u AND e.user_seq >= tail.s "
                    "ORDER BY e.user, e.user_seq", params,
                ):
                    out[user].append(Event(user, *rest))
        return out

    def event_count(self, user: str) -> int:
        rows = self._rows("SELECT n_events FROM users WHERE user=?", (lookup_id(user, "user"),))
        return int(rows[0][0]) if rows else 0

    def users(self) -> Iterator[str]:
        """Every user with logged events, in id order (paged, so writes may interleave)."""
        after = ""
        while True:
            rows = self._rows(
                "SELECT user FROM users WHERE user>? ORDER BY user LIMIT 1000", (after,)
            )
            if not rows:
                return
            for (user,) in rows:
                yield user
            after = rows[-1][0]

    # -- states -------------------------------------------------------------------------------

    def get_state(self, user: str) -> StoredState | None:
        rows = self._rows(
            "SELECT s.checkpoint, s.version, s.blob, s.last_timestamp, s.n_events, "
            "s.needs_rebuild, s.updated_at, u.rebuild_upto, u.n_events "
            "FROM states s JOIN users u ON u.user = s.user WHERE s.user=?",
            (lookup_id(user, "user"),),
        )
        return _state_from_row(rows[0]) if rows else None

    def get_states(self, users: Sequence[str]) -> dict[str, StoredState]:
        """The stored states of `users` (those without one are left out), one snapshot."""
        wanted = check_users(users)
        out: dict[str, StoredState] = {}
        if not wanted:
            return out
        with self._read(_n_chunks(wanted)) as c:
            for chunk in _chunks(wanted):
                for user, *row in c.execute(
                    "SELECT s.user, s.checkpoint, s.version, s.blob, s.last_timestamp, "
                    "s.n_events, s.needs_rebuild, s.updated_at, u.rebuild_upto, u.n_events "
                    "FROM states s JOIN users u ON u.user = s.user "
                    f"WHERE s.user IN ({','.join('?' * len(chunk))})", chunk,
                ):
                    out[user] = _state_from_row(row)
        return {u: out[u] for u in wanted if u in out}

    def put_states(self, puts: Sequence[StatePut]) -> PutStatesResult:
        """Write many users' states in one transaction (compare-and-set per user)."""
        batch = validate_puts(puts)
        if not batch:
            return PutStatesResult({})
        versions: dict[str, int] = {}
        conflicts: dict[str, int] = {}
        missing: list[str] = []
        now = time.time()
        with self._write() as c:
            logged: dict[str, int] = {}
            current: dict[str, int] = {}
            users = [p.user for p in batch]
            for chunk in _chunks(users):
                for user, n_events, version in c.execute(
                    "SELECT u.user, u.n_events, s.version FROM users u LEFT JOIN states s "
                    f"ON s.user = u.user WHERE u.user IN ({','.join('?' * len(chunk))})", chunk,
                ):
                    logged[user] = n_events
                    if version is not None:
                        current[user] = version
            rows = []
            for p in batch:  # check every user before writing any: a bad claim writes nothing
                if p.user in logged and p.state.n_events > logged[p.user]:
                    raise too_many_events_error(p.user, p.state.n_events, logged[p.user])
            for p in batch:
                if p.user not in logged:
                    missing.append(p.user)
                    continue
                cur = current.get(p.user, 0)
                if p.expected_version is not None and p.expected_version != cur:
                    conflicts[p.user] = cur
                    continue
                st = p.state
                rows.append((p.user, st.checkpoint, cur + 1, st.blob, st.last_timestamp,
                             st.n_events, int(st.needs_rebuild), now))
                versions[p.user] = cur + 1
            c.executemany(_PUT_STATE, rows)
        return PutStatesResult(versions, conflicts, missing)

    def put_state(
        self, user: str, state: StoredState, *, expected_version: int | None = None
    ) -> int:
        st = validate_state(user, state, expected_version)
        user = lookup_id(user, "user")
        with self._write() as c:
            row = c.execute("SELECT n_events FROM users WHERE user=?", (user,)).fetchone()
            if row is None:
                raise no_events_error(user)
            if st.n_events > row[0]:
                raise too_many_events_error(user, st.n_events, row[0])
            cur = c.execute("SELECT version FROM states WHERE user=?", (user,)).fetchone()
            current = cur[0] if cur else 0
            if expected_version is not None and expected_version != current:
                raise ConcurrentUpdateError(user, expected_version, current)
            c.execute(
                _PUT_STATE,
                (user, st.checkpoint, current + 1, st.blob, st.last_timestamp, st.n_events,
                 int(st.needs_rebuild), time.time()),
            )
        return current + 1

    def stale_users(self, checkpoint: str) -> list[str]:
        """Users whose state does not reflect their whole log under `checkpoint`.

        That is: no state yet, a state from another checkpoint, a state flagged for rebuild
        (late events), or a state behind the log (an update that never landed).
        """
        rows = self._rows(
            "SELECT u.user FROM users u LEFT JOIN states s ON s.user = u.user "
            "WHERE s.user IS NULL OR s.checkpoint != ? OR s.needs_rebuild != 0 "
            "OR u.rebuild_upto > s.n_events OR s.n_events < u.n_events ORDER BY u.user",
            (check_id(checkpoint, "checkpoint"),),
        )
        return [r[0] for r in rows]

    # -- preferences --------------------------------------------------------------------------

    def preferences(self, user: str) -> list[Preference]:
        """The user's stored interest preferences, by interest id."""
        rows = self._rows("SELECT interest, steer, updated_at FROM preferences WHERE user=? "
                          "ORDER BY interest", (lookup_id(user, "user"),))
        return [Preference(int(i), s, float(t)) for i, s, t in rows]

    def preferences_of(self, users: Sequence[str]) -> dict[str, list[Preference]]:
        """``preferences`` of many users, one snapshot: user -> list (empty if none)."""
        wanted = check_users(users, "preferences_of")
        out: dict[str, list[Preference]] = {u: [] for u in wanted}
        if not wanted:
            return out
        with self._read(_n_chunks(wanted)) as c:
            for chunk in _chunks(wanted):
                for user, i, steer, at in c.execute(
                        "SELECT user, interest, steer, updated_at FROM preferences WHERE user "
                        f"IN ({','.join('?' * len(chunk))}) ORDER BY user, interest", chunk):
                    out[user].append(Preference(int(i), steer, float(at)))
        return out

    def set_preference(self, user: str, interest: int, steer: str | None) -> None:
        """Store "mute" or "boost" for the user's interest, or clear it (``steer=None``)."""
        user = lookup_id(user, "user")
        interest, steer = check_preference(interest, steer)
        with self._write() as c:
            if steer is None:
                c.execute("DELETE FROM preferences WHERE user=? AND interest=?", (user, interest))
            else:
                c.execute("INSERT INTO preferences VALUES (?, ?, ?, ?) ON CONFLICT (user, "
                          "interest) DO UPDATE SET steer=excluded.steer, "
                          "updated_at=excluded.updated_at", (user, interest, steer, time.time()))

    # -- lifecycle ----------------------------------------------------------------------------

    def forget(self, user: str) -> bool:
        """Erase the user's events, event ids, state and preferences; True if there was
        anything."""
        user = lookup_id(user, "user")
        with self._write() as c:
            removed = sum(
                c.execute(f"DELETE FROM {table} WHERE user=?", (user,)).rowcount
                for table in ("events", "users", "states", "preferences")
            )
        if removed:
            self.last_scrub = self.scrub()
            if not self.last_scrub.done:
                log.warning("forget: %s", self.last_scrub.detail)
        return removed > 0

    def scrub(self) -> Scrub:
        """Rewrite the file from a clean copy (VACUUM) and empty the WAL into it (TRUNCATE
        checkpoint), each retried while other connections hold the locks they need, for up
        to SCRUB_SECONDS. Deleted cells are already zeros (secure_delete)."""
        deadline = time.monotonic() + SCRUB_SECONDS
        wait, attempts, freed, vacuumed = SCRUB_RETRY_SECONDS, 0, 0, False
        with self._borrow() as conn:
            while True:
                attempts += 1
                try:
                    if not vacuumed:
                        freed = conn.execute("PRAGMA freelist_count").fetchone()[0]
                        conn.execute("VACUUM")
                        vacuumed = True
                    busy, log_frames, done = conn.execute(
                        "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    reason = "readers held old snapshots"
                except sqlite3.OperationalError as exc:  # locked past the busy timeout
                    busy, log_frames, done, reason = 1, -1, -1, str(exc)
                if not busy and log_frames == done:
                    return Scrub(True, attempts, freed)
                if time.monotonic() + wait > deadline:
                    step = "WAL checkpoint" if vacuumed else "VACUUM"
                    return Scrub(False, attempts, freed,
                                 f"{step} not complete after {attempts} attempts ({reason}); "
                                 "the next forget or scrub() retries")
                time.sleep(wait)
                wait = min(0.5, wait * 2)

    def stats(self) -> dict[str, Any]:
        ((n_users, n_events, n_states),) = self._rows(
            "SELECT COUNT(*), COALESCE(SUM(n_events), 0), (SELECT COUNT(*) FROM states) FROM users"
        )
        return {
            "backend": "sqlite",
            "path": str(self.path),
            "users": int(n_users),
            "events": int(n_events),
            "states": int(n_states),
            "synchronous": self.synchronous,
            "file_bytes": self.path.stat().st_size,
        }

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._idle = self._idle, []
        for conn in conns:
            conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, synchronous={self.synchronous!r})"


def _state_from_row(row: Sequence) -> StoredState:
    """checkpoint, version, blob, last_timestamp, n_events, needs_rebuild, updated_at,
    rebuild_upto and logged (the user's) -> the state as read."""
    ckpt, version, blob, last_ts, n_events, flag, updated_at, rebuild_upto, logged = row
    return StoredState(
        checkpoint=ckpt, version=version, blob=bytes(blob), last_timestamp=last_ts,
        n_events=n_events, needs_rebuild=bool(flag) or rebuild_upto > n_events,
        updated_at=updated_at, logged=logged,
    )


def _n_chunks(values: list, size: int = 500) -> int:
    return -(-len(values) // size)


def _chunks(values: list, size: int = 500) -> Iterator[list]:
    """Slices small enough for SQLite's limit on bound parameters."""
    for i in range(0, len(values), size):
        yield values[i:i + size]
