"""What the live service serves: an explicit bundle, and the tables derived from it.

``LiveBundle`` is everything the live path reads -- the model, the user and item
vocabularies, every user's full known history, the item-item part of a blend and the
catalogue -- and nothing else: the live core never sees a ``Recommender`` (which sits above
this package). ``Recommender.live_bundle()`` makes one. A bundle is never changed: adding
items makes a new one (``grow``) and the service swaps it in whole (``Served``), so a request
sees one model, one vocabulary and one item table from start to end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from prismrec.data.catalog import Catalog
from prismrec.data.sequences import Sequences
from prismrec.data.vocab import Vocab
from prismrec.models.base import SequenceEncoder
from prismrec.models.item_item import ItemItem
from prismrec.models.stepper import Stepper
from prismrec.models.topk import ScoreTable
from prismrec.profile.live.state import RECENT, StateShape


@dataclass(frozen=True)
class LiveBundle:
    """A fitted model and what serving it needs (see the module docstring).

    ``histories``: one row per user of ``users``, every known event (item indices, oldest
    first); a user's live profile starts from it. ``item_item``/``blend_weight``: the blend's
    item-item part and its weight, or None/0. ``grow(rows, encoder)`` returns a new bundle
    with the items of ``rows`` added (and the new ids); None: items cannot be added.
    ``source``: the object that made the bundle (a ``Recommender``), for layers above the
    live core (the dashboard); the live core itself never reads it.
    """

    model: SequenceEncoder
    items: Vocab
    users: Vocab
    histories: Sequences
    item_item: ItemItem | None = None
    blend_weight: float = 0.0
    catalog: Catalog | None = None
    grow: Callable[[Any, Any], tuple[LiveBundle, list[str]]] | None = None
    source: Any = None

    def __post_init__(self) -> None:
        if len(self.histories) != len(self.users):
            raise ValueError(f"{len(self.histories)} histories for {len(self.users)} users")
        if len(self.items) != self.model.n_items:
            raise ValueError(f"{len(self.items)} item ids for a model of "
                             f"{self.model.n_items} items")


def fingerprint(b: LiveBundle) -> str:
    """Model name + SHA-256 over weights, configs, vocabularies, histories and the blend."""
    model = b.model
    h = hashlib.sha256()
    h.update(json.dumps({"model": model.name, "config": model.config.to_dict(),
                         "n_items": model.n_items, "blend": b.blend_weight},
                        sort_keys=True).encode())
    tensors = sorted(model.state_dict().items())
    if b.item_item is not None:
        tensors.append(("item_item", b.item_item.weights))
    for name, t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    for vocab in (b.items, b.users):
        h.update(b"\x00".join(s.encode("utf-8", "surrogatepass") for s in vocab.to_list()))
        h.update(b"\x01")
    for arr in (b.histories.offsets, b.histories.items, b.histories.times):
        h.update(np.ascontiguousarray(arr).tobytes())
    return f"{model.name}-{h.hexdigest()[:24]}"


class Served:
    """One bundle with its derived tables, never changed afterwards.

    The service holds exactly one ``Served`` at a time and replaces it with a single
    assignment; each request reads ``live.served`` once and uses only that object. The
    tables only scoring needs (fingerprint, score table, unit item rows, popularity) are
    built at first use, so the library's streaming path (``Recommender.update``) pays for
    none of them.
    """

    def __init__(self, bundle: LiveBundle) -> None:
        model = bundle.model
        model.eval()
        self.bundle = bundle
        self.model = model
        self.items, self.users, self.histories = bundle.items, bundle.users, bundle.histories
        self.n_items = len(self.items)
        self.recurrent = bool(model.recurrent)
        self.window: int | None = None if self.recurrent else int(model.max_len)
        self.keep = max(RECENT, self.window or 0) + 1  # recent items kept in a state
        self.shape = StateShape(model.dim, self.recurrent, model.head is not None,
                                self.n_items)
        self.item_index = {item: i for i, item in enumerate(self.items.to_list())}
        self.stepper = Stepper(model) if self.recurrent else None
        self.step_cost = ("O(1) per event: one recurrent step, the history is not re-read"
                          if self.recurrent else
                          f"O(max_len={self.window}) per update: the hidden vector is "
                          "recomputed over the window of the last max_len items")

    @classmethod
    def streaming(cls, model: SequenceEncoder, items: Vocab) -> Served:
        """A model and its items alone: what the streaming engine needs to fold events."""
        return cls(LiveBundle(model, items, Vocab(), Sequences.from_lists([])))

    def warm(self) -> Served:
        """Build every lazy table now (the service does, before it serves a bundle)."""
        for table in (self.checkpoint, self.scorer, self.unit_items, self.popular_order):
            del table
        return self

    @cached_property
    def checkpoint(self) -> str:
        return fingerprint(self.bundle)

    @cached_property
    def scorer(self) -> ScoreTable:
        return self.model.score_table()

    @cached_property
    def unit_items(self) -> np.ndarray:
        """(N, D) unit item rows as numpy: reasons and MMR index a few rows per request,
        where numpy costs ~1 us a call and torch ~10 us."""
        with torch.no_grad():
            table = self.model.output_table().detach().float()
            return nn.functional.normalize(table, dim=1).contiguous().numpy()

    @cached_property
    def popularity(self) -> np.ndarray:
        """(N,) float64 events per item in the known histories."""
        counts = np.bincount(self.histories.items, minlength=self.n_items)[: self.n_items]
        return counts.astype(np.float64)

    @cached_property
    def popular_order(self) -> np.ndarray:
        """Items by popularity, most first (ties: lower index)."""
        return np.lexsort((np.arange(self.n_items), -self.popularity))

    def known_row(self, user: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The user's full known history from the bundle (items, times), or None."""
        try:
            r = self.users.index_of(user)
        except KeyError:
            return None
        return self.histories.row(r), self.histories.row_times(r)
