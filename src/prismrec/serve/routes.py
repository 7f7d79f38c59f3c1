"""The HTTP routes: thin handlers that validate, call ``LiveProfiles`` and shape the reply."""

from __future__ import annotations

import threading
import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse, PlainTextResponse

from prismrec.profile.live import LiveProfiles
from prismrec.profile.store import Event
from prismrec.retrieve.index import ExactIndex
from prismrec.serve.auth import admin_guard, client_guard
from prismrec.serve.metrics import CONTENT_TYPE, Metrics
from prismrec.serve.schemas import (
    ErrorOut,
    EventBatch,
    ForgetOut,
    IngestOut,
    RecommendationsOut,
    SimilarOut,
)
from prismrec.serve.settings import ServeSettings

ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 422, 503)}
MODEL_REASON = "continues your recent sequence"
POPULAR_REASON = "popular with everyone (no history for you yet)"


def _check_id(value: str, what: str) -> str:
    if "\x00" in value:
        raise HTTPException(422, f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPException(422, f"{what} is not valid UTF-8 text") from None
    return value


UserId = Annotated[str, Path(min_length=1, max_length=1024, description="user id")]
ItemId = Annotated[str, Path(min_length=1, max_length=1024, description="item id")]
K = Annotated[int, Query(ge=1, description="how many items (at most max_k)")]
Diversity = Annotated[float, Query(ge=0.0, le=1.0, allow_inf_nan=False, description=(
    "0 keeps the model's order; towards 1 the top candidates are re-ranked by maximal "
    "marginal relevance (item-embedding cosine) to be less alike"))]
Exclude = Annotated[list[str], Query(description="item ids to leave out (repeat the "
                                     "parameter); ids the model does not know are ignored")]
FilterSeen = Annotated[bool, Query(description="leave out items the user already had")]


def build_router(live: LiveProfiles, settings: ServeSettings, metrics: Metrics) -> APIRouter:
    """Routes bound to one ``LiveProfiles`` (no globals: two apps never share state)."""
    client = [Depends(client_guard(settings))]
    admin = [Depends(admin_guard(settings))]
    router = APIRouter()
    index_lock = threading.Lock()
    index_box: list[ExactIndex] = []

    def item_index() -> ExactIndex:
        with index_lock:
            if not index_box:  # built on first use: cosine over the model's output item table
                table = live.model.output_table().detach().float().numpy()
                index_box.append(ExactIndex(table, metric="cosine"))
            return index_box[0]

    @router.post("/v1/events", response_model=IngestOut, dependencies=client,
                 responses=ERRORS, tags=["events"])
    def post_events(batch: Annotated[EventBatch, Body()]) -> dict:
        """Log a batch of events (all or nothing) and advance each user's profile."""
        n = len(batch.events)
        if n > settings.max_batch:
            raise HTTPException(413, f"batch of {n} events is over the limit of "
                                     f"{settings.max_batch}; split it")
        latest = time.time() + settings.max_future_seconds
        events = []
        for i, e in enumerate(batch.events):
            if not settings.min_timestamp <= e.timestamp <= latest:
                raise HTTPException(422, f"events[{i}].timestamp {e.timestamp!r} is out of "
                                    f"range: give unix seconds between {settings.min_timestamp}"
                                    f" and now + {settings.max_future_seconds:g} s")
            for what, v in (("user", e.user), ("item", e.item), ("event", e.event),
                            ("event_id", e.event_id)):
                if v is not None:
                    _check_id(v, f"events[{i}].{what}")
            events.append(Event(e.user, e.item, float(e.timestamp), e.event,
                                None if e.value is None else float(e.value), e.event_id))
        result = live.update(events)
        metrics.inc("prismrec_events_ingested_total", result.accepted)
        metrics.inc("prismrec_events_duplicate_total", result.duplicates)
        metrics.inc("prismrec_events_late_total", result.late)
        unknown = set(result.unknown_items)
        if unknown:
            metrics.inc("prismrec_events_unknown_item_total",
                        sum(e.item in unknown for e in events))
        return result.to_dict()

    @router.get("/v1/users/{user}/recommendations", response_model=RecommendationsOut,
                dependencies=client, responses=ERRORS, tags=["users"])
    def recommendations(user: UserId, k: K = 10, diversity: Diversity = 0.0,
                        exclude: Exclude = (), filter_seen: FilterSeen = True
                        ) -> JSONResponse:
        """Top-k items with scores and reasons; unknown users get popular items (stated)."""
        _check_id(user, "user id")
        if k > settings.max_k:
            raise HTTPException(422, f"k={k} is over the limit of {settings.max_k}")
        exclude = list(exclude)
        if len(exclude) > settings.max_exclude:
            raise HTTPException(422, f"{len(exclude)} exclude ids are over the limit of "
                                     f"{settings.max_exclude}")
        recs = live.recommendations(user, k, filter_seen=filter_seen, exclude=exclude,
                                    diversity=diversity)
        metrics.inc("prismrec_recommendations_popular_total" if recs.fallback
                    else "prismrec_recommendations_model_total")
        items = []
        for rank, (item, score, because, sim) in enumerate(zip(
                recs.items, recs.scores, recs.because, recs.similarity, strict=True), 1):
            if recs.fallback:
                reason, why = POPULAR_REASON, None
            elif because is not None:
                reason = f"{MODEL_REASON}; similar to {because}, which you had recently"
                why = {"item": because, "similarity": round(sim, 6)}
            else:
                reason, why = MODEL_REASON, None
            items.append({"rank": rank, "item": item, "score": score, "reason": reason,
                          "because": why})
        return JSONResponse({"user": user, "items": items, "fallback": recs.fallback,
                             "diversity": diversity, "checkpoint": recs.checkpoint})

    @router.get("/v1/users/{user}/profile", dependencies=client, responses=ERRORS,
                tags=["users"])
    def profile(user: UserId) -> dict:
        """What is stored for the user: counts, last event time, recent items, state."""
        _check_id(user, "user id")
        p = live.profile(user)
        if p.event_count == 0 and not p.known_from_training:
            raise HTTPException(404, f"no profile for user {user!r}: no logged events and "
                                     "not in the training data")
        return p.to_dict()

    @router.delete("/v1/users/{user}", response_model=ForgetOut, dependencies=admin,
                   responses=ERRORS, tags=["admin"])
    def forget(user: UserId) -> dict:
        """Erase the user's events and profile state from the store (admin key)."""
        _check_id(user, "user id")
        erased = live.forget(user)
        return {"user": user, "erased": erased,
                "training_history_retained": live.known_user(user)}

    @router.post("/v1/items", dependencies=admin, status_code=501,
                 responses={501: {"model": ErrorOut}, **ERRORS}, tags=["admin"])
    def add_items(body: Annotated[dict, Body(description="items with text")]) -> dict:
        """Add catalogue items with text: not available yet for the served checkpoint."""
        mode = live.model.config.embedding
        raise HTTPException(
            501, "adding items at serve time is not implemented: it needs item vectors from "
            f"text, and this checkpoint's {live.model.name} model uses embedding={mode!r}"
            + (" (no text part)" if mode == "id" else "")
            + " while the Recommender has no way yet to grow its catalogue; add the items to "
            "the training data and retrain")

    @router.get("/v1/items/{item}/similar", response_model=SimilarOut, dependencies=client,
                responses=ERRORS, tags=["items"])
    def similar(item: ItemId, k: K = 10) -> dict:
        """Items nearest by cosine of the model's output item vectors (exact search)."""
        _check_id(item, "item id")
        if k > settings.max_k:
            raise HTTPException(422, f"k={k} is over the limit of {settings.max_k}")
        if not live.item_known(item):
            raise HTTPException(404, f"unknown item {item!r}: the model was not trained "
                                     "with it")
        idx = live.items.index_of(item)
        index = item_index()
        query = index.vectors[idx:idx + 1].numpy()  # (1, D), already unit length
        scores, found = index.search(query, k, exclude=[np.array([idx])])
        keep = found[0] >= 0
        ids = live.items.ids(found[0][keep])
        return {"item": item, "similar": [
            {"rank": r + 1, "item": i, "similarity": float(s)}
            for r, (i, s) in enumerate(zip(ids, scores[0][keep].tolist(), strict=True))]}

    @router.get("/healthz", tags=["service"])
    def healthz() -> dict:
        """Liveness and readiness: the model is loaded and the store answers."""
        live.store.event_count("healthz-probe")
        return {"status": "ok", "model": live.model.name, "checkpoint": live.checkpoint,
                "items": live.n_items, "store": type(live.store).__name__}

    @router.get("/metrics", response_class=PlainTextResponse, tags=["service"])
    def prometheus() -> PlainTextResponse:
        """Prometheus text format: requests and latency per route, event counters."""
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)

    return router
