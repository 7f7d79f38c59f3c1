"""A user's interests and composed list as the live service knows them.

``Recommender.profile`` reads the checkpoint's history alone (every event the model was
fitted from, ``histories_``). A service also has the events logged since, in its
``ProfileStore``; these functions read both -- the checkpoint's history, then the logged
events of items the model knows, in time order (ties: the checkpoint's first, then log
order), which is the history ``LiveProfiles`` folds -- and hand it to the same profile
and composition code (``explain.interests.profile_of_history`` / ``compose_for_history``).

Cost: the model reads the whole history once per call (O(history)); the dashboard calls
this per page view, not per event. Without a store (``store=None``) they equal
``Recommender.profile`` and ``Recommender.recommend_composed``. ``LiveInterests`` holds the
per-catalogue part (the catalogue text, titles, ids), built once and rebuilt only when the
catalogue grows, so a call costs the user's history, not the catalogue's size (the composed
list still scores every item, as any full ranking does).

Steering: ``steering`` merges a user's stored preferences (``ProfileStore.preferences``)
with a request's ``mute`` / ``boost``: the request wins for an interest it names; stored
preferences for interests the user's profile does not have now are left out and listed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prismrec.errors import UnknownIdError
from prismrec.explain.interests import (
    catalog_text,
    compose_for_history,
    explain_ranked_history,
    profile_of_history,
)
from prismrec.explain.labels import CatalogText
from prismrec.profile.preferences import Preference
from prismrec.profile.profile import Profile
from prismrec.profile.store import Event, ProfileStore


def user_history(recommender, user: str, store: ProfileStore | None = None,
                 events: list[Event] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Model item indices (int64) and times (float64) of ``user``'s history, oldest first.

    The checkpoint's history (empty for a user the model never saw) and the events logged in
    ``store`` (or the given ``events``, the user's log already read), leaving out items the
    model does not know. Raises ``UnknownIdError`` when neither has an event of the user.
    """
    users = recommender.users_
    if user in users:
        r = users.index_of(user)
        t_items = recommender.histories_.row(r).astype(np.int64)
        t_times = recommender.histories_.row_times(r).astype(np.float64)
    else:
        t_items, t_times = np.zeros(0, np.int64), np.zeros(0, np.float64)
    log = events if events is not None else (store.events(user) if store is not None else [])
    if not len(t_items) and not log:
        raise UnknownIdError(f"unknown user {user!r}: no logged events and not in the "
                             "training data")
    items_vocab = recommender.items_
    known = [(items_vocab.index_of(e.item), e.timestamp) for e in log if e.item in items_vocab]
    items = np.concatenate([t_items, np.array([i for i, _ in known], dtype=np.int64)])
    times = np.concatenate([t_times, np.array([t for _, t in known], dtype=np.float64)])
    order = np.argsort(times, kind="stable")
    return items[order], times[order]


def live_profile(recommender, user: str, store: ProfileStore | None = None, *,
                 texts: CatalogText | None = None, n_items: int = 5,
                 events: list[Event] | None = None) -> Profile:
    """The named profile of ``user`` over their training history and logged events.

    Raises ``UnknownIdError`` for a user with neither, ``ValueError`` for one whose events
    are all of items the model does not know.
    """
    items, times = user_history(recommender, user, store, events)
    return profile_of_history(recommender, items, times, user=user, texts=texts,
                              n_items=n_items)


def live_composed(recommender, user: str, store: ProfileStore | None = None, *, k: int = 10,
                  diversity: float = 0.0, texts: CatalogText | None = None,
                  events: list[Event] | None = None, profile: Profile | None = None,
                  mute: Iterable | None = None, boost: Iterable | None = None,
                  exclude_ids: Iterable | None = None,
                  filter_seen: bool = True) -> pd.DataFrame:
    """Top-``k`` composed from the user's interests over the same history as
    ``live_profile``: columns rank, item, title, score, interest, interest_label, reason.

    ``profile``: ``live_profile``'s result for the same user, history and texts, when the
    caller has it (the model then reads the history once, not twice). ``mute`` / ``boost``
    / ``exclude_ids`` / ``filter_seen`` as in ``Recommender.recommend_composed``.
    """
    items, times = user_history(recommender, user, store, events)
    return compose_for_history(recommender, items, times, user=user, k=k,
                               diversity=diversity, texts=texts, profile=profile, mute=mute,
                               boost=boost, exclude_ids=exclude_ids, filter_seen=filter_seen)


@dataclass(frozen=True)
class Steering:
    """The mute/boost a list is composed with, and where each came from."""

    mute: tuple[int, ...] = ()
    boost: tuple[int, ...] = ()
    stored: tuple[int, ...] = ()  # interests steered by a stored preference
    ignored: tuple[int, ...] = ()  # stored preferences for interests the profile lacks now
    requested: bool = False  # the request itself named mute or boost

    def __bool__(self) -> bool:
        return bool(self.mute or self.boost)

    def to_dict(self) -> dict:
        return {"mute": list(self.mute), "boost": list(self.boost),
                "from_store": list(self.stored), "ignored_stored": list(self.ignored)}


def steering(stored: Sequence[Preference], mute: Iterable[int] = (),
             boost: Iterable[int] = (), profile: Profile | None = None) -> Steering:
    """The request's ``mute`` / ``boost`` over the user's ``stored`` preferences.

    An interest the request names keeps the request's choice; the other stored ones apply
    when ``profile`` has that interest now (all of them without a profile) and are listed
    in ``ignored`` otherwise. Ids the request names are checked later, by ``steer``.
    """
    mute, boost = [int(x) for x in mute], [int(x) for x in boost]
    named = set(mute) | set(boost)
    have = None if profile is None else {i.component for i in profile.interests}
    used, ignored = [], []
    for p in stored:
        if p.interest in named:
            continue
        if have is not None and p.interest not in have:
            ignored.append(p.interest)
            continue
        used.append(p.interest)
        (mute if p.steer == "mute" else boost).append(p.interest)
    return Steering(tuple(mute), tuple(boost), tuple(used), tuple(ignored),
                    requested=bool(named))


@dataclass
class LiveInterests:
    """Profiles and explained lists of live users, with the per-catalogue work cached.

    ``current``, when given, returns the recommender served now (a service that swaps in a
    grown copy after ``add_items`` passes it); else ``source`` is it. ``texts()`` is the
    catalogue text (titles, labels' words), built on first use and again only when the
    served recommender changes or its catalogue grows; thread-safe.
    """

    source: object
    store: ProfileStore | None = None
    current: Callable[[], object] | None = None
    _texts: CatalogText | None = field(default=None, repr=False)
    _texts_of: object = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def recommender(self):
        rec = self.current() if self.current is not None else None
        return self.source if rec is None else rec

    def texts(self) -> CatalogText:
        rec = self.recommender
        n = len(rec.items_)
        with self._lock:
            if self._texts is None or self._texts_of is not rec or len(self._texts) != n:
                self._texts, self._texts_of = catalog_text(rec), rec
            return self._texts

    def title(self, item: str) -> str | None:
        """The item's catalogue title, None where it has none (or is unknown)."""
        return self.texts().title_map().get(item)

    def title_map(self):
        """Item id -> title of the current catalogue (items without a title left out): one
        look-up of the catalogue text for many titles, where ``title`` does one per item."""
        return self.texts().title_map()

    def history(self, user: str, events: list[Event] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        return user_history(self.recommender, user, self.store, events)

    def profile(self, user: str, items: np.ndarray, times: np.ndarray, *,
                n_items: int = 5) -> Profile:
        """The named profile of ``user`` over a history from ``history``."""
        return profile_of_history(self.recommender, items, times, user=user,
                                  texts=self.texts(), n_items=n_items)

    def composed(self, user: str, items: np.ndarray, times: np.ndarray, *, k: int,
                 diversity: float, profile: Profile, steer: Steering | None = None,
                 exclude_ids: Iterable | None = None, filter_seen: bool = True
                 ) -> pd.DataFrame:
        """``compose_for_history`` for ``user`` (see ``live_composed``)."""
        s = steer or Steering()
        return compose_for_history(self.recommender, items, times, user=user, k=k,
                                   diversity=diversity, texts=self.texts(), profile=profile,
                                   mute=s.mute or None, boost=s.boost or None,
                                   exclude_ids=exclude_ids, filter_seen=filter_seen)

    def explained(self, user: str, items: np.ndarray, times: np.ndarray, picks: list[str],
                  scores: Sequence[float], *, profile: Profile | None = None
                  ) -> pd.DataFrame:
        """A ranked list (item ids, best first) tagged and explained as the library's
        ``recommend(explain=True)`` does (``explain_ranked_history``)."""
        vocab = self.recommender.items_
        idx = np.array([vocab.index_of(i) for i in picks], dtype=np.int64)
        return explain_ranked_history(self.recommender, items, times, idx,
                                      np.asarray(scores, dtype=np.float64), user=user,
                                      texts=self.texts(), profile=profile)
