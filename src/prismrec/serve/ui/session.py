"""Who may see the dashboard: a key typed into the login form, then a signed cookie.

The form takes the admin key or the dashboard key (read-only). The cookie holds the role,
an expiry and a random nonce, signed with HMAC-SHA256 under the key that logged in -- never
the key itself -- so it is checked without server-side sessions (any worker process can
check it) and stops working when that key changes. It is ``HttpOnly`` and
``SameSite=Strict``, ``Secure`` when the request came over HTTPS. State-changing requests
(login, logout) carry a CSRF token: before login a random value both in a cookie and in the
form (double submit); after login an HMAC of the session's nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "prismrec_ui"
LOGIN_COOKIE = "prismrec_ui_login"
PATH = "/ui"
LIFETIME = 12 * 3600  # seconds a login lasts


@dataclass(frozen=True)
class Session:
    role: str  # "admin" | "dashboard"
    nonce: str
    expires: int
    csrf: str


class UiKeys:
    """The keys that open the dashboard: ``admin`` and ``dashboard`` (read-only)."""

    def __init__(self, admin: str | None, dashboard: str | None) -> None:
        self._keys = {role: key for role, key in (("admin", admin), ("dashboard", dashboard))
                      if key is not None}

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def role_of(self, given: str) -> str | None:
        """The role whose key ``given`` is (compared in constant time), or None."""
        found = None
        for role, key in self._keys.items():
            if secrets.compare_digest(given.encode("utf-8", "surrogatepass"), key.encode()):
                found = found or role
        return found

    def _sign(self, role: str, text: str) -> str:
        return hmac.new(self._keys[role].encode(), text.encode(), hashlib.sha256).hexdigest()

    def issue(self, role: str, now: float | None = None) -> tuple[str, Session]:
        """A cookie value for a new session of ``role``, and the session."""
        nonce = secrets.token_urlsafe(18)
        expires = int((time.time() if now is None else now) + LIFETIME)
        body = f"{role}.{expires}.{nonce}"
        value = f"{body}.{self._sign(role, body)}"
        return value, Session(role, nonce, expires, self._sign(role, f"csrf.{nonce}"))

    def check(self, value: str | None, now: float | None = None) -> Session | None:
        """The session a cookie value stands for, or None (absent, forged, expired)."""
        if not value:
            return None
        parts = value.split(".")
        if len(parts) != 4 or parts[0] not in self._keys or not parts[1].isdigit():
            return None
        role, expires, nonce, sig = parts
        if not hmac.compare_digest(sig, self._sign(role, f"{role}.{expires}.{nonce}")):
            return None
        if int(expires) < (time.time() if now is None else now):
            return None
        return Session(role, nonce, int(expires), self._sign(role, f"csrf.{nonce}"))


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given)


def new_login_token() -> str:
    return secrets.token_urlsafe(18)
