"""Live profiles: a fitted sequence model kept up to date, event by event, over a ProfileStore.

``LiveProfiles(bundle, store)`` is the streaming path of the architecture. ``update`` logs
events through the store (idempotent by ``event_id``) and then advances each user's model
state by the new events only:

- recurrent models (LSTM, GRU) carry their state (h[, c]) and take one step per new event:
  O(1) per event in the history length, the history is never re-read;
- SASRec has no recurrent state; it keeps its window of the last ``max_len`` items and
  recomputes the hidden vector over that window once per update: O(max_len) per update.

Where the state lives. Per user, the store holds the append-only event log (the truth) and
one serialized state (``state``), tagged with ``checkpoint``, a fingerprint of the bundle
(weights, vocabularies, full known histories, blend), so a state computed by another model
is never used: it is rebuilt from the log. Writes are compare-and-set on the state version
and retried after re-reading, so several threads or processes (workers sharing one Redis)
never lose an update: the state is always a function of a prefix of the log.

Rules a caller can rely on:

- A user the checkpoint knows starts from their full known history (every event of the data
  the model was trained from; the model is run over it once, at first sight); a user the
  model never saw starts fresh.
- Events are folded by the one streaming engine (``engine``), with the rules
  ``Recommender.update`` follows too: duplicates (by ``event_id``) ignored; events whose
  item the model does not know logged and reported in ``UpdateResult.unknown_items``, never
  fed to the model; a user's new events taken in time order; an event older than the
  user's last folded one makes the engine recompute that user's state from the whole
  history in time order at once (``UpdateResult.recomputed``).
- Reads never write: a state behind the log, from another checkpoint or unreadable is
  brought up to date in memory for the reply and stored by the next update or rebuild.
- Streaming a history event by event gives the same scores (to 1e-5) as computing it in one
  batch with ``Recommender.recommend_for_sequence``; tested.

Modules, one job each: ``state`` (the state and its encoding), ``bundle`` (what is served
and its derived tables), ``engine`` (folding events, rebuilds), ``scoring`` (score table,
blend, batched top-k), ``compose`` (diversity, reasons), ``records`` (answers, event input)
and ``service`` (``LiveProfiles``, which wires them to the store).
"""

from prismrec.profile.live.bundle import LiveBundle
from prismrec.profile.live.compose import Recommendations
from prismrec.profile.live.records import LiveProfile, ProfileBusyError, UpdateResult
from prismrec.profile.live.scoring import RecommendationBatch
from prismrec.profile.live.service import CACHE_USERS, MAX_RETRIES, LiveProfiles
from prismrec.profile.live.state import RECENT, STATE_FORMAT

__all__ = ["CACHE_USERS", "MAX_RETRIES", "RECENT", "STATE_FORMAT", "LiveBundle", "LiveProfile",
           "LiveProfiles", "ProfileBusyError", "RecommendationBatch", "Recommendations",
           "UpdateResult"]
