"""The decomposition over HTTP: profile documents, explained and steered lists, preferences.

``InterestRoutes`` answers the parts of the API that read a user's interests: the profile
document (``Profile.to_dict()`` over the live history), recommendation lists tagged with
the interest they serve and a reason citing history items by title (the library's
``recommend(explain=True)`` rule: ``prismrec.explain.attribution``), lists steered by
``mute`` / ``boost`` (per request, and per user as stored preferences), and the preference
routes themselves.

Cost. The plain recommendation route scores a stored state (O(1) in the history). Anything
here reads the user's whole history through the model (O(history)), and reasons by
attribution score U + 1 histories (U: distinct history items), so these run on the thread
pool and only when asked for: ``explain=true``, ``mute``/``boost``, or a stored preference.
The catalogue text (titles, label words) is built once per catalogue
(``explain.live_interests.LiveInterests``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import HTTPException

from prismrec.errors import UnknownIdError
from prismrec.explain.live_interests import LiveInterests, Steering, steering
from prismrec.profile.live import LiveProfiles, Recommendations
from prismrec.profile.profile import FALLBACKS
from prismrec.recommender.core import DEFAULT_DIVERSITY

MODEL_REASON = "continues your recent sequence"
POPULAR_REASON = "popular with everyone (no history for you yet)"
NO_INTERESTS = ("none of the user's events is of an item the model knows, so they have no "
                "interests yet")


def fast_items(recs: Recommendations, title_of) -> list[dict[str, Any]]:
    """The plain route's items: titles, and the recent item nearest by item-embedding
    cosine (a similarity, not an attribution: ``explain=true`` gives that)."""
    out = []
    for rank, (item, score, because, sim) in enumerate(zip(
            recs.items, recs.scores, recs.because, recs.similarity, strict=True), 1):
        if recs.fallback:
            reason, why = POPULAR_REASON, None
        elif because is not None:
            name = title_of(because) or because
            reason = f"{MODEL_REASON}; similar to {name}, which you had recently"
            why = {"item": because, "title": title_of(because), "similarity": round(sim, 6)}
        else:
            reason, why = MODEL_REASON, None
        out.append({"rank": rank, "item": item, "title": title_of(item), "score": score,
                    "interest": None, "interest_label": None, "reason": reason,
                    "because": why})
    return out


def _frame_items(frame) -> list[dict[str, Any]]:
    return [{"rank": int(r.rank), "item": r.item, "title": r.title, "score": float(r.score),
             "interest": int(r.interest), "interest_label": r.interest_label,
             "reason": r.reason, "because": None} for r in frame.itertuples(index=False)]


class InterestRoutes:
    """The interest-reading answers over one ``LiveProfiles`` (thread-safe, blocking)."""

    def __init__(self, live: LiveProfiles, interests: LiveInterests) -> None:
        self.live = live
        self.interests = interests
        model = live.model
        self.source = "kmeans" if model.head is None else model.config.interest_head
        self.n_components = 0 if model.head is None else int(model.config.interests)

    def title(self, item: str) -> str | None:
        return self.interests.title(item)

    def title_of(self):
        """A title look-up over the current catalogue text, for one reply's many titles."""
        return self.interests.title_map().get

    # -- the profile document ----------------------------------------------------------------
    def profile(self, user: str, *, timeline: bool = False) -> dict[str, Any]:
        """What is stored (counts, recent events) and the profile document of the user's
        live history (``Profile.to_dict``), with their stored preferences."""
        stored = self.live.profile(user)
        if stored.event_count == 0 and not stored.known_from_training:
            raise HTTPException(404, f"no profile for user {user!r}: no logged events and "
                                     "not in the training data")
        items, times = self.interests.history(user)
        if len(items):
            doc = self.interests.profile(user, items, times).to_dict(timeline=timeline)
            note = None
        else:
            doc = {"components": self.source, "fallback": FALLBACKS.get(self.source),
                   "routing": (self.live.model.config.interest_route
                               if self.source == "decay" else None),
                   "n_events": 0, "interests": []}
            if timeline:
                doc["events"] = []
            note = NO_INTERESTS
        out = {**stored.to_dict(), **doc, "note": note,
               "preferences": [p.to_dict() for p in self.live.store.preferences(user)]}
        for e in out["recent_events"]:
            e["title"] = self.title(e["item"])
        return out

    # -- explained and steered lists --------------------------------------------------------
    def recommend(self, user: str, *, k: int, exclude: list[str], filter_seen: bool,
                  diversity: float, diversity_given: bool, explain: bool,
                  mute: list[int], boost: list[int], stored: list | None) -> dict[str, Any]:
        """The list the heavy path answers with (see the module docstring); ``stored``: the
        user's preferences when the caller read them already (else they are read here)."""
        if stored is None:
            stored = self.live.store.preferences(user)
        items, times = self._history(user)
        requested = bool(mute or boost)
        if not len(items):
            if requested:
                raise HTTPException(422, f"cannot mute or boost for user {user!r}: "
                                         f"{NO_INTERESTS}")
            st = Steering(ignored=tuple(p.interest for p in stored))
            return self._model_order(user, k, exclude, filter_seen, diversity, None, items,
                                     times, st, explain=False)
        prof = self.interests.profile(user, items, times)
        st = steering(stored, mute, boost, prof)
        if not st:
            return self._model_order(user, k, exclude, filter_seen, diversity, prof, items,
                                     times, st, explain=explain)
        lam = diversity if diversity_given else DEFAULT_DIVERSITY
        known = [x for x in exclude if self.live.item_known(x)]
        try:
            frame = self.interests.composed(user, items, times, k=k, diversity=lam,
                                            profile=prof, steer=st, exclude_ids=known,
                                            filter_seen=filter_seen)
        except UnknownIdError as exc:
            raise HTTPException(422, str(exc)) from None
        except ValueError as exc:  # both muted and boosted; every interest muted
            raise HTTPException(422, str(exc)) from None
        return {"items": _frame_items(frame), "fallback": None, "diversity": lam,
                "explained": True, "composed": True, "components": self.source,
                "steering": st.to_dict()}

    def _history(self, user: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            return self.interests.history(user)
        except UnknownIdError:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)

    def _model_order(self, user: str, k: int, exclude: list[str], filter_seen: bool,
                     diversity: float, prof, items, times, st: Steering, *, explain: bool
                     ) -> dict[str, Any]:
        recs = self.live.recommendations(user, k, filter_seen=filter_seen, exclude=exclude,
                                         diversity=diversity)
        if explain and not recs.fallback and recs.items:
            frame = self.interests.explained(user, items, times, recs.items, recs.scores,
                                             profile=prof)
            rows, explained = _frame_items(frame), True
        else:
            rows, explained = fast_items(recs, self.title), False
        return {"items": rows, "fallback": recs.fallback, "diversity": diversity,
                "explained": explained, "composed": False,
                "components": self.source if explained else None,
                "steering": st.to_dict() if st.stored or st.ignored else None}

    # -- stored preferences ------------------------------------------------------------------
    def preferences(self, user: str) -> dict[str, Any]:
        return {"user": user,
                "preferences": [p.to_dict() for p in self.live.store.preferences(user)]}

    def set_preference(self, user: str, interest: int, mute: bool, boost: bool
                       ) -> dict[str, Any]:
        if self.n_components == 0:
            raise HTTPException(409, "this model has no interest head: its interests are "
                                     "k-means clusters of each history, renumbered as the "
                                     "history grows, so a stored preference would not keep "
                                     "pointing at one interest; use mute=/boost= per request")
        if not 0 <= interest < self.n_components:
            raise HTTPException(404, f"no interest {interest}: this model's interest ids are "
                                     f"0 to {self.n_components - 1}")
        if mute and boost:
            raise HTTPException(422, "an interest cannot be both muted and boosted")
        if not self.live.known_user(user) and self.live.store.event_count(user) == 0:
            raise HTTPException(404, f"unknown user {user!r}: no logged events and not in the "
                                     "training data")
        self.live.store.set_preference(user, interest, "mute" if mute else
                                       "boost" if boost else None)
        return self.preferences(user)
