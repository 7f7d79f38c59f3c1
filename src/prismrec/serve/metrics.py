"""Prometheus metrics in the text exposition format (0.0.4), written without a client library.

Per process: with several uvicorn workers each keeps its own counts, and a scrape of
``/metrics`` sees the worker that answered it (label ``pid`` tells them apart).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import defaultdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
COUNTERS = {
    "prismrec_events_ingested_total": "events accepted into the log",
    "prismrec_events_duplicate_total": "events skipped because their event_id was already stored",
    "prismrec_events_late_total": "accepted events older than an earlier event of their user",
    "prismrec_events_unknown_item_total": "events received whose item the model does not know "
                                          "(stored unless duplicates, never fed to the model)",
    "prismrec_recommendations_model_total": "recommendation lists computed from a profile",
    "prismrec_recommendations_popular_total": "recommendation lists that fell back to popular",
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


class Metrics:
    """Request counts and latency histograms per route, plus the event counters above."""

    def __init__(self, info: dict[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._latency: dict[tuple[str, str], list[float]] = {}
        self._counters: dict[str, float] = dict.fromkeys(COUNTERS, 0.0)
        self.info = {"pid": str(os.getpid()), **(info or {})}

    def inc(self, name: str, amount: float = 1.0) -> None:
        if name not in COUNTERS:
            raise KeyError(f"unknown counter {name!r}")
        with self._lock:
            self._counters[name] += amount

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, str(status))] += 1
            h = self._latency.get((method, route))
            if h is None:
                h = self._latency[(method, route)] = [0.0] * (len(BUCKETS) + 2)
            for i, edge in enumerate(BUCKETS):
                if seconds <= edge:
                    h[i] += 1
            h[-2] += seconds  # sum
            h[-1] += 1  # count (the +Inf bucket)

    def render(self) -> str:
        pid = _label(self.info["pid"])
        with self._lock:
            requests = dict(self._requests)
            latency = {k: list(v) for k, v in self._latency.items()}
            counters = dict(self._counters)
        out = ["# HELP prismrec_info the model this process serves",
               "# TYPE prismrec_info gauge",
               "prismrec_info{" + ",".join(f'{k}="{_label(v)}"' for k, v in self.info.items())
               + "} 1"]
        out += ["# HELP prismrec_http_requests_total HTTP requests by route and status",
                "# TYPE prismrec_http_requests_total counter"]
        for (method, route, status), n in sorted(requests.items()):
            out.append(f'prismrec_http_requests_total{{pid="{pid}",method="{method}",'
                       f'route="{_label(route)}",status="{status}"}} {n}')
        out += ["# HELP prismrec_http_request_seconds request latency by route",
                "# TYPE prismrec_http_request_seconds histogram"]
        for (method, route), h in sorted(latency.items()):
            labels = f'pid="{pid}",method="{method}",route="{_label(route)}"'
            for edge, n in zip(BUCKETS, h, strict=False):
                out.append(f'prismrec_http_request_seconds_bucket{{{labels},le="{_num(edge)}"}}'
                           f" {_num(n)}")
            out.append(f'prismrec_http_request_seconds_bucket{{{labels},le="+Inf"}} '
                       f"{_num(h[-1])}")
            out.append(f"prismrec_http_request_seconds_sum{{{labels}}} {h[-2]!r}")
            out.append(f"prismrec_http_request_seconds_count{{{labels}}} {_num(h[-1])}")
        for name, help_text in COUNTERS.items():
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} counter",
                    f'{name}{{pid="{pid}"}} {_num(counters[name])}']
        return "\n".join(out) + "\n"


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
            self.metrics.observe(scope.get("method", "?"), path, status,
                                 time.perf_counter() - start)
