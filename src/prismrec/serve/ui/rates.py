"""The overview's figures from the service's own ``/metrics`` text: totals, rates, latency.

The dashboard reads what Prometheus would read (``Metrics.render()``), so the two always
agree. Rates are differences between samples the dashboard takes when it is asked (each
overview refresh), over the last ``WINDOW`` seconds (none until two reads are ``MIN_SPAN``
apart); latency quantiles are read from the
histogram buckets as Prometheus' ``histogram_quantile`` does (linear within a bucket).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field

WINDOW = 60.0  # seconds of samples behind a rate
MIN_SPAN = 2.0  # seconds between the first and last sample before a rate is shown
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
UI_PREFIX = "/ui"


def parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) for each sample line of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile from cumulative ``(upper_edge, count)`` buckets, +Inf last."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for edge, count in buckets:
        if count >= rank:
            if math.isinf(edge):
                return lower  # beyond the last finite edge: its edge is all we know
            inside = count - below
            return lower + (edge - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = edge, count
    return lower


@dataclass
class Snapshot:
    """What one ``/metrics`` text says, summed over routes (the dashboard's own left out)."""

    requests: float = 0.0
    events: float = 0.0
    recommendations: float = 0.0
    latency: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @classmethod
    def of(cls, text: str) -> Snapshot:
        snap = cls()
        buckets: dict[str, dict[float, float]] = {}
        for name, labels, value in parse(text):
            route = labels.get("route", "")
            if route.startswith(UI_PREFIX):
                continue
            if name == "prismrec_http_requests_total":
                snap.requests += value
            elif name == "prismrec_events_ingested_total":
                snap.events += value
            elif name in ("prismrec_recommendations_model_total",
                          "prismrec_recommendations_popular_total"):
                snap.recommendations += value
            elif name == "prismrec_http_request_seconds_bucket":
                key = f"{labels.get('method', '?')} {route}"
                edge = math.inf if labels["le"] == "+Inf" else float(labels["le"])
                buckets.setdefault(key, {})[edge] = value
        snap.latency = {k: sorted(v.items()) for k, v in buckets.items()}
        return snap


class RateMeter:
    """Samples of the metrics text over time; rates over the last ``WINDOW`` seconds."""

    def __init__(self, render, window: float = WINDOW, clock=time.monotonic) -> None:
        self._render = render
        self._clock = clock
        self._window = window
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, Snapshot]] = deque()

    def read(self) -> dict:
        now = self._clock()
        snap = Snapshot.of(self._render())
        with self._lock:
            self._samples.append((now, snap))
            while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
                self._samples.popleft()
            t0, first = self._samples[0]
        span = now - t0

        def rate(a: float, b: float) -> float | None:
            return (b - a) / span if span >= MIN_SPAN else None

        routes = []
        for key, b in sorted(snap.latency.items()):
            p50, p95, p99 = (quantile(q, b) for q in (0.5, 0.95, 0.99))
            routes.append({"route": key, "count": int(b[-1][1]), "p50_ms": _ms(p50),
                           "p95_ms": _ms(p95), "p99_ms": _ms(p99)})
        return {"requests_total": int(snap.requests), "events_total": int(snap.events),
                "recommendations_total": int(snap.recommendations),
                "request_rate": rate(first.requests, snap.requests),
                "event_rate": rate(first.events, snap.events),
                "rate_window_s": round(span, 1), "latency": routes}


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 2)
