"""The dashboard's small parts: the metrics reader, latency quantiles, the session cookie."""

from __future__ import annotations

import math

from prismrec.profile.store import Event
from prismrec.serve.metrics import Metrics
from prismrec.serve.ui.feed import EventFeed
from prismrec.serve.ui.rates import RateMeter, Snapshot, parse, quantile
from prismrec.serve.ui.session import LIFETIME, UiKeys


def test_quantiles_interpolate_within_a_bucket_like_prometheus():
    # 10 requests: 4 at or below 10 ms, 8 at or below 20 ms, all at or below 50 ms
    buckets = [(0.01, 4.0), (0.02, 8.0), (0.05, 10.0), (math.inf, 10.0)]
    assert math.isclose(quantile(0.5, buckets), 0.01 + 0.01 * (5 - 4) / 4)
    assert math.isclose(quantile(0.9, buckets), 0.02 + 0.03 * (9 - 8) / 2)
    assert math.isclose(quantile(0.2, buckets), 0.01 * 2 / 4)
    assert quantile(0.99, [(0.01, 0.0), (math.inf, 3.0)]) == 0.01  # past the last edge
    assert quantile(0.5, [(0.01, 0.0), (math.inf, 0.0)]) is None


def test_the_reader_sums_the_services_routes_and_leaves_the_dashboards_out():
    m = Metrics({"model": "gru"})
    for seconds in (0.003, 0.004, 0.2):
        m.observe("GET", "/v1/users/{user}/recommendations", 200, seconds)
    m.observe("GET", "/ui/users/{user}", 200, 0.5)
    m.inc("prismrec_events_ingested_total", 7)
    snap = Snapshot.of(m.render())
    assert (snap.requests, snap.events) == (3, 7)
    assert list(snap.latency) == ["GET /v1/users/{user}/recommendations"]
    names = {name for name, _, _ in parse(m.render())}
    assert "prismrec_http_request_seconds_bucket" in names


def test_rates_are_differences_between_reads_over_the_window():
    m = Metrics()
    now = [100.0]
    meter = RateMeter(m.render, window=60.0, clock=lambda: now[0])
    assert meter.read()["event_rate"] is None  # one read: no interval yet
    m.inc("prismrec_events_ingested_total", 50)
    now[0] = 110.0
    second = meter.read()
    assert second["events_total"] == 50 and second["event_rate"] == 5.0
    m.inc("prismrec_events_ingested_total", 30)
    now[0] = 190.0  # the read at 100 s is out of the window: rate from 110 s on
    third = meter.read()
    assert third["event_rate"] == 30 / 80 and third["rate_window_s"] == 80.0


def test_a_session_cookie_is_bound_to_its_key_and_expires():
    keys = UiKeys(admin="admin-key-456", dashboard="dashboard-key-789")
    value, session = keys.issue("dashboard", now=1000.0)
    assert keys.check(value, now=1000.0 + LIFETIME - 1) == session
    assert keys.check(value, now=1000.0 + LIFETIME + 1) is None
    other = UiKeys(admin="admin-key-456", dashboard="another-key-000")
    assert other.check(value, now=1000.0) is None  # a changed key ends its sessions
    assert keys.role_of("admin-key-456") == "admin" and keys.role_of("nope-nope") is None
    assert not UiKeys(None, None).enabled


def test_the_feed_keeps_the_newest_events_in_order():
    feed = EventFeed(keep=3)
    feed.publish([Event("u", f"i{j}", float(j), "view", None, None) for j in range(5)])
    events, last = feed.after(0)
    assert last == 5 and [f.seq for f in events] == [3, 4, 5]
    assert feed.after(5) == ([], 5)
