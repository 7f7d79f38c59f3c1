"""API keys from the ``X-API-Key`` header: one key for clients, one for admin routes.

Which key a request needs follows from its method and path alone (``needed``), so the
gate (``prismrec.serve.gate``) checks it before a byte of the body is read. The operational
routes (``/metrics``, ``/docs``, ``/openapi.json``) take the admin key; ``/healthz`` is
open and says only ``ok``. A service started without any key is open (for local use).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader

from prismrec.serve.settings import ServeSettings

HEADER = "X-API-Key"
_scheme = APIKeyHeader(name=HEADER, auto_error=False, description="client or admin key")
OPENAPI_SECURITY = [{_scheme.scheme_name: []}]  # for routes that check the key themselves


def _matches(given: str | None, key: str | None) -> bool:
    return key is not None and given is not None and secrets.compare_digest(
        given.encode("utf-8", "surrogatepass"), key.encode())


OPEN, CLIENT, ADMIN, OPS = "open", "client", "admin", "ops"
OPS_PATHS = ("/metrics", "/docs", "/openapi.json", "/redoc")


def needed(method: str, path: str) -> str:
    """The key a request needs: OPEN, CLIENT, ADMIN or OPS (operational routes: the admin
    key, or nothing on a service started without keys)."""
    if path.startswith("/v1/"):
        if (method == "DELETE" and path.startswith("/v1/users")) or (
                method == "POST" and path.rstrip("/") == "/v1/items"):
            return ADMIN
        return CLIENT
    if any(path == p or path.startswith(p + "/") for p in OPS_PATHS):
        return OPS
    return OPEN


def refusal(settings: ServeSettings, role: str, given: str | None) -> tuple[int, str] | None:
    """(status, message) when ``given`` may not make a request needing ``role``, else None."""
    keyless = settings.api_key is None and settings.admin_key is None
    if role == OPEN or (keyless and role in (CLIENT, OPS)):
        return None
    if role == CLIENT:
        if settings.api_key is None or _matches(given, settings.api_key) \
                or _matches(given, settings.admin_key):
            return None
        if given is None:
            return 401, f"missing API key: send it in the {HEADER} header"
        return 403, f"the {HEADER} header holds a wrong key"
    if settings.admin_key is None:
        return 403, ("admin and operational routes are disabled: start the service with an "
                     "admin key (--admin-key-file)")
    if given is None:
        return 401, f"missing admin key: send it in the {HEADER} header"
    if not _matches(given, settings.admin_key):
        return 403, f"the {HEADER} header does not hold the admin key"
    return None


def check_client_key(settings: ServeSettings, given: str | None) -> None:
    """Admit the client key or the admin key (anyone if no key is set); else 401/403."""
    refused = refusal(settings, CLIENT, given)
    if refused:
        raise HTTPException(*refused)


def client_guard(settings: ServeSettings) -> Callable[[str | None], None]:
    """``check_client_key`` as a route dependency (documented in OpenAPI as the key header)."""

    async def check(given: str | None = Security(_scheme)) -> None:  # no thread hop
        check_client_key(settings, given)

    return check


def admin_guard(settings: ServeSettings) -> Callable[[str | None], None]:
    """A dependency admitting only the admin key; admin routes are off without one."""

    async def check(given: str | None = Security(_scheme)) -> None:  # no thread hop
        refused = refusal(settings, ADMIN, given)
        if refused:
            raise HTTPException(*refused)

    return check
