"""``create_app(live, settings)``: the FastAPI service over a ``LiveProfiles``.

Nothing is built at import time: the app, its routes, metrics and index are made by the
factory, so tests and several apps in one process never share state. Every error is JSON
``{"error": "..."}`` with a message that says what is wrong: 400 bad data, 401/403 keys,
404 unknown ids, 413 body or batch too large, 422 invalid fields, 429 rate limit (with
``Retry-After``), 501 not available, 503 the store cannot be reached or the service is at its
limit of requests in flight (retry). Error replies never carry file paths, host names or
exception text: those go to the server log. The key is checked, and the limits applied,
before the body is read (``prismrec.serve.gate``). Route handlers are plain functions, run
in the server's thread pool, except the two hot ones (events, recommendations), which are
async and batch their model work (``prismrec.serve.batching``: a recommendation batch's
store reads, product, top-k and reasons on a scoring thread, its reply written as JSON bytes
on the event loop (``prismrec.serve.reply``), ingest on a worker thread): no store round
trip runs on the event loop. The store and ``LiveProfiles`` are thread-safe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prismrec.errors import CheckpointError, DataError, UnknownIdError, require

require("fastapi", "serve")

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

import prismrec  # noqa: E402
from prismrec.explain.live_interests import LiveInterests  # noqa: E402
from prismrec.profile.live import LiveProfiles  # noqa: E402
from prismrec.profile.store import StoreError, StoreUnavailableError  # noqa: E402
from prismrec.serve.docs import offline_docs  # noqa: E402
from prismrec.serve.gate import Gate  # noqa: E402
from prismrec.serve.limits import BodyLimit, RateLimiter  # noqa: E402
from prismrec.serve.metrics import Metrics, MetricsMiddleware  # noqa: E402
from prismrec.serve.routes import Workers, build_router  # noqa: E402
from prismrec.serve.schemas import TOO_LARGE  # noqa: E402
from prismrec.serve.settings import ServeSettings  # noqa: E402
from prismrec.serve.ui import Dashboard, EventFeed, UiKeys, build_ui_router  # noqa: E402

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # set by `prismrec serve --workers N`
MAX_REPORTED = 5  # validation problems quoted in one error message


def _where(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for err in exc.errors()[:MAX_REPORTED]:
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        if kind == "json_invalid":
            problems.append(f"the body is not valid JSON ({err.get('ctx', {}).get('error', '')})"
                            .replace(" ()", ""))
        elif kind == "missing":
            problems.append(f"{_where(loc)} is required")
        elif kind == "extra_forbidden":
            problems.append(f"{_where(loc)} is not a known field")
        else:
            where = _where(loc) if loc and loc[0] == "body" else ".".join(map(str, loc))
            problems.append(f"{where}: {err.get('msg', 'invalid value')}")
    more = len(exc.errors()) - MAX_REPORTED
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(live: LiveProfiles, settings: ServeSettings | None = None, *,
               checkpoint_dir: str | None = None) -> FastAPI:
    """The HTTP service for ``live`` (see the module docstring and ``/docs``), with the
    dashboard at ``/ui`` (``checkpoint_dir``, when given, adds its files to the model card)."""
    if not isinstance(live, LiveProfiles):
        raise TypeError(f"create_app takes a LiveProfiles, got {type(live).__name__}")
    settings = settings or ServeSettings()
    settings.validate()
    metrics = Metrics({"model": live.model.name, "checkpoint": live.checkpoint},
                      multiprocess_dir=os.environ.get(MULTIPROC_ENV) or None)
    workers = Workers(live, settings)
    feed = EventFeed()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        workers.close()  # finish queued model work, stop the ingest and scoring threads

    app = FastAPI(title="prismrec", version=prismrec.__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Recommendations from dynamic user profiles, updated per event. "
                  "Send the key in the X-API-Key header.")
    app.state.live, app.state.settings, app.state.metrics = live, settings, metrics
    app.state.workers = workers
    interests = LiveInterests(  # the catalogue text built once per served recommender
        live.bundle.source, live.store, current=lambda: live.bundle.source)
    app.include_router(build_router(live, settings, metrics, workers, feed=feed,
                                    interests=interests))
    offline_docs(app)
    dashboard = Dashboard(live.bundle.source, live=live, metrics=metrics, feed=feed,
                          checkpoint_dir=checkpoint_dir, interests=interests)
    login_limit = (RateLimiter(settings.login_rate, settings.login_burst)
                   if settings.login_rate > 0 else None)
    app.include_router(build_ui_router(dashboard, UiKeys(settings.admin_key,
                                                         settings.dashboard_key),
                                       login_limit=login_limit))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        too_large = any(e.get("type") == TOO_LARGE for e in exc.errors())
        return _error(413 if too_large else 422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return JSONResponse({"error": message}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(UnknownIdError)
    async def unknown(request: Request, exc: UnknownIdError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.warning("store unavailable: %s", exc)  # the host or path: for the log only
        return JSONResponse({"error": "the profile store is unavailable; retry later"},
                            status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(DataError)
    async def bad_data(request: Request, exc: DataError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", exc)
        return _error(500, "profile store error; the server log has the details")

    @app.exception_handler(CheckpointError)
    async def checkpoint_error(request: Request, exc: CheckpointError) -> JSONResponse:
        log.error("checkpoint error: %s", exc)
        return _error(500, "checkpoint error; the server log has the details")

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal error; the server log has the details")

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Gate, settings=settings)  # path, key, rate, in flight: before the body
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: times everything
    return app
