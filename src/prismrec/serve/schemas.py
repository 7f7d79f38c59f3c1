"""Request and response bodies of the HTTP API (pydantic, strict where clients send data)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, create_model
from pydantic_core import PydanticCustomError

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
    similarity: float


class RecommendedItem(BaseModel):
    rank: int
    item: str
    score: float
    reason: str
    because: Because | None = None


class RecommendationsOut(BaseModel):
    user: str
    items: list[RecommendedItem]
    fallback: str | None = Field(description='"popular" when the user has no usable history')
    diversity: float
    checkpoint: str


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
