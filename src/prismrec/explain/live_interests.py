"""A user's interests and composed list as the live service knows them.

``Recommender.profile`` reads the checkpoint's history alone (every event the model was
fitted from, ``histories_``). A service also has the events logged since, in its
``ProfileStore``; these functions read both -- the checkpoint's history, then the logged
events of items the model knows, in time order (ties: the checkpoint's first, then log
order), which is the history ``LiveProfiles`` folds -- and hand it to the same profile
and composition code (``explain.interests.profile_of_history`` / ``compose_for_history``).

Cost: the model reads the whole history once per call (O(history)); the dashboard calls
this per page view, not per event. Without a store (``store=None``) they equal
``Recommender.profile`` and ``Recommender.recommend_composed``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prismrec.errors import UnknownIdError
from prismrec.explain.interests import compose_for_history, profile_of_history
from prismrec.explain.labels import CatalogText
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
                  events: list[Event] | None = None,
                  profile: Profile | None = None) -> pd.DataFrame:
    """Top-``k`` composed from the user's interests over the same history as
    ``live_profile``: columns rank, item, score, interest, interest_label, reason.

    ``profile``: ``live_profile``'s result for the same user, history and texts, when the
    caller has it (the model then reads the history once, not twice).
    """
    items, times = user_history(recommender, user, store, events)
    return compose_for_history(recommender, items, times, user=user, k=k,
                               diversity=diversity, texts=texts, profile=profile)
