"""A short narrative of a user's profile, from a template or a generative language model.

Every narrator takes a ``ProfileSummary`` (interest labels, weights, horizons, example titles:
only what the profile supports) and returns a ``Narrative``. Text from a language model is cut
to a few sentences and checked before anyone sees it: it must be non-empty and must not name
items that are not in the summary (quoted spans and runs of Capitalised Words must come from
the given titles or labels). Output that fails the check is replaced by the template
narrative, and the reason is recorded, so a model's invention never reaches a user.

Backends: ``TemplateNarrator`` (default, instant), ``LocalLLMNarrator`` (SmolLM2-135M-Instruct
on CPU, offline; extra ``narrate``), ``ChatEndpointNarrator`` (any OpenAI-compatible
``/v1/chat/completions`` server). ``FallbackNarrator`` turns a backend's failure (endpoint
down, bad key) into the template narrative with the reason recorded.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

from prismrec.errors import PrismrecError
from prismrec.explain._words import same_word, tokenize

log = logging.getLogger(__name__)

Horizon = Literal["short", "long"]
HORIZONS = ("short", "long")


class NarratorError(PrismrecError, RuntimeError):
    """A narrator backend could not produce text: model not loadable, endpoint down, bad reply."""


class NarratorAuthError(NarratorError):
    """A chat endpoint refused the API key (HTTP 401/403)."""


@dataclass(frozen=True)
class InterestSummary:
    """One interest as a narrator may describe it.

    ``weight`` is the interest's share of the profile (any non-negative scale; narrators
    normalise over the profile). ``horizon`` "short" marks a recent interest, "long" a lasting
    one. ``examples`` are titles of items the user interacted with that define the interest.
    ``first_seen`` / ``last_seen`` are unix seconds (None when unknown).
    """

    label: str
    weight: float
    horizon: Horizon = "long"
    examples: tuple[str, ...] = ()
    first_seen: float | None = None
    last_seen: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError("an interest needs a non-empty label")
        if not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f"interest {self.label!r}: weight must be finite and >= 0, "
                             f"got {self.weight}")
        if self.horizon not in HORIZONS:
            raise ValueError(f"interest {self.label!r}: horizon must be 'short' or 'long', "
                             f"got {self.horizon!r}")
        if isinstance(self.examples, str):
            raise ValueError(f"interest {self.label!r}: examples must be a list of titles, "
                             f"not one string")
        object.__setattr__(self, "examples",
                           tuple(" ".join(str(t).split()) for t in self.examples if str(t).strip()))

    def to_dict(self) -> dict:
        return {"label": self.label, "weight": self.weight, "horizon": self.horizon,
                "examples": list(self.examples), "first_seen": self.first_seen,
                "last_seen": self.last_seen}


@dataclass(frozen=True)
class ProfileSummary:
    """What a narrator may say about a user: the interests, nothing else.

    The profile package converts its ``Profile`` into this plain record, so narrators depend
    on no model or store.
    """

    interests: tuple[InterestSummary, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "interests", tuple(self.interests))

    def ranked(self) -> list[InterestSummary]:
        """Interests by weight, heaviest first (input order among equals)."""
        return sorted(self.interests, key=lambda i: -i.weight)

    def shares(self) -> list[float]:
        """Each ranked interest's share of the total weight (equal shares if all are 0)."""
        ranked = self.ranked()
        total = sum(i.weight for i in ranked)
        if total <= 0:
            return [1.0 / len(ranked)] * len(ranked) if ranked else []
        return [i.weight / total for i in ranked]

    def titles(self) -> list[str]:
        return [t for i in self.interests for t in i.examples]

    def to_dict(self) -> dict:
        return {"interests": [i.to_dict() for i in self.interests]}

    @classmethod
    def from_dict(cls, d: dict) -> ProfileSummary:
        items = d.get("interests")
        if not isinstance(items, list):
            raise ValueError("a profile summary needs 'interests': a list of interests")
        return cls(tuple(InterestSummary(**{**i, "examples": tuple(i.get("examples", ()))})
                         for i in items))


@dataclass(frozen=True)
class Narrative:
    """Text for the user, the backend that wrote it and how long that took (seconds).

    When a backend's text was rejected or the backend failed, ``backend`` is "template",
    ``fallback_reason`` says why, and ``rejected_text`` keeps the rejected output (if any).
    """

    text: str
    backend: str
    seconds: float
    fallback_reason: str | None = None
    rejected_text: str | None = None

    def to_dict(self) -> dict:
        return {"text": self.text, "backend": self.backend, "seconds": self.seconds,
                "fallback_reason": self.fallback_reason, "rejected_text": self.rejected_text}


@dataclass(frozen=True)
class NarrativeLimits:
    """Longest narrative shown: whole sentences up to ``max_sentences`` and ``max_chars``."""

    max_sentences: int = 3
    max_chars: int = 400
    max_examples: int = 3  # example titles per interest given to a language model

    def __post_init__(self) -> None:
        if self.max_sentences < 1 or self.max_chars < 20 or self.max_examples < 0:
            raise ValueError("NarrativeLimits needs max_sentences >= 1, max_chars >= 20 and "
                             "max_examples >= 0")


@runtime_checkable
class Narrator(Protocol):
    """Writes a short narrative of a profile summary."""

    name: str

    def narrate(self, profile: ProfileSummary) -> Narrative: ...


# --- the template narrator -------------------------------------------------------------------


@dataclass
class TemplateNarrator:
    """Two or three sentences filled in from the summary: instant, and true by construction."""

    limits: NarrativeLimits = field(default_factory=NarrativeLimits)
    examples: int = 2  # example titles quoted for the main interest
    name: str = "template"

    def narrate(self, profile: ProfileSummary) -> Narrative:
        start = time.perf_counter()
        text = limit_text(self.compose(profile), self.limits)
        return Narrative(text, self.name, time.perf_counter() - start)

    def compose(self, profile: ProfileSummary) -> str:
        ranked = profile.ranked()
        if not ranked:
            return "There is not enough activity yet to describe your interests."
        shares = profile.shares()
        top = ranked[0]
        first = f"Your main interest is {top.label} ({_pct(shares[0])})"
        shown = top.examples[: self.examples]
        if shown:
            first += ", for example " + _and([f'"{t}"' for t in shown])
        sentences = [first + "."]
        others = [f"{i.label} ({_pct(s)})" for i, s in zip(ranked[1:4], shares[1:4], strict=True)]
        if others:
            sentences.append("You also follow " + _and(others) + ".")
        sentences.append(_horizon_sentence(ranked[:4]))
        return " ".join(sentences)


def _horizon_sentence(ranked: Sequence[InterestSummary]) -> str:
    short = [i for i in ranked if i.horizon == "short"]
    long_ = [i for i in ranked if i.horizon == "long"]
    if short and long_:
        since = [i.first_seen for i in short if i.first_seen is not None]
        when = f" (since {_date(min(since))})" if since else ""
        verb = "is a long-standing interest" if len(long_) == 1 else "are long-standing interests"
        return (f"Lately you have turned to {_and([i.label for i in short])}{when}, while "
                f"{_and([i.label for i in long_])} {verb}.")
    if len(ranked) == 1:
        return "This is a recent interest." if short else "This is a long-standing interest."
    return "These are all recent interests." if short else "These are long-standing interests."


def _pct(share: float) -> str:
    return f"{round(100 * share)}%"


def _and(parts: Sequence[str]) -> str:
    parts = list(parts)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


# --- fallback on backend failure -------------------------------------------------------------


@dataclass
class FallbackNarrator:
    """``primary``'s narrative, or ``fallback``'s when the primary fails with a NarratorError.

    For services, where a narrative should never fail a request because a model server is down.
    """

    primary: Narrator
    fallback: Narrator = field(default_factory=TemplateNarrator)

    @property
    def name(self) -> str:
        return f"{self.primary.name} (fallback {self.fallback.name})"

    def narrate(self, profile: ProfileSummary) -> Narrative:
        start = time.perf_counter()
        try:
            return self.primary.narrate(profile)
        except NarratorError as exc:
            log.warning("narrator %s failed, using %s: %s", self.primary.name,
                        self.fallback.name, exc)
            out = self.fallback.narrate(profile)
            return Narrative(out.text, out.backend, time.perf_counter() - start,
                             f"{self.primary.name} failed: {exc}", None)


# --- prompt, limits and the check, shared by language-model backends ------------------------


def prompt_messages(profile: ProfileSummary,
                    limits: NarrativeLimits | None = None) -> list[dict[str, str]]:
    """Chat messages asking for a narrative; they carry only labels, shares, horizons, titles.

    Compact on purpose: a 135M-parameter model follows one short request better than a
    structured brief, and larger models lose nothing.
    """
    limits = limits or NarrativeLimits()
    n = min(limits.max_sentences, 3)
    system = (f"You describe a person's interests to them in at most {n} short sentences, "
              f"speaking to them as \"you\". Use only the interests and example titles given; "
              f"do not mention any other product, title, brand or person.")
    parts = []
    for i, share in zip(profile.ranked(), profile.shares(), strict=True):
        when = "recent" if i.horizon == "short" else "long-standing"
        shown = i.examples[: limits.max_examples]
        eg = ("; e.g. " + ", ".join(f'"{t}"' for t in shown)) if shown else ""
        parts.append(f"{i.label} ({_pct(share)}, {when}{eg})")
    user = ("My interests, strongest first: " + "; ".join(parts or ["none yet"])
            + ". Describe my interests to me.")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_THINK = re.compile(r"<think>.*?(</think>|$)", re.S)


def limit_text(text: str, limits: NarrativeLimits | None = None) -> str:
    """Whole sentences, at most ``max_sentences`` and ``max_chars``; markdown marks removed."""
    limits = limits or NarrativeLimits()
    text = _THINK.sub(" ", text)
    text = re.sub(r"<\|[^|>]*\|>", " ", text)  # chat-template tokens a server failed to strip
    text = re.sub(r"(\*\*|__|^#+\s*|^\s*[-*•]\s+)", "", text, flags=re.M)
    text = " ".join(text.split())
    sentences = [s for s in _SENTENCE_END.split(text) if s][: limits.max_sentences]
    while len(sentences) > 1 and len(" ".join(sentences)) > limits.max_chars:
        sentences.pop()
    out = " ".join(sentences)
    if len(out) > limits.max_chars:
        out = out[: limits.max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return out


_QUOTED = (re.compile(r'"([^"\n]{1,160})"'), re.compile(r"“([^”\n]{1,160})”"),
           re.compile(r"(?<!\w)'([^'\n]{2,160})'(?!\w)"))
_WORD = re.compile(r"[^\W_][\w'’\-]*")
_YOU = re.compile(r"\b(you|your|yours|yourself)\b", re.I)


def check_narrative(text: str, profile: ProfileSummary) -> str | None:
    """None when ``text`` may be shown, else the reason it may not.

    The text must be non-empty, speak to the user ("you"), mention the main interest (a word
    of its label), and every quoted span and every run of two or more name-like words
    (Capitalised or camelCase; a sentence's first word aside) must appear within a given title
    or interest label (case-insensitive). Such spans are how item names show up in prose, so
    an item the model made up is caught; a single capitalised word or a lower-case invention
    is not: the check is practical, not a proof.
    """
    if not text.strip():
        return "empty output"
    allowed = [_norm(t) for t in profile.titles()]
    for i in profile.interests:
        allowed.append(_norm(i.label))
        allowed.extend(_norm(p) for p in i.label.split("·"))
    for pattern in _QUOTED:
        for m in pattern.finditer(text):
            span = _norm(m.group(1))
            if span and not any(span in a for a in allowed):
                return (f"names {m.group(1)!r}, which is not among the given titles or "
                        f"interest labels")
    for run in _name_runs(text):
        if not any(_norm(run) in a for a in allowed):
            return f"names {run!r}, which is not among the given titles or interest labels"
    if not _YOU.search(text):
        return "does not speak to the user (no 'you' or 'your')"
    if profile.interests:
        main = profile.ranked()[0].label
        said = set(tokenize(text))
        if not any(same_word(a, b) for a in tokenize(main) for b in said):
            return f"does not mention the main interest ({main})"
    return None


def _norm(s: str) -> str:
    s = s.replace("’", "'").replace("“", '"').replace("”", '"').casefold()
    return " ".join(s.split()).strip(" .,;:!?\"'")


def _name_runs(text: str) -> list[str]:
    """Runs of 2+ name-like words joined by single spaces, sentence-initial words dropped."""
    runs: list[list[re.Match]] = []
    cur: list[re.Match] = []
    prev_end = -1
    for m in _WORD.finditer(text):
        word = m.group()
        cap = word[0].isupper() or any(c.isupper() for c in word[1:])  # Capital or camelCase
        joined = prev_end >= 0 and text[prev_end:m.start()] == " "
        if cap and cur and joined:
            cur.append(m)
        else:
            runs.append(cur)
            cur = [m] if cap else []
        prev_end = m.end()
    runs.append(cur)
    out = []
    for run in runs:
        if run and _sentence_initial(text, run[0].start()):
            run = run[1:]
        if len(run) >= 2:
            out.append(text[run[0].start(): run[-1].end()])
    return out


def _sentence_initial(text: str, pos: int) -> bool:
    before = text[:pos].rstrip(" \t\"'“(")
    return not before or before[-1] in ".!?:;\n-•*"


def accept_or_fallback(raw: str, profile: ProfileSummary, *, backend: str, started: float,
                       limits: NarrativeLimits) -> Narrative:
    """A model's text, cut to the limits if it passes the check, else the template narrative.

    ``started`` is the ``time.perf_counter()`` at which generation began; ``seconds`` covers
    generation, the check and any fallback.
    """
    text = limit_text(raw, limits)
    why = check_narrative(text, profile)
    if why is None:
        return Narrative(text, backend, time.perf_counter() - started)
    return template_fallback(profile, backend=backend, started=started, limits=limits,
                             why=f"output rejected: {why}", rejected=raw)


def template_fallback(profile: ProfileSummary, *, backend: str, started: float,
                      limits: NarrativeLimits, why: str,
                      rejected: str | None = None) -> Narrative:
    """The template narrative in place of ``backend``'s, recording why."""
    log.info("narrative from %s not used (%s); using the template", backend, why)
    out = TemplateNarrator(limits=limits).narrate(profile)
    return Narrative(out.text, out.backend, time.perf_counter() - started, f"{backend} {why}",
                     rejected)
