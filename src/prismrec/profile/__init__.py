"""prismrec.profile: dynamic user profiles and their durable store.

`open_store(url)` gives a `ProfileStore` (SQLite file by default, Redis for several replicas)
that keeps each user's append-only event log, one versioned model state per user and the
user's stored interest preferences (mute/boost).
"""

from prismrec.profile.preferences import Preference
from prismrec.profile.store import (
    ConcurrentUpdateError,
    Event,
    IngestResult,
    ProfileStore,
    StoredState,
    StoreError,
    StoreUnavailableError,
    open_store,
)

__all__ = [
    "ConcurrentUpdateError",
    "Event",
    "IngestResult",
    "Preference",
    "ProfileStore",
    "StoreError",
    "StoreUnavailableError",
    "StoredState",
    "open_store",
]
