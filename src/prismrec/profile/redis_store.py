"""The shared profile store for several service replicas: Redis via redis-py.

Every write is one Lua script, which Redis runs atomically and serially: an ingest batch is
applied whole (it is validated in Python first, so the script cannot stop half way on our
data), two processes posting the same event_id store it once, and `put_state` is a
compare-and-set on the state's version. Keys, under a prefix (default ``prismrec:``):
``ev:<user>`` list of JSON events, ``meta:<user>`` hash (n, last_ts, rebuild_upto),
``state:<user>`` hash, ``eids:<user>`` hash of the user's event ids (event ids are unique
per user), ``prefs:<user>`` hash (interest id -> "mute|boost <updated_at>", schema 3),
``users`` set, ``schema``, and two counters. A store written before event ids
were per user (one ``eids`` hash, event_id -> user) is migrated in chunks when opened.

`forget` never blocks Redis for long: one short script detaches the user's log and event
ids (RENAME, O(1)) and drops the small keys, then the detached keys are deleted in commands
of at most ``CHUNK`` elements each. Detached keys are listed in ``trash`` until gone, so a
process that dies half way leaves them for the next `forget` to finish.

Durability is the server's: an acknowledged ingest is in Redis memory and survives only as far
as its persistence (``appendonly yes``) is configured. Likewise `forget` removes every key and
field of the user, but an AOF or RDB file written earlier keeps old data until it is rewritten.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from prismrec.errors import require
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

SCHEMA = b"3"  # 3: prefs:<user>; 2: event ids per user (eids:<user>); 1: one eids hash for all
CHUNK = 1000  # elements one delete or migration command touches at most

# KEYS: unused, users, n_events, then (ev, meta, eids) per distinct user.
# ARGV: n, then (user index, timestamp repr, event_id or '', payload) per event, then user names.
_INGEST = """
local n = tonumber(ARGV[1])
local nusers = (#KEYS - 3) / 3
local uoff = 1 + 4 * n
local meta = {}
for u = 1, nusers do
  local m = redis.call('HMGET', KEYS[2 + 3 * u], 'n', 'last_ts', 'rebuild_upto')
  local last = nil
  if m[2] then last = tonumber(m[2]) end
  meta[u] = {n = tonumber(m[1] or '0'), last = last, last_s = m[2],
             rebuild = tonumber(m[3] or '0'), touched = false}
end
local accepted, dups, late = 0, 0, 0
local late_users, late_seen, dup_idx, starts = {}, {}, {}, {}
for u = 1, nusers do starts[u] = meta[u].n end
for i = 0, n - 1 do
  local b = 2 + 4 * i
  local u = tonumber(ARGV[b])
  local ts_s, eid = ARGV[b + 1], ARGV[b + 2]
  local user = ARGV[uoff + u]
  if eid ~= '' and redis.call('HSETNX', KEYS[3 + 3 * u], eid, 1) == 0 then
    dups = dups + 1
    table.insert(dup_idx, i)
  else
    local m = meta[u]
    local ts = tonumber(ts_s)
    redis.call('RPUSH', KEYS[1 + 3 * u], ARGV[b + 3])
    m.n = m.n + 1
    m.touched = true
    accepted = accepted + 1
    if m.last ~= nil and ts < m.last then
      late = late + 1
      m.rebuild = m.n
      if not late_seen[u] then
        late_seen[u] = true
        table.insert(late_users, u)
      end
    else
      m.last, m.last_s = ts, ts_s
    end
  end
end
for u = 1, nusers do
  local m = meta[u]
  if m.touched then
    redis.call('HSET', KEYS[2 + 3 * u], 'n', m.n, 'last_ts', m.last_s, 'rebuild_upto', m.rebuild)
    redis.call('SADD', KEYS[2], ARGV[uoff + u])
  end
end
if accepted > 0 then redis.call('INCRBY', KEYS[3], accepted) end
return {accepted, dups, late, late_users, starts, dup_idx}
"""

# KEYS: state:u, meta:u per user. One reply per user: the state's checkpoint, version, blob,
# last_timestamp, n_events, needs_rebuild, updated_at and the user's rebuild_upto and log
# length, or nils when the user has no state. One script instead of a
# MULTI of two commands per user: redis-py's per-command cost was most of a 100-user read.
_GET_STATES = """
local out = {}
for u = 1, #KEYS / 2 do
  local s = redis.call('HMGET', KEYS[2 * u - 1], 'checkpoint', 'version', 'blob',
                       'last_timestamp', 'n_events', 'needs_rebuild', 'updated_at')
  if s[1] then
    local m = redis.call('HMGET', KEYS[2 * u], 'rebuild_upto', 'n')
    s[8], s[9] = m[1], m[2]
  end
  out[u] = s
end
return out
"""

# KEYS: state, meta, n_states. ARGV: expected or '', checkpoint, blob, last_ts, n_events,
# needs_rebuild, updated_at.
_PUT_STATE = """
local n = redis.call('HGET', KEYS[2], 'n')
if not n then return {-2, 0} end
n = tonumber(n)
if tonumber(ARGV[5]) > n then return {-3, n} end
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= cur then return {-1, cur} end
if cur == 0 then redis.call('INCR', KEYS[3]) end
redis.call('HSET', KEYS[1], 'checkpoint', ARGV[2], 'version', cur + 1, 'blob', ARGV[3],
           'last_timestamp', ARGV[4], 'n_events', ARGV[5], 'needs_rebuild', ARGV[6],
           'updated_at', ARGV[7])
return {1, cur + 1}
"""

# KEYS: n_states, then (state, meta) per user. ARGV: updated_at, then per user: expected or '',
# checkpoint, blob, last_ts, n_events, needs_rebuild. Every claim is checked before anything is
# written; returns {code, value} per user (1 written/new version, -1 conflict/current version,
# -2 no events), or {-3, user number, logged} alone when a state claims too many events.
_PUT_STATES = """
local nusers = (#KEYS - 1) / 2
local logged = {}
for u = 1, nusers do
  local n = redis.call('HGET', KEYS[2 * u + 1], 'n')
  if n then
    n = tonumber(n)
    if tonumber(ARGV[1 + 6 * (u - 1) + 5]) > n then return {-3, u, n} end
  end
  logged[u] = n
end
local out = {}
local new_states = 0
for u = 1, nusers do
  local b = 1 + 6 * (u - 1)
  if not logged[u] then
    table.insert(out, -2)
    table.insert(out, 0)
  else
    local cur = tonumber(redis.call('HGET', KEYS[2 * u], 'version') or '0')
    if ARGV[b + 1] ~= '' and tonumber(ARGV[b + 1]) ~= cur then
      table.insert(out, -1)
      table.insert(out, cur)
    else
      if cur == 0 then new_states = new_states + 1 end
      redis.call('HSET', KEYS[2 * u], 'checkpoint', ARGV[b + 2], 'version', cur + 1,
                 'blob', ARGV[b + 3], 'last_timestamp', ARGV[b + 4], 'n_events', ARGV[b + 5],
                 'needs_rebuild', ARGV[b + 6], 'updated_at', ARGV[1])
      table.insert(out, 1)
      table.insert(out, cur + 1)
    end
  end
end
if new_states > 0 then redis.call('INCRBY', KEYS[1], new_states) end
return out
"""

# KEYS: ev, meta, state, eids, users, n_events, n_states, trash set, ev trash, eids trash,
# prefs. ARGV: user. Detaches the log and event ids (RENAME is O(1)); the caller deletes them in
# chunks. Returns 1 when the user had anything.
_DETACH = """
local n = redis.call('LLEN', KEYS[1])
local had = redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[11])
if n > 0 then
  redis.call('DECRBY', KEYS[6], n)
  redis.call('RENAME', KEYS[1], KEYS[9])
  redis.call('SADD', KEYS[8], KEYS[9])
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('RENAME', KEYS[4], KEYS[10])
  redis.call('SADD', KEYS[8], KEYS[10])
end
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('DECR', KEYS[7]) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[11])
redis.call('SREM', KEYS[5], ARGV[1])
if had > 0 then return 1 end
return 0
"""

# KEYS: trash set, one detached key. ARGV: chunk, HSCAN cursor. Removes up to about a chunk
# of its elements; returns {elements left, next cursor} (0 left: the key is gone and off the
# trash list). A hash is walked with the cursor: restarting at 0 could meet only emptied
# buckets and make no progress.
_SHRINK = """
local t = redis.call('TYPE', KEYS[2])['ok']
local chunk = tonumber(ARGV[1])
local cursor = ARGV[2]
local left = 0
if t == 'list' then
  redis.call('LTRIM', KEYS[2], chunk, -1)
  left = redis.call('LLEN', KEYS[2])
elseif t == 'hash' then
  local page = redis.call('HSCAN', KEYS[2], cursor, 'COUNT', chunk)
  cursor = page[1]
  local f = page[2]
  for i = 1, #f, 2 do redis.call('HDEL', KEYS[2], f[i]) end
  left = redis.call('HLEN', KEYS[2])
end
if left > 0 then return {left, cursor} end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[1], KEYS[2])
return {0, '0'}
"""

# KEYS: the old eids hash. ARGV: prefix, chunk, HSCAN cursor. Moves up to about a chunk of
# event ids into their user's eids:<user> hash; returns {ids left, next cursor}.
_MIGRATE_EIDS = """
local page = redis.call('HSCAN', KEYS[1], ARGV[3], 'COUNT', tonumber(ARGV[2]))
local f = page[2]
for i = 1, #f, 2 do
  redis.call('HSETNX', ARGV[1] .. 'eids:' .. f[i + 1], f[i], 1)
  redis.call('HDEL', KEYS[1], f[i])
end
return {redis.call('HLEN', KEYS[1]), page[1]}
"""


def _translate(method):
    """Turn a lost connection into StoreUnavailableError (callers may retry)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        redis = require("redis", "serve")
        if self._closed:
            raise StoreError("Redis store is closed")
        try:
            return method(self, *args, **kwargs)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StoreUnavailableError(f"Redis store {self._where}: {exc}") from exc

    return wrapper


class RedisStore(StoreBase):
    """`ProfileStore` in Redis, shared by any number of processes (see module docstring)."""

    def __init__(self, client: Any, *, prefix: str = "prismrec:") -> None:
        if not isinstance(prefix, str):
            raise StoreError(f"prefix must be a string, got {type(prefix).__name__}")
        self._r = client
        self._p = prefix.encode()
        kw = client.connection_pool.connection_kwargs
        host = kw.get("host", kw.get("path", "?"))
        self._where = f"{host}:{kw.get('port', '')}/{kw.get('db', 0)}"
        self._closed = False
        self._ingest = client.register_script(_INGEST)
        self._put = client.register_script(_PUT_STATE)
        self._put_many = client.register_script(_PUT_STATES)
        self._detach = client.register_script(_DETACH)
        self._shrink = client.register_script(_SHRINK)
        self._migrate = client.register_script(_MIGRATE_EIDS)
        self.last_scrub: Scrub | None = None  # what the latest forget's chunked delete did
        self._get_many = client.register_script(_GET_STATES)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """`redis://[:password@]host:port/db[?prefix=name:]`; other options go to redis-py."""
        redis = require("redis", "serve")
        parts = urlsplit(url)
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise StoreError(f"store URL {url!r}: the database must be a number "
                             f"(redis://host:port/0); accepted forms: {URL_FORMS}")
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefix = [v for k, v in query if k == "prefix"]
        rest = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query
                                                          if k != "prefix"])))
        try:
            client = redis.Redis.from_url(rest, decode_responses=False)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"store URL {url!r}: {exc}; accepted forms: {URL_FORMS}") from exc
        store = cls(client, prefix=prefix[-1] if prefix else "prismrec:")
        try:
            client.ping()
            store._upgrade()
        except TypeError as exc:  # redis-py passes unknown URL options on to the connection
            client.close()
            raise StoreError(f"store URL {url!r}: {exc}; accepted forms: {URL_FORMS}") from exc
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            client.close()
            raise StoreUnavailableError(
                f"cannot reach Redis at {store._where} ({exc}); is redis-server running?"
            ) from exc
        return store

    def _key(self, kind: bytes, user: str) -> bytes:
        return self._p + kind + user.encode()

    def _upgrade(self) -> None:
        """Bring a store written by an older prismrec to this schema (idempotent)."""
        found = self._r.get(self._p + b"schema")
        if found == SCHEMA:
            return
        if found is not None and found not in (b"1", b"2"):  # 2 -> 3 adds prefs: keys
            raise StoreError(f"Redis store {self._where} prefix {self._p.decode()!r}: schema "
                             f"{found.decode()!r}, this prismrec reads {SCHEMA.decode()}")
        old, cursor, left = self._p + b"eids", b"0", 1
        while left:
            left, cursor = self._migrate(keys=[old], args=[self._p, CHUNK, cursor])
            left = int(left)
        self._r.set(self._p + b"schema", SCHEMA)

    # -- events -------------------------------------------------------------------------------

    @_translate
    def append_events(self, events: Sequence[Event]) -> IngestResult:
        batch = validate_events(events)
        if not batch:
            return IngestResult(0, 0, 0, [])
        index: dict[str, int] = {}
        args: list[Any] = [len(batch)]
        for ev in batch:
            u = index.setdefault(ev.user, len(index) + 1)
            payload = json.dumps([ev.item, ev.timestamp, ev.event, ev.value, ev.event_id],
                                 ensure_ascii=False, separators=(",", ":"))
            args += [u, repr(ev.timestamp), ev.event_id or "", payload.encode()]
        users = list(index)
        keys = [self._p + b"schema", self._p + b"users", self._p + b"n_events"]
        for user in users:
            keys += [self._key(b"ev:", user), self._key(b"meta:", user),
                     self._key(b"eids:", user)]
        args += [u.encode() for u in users]
        accepted, dups, late, late_idx, starts, dup_idx = self._ingest(keys=keys, args=args)
        dropped = {int(i) for i in dup_idx}
        tails: dict[str, tuple[int, list[Event]]] = {}
        for i, ev in enumerate(batch):
            if i not in dropped:
                tails.setdefault(ev.user, (int(starts[index[ev.user] - 1]), []))[1].append(ev)
        return IngestResult(int(accepted), int(dups), int(late),
                            [users[int(i) - 1] for i in late_idx], tails)

    @_translate
    def events(self, user: str, *, since_seq: int | None = None) -> list[Event]:
        """The user's logged events in ingest order, from position `since_seq` (0-based) on."""
        start = check_since(since_seq)
        user = lookup_id(user, "user")
        raw = self._r.lrange(self._key(b"ev:", user), start, -1)
        return [Event(user, *json.loads(r)) for r in raw]

    @_translate
    def events_since(self, since: Mapping[str, int]) -> dict[str, list[Event]]:
        """Each user's log tail from their position on: one pipelined MULTI (a snapshot)."""
        wanted = check_tails(since)
        if not wanted:
            return {}
        pipe = self._r.pipeline(transaction=True)
        for user, start in wanted.items():
            pipe.lrange(self._key(b"ev:", user), start, -1)
        replies = pipe.execute()
        return {user: [Event(user, *json.loads(r)) for r in raw]
                for user, raw in zip(wanted, replies, strict=True)}

    @_translate
    def event_count(self, user: str) -> int:
        n = self._r.hget(self._key(b"meta:", lookup_id(user, "user")), "n")
        return int(n) if n is not None else 0

    def users(self) -> Iterator[str]:
        """Every user with logged events, each once (order is Redis's set order)."""
        seen: set[str] = set()
        cursor = 0
        while True:
            cursor, chunk = self._sscan(cursor)
            for raw in chunk:
                user = raw.decode()
                if user not in seen:  # SSCAN may repeat members while the set rehashes
                    seen.add(user)
                    yield user
            if cursor == 0:
                return

    @_translate
    def _sscan(self, cursor: int) -> tuple[int, list[bytes]]:
        return self._r.sscan(self._p + b"users", cursor, count=1000)

    # -- states -------------------------------------------------------------------------------

    @_translate
    def get_state(self, user: str) -> StoredState | None:
        user = lookup_id(user, "user")
        return self.get_states([user]).get(user)

    @_translate
    def get_states(self, users: Sequence[str]) -> dict[str, StoredState]:
        """The stored states of `users` (those without one are left out): one script."""
        wanted = check_users(users)
        if not wanted:
            return {}
        keys = []
        for user in wanted:
            keys += [self._key(b"state:", user), self._key(b"meta:", user)]
        replies = self._get_many(keys=keys)
        return {user: _state_from_fields(r) for user, r in zip(wanted, replies, strict=True)
                if r[0] is not None}

    @_translate
    def put_states(self, puts: Sequence[StatePut]) -> PutStatesResult:
        """Write many users' states in one Lua script (compare-and-set per user)."""
        batch = validate_puts(puts)
        if not batch:
            return PutStatesResult({})
        keys: list[bytes] = [self._p + b"n_states"]
        args: list[Any] = [repr(time.time())]
        for p in batch:
            st = p.state
            keys += [self._key(b"state:", p.user), self._key(b"meta:", p.user)]
            args += ["" if p.expected_version is None else p.expected_version,
                     st.checkpoint.encode(), st.blob, repr(st.last_timestamp), st.n_events,
                     int(st.needs_rebuild)]
        reply = self._put_many(keys=keys, args=args)
        if int(reply[0]) == -3:
            p = batch[int(reply[1]) - 1]
            raise too_many_events_error(p.user, p.state.n_events, int(reply[2]))
        versions: dict[str, int] = {}
        conflicts: dict[str, int] = {}
        missing: list[str] = []
        for i, p in enumerate(batch):
            code, value = int(reply[2 * i]), int(reply[2 * i + 1])
            if code == 1:
                versions[p.user] = value
            elif code == -1:
                conflicts[p.user] = value
            else:
                missing.append(p.user)
        return PutStatesResult(versions, conflicts, missing)

    @_translate
    def put_state(
        self, user: str, state: StoredState, *, expected_version: int | None = None
    ) -> int:
        st = validate_state(user, state, expected_version)
        user = lookup_id(user, "user")
        keys = [self._key(b"state:", user), self._key(b"meta:", user), self._p + b"n_states"]
        args = ["" if expected_version is None else int(expected_version), st.checkpoint.encode(),
                st.blob, repr(st.last_timestamp), st.n_events, int(st.needs_rebuild),
                repr(time.time())]
        code, value = self._put(keys=keys, args=args)
        if code == -2:
            raise no_events_error(user)
        if code == -3:
            raise too_many_events_error(user, st.n_events, int(value))
        if code == -1:
            raise ConcurrentUpdateError(user, int(expected_version), int(value))
        return int(value)

    @_translate
    def stale_users(self, checkpoint: str) -> list[str]:
        """Users whose state does not reflect their whole log under `checkpoint`.

        That is: no state yet, a state from another checkpoint, a state flagged for rebuild
        (late events), or a state behind the log (an update that never landed).
        """
        ckpt = check_id(checkpoint, "checkpoint").encode()
        users = list(self.users())
        out = []
        for start in range(0, len(users), 500):
            chunk = users[start:start + 500]
            pipe = self._r.pipeline(transaction=False)
            for user in chunk:
                pipe.hmget(self._key(b"state:", user), "checkpoint", "needs_rebuild", "n_events")
                pipe.hmget(self._key(b"meta:", user), "n", "rebuild_upto")
            replies = pipe.execute()
            for i, user in enumerate(chunk):
                (s_ckpt, flag, s_n), (n, rebuild_upto) = replies[2 * i], replies[2 * i + 1]
                if n is None:  # forgotten meanwhile
                    continue
                if (s_ckpt != ckpt or flag == b"1" or int(rebuild_upto or 0) > int(s_n)
                        or int(s_n) < int(n)):
                    out.append(user)
        return sorted(out)

    # -- preferences --------------------------------------------------------------------------

    @_translate
    def preferences(self, user: str) -> list[Preference]:
        """The user's stored interest preferences, by interest id."""
        return _preferences(self._r.hgetall(self._key(b"prefs:", lookup_id(user, "user"))))

    @_translate
    def preferences_of(self, users: Sequence[str]) -> dict[str, list[Preference]]:
        """``preferences`` of many users, one pipelined round trip: user -> list (empty if
        none)."""
        wanted = check_users(users, "preferences_of")
        if not wanted:
            return {}
        pipe = self._r.pipeline(transaction=True)
        for user in wanted:
            pipe.hgetall(self._key(b"prefs:", user))
        return {user: _preferences(raw)
                for user, raw in zip(wanted, pipe.execute(), strict=True)}

    @_translate
    def set_preference(self, user: str, interest: int, steer: str | None) -> None:
        """Store "mute" or "boost" for the user's interest, or clear it (``steer=None``)."""
        key = self._key(b"prefs:", lookup_id(user, "user"))
        interest, steer = check_preference(interest, steer)
        if steer is None:
            self._r.hdel(key, str(interest))
        else:
            self._r.hset(key, str(interest), f"{steer} {time.time()!r}")

    # -- lifecycle ----------------------------------------------------------------------------

    @_translate
    def forget(self, user: str) -> bool:
        """Erase the user's events, event ids, state and preferences; True if there was
        anything."""
        user = lookup_id(user, "user")
        tag = os.urandom(8).hex().encode()
        keys = [self._key(b"ev:", user), self._key(b"meta:", user), self._key(b"state:", user),
                self._key(b"eids:", user), self._p + b"users", self._p + b"n_events",
                self._p + b"n_states", self._p + b"trash",
                self._p + b"trash:ev:" + tag, self._p + b"trash:eids:" + tag,
                self._key(b"prefs:", user)]
        had = int(self._detach(keys=keys, args=[user.encode()])) > 0
        if had:
            self.last_scrub = self.scrub()
        return had

    @_translate
    def scrub(self) -> Scrub:
        """Delete every detached key (this forget's and any a dead process left), in
        commands of at most ``CHUNK`` elements."""
        trash = self._p + b"trash"
        steps = 0
        for key in self._r.smembers(trash):
            cursor: bytes | int = 0
            while True:
                steps += 1
                left, cursor = self._shrink(keys=[trash, key], args=[CHUNK, cursor])
                if not int(left):
                    break
        return Scrub(True, steps, 0, f"deleted in {steps} command(s) of at most {CHUNK} "
                                     "elements")

    @_translate
    def stats(self) -> dict[str, Any]:
        pipe = self._r.pipeline(transaction=True)
        pipe.scard(self._p + b"users")
        pipe.get(self._p + b"n_events")
        pipe.get(self._p + b"n_states")
        n_users, n_events, n_states = pipe.execute()
        return {
            "backend": "redis",
            "server": self._where,
            "prefix": self._p.decode(),
            "users": int(n_users),
            "events": int(n_events or 0),
            "states": int(n_states or 0),
        }

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._r.close()

    def __repr__(self) -> str:
        return f"RedisStore({self._where!r}, prefix={self._p.decode()!r})"


def _state_from_fields(r: list) -> StoredState:
    """A state from one `_GET_STATES` reply."""
    checkpoint, version, blob, last_ts, n_events, needs_rebuild, updated_at, rebuild_upto, \
        logged = r
    n = int(n_events)
    return StoredState(
        checkpoint=checkpoint.decode(),
        version=int(version),
        blob=blob,
        last_timestamp=float(last_ts),
        n_events=n,
        needs_rebuild=needs_rebuild == b"1" or int(rebuild_upto or 0) > n,
        updated_at=float(updated_at),
        logged=int(logged or 0),
    )


def _preferences(raw: dict[bytes, bytes]) -> list[Preference]:
    """A user's preferences hash as ``Preference`` records, by interest id."""
    out = []
    for field, value in raw.items():
        steer, at = value.decode().split(" ", 1)
        out.append(Preference(int(field), steer, float(at)))
    return sorted(out, key=lambda p: p.interest)
