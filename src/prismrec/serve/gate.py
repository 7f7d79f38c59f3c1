"""The gate every HTTP request passes before routing: path, key, rate, requests in flight.

It runs on the request line and headers alone, so a request without the right key is
refused (401/403) before any of its body is read or parsed. In order:

1. the raw path: an invalid percent-escape (``%zz``, ``%4``) is refused with 400, so
   ``/v1/users/a%zz`` and ``/v1/users/a%25zz`` can never name one user by two spellings;
2. the key the route needs (``prismrec.serve.auth.needed``);
3. the caller's token bucket (``ServeSettings.rate_limit`` per second per key, bursts of
   ``rate_burst``): 429 with ``Retry-After``;
4. requests in flight in this process (``max_concurrent``): 503 with ``Retry-After: 1``.

With ``ServeSettings.admin_port`` set, the port a request came in on (the listening
socket's, from the ASGI scope, not the Host header) decides first: the operational routes
(``/metrics``, ``/docs``, ``/redoc``, ``/openapi.json`` and the docs' assets) answer on the
admin port only, and nothing else does; either way the other gets 404. Their key rules do
not change.
"""

from __future__ import annotations

import re

from prismrec.serve.auth import HEADER, OPEN, OPS, needed, refusal
from prismrec.serve.docs import ASSETS
from prismrec.serve.limits import RateLimiter, send_error
from prismrec.serve.settings import ServeSettings

_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_HEADER = HEADER.lower().encode()
_ON_MAIN_PORT = ("no such route on this port: the operational routes are on the admin port "
                 "only, the API and /ui on the main port")
_ON_ADMIN_PORT = ("this is the admin port: it serves /metrics, /docs, /redoc and "
                  "/openapi.json only")


class Gate:
    """ASGI middleware applying the checks above (see the module docstring)."""

    def __init__(self, app, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings
        self.rate = (RateLimiter(settings.rate_limit, settings.rate_burst)
                     if settings.rate_limit > 0 else None)
        self.in_flight = 0
        self.refused_busy = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or b""
        if b"%" in raw and _BAD_ESCAPE.search(raw.split(b"?", 1)[0]):
            await send_error(send, 400, "the path holds an invalid percent-escape: write '%' "
                                        "as %25 and every escape as % and two hex digits")
            return
        path = scope.get("path", "")
        role = needed(scope.get("method", ""), path)
        admin_port = self.settings.admin_port
        if admin_port:
            ops = role == OPS or path == ASSETS or path.startswith(ASSETS + "/")
            port = (scope.get("server") or (None, None))[1]
            if ops != (port == admin_port):
                await send_error(send, 404, _ON_MAIN_PORT if ops else _ON_ADMIN_PORT)
                return
        given = None
        if role != OPEN:
            for name, value in scope.get("headers", ()):
                if name == _HEADER:
                    given = value.decode("latin-1")
                    break
            refused = refusal(self.settings, role, given)
            if refused:
                await send_error(send, *refused)
                return
            if self.rate is not None:
                wait = self.rate.retry_after(given or "")
                if wait:
                    await send_error(
                        send, 429, f"rate limit of {self.settings.rate_limit:g} requests per "
                        f"second for this key reached; retry after {wait} s",
                        [(b"retry-after", str(wait).encode())])
                    return
        limit = self.settings.max_concurrent
        if limit and self.in_flight >= limit:
            self.refused_busy += 1
            await send_error(send, 503, f"the service is at its limit of {limit} requests in "
                                        "flight; retry after 1 s", [(b"retry-after", b"1")])
            return
        self.in_flight += 1  # one event loop per process: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
