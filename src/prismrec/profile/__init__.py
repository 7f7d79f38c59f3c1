"""prismrec.profile: dynamic user profiles and their durable store.

`open_store(url)` gives a `ProfileStore` (SQLite file by default, Redis for several replicas)
that keeps each user's append-only event log and one versioned model state per user.
"""

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
    "ProfileStore",
    "StoreError",
    "StoreUnavailableError",
    "StoredState",
    "open_store",
]
