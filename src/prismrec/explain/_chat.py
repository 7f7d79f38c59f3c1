"""Narratives from any server that speaks OpenAI's ``POST /v1/chat/completions``.

OpenAI, vLLM, llama.cpp's server and Ollama all take ``{"model", "messages", "max_tokens",
"temperature"}`` and answer ``{"choices": [{"message": {"content": ...}}]}``. Plain ``urllib``
through ``prismrec._http.post_json`` (httpx is not a dependency of the core package).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from prismrec._http import RetryPolicy, post_json
from prismrec.explain.narrate import (
    Narrative,
    NarrativeLimits,
    NarratorAuthError,
    NarratorError,
    ProfileSummary,
    accept_or_fallback,
    prompt_messages,
    template_fallback,
)


@dataclass
class ChatEndpointNarrator:
    """Client for an OpenAI-compatible chat endpoint.

    ``url`` is the full ``.../v1/chat/completions`` address, or a base such as
    ``http://127.0.0.1:8000/v1`` or ``http://127.0.0.1:11434`` (the rest is added). 429, 5xx,
    timeouts and refused connections are retried ``max_retries`` times, waiting ``backoff``
    seconds, doubled each time up to ``max_backoff``, less a random share of up to half (a
    429's Retry-After is honoured up to ``max_backoff``; see ``prismrec._http``). A refused key
    (401/403) and other 4xx answers fail at once.
    """

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_tokens: int = 200
    temperature: float = 0.2
    limits: NarrativeLimits = field(default_factory=NarrativeLimits)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"chat endpoint url must start with http:// or https://, "
                             f"got {self.url!r}")
        if self.max_retries < 0 or self.timeout <= 0 or self.max_tokens < 1:
            raise ValueError("max_retries must be >= 0, timeout > 0 and max_tokens >= 1")

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")

    @property
    def name(self) -> str:
        return f"chat:{self.model}"

    def narrate(self, profile: ProfileSummary) -> Narrative:
        start = time.perf_counter()
        if not profile.interests:
            return template_fallback(profile, backend=self.name, started=start,
                                     limits=self.limits, why="had no interests to describe")
        content = self.complete(prompt_messages(profile, self.limits))
        return accept_or_fallback(content, profile, backend=self.name, started=start,
                                  limits=self.limits)

    def complete(self, messages: list[dict], max_tokens: int | None = None) -> str:
        """The assistant's reply to ``messages`` (retried as the class docstring says);
        ``NarratorError`` when the endpoint fails or answers without text."""
        reply = self._post({"model": self.model, "messages": messages,
                            "max_tokens": max_tokens or self.max_tokens,
                            "temperature": self.temperature, "stream": False})
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise NarratorError(f"{self.endpoint} replied without choices[0].message.content: "
                                f"{json.dumps(reply)[:200]}") from exc
        if not isinstance(content, str):
            raise NarratorError(f"{self.endpoint} replied with non-text content: "
                                f"{json.dumps(content)[:200]}")
        return content

    def _post(self, payload: dict) -> dict:
        reply = post_json(self.endpoint, payload, api_key=self.api_key, timeout=self.timeout,
                          retry=RetryPolicy(self.max_retries, self.backoff, self.max_backoff),
                          what="chat", error=NarratorError, auth_error=NarratorAuthError,
                          hint_404="; is the url right? OpenAI-compatible servers answer at "
                          ".../v1/chat/completions")
        if not isinstance(reply, dict):
            raise NarratorError(f"{self.endpoint} replied with JSON that is not an object: "
                                f"{json.dumps(reply)[:200]}")
        return reply
