"""The HTTP routes: thin handlers that validate, call ``LiveProfiles`` and shape the reply."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from prismrec.errors import DataError
from prismrec.explain.live_interests import LiveInterests
from prismrec.profile.ids import lookup_id, parse_id
from prismrec.profile.live import LiveProfiles, Recommendations, UpdateResult
from prismrec.profile.store import MAX_ID_LENGTH, Event
from prismrec.recommender.core import DEFAULT_DIVERSITY
from prismrec.serve.auth import (
    OPENAPI_SECURITY,
    admin_guard,
    client_guard,
)
from prismrec.serve.batching import Batcher, LoopBatcher, each
from prismrec.serve.interests import InterestRoutes
from prismrec.serve.limits import LogQuota, drop_too_old
from prismrec.serve.metrics import CONTENT_TYPE, Metrics
from prismrec.serve.reply import PlainReply
from prismrec.serve.schemas import (
    ErrorOut,
    EventBatch,
    ForgetOut,
    IngestOut,
    PreferenceIn,
    PreferencesOut,
    ProfileOut,
    RecommendationsOut,
    SimilarOut,
    event_batch,
)
from prismrec.serve.settings import ServeSettings
from prismrec.serve.ui.feed import EventFeed
from prismrec.text import DimensionMismatchError, EncoderError

log = logging.getLogger(__name__)
ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 422, 503)}
Text = Annotated[str, StringConstraints(strict=True, max_length=20_000)]
Label = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200)]


class ItemIn(BaseModel):
    """One catalogue item; at least one text field must hold text."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_ID_LENGTH)] \
        = Field(validation_alias=AliasChoices("id", "item"), description="item id ('item' too)")
    title: Text | None = None
    description: Text | None = None
    brand: Text | None = None
    categories: list[Label] = Field(default_factory=list, max_length=100)
    tags: list[Label] = Field(default_factory=list, max_length=100)


class ItemBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ItemIn] = Field(description="items with text (at most max_batch)")


class ItemsOut(BaseModel):
    added: list[str] = Field(description="new item ids, recommendable now")
    updated: list[str] = Field(description="ids already known: their text was re-encoded")
    items: int = Field(description="items in the catalogue now")
    checkpoint: str = Field(description="the model fingerprint after the change")


def _scrub_report(live: LiveProfiles, erased: bool) -> dict | None:
    """What the store did to leave no bytes of an erased user (None when nothing was)."""
    scrub = getattr(live.store, "last_scrub", None) if erased else None
    return None if scrub is None else scrub.to_dict()


def _new_id(value: str, what: str) -> str:
    """A user id or event id to store: the id rule (``prismrec.profile.ids``), NFC form."""
    try:
        return parse_id(value, what)
    except DataError as exc:
        raise HTTPException(422, str(exc)) from None


def _lookup(value: str, what: str) -> str:
    """A user id to read or erase, in its stored (NFC) form."""
    try:
        return lookup_id(value, what)
    except DataError as exc:
        raise HTTPException(422, str(exc)) from None


def _check_id(value: str, what: str) -> str:
    if "\x00" in value:
        raise HTTPException(422, f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPException(422, f"{what} is not valid UTF-8 text") from None
    return value


MAX_PATH_ID = 1024
UserId = Annotated[str, Path(min_length=1, max_length=MAX_PATH_ID, description="user id")]
ItemId = Annotated[str, Path(min_length=1, max_length=MAX_PATH_ID, description="item id")]
K = Annotated[int, Query(ge=1, description="how many items (at most max_k)")]


_PLAIN_QUERY = re.compile(rb"(?:k=[1-9][0-9]{0,8})?")  # what most requests send


class RecommendQuery(BaseModel):
    """The query of ``GET /v1/users/{user}/recommendations`` (unknown parameters are ignored)."""

    k: int = Field(10, ge=1, description="how many items (at most max_k)")
    diversity: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False, description=(
        "0 keeps the model's order; towards 1 the top candidates are re-ranked by maximal "
        "marginal relevance (item-embedding cosine) to be less alike"))
    exclude: list[str] = Field(default_factory=list, description=(
        "item ids to leave out (repeat the parameter); ids the model does not know are ignored"))
    filter_seen: bool = Field(True, description="leave out items the user already had")
    explain: bool = Field(False, description=(
        "tag each item with the interest it serves (id and label) and give a reason citing, "
        "by title, the history items that contribute most to its score (the library's "
        "recommend(explain=True)). Off by default because it reads the user's whole history "
        "through the model (O(history), and one scoring pass per distinct history item), "
        "where the plain list scores a stored state; the plain reason names the recent item "
        "nearest by item-embedding cosine, a similarity rather than an attribution"))
    mute: list[int] = Field(default_factory=list, description=(
        "interest ids (the profile's interests[].id) whose items are all left out; repeat "
        "the parameter or separate ids by commas. Mute, boost or a stored preference "
        "compose the list from the user's interests (explained), with diversity as the "
        f"composition λ (default {DEFAULT_DIVERSITY} then)"))
    boost: list[int] = Field(default_factory=list, description=(
        "interest ids whose share of the list is raised (weight doubled, at least 0.2); "
        "repeat the parameter or separate ids by commas"))

    @classmethod
    def from_request(cls, request: Request) -> RecommendQuery:
        """The query as FastAPI would read it: ``exclude`` repeated, else the last value wins.
        An invalid value raises ``RequestValidationError`` naming ``query.<field>``."""
        query = request.scope.get("query_string", b"")
        if _PLAIN_QUERY.fullmatch(query):  # what most requests send: read once, kept
            return _plain_query(query)
        raw: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key == "exclude":
                raw.setdefault(key, []).append(value)
            elif key in ("mute", "boost"):
                raw.setdefault(key, []).extend(v.strip() for v in value.split(",") if v.strip())
            else:
                raw[key] = value
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from None

    @classmethod
    def openapi_parameters(cls) -> list[dict[str, Any]]:
        return [{"name": name, "in": "query", "required": False,
                 "description": schema.get("description", ""), "schema": schema}
                for name, schema in cls.model_json_schema()["properties"].items()]


@functools.lru_cache(maxsize=256)
def _plain_query(query: bytes) -> RecommendQuery:
    """The query of no parameter or ``k`` alone, validated once per spelling (shared: read
    only)."""
    return RecommendQuery.model_validate({} if not query else {"k": query[2:].decode()})


def _path_id(request: Request, name: str, what: str) -> str:
    value = request.path_params[name]
    if len(value) > MAX_PATH_ID:
        raise HTTPException(422, f"path.{name}: the {what} has {len(value)} characters, over "
                                 f"the limit of {MAX_PATH_ID}")
    return _lookup(value, what)


class PlainRoute(APIRoute):
    """A route whose endpoint takes the ``Request`` and returns the ``Response`` itself.

    FastAPI solves an endpoint's declared parameters and dependencies on every request. For
    the recommendation route's key check and five parameters that was ~0.15 ms of the
    ~0.8 ms of CPU a request cost (measured in process, 2 cores). Such an endpoint parses
    its query and checks the key itself, and states both in ``openapi_extra`` for ``/docs``.
    """

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:  # FastAPI's hook
        return self.endpoint


@dataclass(frozen=True)
class RecommendRequest:
    user: str
    k: int
    filter_seen: bool
    exclude: tuple[str, ...]
    diversity: float


class Workers:
    """Where the hot routes' model work runs (``prismrec.serve.batching``).

    Recommendations: batched on the event loop, one batch at a time. A batch's store reads
    (``start_recommendations``: one ``get_states``), its (B, D) x (D, N) product, top-k and
    reasons run on one scoring thread -- no synchronous store round trip ever runs on the
    event loop: the users' stored interest preferences are read there too, one
    ``preferences_of`` per batch. States
    that a batch rebuilt in memory (another checkpoint, an unreadable blob) are stored
    afterwards by one writer thread (``store_pending``): reads
    never write. Ingest: one worker thread, so that a 100-event batch's store transaction
    never holds up the loop; SQLite takes one writer at a time anyway.
    """

    def __init__(self, live: LiveProfiles, settings: ServeSettings) -> None:
        self._scoring = ThreadPoolExecutor(1, thread_name_prefix="prismrec-score")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="prismrec-store-pending")

        def read_and_score(requests: list[dict]) -> list:
            job = live.start_recommendations(requests)  # store reads, off the loop
            job.score()
            results = job.results()  # the lists and their reasons
            try:  # is the user steered? (stored preferences: one read for the batch)
                stored = live.store.preferences_of([r["user"] for r in requests])
                prefs = [stored[r["user"]] for r in requests]  # ids in stored form already
            except Exception as exc:  # the store failed: every request of the batch hears it
                prefs = [exc] * len(requests)
            return [r if isinstance(r, BaseException) else p if isinstance(p, BaseException)
                    else (r, p) for r, p in zip(results, prefs, strict=True)]

        async def recommend(batch: Sequence[RecommendRequest]) -> list:
            requests = [dict(user=r.user, k=r.k, filter_seen=r.filter_seen,
                             exclude=list(r.exclude), diversity=r.diversity) for r in batch]
            results = await asyncio.get_running_loop().run_in_executor(
                self._scoring, read_and_score, requests)
            if live.pending_writes():
                self._writer.submit(_log_errors(live.store_pending))
            return results

        # each request's list and the user's stored preferences
        self.recommend: LoopBatcher[RecommendRequest, tuple[Recommendations, list]] = LoopBatcher(
            recommend, window=settings.batch_window_ms / 1e3,
            max_batch=settings.max_request_batch, name="prismrec-recommend")
        quota = (LogQuota(live.store, settings.max_user_events)
                 if settings.max_user_events else None)
        max_age = settings.max_event_age

        def ingest(events: list[Event]) -> tuple[UpdateResult, int, int]:
            """Drop events past the age limit, apply the log quota to the rest (on this one
            thread, so exact in this process), then log. Returns (result, over quota, too
            old)."""
            too_old = over = 0
            if max_age:
                events, too_old = drop_too_old(events, max_age, time.time())
            if quota is not None:
                events, over = quota.split(events)
            return live.update(events), over, too_old

        self.ingest: Batcher[list[Event], tuple[UpdateResult, int, int]] = Batcher(
            each(ingest), window=0.0, max_batch=1, name="prismrec-ingest")

    def close(self) -> None:
        self.recommend.close()
        self.ingest.close()
        self._scoring.shutdown(wait=True)
        self._writer.shutdown(wait=True)


def _log_errors(fn):
    def run() -> None:
        try:
            fn()
        except Exception:  # the states are kept in memory and written at the next try
            log.exception("storing states rebuilt by reads failed; they stay in memory "
                          "and the next recommendation batch tries again")

    return run


def build_router(live: LiveProfiles, settings: ServeSettings, metrics: Metrics,
                 workers: Workers | None = None, feed: EventFeed | None = None,
                 interests: LiveInterests | None = None) -> APIRouter:
    """Routes bound to one ``LiveProfiles`` (no globals: two apps never share state).

    The two hot routes (events, recommendations) are async and batch their model work
    through ``workers`` (see ``prismrec.serve.batching``); the others use the thread pool,
    as do recommendations that are explained or steered (``prismrec.serve.interests``).
    """
    workers = workers or Workers(live, settings)
    answers = InterestRoutes(live, interests or LiveInterests(
        live.bundle.source, live.store, current=lambda: live.bundle.source))
    client = [Depends(client_guard(settings))]
    admin = [Depends(admin_guard(settings))]
    router = APIRouter()
    Batch = event_batch(settings.max_batch)
    plain = PlainReply()  # the plain recommendation reply, its repeated parts encoded once

    async def post_events(batch: EventBatch) -> dict:
        """Log a batch of events (all or nothing) and advance each user's profile."""
        latest = time.time() + settings.max_future_seconds
        events = []
        for i, e in enumerate(batch.events):
            if not settings.min_timestamp <= e.timestamp <= latest:
                raise HTTPException(422, f"events[{i}].timestamp {e.timestamp!r} is out of "
                                    f"range: give unix seconds between {settings.min_timestamp}"
                                    f" and now + {settings.max_future_seconds:g} s")
            user = _new_id(e.user, f"events[{i}].user")
            eid = None if e.event_id is None else _new_id(e.event_id, f"events[{i}].event_id")
            for what, v in (("item", e.item), ("event", e.event)):
                _check_id(v, f"events[{i}].{what}")
            events.append(Event(user, e.item, float(e.timestamp), e.event,
                                None if e.value is None else float(e.value), eid))
        result, over_quota, too_old = await workers.ingest.submit(events)
        metrics.inc("prismrec_events_over_quota_total", over_quota)
        metrics.inc("prismrec_events_too_old_total", too_old)
        if feed is not None:
            feed.publish(events)  # the dashboard's live page
        metrics.inc("prismrec_events_ingested_total", result.accepted)
        metrics.inc("prismrec_events_duplicate_total", result.duplicates)
        metrics.inc("prismrec_events_late_total", result.late)
        unknown = set(result.unknown_items)
        if unknown:
            metrics.inc("prismrec_events_unknown_item_total",
                        sum(e.item in unknown for e in events))
        return {**result.to_dict(), "over_quota": over_quota, "too_old": too_old}

    # The body model is made per service (its schema holds --max-batch); a signature with the
    # class itself, since the annotation above is a string this module cannot resolve.
    post_events.__signature__ = inspect.Signature([inspect.Parameter(
        "batch", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[Batch, Body()])])
    router.add_api_route("/v1/events", post_events, methods=["POST"], response_model=IngestOut,
                         dependencies=client, responses=ERRORS, tags=["events"])

    async def recommendations(request: Request) -> Response:
        """Top-k items with scores and reasons; unknown users get popular items (stated)."""
        user = _path_id(request, "user", "user id")  # the key was checked by the gate
        q = RecommendQuery.from_request(request)
        if q.k > settings.max_k:
            raise HTTPException(422, f"k={q.k} is over the limit of {settings.max_k}")
        if len(q.exclude) > settings.max_exclude:
            raise HTTPException(422, f"{len(q.exclude)} exclude ids are over the limit of "
                                     f"{settings.max_exclude}")
        stored = None
        if not (q.explain or q.mute or q.boost):
            recs, stored = await workers.recommend.submit(
                RecommendRequest(user, q.k, q.filter_seen, tuple(q.exclude), q.diversity))
        if q.explain or q.mute or q.boost or stored:  # reads the history: thread pool
            reply = await run_in_threadpool(
                answers.recommend, user, k=q.k, exclude=q.exclude, filter_seen=q.filter_seen,
                diversity=q.diversity, diversity_given="diversity" in q.model_fields_set,
                explain=q.explain, mute=q.mute, boost=q.boost, stored=stored)
            metrics.inc("prismrec_recommendations_popular_total" if reply["fallback"]
                        else "prismrec_recommendations_model_total")
            return JSONResponse({"user": user, **reply, "checkpoint": live.checkpoint})
        metrics.inc("prismrec_recommendations_popular_total" if recs.fallback
                    else "prismrec_recommendations_model_total")
        return Response(plain.encode(user, recs, q.diversity, answers.title_of()),
                        media_type="application/json")

    user_parameter = {"name": "user", "in": "path", "required": True, "description": "user id",
                      "schema": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_ID}}
    router.add_api_route(
        "/v1/users/{user}/recommendations", recommendations, methods=["GET"],
        route_class_override=PlainRoute, response_model=RecommendationsOut, responses=ERRORS,
        tags=["users"], openapi_extra={
            "security": OPENAPI_SECURITY,
            "parameters": [user_parameter, *RecommendQuery.openapi_parameters()]})

    @router.get("/v1/users/{user}/profile", dependencies=client, responses=ERRORS,
                tags=["users"], response_model=ProfileOut, response_model_exclude_unset=True)
    def profile(user: UserId, timeline: Annotated[bool, Query(description=(
            "add each interest's weight after every history event, and the events"))] = False
                ) -> dict:
        """The user's interests (``Profile.to_dict()`` over the training history and the
        events logged since), their stored preferences, and what the store holds: counts,
        last event time, recent events (with titles), state. Reads the whole history
        through the model (O(history))."""
        return answers.profile(_lookup(user, "user id"), timeline=timeline)

    @router.get("/v1/users/{user}/interests", dependencies=client, responses=ERRORS,
                tags=["users"], response_model=PreferencesOut)
    def preferences(user: UserId) -> dict:
        """The user's stored interest preferences (mute/boost), by interest id."""
        return answers.preferences(_lookup(user, "user id"))

    @router.put("/v1/users/{user}/interests/{interest}", dependencies=client,
                responses={409: {"model": ErrorOut}} | ERRORS, tags=["users"],
                response_model=PreferencesOut)
    def set_preference(user: UserId, interest: Annotated[int, Path(
            ge=0, description="interest id (the profile's interests[].id)")],
                       body: Annotated[PreferenceIn, Body()]) -> dict:
        """Store the user's preference for one interest (client key): ``mute`` leaves its
        items out of every list, ``boost`` raises its share; both false clears it. Applied
        to every recommendation request for the user until changed; erased by
        ``DELETE /v1/users/{id}``. Needs a model with an interest head (409 otherwise)."""
        return answers.set_preference(_new_id(user, "user id"), interest, body.mute,
                                      body.boost)

    @router.delete("/v1/users/{user}", response_model=ForgetOut, dependencies=admin,
                   responses=ERRORS, tags=["admin"])
    def forget(user: UserId) -> dict:
        """Erase the user's events and profile state from the store (admin key)."""
        user = _lookup(user, "user id")
        erased = live.forget(user)
        return {"user": user, "erased": erased,
                "training_history_retained": live.known_user(user),
                "scrub": _scrub_report(live, erased)}

    @router.post("/v1/items", response_model=ItemsOut, dependencies=admin,
                 responses={code: {"model": ErrorOut} for code in (409, 500, 501)} | ERRORS,
                 tags=["admin"])
    def add_items(batch: Annotated[ItemBatch, Body()]) -> dict:
        """Add catalogue items from their text (admin key): recommendable at once.

        Ids the model already has are upserts (their text is replaced and re-encoded).
        Needs a model trained with a text part (embedding 'id+text' or 'text'), and one
        worker process: each worker holds its own copy of the model.
        """
        if settings.workers > 1:
            raise HTTPException(
                409, f"adding items needs a single worker, and this service runs "
                f"{settings.workers}: each holds its own copy of the model, so an item added "
                "to one would be unknown to the others. Add the items offline "
                "(Recommender.add_items, then save) and restart the workers on that checkpoint")
        if live.model.items.proj is None:
            mode = live.model.config.embedding
            raise HTTPException(
                501, "adding items needs item vectors from text, but this checkpoint's "
                f"{live.model.name} model uses embedding={mode!r} (no text part): retrain "
                "with the catalogue (fit(..., catalog, text=True)) to add items at serve time")
        n = len(batch.items)
        if n > settings.max_batch:
            raise HTTPException(413, f"batch of {n} items is over the limit of "
                                     f"{settings.max_batch}; split it")
        seen: set[str] = set()
        for i, it in enumerate(batch.items):
            _check_id(it.id, f"items[{i}].id")
            if it.id in seen:
                raise HTTPException(422, f"items[{i}].id {it.id!r} appears twice in the batch")
            seen.add(it.id)
        rows = pd.DataFrame({"item": [it.id for it in batch.items],
                             **{f: [getattr(it, f) or "" for it in batch.items]
                                for f in ("title", "description", "brand")},
                             **{f: [list(getattr(it, f)) for it in batch.items]
                                for f in ("categories", "tags")}})
        known = [it.id for it in batch.items if live.item_known(it.id)]
        try:
            added = live.add_items(rows)
        except DimensionMismatchError as exc:
            log.error("add_items: %s", exc)
            raise HTTPException(500, "the text encoder does not fit the model; the server log "
                                     "has the details") from exc
        except EncoderError as exc:
            log.error("add_items: %s", exc)
            raise HTTPException(503, "cannot encode item text now; the server log has the "
                                     "details") from exc
        return {"added": added, "updated": known, "items": live.n_items,
                "checkpoint": live.checkpoint}

    @router.get("/v1/items/{item}/similar", response_model=SimilarOut, dependencies=client,
                responses=ERRORS, tags=["items"])
    def similar(item: ItemId, k: K = 10) -> dict:
        """Items nearest by cosine of the model's output item vectors (exact search)."""
        _check_id(item, "item id")
        if k > settings.max_k:
            raise HTTPException(422, f"k={k} is over the limit of {settings.max_k}")
        near = live.similar_items(item, k)  # unknown item: UnknownIdError, 404
        return {"item": item, "similar": [
            {"rank": int(r), "item": i, "similarity": float(s)}
            for r, i, s in zip(near["rank"], near["item"], near["score"], strict=True)]}

    @router.get("/healthz", tags=["service"])
    def healthz() -> dict:
        """Liveness and readiness: the model is loaded and the store answers (no key; it
        says nothing else -- the model and store are on the admin-keyed ``/metrics``)."""
        live.store.event_count("healthz-probe")
        return {"status": "ok"}

    @router.get("/metrics", response_class=PlainTextResponse, tags=["service"])
    def prometheus() -> Response:
        """Prometheus text format (admin key): requests and latency per route, event
        counters, the model; summed over every worker process."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return router
