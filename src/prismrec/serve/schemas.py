"""Request and response bodies of the HTTP API (pydantic, strict where clients send data)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, create_model
from pydantic_core import PydanticCustomError

from prismrec.profile.profile import STRAY_EVENTS
from prismrec.profile.store import MAX_ID_LENGTH

Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_ID_LENGTH)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class EventIn(BaseModel):
    """One event; ``event_id`` makes a retried post safe (stored once)."""

    model_config = ConfigDict(extra="forbid")

    user: Id
    item: Id
    timestamp: Number = Field(description="unix seconds")
    event: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)] = "view"
    value: Number | None = None
    event_id: Id | None = None


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(description="events in arrival order (at most max_batch)")


TOO_LARGE = "batch_too_large"  # the error type the app answers with 413


def event_batch(max_batch: int) -> type[EventBatch]:
    """``EventBatch`` whose schema holds the batch limit, checked on the list's length
    before any event in it is validated (an oversized batch costs no per-event work)."""

    def short_enough(value: object) -> object:
        if isinstance(value, list) and len(value) > max_batch:
            raise PydanticCustomError(TOO_LARGE, "batch of {n} events is over the limit of "
                                      "{limit}; split it", {"n": len(value), "limit": max_batch})
        return value

    events = Annotated[list[EventIn], BeforeValidator(short_enough),
                       Field(max_length=max_batch,
                             description=f"events in arrival order, at most {max_batch}")]
    return create_model("EventBatch", __base__=EventBatch, events=(events, ...))


class IngestOut(BaseModel):
    accepted: int
    duplicates: int
    late: int = Field(description="accepted events older than an earlier event of their user: "
                      "counted now, folded into the profile in time order at the next rebuild")
    late_users: list[str]
    unknown_items: list[str] = Field(description="items the model does not know: logged, "
                                     "not used by the model")
    users_updated: int
    folded: int = Field(description="events fed to the model")
    recomputed: list[str] = Field(description="users whose state was recomputed from their "
                                  "whole history because of a late event")
    users_deferred: list[str]
    step_cost: str
    over_quota: int = Field(0, description="events not stored: their user's log was at the "
                            "per-user quota (max_user_events)")
    too_old: int = Field(0, description="events not stored: their timestamp was older than "
                         "the age limit (max_event_age) when they arrived")


class Because(BaseModel):
    item: str
    title: str | None = None
    similarity: float


class RecommendedItem(BaseModel):
    rank: int
    item: str
    title: str | None = Field(None, description="the catalogue title (None without one)")
    score: float
    interest: int | None = Field(None, description="the interest id it serves (explained "
                                 "lists: explain=true, mute, boost or a stored preference)")
    interest_label: str | None = None
    reason: str = Field(description="explained: the interest and the history items (by "
                        "title) contributing most to the score; plain: the recent item "
                        "nearest by item-embedding cosine")
    because: Because | None = Field(None, description="plain lists: that nearest recent item")


class Steering(BaseModel):
    mute: list[int]
    boost: list[int]
    from_store: list[int] = Field(description="interests steered by a stored preference")
    ignored_stored: list[int] = Field(description="stored preferences for interests the "
                                      "user's profile does not have now (not applied)")


class RecommendationsOut(BaseModel):
    user: str
    items: list[RecommendedItem]
    fallback: str | None = Field(description='"popular" when the user has no usable history')
    diversity: float = Field(description="composed lists: the composition λ; model-order "
                             "lists: the maximal-marginal-relevance re-ranking weight")
    explained: bool = Field(description="items carry interest, label and attribution reason")
    composed: bool = Field(description="composed from the interests (mute/boost in effect)")
    components: str | None = Field(description="where interests come from when explained: "
                                   "the model's head, or kmeans (the fallback)")
    steering: Steering | None
    checkpoint: str


class TopItem(BaseModel):
    id: str
    title: str


class InterestOut(BaseModel):
    id: int = Field(description="interest id: use it with mute=, boost= and "
                    "PUT /v1/users/{id}/interests/{interest}")
    label: str
    label_source: str
    stray: bool = Field(description=f"fewer than {STRAY_EVENTS} history events: events "
                        "joined to no interest, shown marked; its label names those items")
    weight: float = Field(description="its share now (the profile's weights sum to 1)")
    horizon: str = Field(description='"short" (rising) or "long"')
    first_seen: float | None
    last_seen: float | None
    n_events: int
    top_items: list[TopItem]
    timeline: list[float] | None = Field(None, description="weight after each history "
                                         "event (with ?timeline=true)")


class PreferenceOut(BaseModel):
    interest: int
    mute: bool
    boost: bool
    updated_at: float


class PreferencesOut(BaseModel):
    user: str
    preferences: list[PreferenceOut]


class PreferenceIn(BaseModel):
    """A stored preference for one interest; both false clears it."""

    model_config = ConfigDict(extra="forbid")

    mute: bool = Field(False, strict=True)
    boost: bool = Field(False, strict=True)


class ProfileOut(BaseModel):
    """``Profile.to_dict()`` of the live history, plus what the store holds."""

    user: str
    components: str | None = Field(description="the model's interest head, or kmeans")
    routing: str | None = Field(None, description="the decay head's routing: categories "
                                "(catalogue categories and item vectors) or item; else null")
    fallback: str | None = Field(description="what the fallback did when the model has no "
                                 "interest head")
    n_events: int = Field(description="history events the interests were read from")
    interests: list[InterestOut]
    events: list[dict] | None = Field(None, description="with ?timeline=true: the history "
                                      "events (item, time), oldest first")
    note: str | None = None
    preferences: list[PreferenceOut]
    known_from_training: bool
    training_events: int
    event_count: int = Field(description="events in the user's log (the store)")
    last_event_time: float | None
    recent_events: list[dict]
    recent_items: list[str]
    checkpoint: str
    state_checkpoint: str | None
    state_version: int
    state_events: int
    needs_rebuild: bool
    updated_at: float | None


class SimilarItem(BaseModel):
    rank: int
    item: str
    similarity: float


class SimilarOut(BaseModel):
    item: str
    similar: list[SimilarItem]


class ForgetOut(BaseModel):
    user: str
    erased: bool
    training_history_retained: bool = Field(
        description="the user's training history is part of the model checkpoint and goes "
        "only with retraining")
    scrub: dict | None = Field(None, description=(
        "how the store left no bytes of the user: done, attempts, freed_pages, detail "
        "(SQLite: VACUUM and a TRUNCATE checkpoint retried until it succeeded; Redis: "
        "deletes in bounded commands). done=false says the WAL could not be emptied yet"))


class ErrorOut(BaseModel):
    error: str
