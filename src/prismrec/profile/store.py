"""Durable per-user event logs and model states: the records and the `ProfileStore` contract.

The store keeps two things per user: an append-only log of the events they sent (the source
of truth) and one opaque model state computed from that log by a given checkpoint. Profiles
can always be rebuilt from the log, so a new checkpoint or a late event never loses data; it
only marks states as stale (`stale_users`). Backends: `sqlite_store` (default) and
`redis_store`; `open_store(url)` picks one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Self, runtime_checkable
from urllib.parse import urlsplit

from prismrec.errors import DataError, PrismrecError, UnknownIdError
from prismrec.profile.ids import MAX_ID_LENGTH, lookup_id, parse_id
from prismrec.profile.preferences import Preference

URL_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db "
    "(options: ?synchronous=normal|full&timeout=SECONDS), "
    "redis://host:port/db or rediss://... (option: ?prefix=KEYPREFIX)"
)


class StoreError(PrismrecError, ValueError):
    """The store is misconfigured (bad URL, unreadable file) or used after `close()`."""


class StoreUnavailableError(PrismrecError, ConnectionError):
    """The store's server cannot be reached; retrying later may succeed."""


class ConcurrentUpdateError(PrismrecError, RuntimeError):
    """Another writer changed the user's state since it was read; re-read and retry."""

    def __init__(self, user: str, expected: int, actual: int) -> None:
        super().__init__(
            f"state of user {user!r} is at version {actual}, not the expected {expected}: "
            "another writer updated it; read it again with get_state() and retry"
        )
        self.user = user
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a user did. `event_id`, when given, makes ingest idempotent (stored once)."""

    user: str
    item: str
    timestamp: float  # unix seconds
    event: str = "view"
    value: float | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one `append_events` batch did.

    `late` counts accepted events older than an event already in that user's log (earlier in
    the same batch included); they are stored, and the user's state is marked for rebuild.
    `tails` maps each user with accepted events to the log position of the first of them and
    those events in log order: what a caller folding them needs, without reading them back.
    """

    accepted: int
    duplicates: int
    late: int
    late_users: list[str] = field(default_factory=list)
    tails: dict[str, tuple[int, list[Event]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredState:
    """An opaque serialized model state for one user, computed by one checkpoint.

    `blob` is serialized by the caller (safetensors/numpy bytes, never pickle); `n_events` is how
    many of the user's logged events it has folded in, so `events(user, since_seq=n_events)` is
    what it still lacks. `version` and `updated_at` are set by the store on `put_state`.
    `needs_rebuild` on a read is true when the caller flagged it or when a late event arrived
    at a log position the state may have folded in out of time order. `logged`, on a read,
    is the length of the user's log in the same snapshot (a state with `n_events < logged`
    lags its log), so a reader needs no second call; `put_state` ignores it.
    """

    checkpoint: str
    blob: bytes
    last_timestamp: float
    n_events: int
    needs_rebuild: bool = False
    version: int = 0
    updated_at: float = 0.0
    logged: int | None = None


@dataclass(frozen=True, slots=True)
class StatePut:
    """One user's state for `put_states`: a compare-and-set when `expected_version` is given."""

    user: str
    state: StoredState
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class PutStatesResult:
    """What one `put_states` batch did, per user (the batch itself is one transaction).

    `versions`: users whose state was written, with the new version. `conflicts`: users whose
    compare-and-set failed, with the version found (nothing written for them: re-read, retry).
    `missing`: users with no logged events any more (forgotten meanwhile): nothing written.
    """

    versions: dict[str, int]
    conflicts: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scrub:
    """What a store's `scrub` after `forget` did. SQLite: free pages the VACUUM gave back,
    VACUUM and TRUNCATE checkpoint attempts, `done` when both went through. Redis:
    `attempts` counts the bounded delete commands. When not done, `detail` says why."""

    done: bool
    attempts: int
    freed_pages: int
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)



@runtime_checkable
class ProfileStore(Protocol):
    """Durable event logs and versioned model states, safe across threads and processes.

    Contract shared by every backend (the test suite runs against each):
    - `append_events` is one all-or-nothing transaction per batch; an invalid event rejects the
      whole batch with `DataError` and changes nothing. User ids and event ids must follow
      the id rule (`prismrec.profile.ids`: NFC, no '/', control, bidi or zero-width
      characters, no edge whitespace); reads and `forget` normalise ids the same way. Events
      whose user already has their `event_id` are skipped and counted as duplicates (event
      ids are per user); events without one are always stored.
    - Each user's log keeps ingest order; `since_seq` is a 0-based position in that log.
    - `put_state` with `expected_version` is a compare-and-set (0 means "no state yet") that
      raises `ConcurrentUpdateError` on mismatch; it returns the new version. A state may only
      be stored for a user with logged events and cannot claim more events than were logged.
      A state that folds in a late event without a rebuild must be put with needs_rebuild=True.
    - `set_preference(user, interest, "mute" | "boost" | None)` stores (None: clears) one
      interest preference; `preferences(user)` reads them (`prismrec.profile.preferences`).
      They need no logged events (a user known from training may steer too).
    - `forget` erases every trace of the user (events, event ids, state, preferences) and
      then scrubs:
      what it did is in the store's `last_scrub` (a `Scrub`).
    - Batches, one round trip (SQLite: one transaction; Redis: one pipeline or script) however
      many users: `get_states(users)` reads the states that exist (a snapshot),
      `events_since({user: since_seq})` the log tails, and `put_states(puts)` writes
      each user's state with the same per-user rules as `put_state`. A CAS conflict or a
      forgotten user only skips that user (reported in `PutStatesResult`); an invalid state,
      or one claiming more events than logged, rejects the whole batch and writes nothing.
    """

    def append_events(self, events: Sequence[Event]) -> IngestResult: ...

    def events(self, user: str, *, since_seq: int | None = None) -> list[Event]: ...

    def event_count(self, user: str) -> int: ...

    def get_state(self, user: str) -> StoredState | None: ...

    def put_state(
        self, user: str, state: StoredState, *, expected_version: int | None = None
    ) -> int: ...

    def get_states(self, users: Sequence[str]) -> dict[str, StoredState]: ...

    def put_states(self, puts: Sequence[StatePut]) -> PutStatesResult: ...

    def events_since(self, since: Mapping[str, int]) -> dict[str, list[Event]]: ...

    def users(self) -> Iterator[str]: ...

    def stale_users(self, checkpoint: str) -> list[str]: ...

    def preferences(self, user: str) -> list[Preference]: ...

    def preferences_of(self, users: Sequence[str]) -> dict[str, list[Preference]]: ...

    def set_preference(self, user: str, interest: int, steer: str | None) -> None: ...

    def forget(self, user: str) -> bool: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    def __enter__(self) -> ProfileStore: ...

    def __exit__(self, *exc: object) -> None: ...


def open_store(url: str) -> ProfileStore:
    """Open the store a URL names: `sqlite:///rel.db`, `sqlite:////abs.db` or `redis://h:p/db`."""
    if not isinstance(url, str) or "://" not in url:
        raise StoreError(f"store URL {url!r} is not a URL; use one of: {URL_FORMS}")
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        from prismrec.profile.sqlite_store import SQLiteStore

        return SQLiteStore.from_url(url)
    if scheme in ("redis", "rediss"):
        from prismrec.profile.redis_store import RedisStore

        return RedisStore.from_url(url)
    raise StoreError(f"store URL {url!r}: unknown scheme {scheme!r}; use one of: {URL_FORMS}")


# -- validation shared by the backends ----------------------------------------------------------


def check_id(value: object, what: str, where: str = "") -> str:
    """A non-empty UTF-8 string without NUL, at most MAX_ID_LENGTH characters."""
    if type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and value.isascii() \
            and "\x00" not in value:
        return value  # the common case, checked cheaply
    prefix = f"{where}: " if where else ""
    if not isinstance(value, str):
        raise DataError(f"{prefix}{what} must be a string, got {type(value).__name__}; "
                        "convert ids with str()")
    if not value:
        raise DataError(f"{prefix}{what} is empty; every event needs a non-empty {what}")
    if len(value) > MAX_ID_LENGTH:
        raise DataError(f"{prefix}{what} is {len(value)} characters long; "
                        f"the limit is {MAX_ID_LENGTH}")
    if "\x00" in value:
        raise DataError(f"{prefix}{what} {value[:40]!r} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(f"{prefix}{what} {value[:40]!r} is not valid UTF-8 text") from exc
    return str(value)


def check_number(value: object, what: str, where: str = "") -> float:
    """A finite real number as a float."""
    if type(value) is float and math.isfinite(value):
        return value
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataError(f"{prefix}{what} must be a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise DataError(f"{prefix}{what} is {out}; it must be a finite number")
    return out


def check_since(since_seq: object) -> int:
    """A 0-based position in a user's log (None means from the start)."""
    if since_seq is None:
        return 0
    if isinstance(since_seq, bool) or not isinstance(since_seq, numbers.Integral) \
            or since_seq < 0:
        raise DataError(f"since_seq must be an integer >= 0 (a position in the user's log), "
                        f"got {since_seq!r}")
    return int(since_seq)


def validate_events(events: Sequence[Event]) -> list[Event]:
    """Check a whole batch before anything is written; return normalized copies."""
    if isinstance(events, Event) or not isinstance(events, Sequence):
        raise DataError("append_events takes a sequence (list) of Event records")
    n = len(events)
    out = []
    for i, ev in enumerate(events):
        where = f"event {i} of {n}"
        if not isinstance(ev, Event):
            raise DataError(f"{where}: expected an Event, got {type(ev).__name__}")
        fields = (
            parse_id(ev.user, "user", where),
            check_id(ev.item, "item", where),
            check_number(ev.timestamp, "timestamp", where),
            check_id(ev.event, "event", where),
            None if ev.value is None else check_number(ev.value, "value", where),
            None if ev.event_id is None else parse_id(ev.event_id, "event_id", where),
        )
        same = all(a is b for a, b in zip(fields, (ev.user, ev.item, ev.timestamp, ev.event,
                                                    ev.value, ev.event_id), strict=True))
        out.append(ev if same else Event(*fields))
    return out


def validate_state(user: str, state: StoredState, expected_version: int | None) -> StoredState:
    """Check a state before it is stored; return a normalized copy (blob as bytes)."""
    lookup_id(user, "user")
    if not isinstance(state, StoredState):
        raise DataError(f"put_state takes a StoredState, got {type(state).__name__}")
    if not isinstance(state.blob, bytes | bytearray | memoryview):
        raise DataError(f"state blob must be bytes, got {type(state.blob).__name__}; "
                        "serialize the model state (e.g. safetensors.torch.save) first")
    if isinstance(state.n_events, bool) or not isinstance(state.n_events, numbers.Integral) \
            or state.n_events < 0:
        raise DataError(f"state n_events must be an integer >= 0, got {state.n_events!r}")
    if expected_version is not None and (
        isinstance(expected_version, bool) or not isinstance(expected_version, numbers.Integral)
        or expected_version < 0
    ):
        raise DataError(f"expected_version must be an integer >= 0 (0 = no state yet) or None, "
                        f"got {expected_version!r}")
    return StoredState(
        checkpoint=check_id(state.checkpoint, "checkpoint"),
        blob=bytes(state.blob),
        last_timestamp=check_number(state.last_timestamp, "state last_timestamp"),
        n_events=int(state.n_events),
        needs_rebuild=bool(state.needs_rebuild),
    )


def check_users(users: Sequence[str], method: str = "get_states") -> list[str]:
    """A batch of user ids for `get_states` (or another batch read, ``method``), duplicates
    dropped, order kept."""
    if isinstance(users, str) or not isinstance(users, Sequence | set | frozenset):
        raise DataError(f"{method} takes a list of user ids, not {type(users).__name__}")
    return list(dict.fromkeys(lookup_id(u, "user") for u in users))


def check_tails(since: Mapping[str, int]) -> dict[str, int]:
    """`events_since`'s argument: user id -> 0-based log position."""
    if not isinstance(since, Mapping):
        raise DataError("events_since takes a mapping {user: since_seq}, not "
                        f"{type(since).__name__}")
    return {lookup_id(u, "user"): check_since(s) for u, s in since.items()}


def validate_puts(puts: Sequence[StatePut]) -> list[StatePut]:
    """Check a whole `put_states` batch before anything is written; one entry per user."""
    if isinstance(puts, StatePut) or not isinstance(puts, Sequence):
        raise DataError("put_states takes a sequence (list) of StatePut records")
    out, seen = [], set()
    for i, p in enumerate(puts):
        if not isinstance(p, StatePut):
            raise DataError(f"put_states entry {i}: expected a StatePut, got "
                            f"{type(p).__name__}")
        st = validate_state(p.user, p.state, p.expected_version)
        user = lookup_id(p.user, "user")
        if user in seen:
            raise DataError(f"put_states entry {i}: user {p.user!r} appears twice; put one "
                            "state per user and batch")
        seen.add(user)
        out.append(StatePut(user, st, None if p.expected_version is None
                            else int(p.expected_version)))
    return out


def no_events_error(user: str) -> UnknownIdError:
    return UnknownIdError(
        f"user {user!r} has no logged events; append their events before storing a state "
        "(a state cannot outlive forget())"
    )


def too_many_events_error(user: str, claimed: int, logged: int) -> DataError:
    return DataError(
        f"state for user {user!r} claims n_events={claimed} but only {logged} events are "
        "logged; n_events counts the logged events the state has folded in"
    )


class StoreBase:
    """Context-manager plumbing shared by the backends."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]
