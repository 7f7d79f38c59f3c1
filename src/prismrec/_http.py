"""One JSON POST with retries, shared by the embeddings and chat clients.

Plain ``urllib`` from the standard library: no extra dependency for one JSON POST. 408, 409,
425, 429 and 5xx answers, timeouts and refused connections are retried ``max_retries`` times.
The n-th retry waits ``min(backoff * 2**n, max_backoff)`` seconds, less a random share of up
to ``jitter`` of it (so clients that failed together do not come back together); a 429's
``Retry-After`` is honoured as sent, up to ``max_backoff``. A refused key (401/403) and other
4xx answers fail at once.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5  # share of each wait drawn at random: wait * (1 - jitter * U[0, 1))

    def wait(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds before retry ``attempt + 1`` (``attempt`` counts from 0)."""
        nominal = min(self.backoff * 2**attempt, self.max_backoff)
        u = (rng or random).random()
        return nominal * (1.0 - self.jitter * u)


def post_json(endpoint: str, payload: dict, *, api_key: str | None, timeout: float,
              retry: RetryPolicy, what: str, error: type[Exception],
              auth_error: type[Exception], hint_404: str = "") -> object:
    """The decoded JSON reply of ``POST endpoint``; ``error``/``auth_error`` name failures.

    ``what`` names the client in log lines and messages ("embeddings", "chat").
    """
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    last = ""
    for attempt in range(retry.max_retries + 1):
        wait = retry.wait(attempt)
        req = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise error(f"{endpoint} replied with invalid JSON: {raw[:200]!r}") from exc
        except urllib.error.HTTPError as exc:
            with exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
            if exc.code in (401, 403):
                raise auth_error(
                    f"{endpoint} refused the request (HTTP {exc.code}): check the API "
                    f"key{' (none was set)' if not api_key else ''}; {detail}") from None
            if exc.code not in RETRY_STATUS:
                hint = hint_404 if exc.code == 404 else ""
                raise error(f"{endpoint} answered HTTP {exc.code} for model "
                            f"{payload.get('model')!r}: {detail}{hint}") from None
            last = f"HTTP {exc.code}: {detail}"
            if exc.code == 429 and retry_after:
                wait = min(_seconds(retry_after, wait), retry.max_backoff)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last = str(getattr(exc, "reason", exc)) or type(exc).__name__
        if attempt < retry.max_retries:
            log.warning("%s request to %s failed (%s); retry %d/%d in %.2fs", what, endpoint,
                        last, attempt + 1, retry.max_retries, wait)
            time.sleep(wait)
    raise error(f"{what} endpoint {endpoint} unreachable or failing after "
                f"{retry.max_retries + 1} attempt(s): {last}")


def _seconds(value: str, default: float) -> float:
    try:
        return max(0.0, float(value))
    except ValueError:
        return default
