"""Interest names from a chat model: the titles and categories of an interest's items, named.

The catalogue label (``labels.label_interest``) stays the default. With a chat endpoint
configured (``ChatEndpointNarrator``, any OpenAI-compatible server), ``ChatLabeler`` asks the
model for a short name of each interest from its items' titles and categories. Names are
cached per component, keyed by the items that define it, so a profile read again asks
nothing. A failed request or a reply that is not a short name (empty, several lines, too
long) gives the catalogue label instead, with a logged warning, and is not cached.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np

from prismrec.explain._chat import ChatEndpointNarrator
from prismrec.explain.labels import CatalogText, InterestLabel, label_interest
from prismrec.explain.narrate import NarratorError

log = logging.getLogger(__name__)

SYSTEM = ("You name one interest of a person from the items that define it. Answer with the "
          "name only: 1 to 4 words, no quotes, no punctuation at the end, no explanation.")


@dataclass
class ChatLabeler:
    """Names interests with a chat model; ``labeler(item_indices, weights, texts)``.

    ``max_items`` of the heaviest items go into the prompt; a name longer than ``max_chars``
    or ``max_words`` is refused. ``cache_size`` components are remembered (least recently
    used forgotten first).
    """

    client: ChatEndpointNarrator
    max_items: int = 8
    max_chars: int = 40
    max_words: int = 5
    cache_size: int = 10_000
    cache: OrderedDict = field(default_factory=OrderedDict, repr=False)

    def __call__(self, item_indices: np.ndarray, weights: np.ndarray | None,
                 texts: CatalogText) -> InterestLabel:
        base = label_interest(item_indices, weights, texts)
        idx = np.asarray(item_indices, dtype=np.int64)
        key = tuple(sorted(int(i) for i in idx))  # the component's items
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        w = np.ones(len(idx)) if weights is None else np.asarray(weights, dtype=np.float64)
        top = idx[np.lexsort((idx, -w))][: self.max_items]
        try:
            reply = self.client.complete(self.messages(top, texts), max_tokens=16)
        except NarratorError as exc:
            log.warning("chat naming failed, keeping the catalogue label %r: %s", base.text, exc)
            return base
        name = self._clean(reply)
        if name is None:
            log.warning("chat naming replied %r, not a short name: keeping the catalogue "
                        "label %r", reply[:80], base.text)
            return base
        label = replace(base, text=name, source="llm")
        self.cache[key] = label
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return label

    def messages(self, items: np.ndarray, texts: CatalogText) -> list[dict]:
        """The prompt: one line per item, its title and its catalogue categories."""
        lines = []
        for i in items:
            cats = [texts.category_names[c] for c in texts.categories[int(i)].indices]
            lines.append(f"- {texts.title(int(i))}" + (f" ({', '.join(cats)})" if cats else ""))
        return [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Items of this interest:\n" + "\n".join(lines)
                 + "\nName the interest."}]

    def _clean(self, reply: str) -> str | None:
        lines = [x.strip() for x in reply.strip().splitlines() if x.strip()]
        if len(lines) != 1:
            return None
        name = lines[0].strip("\"'`*. ").strip()
        if not name or len(name) > self.max_chars or len(name.split()) > self.max_words:
            return None
        return name
