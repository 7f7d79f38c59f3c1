"""Prometheus metrics through ``prometheus_client``: requests, latency and event counters.

Each app has its own registry (two apps in one process never share counts). With several
uvicorn workers (``prismrec serve --workers N``) the command points
``PROMETHEUS_MULTIPROC_DIR`` at a private folder before the workers start; every worker
then writes its counts there and a scrape of ``/metrics``, whichever worker answers it,
adds up all of them (``prometheus_client.multiprocess``). ``/metrics`` takes the admin key.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

CONTENT_TYPE = CONTENT_TYPE_LATEST
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
COUNTERS = {
    "prismrec_events_ingested_total": "events accepted into the log",
    "prismrec_events_duplicate_total": "events skipped because their user already has their "
                                       "event_id",
    "prismrec_events_late_total": "accepted events older than an earlier event of their user",
    "prismrec_events_unknown_item_total": "events received whose item the model does not know "
                                          "(stored unless duplicates, never fed to the model)",
    "prismrec_recommendations_model_total": "recommendation lists computed from a profile",
    "prismrec_recommendations_popular_total": "recommendation lists that fell back to popular",
    "prismrec_events_over_quota_total": "events not stored because their user's log was at "
                                        "the per-user quota (--max-user-events)",
    "prismrec_events_too_old_total": "events not stored because their timestamp was older "
                                     "than the age limit (--max-event-age) when they arrived",
    "prismrec_requests_refused_total": "requests refused by a limit (rate or in flight)",
}


class Metrics:
    """Request counts and latency histograms per route, plus the event counters above.

    ``multiprocess_dir``: the folder of ``PROMETHEUS_MULTIPROC_DIR`` when the service runs
    several worker processes (set before ``prometheus_client`` was imported), else None.
    """

    def __init__(self, info: dict[str, str] | None = None,
                 multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        r = self.registry
        self._requests = Counter("prismrec_http_requests_total", "HTTP requests by route and "
                                 "status", ["method", "route", "status"], registry=r)
        self._latency = Histogram("prismrec_http_request_seconds", "request latency by route",
                                  ["method", "route"], buckets=BUCKETS, registry=r)
        self._counters = {name: Counter(name, text, registry=r)
                          for name, text in COUNTERS.items()}
        self._children: dict[tuple[str, str, int], tuple] = {}  # bounded: route templates
        info = info or {}
        self._info = Gauge("prismrec_info", "the model this service serves", list(info),
                           registry=r, multiprocess_mode="max")
        if info:
            self._info.labels(**info).set(1)

    def inc(self, name: str, amount: float = 1.0) -> None:
        if name not in self._counters:
            raise KeyError(f"unknown counter {name!r}")
        if amount:
            self._counters[name].inc(amount)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # ``labels`` resolved once per route and status, not per request
            children = self._children[key] = (self._requests.labels(method, route, str(status)),
                                              self._latency.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> str:
        """The exposition text: this process's counts, or every worker's summed."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry).decode()
        merged = CollectorRegistry()
        _multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)
        return generate_latest(merged).decode()


class MetricsMiddleware:
    """ASGI middleware timing every HTTP request, labelled by its route template."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"  # no raw paths: bounded labels
            if status in (429, 503) and route is None:
                self.metrics.inc("prismrec_requests_refused_total")
            self.metrics.observe(scope.get("method", "?"), path, status,
                                 time.perf_counter() - start)
