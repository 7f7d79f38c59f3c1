"""API keys from the ``X-API-Key`` header: one key for clients, one for admin routes."""

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


def check_client_key(settings: ServeSettings, given: str | None) -> None:
    """Admit the client key or the admin key (anyone if no key is set); else 401/403."""
    if settings.api_key is None:
        return
    if given is None:
        raise HTTPException(401, f"missing API key: send it in the {HEADER} header")
    if not (_matches(given, settings.api_key) or _matches(given, settings.admin_key)):
        raise HTTPException(403, f"the {HEADER} header holds a wrong key")


def client_guard(settings: ServeSettings) -> Callable[[str | None], None]:
    """``check_client_key`` as a route dependency (documented in OpenAPI as the key header)."""

    async def check(given: str | None = Security(_scheme)) -> None:  # no thread hop
        check_client_key(settings, given)

    return check


def admin_guard(settings: ServeSettings) -> Callable[[str | None], None]:
    """A dependency admitting only the admin key; admin routes are off without one."""

    async def check(given: str | None = Security(_scheme)) -> None:  # no thread hop
        if settings.admin_key is None:
            raise HTTPException(403, "admin routes are disabled: start the service with an "
                                     "admin key (PRISMREC_ADMIN_KEY or --admin-key)")
        if given is None:
            raise HTTPException(401, f"missing admin key: send it in the {HEADER} header")
        if not _matches(given, settings.admin_key):
            raise HTTPException(403, f"the {HEADER} header does not hold the admin key")

    return check
