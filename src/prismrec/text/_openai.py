"""Embeddings from any server that speaks OpenAI's ``POST /v1/embeddings``.

OpenAI, vLLM, llama.cpp's server and Ollama all answer ``{"model", "input": [...]}`` with
``{"data": [{"embedding": [...], "index": i}, ...]}``. Plain ``urllib`` from the standard
library through ``prismrec._http.post_json`` (retries with jittered back-off).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from prismrec._http import RetryPolicy, post_json
from prismrec.text._protocol import DimensionMismatchError, EncoderAuthError, EncoderError


@dataclass
class OpenAIEmbeddingsEncoder:
    """Client for an OpenAI-compatible embeddings endpoint.

    ``url`` is the full ``.../v1/embeddings`` address, or a base such as
    ``http://127.0.0.1:8000/v1`` or ``http://127.0.0.1:11434`` (``/v1/embeddings`` is added).
    Texts go in batches of ``batch_size``; 429, 5xx, timeouts and refused connections are
    retried ``max_retries`` times, waiting ``backoff`` seconds, doubled each time up to
    ``max_backoff``, less a random share of up to half (a 429's Retry-After is honoured up to
    ``max_backoff``; see ``prismrec._http``). ``dim``, when
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
        return post_json(self.endpoint, payload, api_key=self.api_key, timeout=self.timeout,
                         retry=RetryPolicy(self.max_retries, self.backoff, self.max_backoff),
                         what="embeddings", error=EncoderError, auth_error=EncoderAuthError)
