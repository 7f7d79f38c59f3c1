"""Embeddings from any server that speaks OpenAI's ``POST /v1/embeddings``.

OpenAI, vLLM, llama.cpp's server and Ollama all answer ``{"model", "input": [...]}`` with
``{"data": [{"embedding": [...], "index": i}, ...]}``. Plain ``urllib`` from the standard
library: no extra dependency for one JSON POST.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np

from prismrec.text._protocol import DimensionMismatchError, EncoderAuthError, EncoderError

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass
class OpenAIEmbeddingsEncoder:
    """Client for an OpenAI-compatible embeddings endpoint.

    ``url`` is the full ``.../v1/embeddings`` address, or a base such as
    ``http://127.0.0.1:8000/v1`` or ``http://127.0.0.1:11434`` (``/v1/embeddings`` is added).
    Texts go in batches of ``batch_size``; 429, 5xx, timeouts and refused connections are
    retried ``max_retries`` times, waiting ``backoff`` seconds, doubled each time up to
    ``max_backoff`` (a 429's Retry-After is honoured up to ``max_backoff``). ``dim``, when
    given, is checked against every reply; otherwise the first reply sets it.
    ``name`` (the cache key) is the model name unless ``label`` is given.
    """

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    dim: int | None = None
    batch_size: int = 64
    timeout: float = 60.0
    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    normalize: bool = True  # unit vectors, like the local backends
    label: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"embeddings url must start with http:// or https://, "
                             f"got {self.url!r}")
        if self.batch_size < 1 or self.max_retries < 0 or self.timeout <= 0:
            raise ValueError("batch_size must be >= 1, max_retries >= 0 and timeout > 0")
        if self.dim is not None and self.dim < 1:
            raise ValueError(f"dim must be >= 1 or None, got {self.dim}")

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        if base.endswith("/embeddings"):
            return base
        return base + ("/embeddings" if base.endswith("/v1") else "/v1/embeddings")

    @property
    def name(self) -> str:
        return (self.label or self.model) + ("" if self.normalize else ";unnormalized")

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            if self.dim is None:
                raise EncoderError(f"dimension of {self.model!r} unknown before the first reply; "
                                   f"encode some text first or set dim=")
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._batch(list(texts[i: i + self.batch_size]))
                 for i in range(0, len(texts), self.batch_size)]
        out = np.concatenate(parts)  # (N, D)
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)  # (N, 1)
            np.divide(out, norms, out=out, where=norms > 0)
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        reply = self._post({"model": self.model, "input": texts})
        try:
            rows = reply["data"]
            if len(rows) != len(texts):
                raise EncoderError(f"{self.endpoint} returned {len(rows)} embeddings for "
                                   f"{len(texts)} inputs")
            if all("index" in r for r in rows):
                rows = sorted(rows, key=lambda r: r["index"])
                if [r["index"] for r in rows] != list(range(len(texts))):
                    raise EncoderError(f"{self.endpoint} returned indices other than "
                                       f"0..{len(texts) - 1}")
            vectors = [r["embedding"] for r in rows]
        except (KeyError, TypeError) as exc:
            raise EncoderError(f"{self.endpoint} replied without data[].embedding: "
                               f"{json.dumps(reply)[:200]}") from exc
        widths = sorted({len(v) for v in vectors})
        if len(widths) > 1:
            raise DimensionMismatchError(
                f"{self.endpoint} returned embeddings of different lengths {widths} in one "
                f"reply for model {self.model!r}"
            )
        if self.dim is None:
            self.dim = widths[0]
        elif widths[0] != self.dim:
            raise DimensionMismatchError(
                f"{self.endpoint} returned {widths[0]}-d embeddings for model {self.model!r} "
                f"but dim={self.dim} is configured (or came back earlier); check the model "
                f"name or set dim={widths[0]}"
            )
        return np.asarray(vectors, dtype=np.float32)  # (B, D)

    def _post(self, payload: dict) -> dict:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            wait = min(self.backoff * 2**attempt, self.max_backoff)
            req = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                try:
                    return json.loads(raw)
                except ValueError as exc:
                    raise EncoderError(f"{self.endpoint} replied with invalid JSON: "
                                       f"{raw[:200]!r}") from exc
            except urllib.error.HTTPError as exc:
                with exc:
                    detail = exc.read()[:300].decode("utf-8", "replace")
                    retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if exc.code in (401, 403):
                    raise EncoderAuthError(
                        f"{self.endpoint} refused the request (HTTP {exc.code}): check the API "
                        f"key{' (none was set)' if not self.api_key else ''}; {detail}"
                    ) from None
                if exc.code not in _RETRY_STATUS:
                    raise EncoderError(f"{self.endpoint} answered HTTP {exc.code} for model "
                                       f"{self.model!r}: {detail}") from None
                last = f"HTTP {exc.code}: {detail}"
                if exc.code == 429 and retry_after:
                    wait = min(_seconds(retry_after, wait), self.max_backoff)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                last = str(getattr(exc, "reason", exc)) or type(exc).__name__
            if attempt < self.max_retries:
                log.warning("embeddings request to %s failed (%s); retry %d/%d in %.2fs",
                            self.endpoint, last, attempt + 1, self.max_retries, wait)
                time.sleep(wait)
        raise EncoderError(f"embeddings endpoint {self.endpoint} unreachable or failing after "
                           f"{self.max_retries + 1} attempt(s): {last}")


def _seconds(value: str, default: float) -> float:
    try:
        return max(0.0, float(value))
    except ValueError:
        return default
