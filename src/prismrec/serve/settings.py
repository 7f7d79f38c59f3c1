"""Service settings: one typed config, defaults in code, no environment reading here.

The ``prismrec serve`` command fills it from flags and key files (``--api-key-file``,
``--admin-key-file``); a program embedding the service passes its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ServeSettings:
    """What the HTTP service accepts and who may call it.

    ``api_key``: when set, every ``/v1`` route needs the header ``X-API-Key`` with this key
    (or the admin key). ``admin_key``: needed by the admin routes (``DELETE /v1/users/{id}``,
    ``POST /v1/items``) and by the operational ones (``/metrics``, ``/docs``,
    ``/openapi.json``); when it is None the admin routes are disabled, and the operational
    ones too unless the service has no key at all. ``/healthz`` is open and says only "ok".
    ``dashboard_key``: opens the dashboard at ``/ui`` read-only (the admin key opens it
    too); with neither the dashboard is disabled (``/ui`` has its own login).
    Limits (``prismrec.serve.gate``): ``rate_limit`` requests per second per key (0: off) in
    bursts of up to ``rate_burst``; ``max_concurrent`` requests in flight per process;
    ``max_user_events`` logged events per user (0: no quota; see ``limits.LogQuota``);
    ``max_event_age`` seconds: events stamped earlier than that before the server's clock
    when they arrive are not stored (0: no limit; see ``limits.drop_too_old``).
    ``admin_port``: when not 0, the operational routes answer only on this port and the
    rest only on the others (``prismrec.serve.gate``); the process must listen on it.
    Dashboard logins: ``login_rate`` attempts per second per client address in bursts of
    ``login_burst`` (0: unlimited); over it ``POST /ui/login`` answers 429 + Retry-After.
    """

    api_key: str | None = field(default=None, repr=False)
    admin_key: str | None = field(default=None, repr=False)
    dashboard_key: str | None = field(default=None, repr=False)  # opens /ui read-only
    max_body_bytes: int = 1_048_576  # a request body above this gets 413 before it is parsed
    max_batch: int = 1000  # events per POST /v1/events
    max_k: int = 200  # recommendations or similar items per request
    max_exclude: int = 1000  # item ids in one request's exclude list
    max_future_seconds: float = 86_400.0  # event timestamps later than now + this are refused
    min_timestamp: float = 0.0  # and so are timestamps before this (unix seconds)
    batch_window_ms: float = 1.0  # recommendations, while busy: wait this long for more per batch
    max_request_batch: int = 32  # recommendation requests computed together at most
    workers: int = 1  # processes serving this model; above 1, item writes are refused
    rate_limit: float = 0.0  # requests per second per key (token bucket); 0 turns it off
    rate_burst: int = 50  # tokens a bucket holds: requests one key may send at once
    max_concurrent: int = 256  # requests in flight per process; more get 503 + Retry-After
    max_user_events: int = 0  # per-user log quota: later events are dropped, counted; 0: none
    max_event_age: float = 0.0  # seconds; older events (by timestamp) are dropped; 0: none
    admin_port: int = 0  # serve /metrics, /docs, /openapi.json on this port only; 0: main port
    login_rate: float = 0.2  # /ui login attempts per second per client address; 0: unlimited
    login_burst: int = 20  # login attempts one address may make at once

    def validate(self) -> None:
        for name in ("api_key", "admin_key", "dashboard_key"):
            key = getattr(self, name)
            if key is not None and (not isinstance(key, str) or len(key) < 8
                                    or not key.isascii() or not key.isprintable()):
                raise ValueError(f"{name} must be printable ASCII of at least 8 characters")
        for name in ("max_body_bytes", "max_batch", "max_k", "max_exclude",
                     "max_request_batch", "workers", "rate_burst", "max_concurrent",
                     "login_burst"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.batch_window_ms <= 1000:
            raise ValueError(f"batch_window_ms must be in [0, 1000], got {self.batch_window_ms}")
        if isinstance(self.max_user_events, bool) or not isinstance(self.max_user_events, int) \
                or self.max_user_events < 0:
            raise ValueError(f"max_user_events must be an integer >= 0, got "
                             f"{self.max_user_events!r}")
        for name in ("rate_limit", "login_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0 <= value < float("inf"):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if isinstance(self.max_event_age, bool) \
                or not isinstance(self.max_event_age, int | float) \
                or not 0 <= self.max_event_age < float("inf"):
            raise ValueError(f"max_event_age must be a number of seconds >= 0 (0: no limit), "
                             f"got {self.max_event_age!r}")
        if isinstance(self.admin_port, bool) or not isinstance(self.admin_port, int) \
                or not 0 <= self.admin_port <= 65535:
            raise ValueError(f"admin_port must be a port number (1-65535) or 0 for none, got "
                             f"{self.admin_port!r}")
        if not self.max_future_seconds >= 0:
            raise ValueError(f"max_future_seconds must be >= 0, got {self.max_future_seconds}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServeSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown ServeSettings field(s) {unknown}; known: {sorted(names)}")
        return cls(**d)
