"""The plain recommendation reply as JSON bytes, written directly.

The plain route (no explain, no steering) answers most requests, and turning its reply into
JSON was its largest single cost on the event loop: a dict per item, then the stdlib
encoder walking ten items' keys, titles and reasons (~50 µs a reply, 2 cores). Here the
parts that repeat from reply to reply -- an item's id and title, the reason naming a
recent item -- are encoded once and kept; a reply joins them with its ranks and numbers.

The bytes equal ``json.dumps(reply, ensure_ascii=False, allow_nan=False,
separators=(",", ":"))`` of the dict ``fast_items`` builds (what Starlette's
``JSONResponse`` sends), key order included; ``tests/serve/test_reply.py`` checks it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from prismrec.profile.live import Recommendations
from prismrec.serve.interests import MODEL_REASON, POPULAR_REASON

_string = json.encoder.encode_basestring  # ensure_ascii=False: as JSONResponse writes
MAX_CACHED = 50_000  # encoded parts kept per catalogue (~100 bytes each)


def _number(x: Any) -> str:
    """A score or similarity as the stdlib encoder writes it; NaN and infinity refused."""
    if type(x) is float:
        if not math.isfinite(x):
            raise ValueError(f"Out of range float values are not JSON compliant: {x!r}")
        return float.__repr__(x)
    if type(x) is int:
        return int.__repr__(x)
    return json.dumps(x, allow_nan=False)


class PlainReply:
    """Encodes plain replies; its cached parts belong to one title map (one catalogue
    text) and are dropped when the title map changes or the cache is full. Safe to share
    between threads (a race at worst encodes a part twice)."""

    def __init__(self) -> None:
        self._titles: object = None
        self._items: dict[str, str] = {}  # item -> '"item":…,"title":…'
        self._because: dict[str, str] = {}  # item -> '"reason":…,"because":{…"similarity":'

    def _parts(self, title_of) -> tuple[dict[str, str], dict[str, str]]:
        owner = getattr(title_of, "__self__", title_of)  # the map behind ``map.get``
        if owner is not self._titles or len(self._items) + len(self._because) > MAX_CACHED:
            self._items, self._because = {}, {}
            self._titles = owner
        return self._items, self._because

    def encode(self, user: str, recs: Recommendations, diversity: float, title_of) -> bytes:
        """The reply to a plain request; ``title_of``: item id -> title or None (``map.get``
        of one catalogue's title map)."""
        items, because = self._parts(title_of)
        out = []
        for rank, (item, score, near, sim) in enumerate(zip(
                recs.items, recs.scores, recs.because, recs.similarity, strict=True), 1):
            head = items.get(item)
            if head is None:
                head = items[item] = (f'"item":{_string(item)},"title":'
                                      f'{_json_or_null(title_of(item))}')
            if recs.fallback:
                tail = f',"reason":{_string(POPULAR_REASON)},"because":null}}'
            elif near is not None:
                why = because.get(near)
                if why is None:
                    title = title_of(near)
                    reason = f"{MODEL_REASON}; similar to {title or near}, which you had recently"
                    why = because[near] = (f',"reason":{_string(reason)},"because":{{"item":'
                                           f'{_string(near)},"title":{_json_or_null(title)},'
                                           '"similarity":')
                sim = round(sim, 6)
                tail = (f"{why}{sim!r}}}}}" if type(sim) is float and sim - sim == 0
                        else f"{why}{_number(sim)}}}}}")
            else:
                tail = f',"reason":{_string(MODEL_REASON)},"because":null}}'
            if not (type(score) is float and score - score == 0):  # finite: repr as json's
                score = _number(score)
            out.append(f'{{"rank":{rank},{head},"score":{score!s},"interest":null,'
                       f'"interest_label":null{tail}')
        fallback = "null" if recs.fallback is None else _string(recs.fallback)
        return (f'{{"user":{_string(user)},"items":[{",".join(out)}],"fallback":{fallback},'
                f'"diversity":{_number(diversity)},"explained":false,"composed":false,'
                f'"components":null,"steering":null,"checkpoint":{_string(recs.checkpoint)}}}'
                ).encode()


def _json_or_null(text: str | None) -> str:
    return "null" if text is None else _string(text)
